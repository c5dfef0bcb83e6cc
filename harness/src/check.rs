//! `csp-harness check`: the CI gate over a saved results directory, and the same verdict at the end
//! of `run` / `simulate` / `compare` when thresholds are given.
//!
//! ```text
//! csp-harness check --results DIR [--thresholds FILE] [--baseline DIR --max-regression 10%] [--junit FILE]
//! ```
//!
//! Exit codes: **0** every check passed; **1** a threshold was breached, a value it needs was not
//! measured, or the run regressed against its baseline; **2** the check could not run (unreadable
//! or malformed thresholds file, missing results, a baseline of another scenario, JUnit not
//! writable) — returned as an error, which `main` prints and maps to 2.
//!
//! The rules themselves live in the `verdict` crate; this module only reads files, prints and
//! chooses the exit code. It never changes a results directory.

use anyhow::{Context, anyhow};
use results::Summary;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use verdict::{Margin, Thresholds, Verdict};

/// Exit code: every check passed.
pub const EXIT_PASS: u8 = 0;
/// Exit code: a threshold breached (or not measured), or a regression against the baseline.
pub const EXIT_BREACHED: u8 = 1;
/// Exit code: the check could not run.
pub const EXIT_ERROR: u8 = 2;

/// `csp-harness check`
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Results directory written by run, simulate or compare (holds summary.json).
    #[arg(long, value_name = "DIR")]
    pub results: PathBuf,
    /// Thresholds (TOML): a thresholds file, or a profile with a [thresholds] table.
    #[arg(long, value_name = "FILE")]
    pub thresholds: Option<PathBuf>,
    /// A saved results directory of the same scenario to compare against.
    #[arg(long, value_name = "DIR")]
    pub baseline: Option<PathBuf>,
    /// Largest slow-down / loss increase against the baseline, relative (e.g. 10%).
    #[arg(long, value_name = "PCT", default_value = "10%", requires = "baseline")]
    pub max_regression: Margin,
    /// Also write the verdict as JUnit XML (one testsuite, one testcase per check).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Print only the summary line, not the table.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `check`: `Ok(0)` pass, `Ok(1)` breached, `Err` could not check (exit 2).
pub fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    if args.thresholds.is_none() && args.baseline.is_none() {
        return Err(anyhow!(
            "nothing to check: give --thresholds FILE and/or --baseline DIR"
        ));
    }
    // The thresholds first: a malformed file is the likelier mistake, and the cheaper to report.
    let thresholds = match &args.thresholds {
        Some(path) => Some(load_thresholds(path)?),
        None => None,
    };
    let summary = load_summary(&args.results)?;
    let mut v = match &thresholds {
        Some(t) => verdict::evaluate(&summary, t),
        None => Verdict::for_run(&summary),
    };
    if let Some(dir) = &args.baseline {
        let baseline = load_summary(dir).context("cannot read the baseline")?;
        let results = verdict::compare_baseline(&summary, &baseline, args.max_regression)?;
        v.results.extend(results);
    }
    if v.results.is_empty() {
        return Err(anyhow!(
            "nothing to check: {} holds no thresholds",
            args.thresholds
                .as_deref()
                .map_or_else(String::new, |p| p.display().to_string())
        ));
    }
    report(&[v], args.junit.as_deref(), args.quiet)
}

/// The verdicts of runs that just finished (`run` / `simulate` / `compare` given thresholds):
/// prints the table (one block per run), writes JUnit if asked (one testsuite per run), and
/// returns 0, or 1 if any run breached (`Err` only if JUnit cannot be written).
pub fn decide(verdicts: &[Verdict], junit: Option<&Path>, quiet: bool) -> anyhow::Result<ExitCode> {
    report(verdicts, junit, quiet)
}

/// The thresholds a run should be checked against: `--thresholds FILE` if given, otherwise the
/// profile's own `[thresholds]` table, otherwise none. Errors name the file, line and key.
pub fn thresholds_for(
    profile: &Path,
    thresholds_flag: Option<&Path>,
) -> anyhow::Result<Option<Thresholds>> {
    match thresholds_flag {
        Some(p) => load_thresholds(p).map(Some),
        None => Ok(Thresholds::load_from_profile(profile)?),
    }
}

fn load_thresholds(path: &Path) -> anyhow::Result<Thresholds> {
    Ok(Thresholds::load(path)?)
}

fn load_summary(dir: &Path) -> anyhow::Result<Summary> {
    let run = results::load_run(dir)
        .with_context(|| format!("cannot read results directory {}", dir.display()))?;
    Ok(run.summary)
}

fn report(verdicts: &[Verdict], junit: Option<&Path>, quiet: bool) -> anyhow::Result<ExitCode> {
    for v in verdicts {
        if quiet {
            println!("{}: {}", v.suite, verdict::summary_line(v));
        } else {
            print!("{}", verdict::render_table(v));
        }
    }
    if let Some(path) = junit {
        verdict::write_junit(path, verdicts)?;
        if !quiet {
            println!("junit: {}", path.display());
        }
    }
    let passed = verdicts.iter().all(Verdict::passed);
    Ok(ExitCode::from(if passed {
        EXIT_PASS
    } else {
        EXIT_BREACHED
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: CheckArgs,
    }

    #[test]
    fn flags_parse() {
        let c = Cli::try_parse_from([
            "x",
            "--results",
            "out/n",
            "--thresholds",
            "t.toml",
            "--baseline",
            "base",
            "--max-regression",
            "15%",
            "--junit",
            "j.xml",
        ])
        .unwrap();
        assert_eq!(c.args.max_regression.fraction(), 0.15);
        assert_eq!(c.args.junit.as_deref(), Some(Path::new("j.xml")));
        assert!(
            Cli::try_parse_from([
                "x",
                "--results",
                "d",
                "--baseline",
                "b",
                "--max-regression",
                "0.1"
            ])
            .is_err()
        );
        assert!(Cli::try_parse_from(["x", "--thresholds", "t.toml"]).is_err());
        // A margin without a baseline is a mistake worth saying.
        assert!(Cli::try_parse_from(["x", "--results", "d", "--max-regression", "5%"]).is_err());
    }

    #[test]
    fn missing_inputs_are_errors_naming_the_file() {
        let e = check(CheckArgs {
            results: PathBuf::from("/nonexistent/results"),
            thresholds: None,
            baseline: Some(PathBuf::from("/nonexistent/baseline")),
            max_regression: Margin::default(),
            junit: None,
            quiet: true,
        })
        .unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent/results"), "{e:#}");
        let e = check(CheckArgs {
            results: PathBuf::from("/nonexistent/results"),
            thresholds: None,
            baseline: None,
            max_regression: Margin::default(),
            junit: None,
            quiet: true,
        })
        .unwrap_err();
        assert!(e.to_string().contains("nothing to check"), "{e}");
    }
}
