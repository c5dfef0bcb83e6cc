//! `csp-harness check`: the CI gate over a saved results directory, and the verdict at the end of
//! `run` / `simulate` / `compare` ([`run_verdict`], [`conclude`]).
//!
//! ```text
//! csp-harness check --results DIR [--thresholds FILE] [--baseline DIR --max-regression 10%] [--junit FILE]
//! ```
//!
//! Exit codes ([`crate::exit`]): **0** every check passed; **1** a threshold was breached, a value
//! it needs was not measured, or the run regressed against its baseline; **2** the check could not
//! run (unreadable or malformed thresholds file, missing results, a baseline of another scenario,
//! JUnit not writable) — returned as an error, which `main` prints and maps to 2. At the end of a
//! run, **3** when the harness could not keep its schedule and **130** when it was interrupted,
//! whatever the thresholds say.
//!
//! The rules themselves live in the `verdict` crate; this module only reads files, prints and
//! chooses the exit code. It never changes a results directory.

use crate::exit;
use crate::profiles::ProfileFile;
use anyhow::{Context, anyhow};
use results::LoadedRun;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use verdict::{Margin, Thresholds, Verdict};

/// Exit code: every check passed.
pub const EXIT_PASS: u8 = exit::PASS;
/// Exit code: a threshold breached (or not measured), or a regression against the baseline.
pub const EXIT_BREACHED: u8 = exit::BREACHED;
/// Exit code: the check could not run.
pub const EXIT_ERROR: u8 = exit::ERROR;

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
    /// Print the verdict to stdout as JSON (the table goes to stderr).
    #[arg(long)]
    pub json: bool,
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
    let run = load(&args.results)?;
    if let Some(s) = &run.summary.seeds {
        eprintln!(
            "note: {} holds {} seeds ({}); `check` judges the first seed's run, whose curves the \
             folder holds (the verdict at the end of `simulate --seeds` judged every seed)",
            args.results.display(),
            s.list.len(),
            s.describe()
        );
    }
    let mut v = match &thresholds {
        Some(t) => verdict::evaluate(&run, t),
        None => Verdict::for_run(&run.summary),
    };
    if let Some(dir) = &args.baseline {
        let baseline = load(dir).context("cannot read the baseline")?;
        let results =
            verdict::compare_baseline(&run.summary, &baseline.summary, args.max_regression)?;
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
    let verdicts = [v];
    if args.json {
        crate::cli::print_json(&verdicts)?;
    }
    Ok(exit::code(report(
        &verdicts,
        args.junit.as_deref(),
        args.quiet,
    )?))
}

/// The verdict of a run that just finished: its thresholds (if any) plus its health checks
/// `run.complete` and `harness.schedule`; without thresholds, only when a JUnit report is
/// wanted, the health checks alone with `endpoint.delivery` too (they are then the verdict the
/// JUnit and the exit code give). `None`: nothing to check.
pub fn run_verdict(
    run: &LoadedRun,
    thresholds: Option<&Thresholds>,
    junit_wanted: bool,
) -> Option<Verdict> {
    match thresholds {
        Some(t) => {
            // With --seeds: every seed, the worst one named.
            let mut v = verdict::evaluate_seeds(run, t);
            v.results
                .extend(verdict::health_verdict(&run.summary, false).results);
            Some(v)
        }
        None if junit_wanted => {
            eprintln!(
                "note: {}: no thresholds, so the JUnit report (and the exit code) hold the run's \
                 own health checks: {}, {}, {}",
                run.summary.meta.profile,
                verdict::health::COMPLETE,
                verdict::health::SCHEDULE,
                verdict::health::ENDPOINT
            );
            Some(verdict::health_verdict(&run.summary, true))
        }
        None => None,
    }
}

/// The end of `run`, `simulate` and `compare`: prints the verdicts (if any) and writes their
/// JUnit, prints `--json`, says in final lines what must not be missed (a starved endpoint, a
/// lagged harness, an interruption) and returns the exit code: 130 interrupted, else 2 when the
/// endpoint path ended a run early (credentials refused mid-run), else 3 lagged, else 1 if a
/// verdict failed, else 0.
pub fn conclude(
    runs: &[&LoadedRun],
    verdicts: &[Verdict],
    junit: Option<&Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let code = if verdicts.is_empty() {
        exit::PASS
    } else {
        report(verdicts, junit, false)?
    };
    if json {
        let summaries: Vec<&results::Summary> = runs.iter().map(|r| &r.summary).collect();
        match summaries.as_slice() {
            [one] => crate::cli::print_json(one)?,
            many => crate::cli::print_json(&many)?,
        }
    }
    let mut lagged = false;
    let mut incomplete = false;
    let mut endpoint_ended = false;
    for r in runs {
        let m = &r.summary.meta;
        let name = match &r.dir {
            Some(d) => format!("{} ({})", m.profile, d.display()),
            None => m.profile.clone(),
        };
        if let Some(c) = verdict::health::endpoint_delivery(&r.summary)
            && !c.passed()
        {
            eprintln!("warning: {name}: {}", c.message);
        }
        if let Some(c) = verdict::health::harness_schedule(&r.summary)
            && !c.passed()
        {
            lagged = true;
            eprintln!(
                "error: {name}: {} (exit {}): lower --time-scale or use a bigger machine",
                c.message,
                exit::LAGGED
            );
        }
        if !m.complete && crate::interrupt::requested().is_none() {
            // Nobody stopped it: the endpoint path did (credentials refused mid-run).
            endpoint_ended = true;
            eprintln!(
                "error: {name}: {}; what was measured is written, marked incomplete (exit {})",
                m.incomplete_reason
                    .as_deref()
                    .unwrap_or("the run ended early"),
                exit::ERROR
            );
        } else if !m.complete {
            incomplete = true;
            eprintln!(
                "interrupted: {name}: what was measured is written, marked incomplete (exit {})",
                exit::INTERRUPTED
            );
        }
    }
    if let Some(sig) = crate::interrupt::requested()
        && !incomplete
    {
        incomplete = true;
        eprintln!(
            "interrupted by {sig}: the runs above are complete, the command stopped (exit {})",
            exit::INTERRUPTED
        );
    }
    Ok(exit::code(if incomplete {
        exit::INTERRUPTED
    } else if endpoint_ended {
        exit::ERROR
    } else if lagged {
        exit::LAGGED
    } else {
        code
    }))
}

/// The thresholds a run should be checked against: `--thresholds FILE` if given, otherwise the
/// profile's own `[thresholds]` table, otherwise none. Errors name the file, line and key.
pub fn thresholds_for(
    profile: &Path,
    thresholds_flag: Option<&Path>,
) -> anyhow::Result<Option<Thresholds>> {
    match thresholds_flag {
        Some(p) => load_thresholds(p).map(Some),
        None => {
            let file = ProfileFile::find(profile)?;
            Ok(Thresholds::parse_profile(
                &file.text()?,
                Path::new(&file.name()),
            )?)
        }
    }
}

/// A thresholds file on disk, or built in (`ci/nightly/north.thresholds.toml`).
pub fn load_thresholds(path: &Path) -> anyhow::Result<Thresholds> {
    let file = ProfileFile::find_as(path, "thresholds file")
        .map_err(|e| anyhow!("cannot read thresholds file {e}"))?;
    Ok(Thresholds::parse(&file.text()?, Path::new(&file.name()))?)
}

fn load(dir: &Path) -> anyhow::Result<LoadedRun> {
    results::load_run(dir)
        .with_context(|| format!("cannot read results directory {}", dir.display()))
}

/// Prints the verdicts, writes their JUnit if asked; 0 if all passed, else 1.
fn report(verdicts: &[Verdict], junit: Option<&Path>, quiet: bool) -> anyhow::Result<u8> {
    let say = crate::cli::say;
    for v in verdicts {
        if quiet {
            say(&format!("{}: {}\n", v.suite, verdict::summary_line(v)));
        } else {
            say(&verdict::render_table(v));
        }
    }
    if let Some(path) = junit {
        verdict::write_junit(path, verdicts)?;
        if !quiet {
            say(&format!("junit: {}\n", path.display()));
        }
    }
    let passed = verdicts.iter().all(Verdict::passed);
    Ok(if passed { EXIT_PASS } else { EXIT_BREACHED })
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
            json: false,
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
            json: false,
        })
        .unwrap_err();
        assert!(e.to_string().contains("nothing to check"), "{e}");
    }
}
