//! The CI gate of csp-loadtest: thresholds, verdicts, baselines and JUnit XML.
//!
//! - [`thresholds`]: the TOML format of what a run must achieve ([`Thresholds`]), as a profile's
//!   `[thresholds]` table or a file of its own, with errors naming file, line and key.
//! - [`evaluate_seeds`]: the seeds of a `--seeds` run, each threshold judged on the worst seed.
//! - [`evaluate()`]: a run ([`results::LoadedRun`]: summary and curves) against thresholds → a [`Verdict`], one
//!   [`CheckResult`] per threshold (pass, fail, or error when the value was not measured).
//! - [`baseline`]: a run against a saved run of the same scenario, failing on regressions beyond
//!   a [`Margin`] ([`compare_baseline`]).
//! - [`output`]: the terminal table ([`render_table`]) and JUnit XML ([`write_junit`]).
//! - [`health`]: the run's own health checks (complete, on schedule, endpoint path delivering),
//!   which every finished run is judged on apart from its thresholds.
//! - [`duration`]: `"1m30s"`-style durations.
//!
//! This crate reads only the files it is pointed at, never the network or a clock (the same
//! summary and thresholds give byte-identical output), and knows nothing of the CLI: exit codes
//! are the binary's business (0 pass, 1 breached, 2 could not check).

#![warn(missing_docs)]

pub mod baseline;
pub mod duration;
mod error;
pub mod evaluate;
pub mod health;
pub mod output;
pub mod thresholds;

pub use baseline::{Margin, compare_baseline};
pub use error::VerdictError;
pub use evaluate::{CheckResult, Outcome, Verdict, evaluate, evaluate_seeds};
pub use health::health_verdict;
pub use output::{junit_report, junit_xml, render_table, summary_line, write_junit};
pub use thresholds::{Rule, Threshold, Thresholds};

/// A fraction as a percentage with two decimals: `0.0581` → `5.81%`.
pub fn format_pct(fraction: f64) -> String {
    format!("{:.2}%", fraction * 100.0)
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Summaries built from real ledgers, so the tests exercise the same figures a run writes.

    use ledger::{AlertCode, AlertId, AlertKind, Ledger, LossCause, Region};
    use results::{Health, HealthRecord, RunMeta, Summary};
    use std::path::Path;

    /// `expected` POAs (no PRAs); the first `delivered` at 1, 2, 3... s; then `causes` lost; any
    /// rest not delivered by the end.
    fn ledger_with(expected: u32, delivered: u32, causes: &[(LossCause, u32)]) -> Ledger {
        let mut l = Ledger::new(expected);
        for h in 0..expected {
            l.expect(AlertId::new(h, AlertKind::Poa), AlertCode::Ad1, 0)
                .unwrap();
        }
        for h in 0..delivered {
            l.deliver(AlertId::new(h, AlertKind::Poa), u64::from(h + 1) * 1000)
                .unwrap();
        }
        let mut h = delivered;
        for &(cause, n) in causes {
            for _ in 0..n {
                l.lose(AlertId::new(h, AlertKind::Poa), cause, 1).unwrap();
                h += 1;
            }
        }
        l.finish(10_000_000);
        l
    }

    /// The summary of [`ledger_with`], with `health`.
    pub fn summary_with(
        expected: u32,
        delivered: u32,
        causes: &[(LossCause, u32)],
        health: Option<Health>,
    ) -> Summary {
        run_with(expected, delivered, causes, health).summary
    }

    /// As [`summary_with`], as a run with its exact delivery curves.
    pub fn run_with(
        expected: u32,
        delivered: u32,
        causes: &[(LossCause, u32)],
        health: Option<Health>,
    ) -> results::LoadedRun {
        let l = ledger_with(expected, delivered, causes);
        let north: Region = serde_json::from_str("\"north\"").unwrap();
        let mut meta = RunMeta::new("t/current", north, "current", 1, expected);
        meta.health = health.map(|h| HealthRecord::Run(Box::new(h)));
        results::LoadedRun::from_ledger(results::summarize(meta, &l), &l)
    }

    /// Thresholds from text (panics on a parse error: the text is the test's own).
    pub fn thresholds(text: &str) -> crate::Thresholds {
        crate::Thresholds::parse(text, Path::new("test.toml")).unwrap()
    }
}
