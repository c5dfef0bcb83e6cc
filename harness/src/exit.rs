//! The exit codes of `csp-harness`, part of its interface: README.md ("Exit codes"), `--help` and
//! the CI examples all read them from here. A CI job can tell a network that misses its targets
//! (1) from a set-up that is broken (2), a harness too slow for the time scale asked of it (3) and
//! a run someone stopped (130).

use std::process::ExitCode;

/// Everything checked passed (or nothing was to be checked and the run itself was sound).
pub const PASS: u8 = 0;
/// A threshold was breached (or could not be evaluated), the run regressed against its
/// baseline, or, when `--junit` is given without thresholds, one of the run's health checks failed.
pub const BREACHED: u8 = 1;
/// Usage, input or endpoint error: a bad flag, profile or thresholds file, an unreachable or
/// refusing endpoint, results that cannot be written. Nothing is passed off as a result.
pub const ERROR: u8 = 2;
/// The harness could not keep its schedule: its own delay distorts the curves, so the run failed
/// whatever the thresholds say. Results are written and marked `lagged`.
pub const LAGGED: u8 = 3;
/// Interrupted (Ctrl-C or SIGTERM): what was measured is written, marked incomplete.
pub const INTERRUPTED: u8 = 130;

/// The table shown at the end of `csp-harness --help`.
pub const HELP: &str = "\
Exit codes:
  0    pass: the run completed and its thresholds (if any) passed
  1    thresholds breached or regressed against the baseline (with --junit and no thresholds:
       a health check of the run failed, e.g. the endpoint path lost more than half the alerts)
  2    usage, input or endpoint error (bad flag, profile or thresholds; endpoint unreachable)
  3    the harness could not keep its schedule (lagged): the result cannot be trusted
  130  interrupted (Ctrl-C or SIGTERM): what was measured is written, marked incomplete";

/// The code as a process exit code.
pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}
