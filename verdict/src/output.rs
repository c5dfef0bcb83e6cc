//! What a verdict looks like to people and to CI: an aligned plain-text table for the terminal and
//! JUnit XML (one `<testsuite>` per run, one `<testcase>` per check, `<failure>` / `<error>` with
//! the measured and allowed values) written with quick-junit.

use crate::error::VerdictError;
use crate::evaluate::{Outcome, Verdict};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::path::Path;

/// The name of the JUnit report (`<testsuites name=...>`).
pub const REPORT_NAME: &str = "csp-loadtest";

/// The verdict as an aligned plain-text table, one line per check, then a summary line.
///
/// ```text
/// check north/current (region north, option current, seed 1, premises 30000)
///   PASS   poa.time_to_50      6m31s   <= 7m30s
///   FAIL   poa.time_to_95      never   <= 16m    POA never reached 95% of expected (...)
/// FAIL: 1 of 2 checks failed
/// ```
pub fn render_table(v: &Verdict) -> String {
    let props: Vec<String> = v
        .properties
        .iter()
        .filter(|(k, _)| ["region", "option", "seed", "premises", "mode"].contains(&k.as_str()))
        .map(|(k, val)| format!("{k} {val}"))
        .collect();
    let mut out = format!("check {} ({})\n", v.suite, props.join(", "));
    let w = |f: fn(&crate::CheckResult) -> usize| v.results.iter().map(f).max().unwrap_or(0);
    let (wn, wm, wa) = (
        w(|r| r.name.chars().count()),
        w(|r| r.measured.chars().count()),
        w(|r| r.allowed.chars().count()),
    );
    for r in &v.results {
        // Passing lines stay short; a failure says why.
        let note = if r.passed() { "" } else { r.message.as_str() };
        let line = format!(
            "  {:<5}  {:<wn$}  {:>wm$}  {:<wa$}  {note}",
            r.outcome.label(),
            r.name,
            r.measured,
            r.allowed,
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&summary_line(v));
    out.push('\n');
    out
}

/// `PASS: all 12 checks passed` / `FAIL: 2 of 12 checks failed, 1 could not be evaluated`.
pub fn summary_line(v: &Verdict) -> String {
    let n = v.results.len();
    let (f, e) = (v.failures(), v.errors());
    if n == 0 {
        return "FAIL: no checks (no thresholds and no baseline)".into();
    }
    if f == 0 && e == 0 {
        return format!("PASS: all {n} checks passed");
    }
    let mut s = format!("FAIL: {f} of {n} checks failed");
    if e > 0 {
        s.push_str(&format!(", {e} could not be evaluated"));
    }
    s
}

/// The JUnit report of one or more verdicts.
pub fn junit_report(verdicts: &[Verdict]) -> Report {
    let mut report = Report::new(REPORT_NAME);
    for v in verdicts {
        let mut suite = TestSuite::new(v.suite.as_str());
        for (k, val) in &v.properties {
            suite.add_property((k.as_str(), val.as_str()));
        }
        for r in &v.results {
            let status = match r.outcome {
                Outcome::Pass => TestCaseStatus::success(),
                Outcome::Fail | Outcome::Error => {
                    let kind = if r.outcome == Outcome::Fail {
                        NonSuccessKind::Failure
                    } else {
                        NonSuccessKind::Error
                    };
                    let mut s = TestCaseStatus::non_success(kind);
                    s.set_message(format!(
                        "{}: measured {}, allowed {}",
                        r.name, r.measured, r.allowed
                    ));
                    s.set_type(if r.outcome == Outcome::Fail {
                        "threshold breached"
                    } else {
                        "not measured"
                    });
                    s.set_description(r.message.as_str());
                    s
                }
            };
            let mut case = TestCase::new(r.name.as_str(), status);
            case.set_classname(v.suite.as_str());
            case.set_system_out(format!(
                "measured {}, allowed {}: {}",
                r.measured, r.allowed, r.message
            ));
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report
}

/// The JUnit XML of one or more verdicts, as text.
pub fn junit_xml(verdicts: &[Verdict]) -> Result<String, String> {
    junit_report(verdicts)
        .to_string()
        .map_err(|e| e.to_string())
}

/// Writes the JUnit XML of one or more verdicts to `path` (its directory is created).
pub fn write_junit(path: &Path, verdicts: &[Verdict]) -> Result<(), VerdictError> {
    let err = |message: String| VerdictError::Junit {
        path: path.to_path_buf(),
        message,
    };
    let xml = junit_xml(verdicts).map_err(err)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    std::fs::write(path, xml).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::evaluate;
    use crate::test_support::{run_with, thresholds};

    fn verdict() -> Verdict {
        let s = run_with(100, 90, &[(ledger::LossCause::Collision, 6)], None);
        let t = thresholds(
            "poa.time_to_50 = \"1m\"\npoa.time_to_95 = \"16m\"\npoa.loss.collision = 0.05\n\
             harness.lagged = false\n",
        );
        evaluate(&s, &t)
    }

    #[test]
    fn table_is_aligned_and_says_why() {
        let t = render_table(&verdict());
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("check t/current (region north, option current, seed 1"));
        assert!(lines[1].starts_with("  PASS   poa.time_to_50 "), "{t}");
        assert!(lines[2].starts_with("  FAIL   poa.time_to_95 "), "{t}");
        assert!(lines[4].starts_with("  ERROR  harness.lagged "), "{t}");
        assert!(lines[2].contains("never reached 95%"), "{t}");
        // The measured column is right-aligned: every "<=" starts in the same column.
        let col: Vec<usize> = lines[1..4].iter().map(|l| l.find("<=").unwrap()).collect();
        assert!(col.windows(2).all(|w| w[0] == w[1]), "{t}");
        assert_eq!(
            lines.last().copied(),
            Some("FAIL: 2 of 4 checks failed, 1 could not be evaluated")
        );
    }

    #[test]
    fn junit_has_suite_cases_and_failures_with_values() {
        let v = verdict();
        let xml = junit_xml(std::slice::from_ref(&v)).unwrap();
        assert_eq!(xml.matches("<testsuite ").count(), 1, "{xml}");
        assert!(xml.contains("name=\"t/current\""), "{xml}");
        assert!(xml.contains("tests=\"4\""), "{xml}");
        assert!(xml.contains("failures=\"2\""), "{xml}");
        assert!(xml.contains("errors=\"1\""), "{xml}");
        assert_eq!(xml.matches("<testcase ").count(), 4, "{xml}");
        assert!(
            xml.contains("<failure message=\"poa.time_to_95: measured never, allowed &lt;= 16m\""),
            "{xml}"
        );
        assert!(
            xml.contains("message=\"poa.loss.collision: measured 6.00%, allowed &lt;= 5.00%\""),
            "{xml}"
        );
        assert!(
            xml.contains("<error message=\"harness.lagged: measured missing"),
            "{xml}"
        );
        assert!(
            xml.contains("<property name=\"region\" value=\"north\""),
            "{xml}"
        );

        let dir = tempfile_dir();
        let path = dir.join("sub/junit.xml");
        write_junit(&path, &[v.clone(), v]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("<testsuite ").count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("verdict-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
