//! `csp-harness merge SHARD... --out DIR`: the shards of a split run (`run --shard I/N`, e.g. the
//! pods of a Kubernetes Indexed Job) combined into the one run, exactly, as a normal results folder
//! (`alerts.csv`, histograms, `summary.json`, graphs, `summary.md`, `report.html`), then judged
//! like a run: thresholds if given, the shards' health (a lagged shard makes the run lagged).
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
    /// Thresholds to check the merged run against (exit 1 when one is breached).
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
