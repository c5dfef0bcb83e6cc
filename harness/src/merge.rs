//! `csp-harness merge SHARD... --out DIR`: the shards of a split run (`run --shard I/N`, e.g. the
//! pods of a Kubernetes Indexed Job) combined into the one run, exactly, as a normal results folder
//! (`alerts.csv`, histograms, `summary.json`, graphs, `summary.md`, `report.html`), then judged
//! like a run: thresholds (`--thresholds`, else the `[thresholds]` of the profile the shards ran,
//! read again here and checked to be the same profile by its hash), the shards' health (a lagged
//! shard makes the run lagged).
//!
//! The merging and every refusal (a shard missing, given twice, or of another run) are
//! `results::merge_shards`; this module reads the command line, writes and prints.

use crate::outdir::ResultsFolder;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// `csp-harness merge`
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// The shards' results folders, every shard of the run once, in any order.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Where the merged run goes: a new or empty folder (or --force).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Write into a non-empty --out folder, replacing the results an earlier merge left there.
    #[arg(long)]
    pub force: bool,
    /// Thresholds to check the merged run against (exit 1 when one is breached). Without it, the
    /// `[thresholds]` table of the profile the shards ran, if it has one.
    #[arg(long, value_name = "FILE")]
    pub thresholds: Option<PathBuf>,
    /// Write the verdict as JUnit XML.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Only print the final summary line.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the merged summary.json to stdout (everything else goes to stderr).
    #[arg(long)]
    pub json: bool,
}

/// Above this many scenario seconds between the first and the last shard's start, the merge warns
/// that the endpoint saw the shards' loads offset (their figures are exact all the same).
const START_SPREAD_WARN_SCENARIO_S: f64 = 10.0;

/// `csp-harness merge`.
pub fn merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let thresholds = match &args.thresholds {
        Some(p) => Some(crate::check::load_thresholds(p)?),
        None => None,
    };
    let command_line = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let merged = results::merge_shards(&args.dirs, command_line)?;
    let m = &merged.summary.meta;
    let spread = merged.start_spread_s();
    crate::cli::say(&format!(
        "merged {} shards of {} (seed {}, {} premises); their starts {:.1} s apart\n",
        merged.shards.len(),
        m.profile,
        m.seed,
        m.hubs,
        spread
    ));
    if m.mode == results::Mode::Run && spread * m.time_scale > START_SPREAD_WARN_SCENARIO_S {
        eprintln!(
            "warning: the shards started up to {spread:.1} s apart ({:.0} scenario s at {}x): the \
             endpoint saw their loads offset by that much (give every shard the same --start-at); \
             each shard's figures are measured against its own clock and are exact",
            spread * m.time_scale,
            m.time_scale
        );
    }
    let thresholds = match thresholds {
        Some(t) => Some(t),
        None => profile_thresholds(&merged.summary.meta, &merged.record.profile.sha256)?,
    };
    let folder = ResultsFolder::explicit(&args.out, args.force)?;
    let run = crate::run::finish_run(
        &folder,
        merged.summary,
        merged.record,
        &merged.ledger,
        args.quiet,
        Vec::new(),
    )?;
    crate::run::conclude(&run, thresholds.as_ref(), args.junit.as_deref(), args.json)
}

/// The `[thresholds]` of the profile the shards ran, as a run of that profile would judge itself.
/// The profile is found where the shards named it (a file, or a built-in one) and must resolve,
/// with the shards' changes, to the hash the shards recorded (the model's parameters; thresholds
/// are not part of it, so editing only them re-judges the run as `check` would): judging a run by
/// the thresholds of another model would be a wrong verdict, so a profile that cannot be found or
/// whose model changed is an input error (exit 2) that names `--thresholds` as the way out.
fn profile_thresholds(
    meta: &results::RunMeta,
    recorded_sha256: &str,
) -> anyhow::Result<Option<verdict::Thresholds>> {
    let Some(path) = meta.profile_path.as_deref() else {
        return Ok(None);
    };
    let arg = path
        .strip_prefix(crate::profiles::BUILT_IN)
        .map_or(path, |rest| rest.trim_start_matches('/'));
    let way_out = "give the thresholds with --thresholds FILE";
    let file = crate::profiles::ProfileFile::find(std::path::Path::new(arg)).map_err(|e| {
        anyhow::anyhow!(
            "cannot judge the merge by the shards' profile's own thresholds: {e}; {way_out}"
        )
    })?;
    let profile = file.load(&meta.changes)?;
    let sha = crate::provenance::profile_hash(&profile.to_resolved_toml());
    if sha != recorded_sha256 {
        anyhow::bail!(
            "the profile {} is not the one the shards ran (sha256 {} here, {} in their run.json), \
             so its thresholds cannot judge them; {way_out}",
            file.name(),
            &sha[..8.min(sha.len())],
            &recorded_sha256[..8.min(recorded_sha256.len())]
        );
    }
    crate::check::thresholds_for(std::path::Path::new(arg), None)
}
