//! `compare` and `report`: several runs side by side as overlaid graphs and tables.
//!
//! `compare` runs profiles (each into its own results directory under `--out`, or under a new
//! `out/compare/<UTC time>/`) and then draws them together; with no profile it runs the seed's six
//! (both regions × Current / Option A / Option B), from `profiles/` when run in the repository and
//! built in otherwise. Ctrl-C or SIGTERM stops the whole comparison:
//! the profiles already run are drawn, the rest are not run, and it exits 130.
//! `report` redraws the same graphs and tables from saved results directories without running again.

use crate::cli::{CommonRunArgs, CompareArgs, ReportArgs, RunArgs};
use crate::outdir::ResultsFolder;
use anyhow::Context;
use results::LoadedRun;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The seed's six profiles, relative to the repository's `profiles/` directory (and built in:
/// those not found under `--profiles-dir` are the built-in ones).
pub const SEED_PROFILES: [&str; 6] = [
    "north/current.toml",
    "north/option-a.toml",
    "north/option-b.toml",
    "central-south/current.toml",
    "central-south/option-a.toml",
    "central-south/option-b.toml",
];

/// `csp-harness compare`.
pub fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    if !args.simulate {
        crate::run::refuse_seeds_in_real_time(args.seeds.as_ref())?;
    }
    crate::cli::seed_list(args.seed, args.seeds.as_ref())?;
    let profiles: Vec<PathBuf> = if args.profile.is_empty() {
        SEED_PROFILES
            .iter()
            .map(|p| args.profiles_dir.join(p))
            .collect()
    } else {
        args.profile.clone()
    };
    // Fail on a broken profile or thresholds table before spending minutes on the others.
    let mut thresholds = Vec::with_capacity(profiles.len());
    let mut bases: Vec<String> = Vec::with_capacity(profiles.len());
    let mut names: Vec<String> = Vec::with_capacity(profiles.len());
    for p in &profiles {
        let base = crate::profiles::load(p, &[])?.name().replace('/', "-");
        thresholds.push(crate::check::thresholds_for(p, None)?);
        // The same profile twice gets two folders (`north-current`, `north-current.2`), never one
        // overwritten.
        let n = bases.iter().filter(|b| **b == base).count();
        names.push(if n == 0 {
            base.clone()
        } else {
            format!("{base}.{}", n + 1)
        });
        bases.push(base);
    }
    // One address for every profile's run, taken now so an address in use fails before anything
    // runs; port 0 becomes one concrete port, so a scraper follows the whole comparison.
    let metrics_listen = match args.metrics.metrics_listen {
        Some(addr) => Some(crate::metrics::bind(addr)?.local_addr()?),
        None => None,
    };
    let folder = ResultsFolder::create(args.out.as_deref(), Path::new("out/compare"), args.force)?;
    let out = folder.path().to_path_buf();
    let mut runs = Vec::with_capacity(profiles.len());
    for (p, name) in profiles.iter().zip(&names) {
        // Ctrl-C / SIGTERM stops the whole comparison, not just the profile running.
        if let Some(sig) = crate::interrupt::requested() {
            eprintln!(
                "{sig}: {} of {} profiles not run",
                profiles.len() - runs.len(),
                profiles.len()
            );
            break;
        }
        let common = CommonRunArgs {
            profile: p.clone(),
            changes: Vec::new(),
            seed: args.seed,
            out: Some(out.join(name)),
            force: args.force,
            quiet: args.quiet,
            json: false,
            thresholds: None,
            junit: None,
            shard: None,
            shards: None,
            seeds: args.seeds.clone(),
            jobs: args.jobs,
        };
        let run = if args.simulate {
            crate::run::simulate_one(&common)?
        } else {
            let mut run = RunArgs::embedded(common, args.time_scale);
            run.metrics.metrics_listen = metrics_listen;
            if runs.len() + 1 == profiles.len() {
                run.metrics.metrics_hold_s = args.metrics.metrics_hold_s;
            }
            crate::run::run_one(run)?
        };
        runs.push(run);
    }
    // The profiles' own thresholds, if any, give the verdict of the whole comparison.
    let verdicts: Vec<verdict::Verdict> = runs
        .iter()
        .zip(&thresholds)
        .filter_map(|(r, t)| crate::check::run_verdict(r, t.as_ref(), args.junit.is_some()))
        .collect();
    if !runs.is_empty() {
        draw(&runs, &out, Some(&verdicts))?;
        folder.publish();
    }
    let refs: Vec<&LoadedRun> = runs.iter().collect();
    crate::check::conclude(&refs, &verdicts, args.junit.as_deref(), args.json)
}

/// `csp-harness report DIR...`.
pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let runs = args
        .dirs
        .iter()
        .map(|d| {
            results::load_run(d).with_context(|| format!("cannot read results {}", d.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let folder = ResultsFolder::create(args.out.as_deref(), Path::new("out/report"), args.force)?;
    draw(&runs, folder.path(), args.html.then_some(&[]))?;
    folder.publish();
    Ok(ExitCode::SUCCESS)
}

/// Graphs and tables of `runs` into `out`, and `report.html` when `html` gives the verdicts to put
/// in it (none for `report`, which checks nothing).
fn draw(runs: &[LoadedRun], out: &Path, html: Option<&[verdict::Verdict]>) -> anyhow::Result<()> {
    let cannot = || format!("cannot write the comparison to {}", out.display());
    for r in runs
        .iter()
        .filter(|r| r.precision() == results::Precision::Hdr)
    {
        let dir = r
            .dir
            .as_deref()
            .map_or_else(String::new, |d| d.display().to_string());
        eprintln!(
            "note: {dir}: no alerts.csv; its curves are read from the HDR logs (up to 0.1% late), \
             and the graphs and tables say so"
        );
    }
    let mut written = reports::write_comparison(runs, out).with_context(cannot)?;
    if let Some(verdicts) = html {
        let refs: Vec<&LoadedRun> = runs.iter().collect();
        written.push(reports::write_html(out, &refs, verdicts).with_context(cannot)?);
    }
    for w in written {
        crate::cli::say(&format!("wrote {}\n", w.display()));
    }
    Ok(())
}
