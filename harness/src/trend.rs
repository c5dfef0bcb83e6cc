//! `csp-harness trend DIR...`: many nights' results of one scenario (or several) over time.
//!
//! Each DIR is a results folder, or a folder holding results folders (such as
//! `out/north-current/`, where every run writes a new timestamped folder; its `latest` link is
//! skipped so no night counts twice). Runs are grouped by profile and changes, ordered by the start
//! time their `run.json` records, and drawn and written by `reports::trend`: graphs of time to
//! 50/80/95% and loss per kind over the nights, with the thresholds of `--thresholds`, and the
//! newest night's figures in github-action-benchmark's custom JSON formats.

use crate::outdir::ResultsFolder;
use anyhow::{Context, anyhow};
use results::LoadedRun;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `csp-harness trend`
#[derive(Debug, Clone, clap::Args)]
pub struct TrendArgs {
    /// Results folders, or folders holding them (e.g. out/north-current with one folder per night).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Thresholds to draw as limits (a thresholds file, or a profile with a [thresholds] table).
    #[arg(long, value_name = "FILE")]
    pub thresholds: Option<PathBuf>,
    /// Where the graphs and the benchmark JSON go. Default: a new folder, out/trend/<UTC time>/.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write into a non-empty --out folder, replacing the files an earlier trend left there.
    #[arg(long, requires = "out")]
    pub force: bool,
}

/// The results folders named by `dirs`: each one itself if it holds `summary.json`, else its
/// sub-folders that do (not following symbolic links such as `latest`).
pub fn results_folders(dirs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for d in dirs {
        if d.join(results::layout::SUMMARY_JSON).is_file() {
            out.push(d.clone());
            continue;
        }
        let entries =
            std::fs::read_dir(d).with_context(|| format!("cannot read folder {}", d.display()))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .filter(|p| p.join(results::layout::SUMMARY_JSON).is_file())
            .collect();
        if found.is_empty() {
            return Err(anyhow!(
                "{} is not a results folder (no summary.json) and holds none",
                d.display()
            ));
        }
        found.sort();
        out.append(&mut found);
    }
    Ok(out)
}

/// `profile` or `profile +3,4`: runs of one series are drawn together.
fn series_of(r: &LoadedRun) -> String {
    let m = &r.summary.meta;
    let extra: Vec<String> = r
        .record
        .as_ref()
        .map(|rec| rec.command_line.as_slice())
        .and_then(|cl| {
            cl.iter()
                .position(|a| a == "--changes")
                .and_then(|i| cl.get(i + 1))
        })
        .map(|c| c.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let name = crate::outdir::series_name(&m.profile, &extra);
    match name.split_once('+') {
        Some((_, changes)) => format!("{} +{changes}", m.profile),
        None => m.profile.clone(),
    }
}

/// Runs `trend`.
pub fn trend(args: TrendArgs) -> anyhow::Result<ExitCode> {
    let thresholds = args
        .thresholds
        .as_deref()
        .map(load_thresholds)
        .transpose()?;
    let mut runs = Vec::new();
    for dir in results_folders(&args.dirs)? {
        let run = results::load_run(&dir)
            .with_context(|| format!("cannot read results {}", dir.display()))?;
        if run.record.is_none() {
            return Err(anyhow!(
                "{}: no run.json, so when it ran is unknown and it cannot be placed in a trend",
                dir.display()
            ));
        }
        runs.push(run);
    }
    runs.sort_by_key(|r| r.record.as_ref().map(|rec| rec.started_at));
    let mut names: Vec<String> = Vec::new();
    for r in &runs {
        let n = series_of(r);
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let trends: Vec<reports::trend::Trend> = names
        .iter()
        .map(|n| reports::trend::Trend {
            name: n.clone(),
            nights: runs.iter().filter(|r| series_of(r) == *n).collect(),
            thresholds: thresholds.as_ref(),
        })
        .collect();
    let folder = ResultsFolder::create(args.out.as_deref(), Path::new("out/trend"), args.force)?;
    let written = reports::trend::write_trend(&trends, folder.path())
        .with_context(|| format!("cannot write the trend to {}", folder.path().display()))?;
    folder.publish();
    for t in &trends {
        crate::cli::say(&format!("{}: {} nights\n", t.name, t.nights.len()));
    }
    for w in written {
        crate::cli::say(&format!("wrote {}\n", w.display()));
    }
    Ok(ExitCode::SUCCESS)
}

/// A thresholds file, or a profile's `[thresholds]` table.
fn load_thresholds(path: &Path) -> anyhow::Result<verdict::Thresholds> {
    match verdict::Thresholds::load_from_profile(path)? {
        Some(t) => Ok(t),
        None => Ok(verdict::Thresholds::load(path)?),
    }
}
