//! `compare` and `report`: several runs side by side as overlaid graphs and tables.
//!
//! `compare` runs profiles (each into its own results directory under `--out`) and then draws them
//! together; with no profile it runs the seed's six (both regions × Current / Option A / Option B).
//! `report` redraws the same graphs and tables from saved results directories without running again.

use crate::cli::{CommonRunArgs, CompareArgs, ReportArgs, RunArgs};
use anyhow::Context;
use reports::LoadedRun;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The seed's six profiles, relative to the repository's `profiles/` directory.
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
    for p in &profiles {
        virtual_hubs::Profile::load(p)?;
        thresholds.push(crate::check::thresholds_for(p, None)?);
    }
    let mut runs = Vec::with_capacity(profiles.len());
    for p in &profiles {
        let name = virtual_hubs::Profile::load(p)?.name().replace('/', "-");
        let common = CommonRunArgs {
            profile: p.clone(),
            changes: Vec::new(),
            seed: args.seed,
            out: Some(args.out.join(&name)),
            quiet: args.quiet,
            thresholds: None,
            junit: None,
        };
        let run = if args.simulate {
            crate::run::simulate_one(&common)?
        } else {
            crate::run::run_one(RunArgs::embedded(common, args.time_scale))?
        };
        runs.push(run);
    }
    draw(&runs, &args.out)?;
    // The profiles' own thresholds, if any, give the verdict of the whole comparison.
    let checked: Vec<_> = runs
        .iter()
        .zip(&thresholds)
        .filter_map(|(r, t)| t.as_ref().map(|t| (&r.summary, t)))
        .collect();
    if checked.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    crate::check::verdict_for_runs(&checked, args.junit.as_deref())
}

/// `csp-harness report DIR...`.
pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let runs = args
        .dirs
        .iter()
        .map(|d| {
            reports::load_run(d).with_context(|| format!("cannot read results {}", d.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    draw(&runs, &args.out)?;
    Ok(ExitCode::SUCCESS)
}

fn draw(runs: &[LoadedRun], out: &Path) -> anyhow::Result<()> {
    let written = reports::write_comparison(runs, out)
        .with_context(|| format!("cannot write the comparison to {}", out.display()))?;
    for w in written {
        crate::cli::say(&format!("wrote {}\n", w.display()));
    }
    Ok(())
}
