//! Baselines: a run compared with a saved run of the same scenario, failing on regressions
//! beyond a margin (`--max-regression 10%`).
//!
//! The rule, per alert kind:
//!
//! - **Time to X%** (every level the summary records): a regression when the run is slower than
//!   the baseline by more than `max(margin × baseline, 1 s)`, or when the baseline reached the
//!   level and the run never did. A level the baseline never reached cannot regress.
//! - **Loss rate**, overall and per cause: a regression when the rate rose by more than
//!   `max(margin × baseline, 0.1 percentage point)`. The absolute floor keeps a baseline of 0
//!   from turning one lost alert into an "infinite" regression (0.00% → 0.01% passes; 0% → 0.2%
//!   fails).
//!
//! Getting better is never a failure. The runs must be the same scenario: same region and the same
//! number of premises (seed and option may differ, e.g. to check an option against Current).

use crate::duration::{format_ms, format_time_s, seconds_to_ms};
use crate::error::VerdictError;
use crate::evaluate::{CheckResult, Outcome};
use crate::format_pct;
use ledger::{AlertKind, LossCause};
use reports::Summary;
use reports::summary::{LEVELS, pct_key};
use std::str::FromStr;

/// Smallest slow-down (ms) that counts as a regression of a time to X%.
pub const TIME_FLOOR_MS: u64 = 1_000;

/// Smallest rise of a loss rate (a fraction: 0.001 = 0.1 percentage point) that counts.
pub const LOSS_FLOOR: f64 = 0.001;

/// The regression margin: a relative change, written `10%`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Margin(f64);

impl Margin {
    /// A margin from a fraction (0.1 = 10%). Negative or non-finite values are refused.
    pub fn from_fraction(f: f64) -> Result<Margin, String> {
        if f.is_finite() && f >= 0.0 {
            Ok(Margin(f))
        } else {
            Err(format!("a regression margin must be ≥ 0%, got {f}"))
        }
    }

    /// The margin as a fraction (0.1 = 10%).
    pub fn fraction(self) -> f64 {
        self.0
    }
}

impl Default for Margin {
    /// 10%.
    fn default() -> Self {
        Margin(0.10)
    }
}

impl FromStr for Margin {
    type Err = String;

    /// `"10%"`, `"2.5%"`, `"0%"`. The `%` is required: is `0.1` ten percent or a tenth of one?
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let num = s
            .trim()
            .strip_suffix('%')
            .ok_or_else(|| format!("write the margin as a percentage, e.g. 10% (got {s:?})"))?;
        let p: f64 = num
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a percentage such as 10%"))?;
        Margin::from_fraction(p / 100.0)
    }
}

impl std::fmt::Display for Margin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = format!("{:.2}", self.0 * 100.0);
        write!(f, "{}%", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

fn describe(s: &Summary) -> String {
    format!(
        "{} ({}, {} premises, seed {})",
        s.meta.profile, s.meta.region, s.meta.hubs, s.meta.seed
    )
}

/// Compares a run with its baseline: one result per kind × level, per kind loss rate and per
/// kind × cause (causes seen in either run). Errors when the two are not the same scenario.
pub fn compare_baseline(
    current: &Summary,
    baseline: &Summary,
    margin: Margin,
) -> Result<Vec<CheckResult>, VerdictError> {
    let (c, b) = (&current.meta, &baseline.meta);
    let why = if c.region != b.region {
        Some(format!("regions differ ({} vs {})", c.region, b.region))
    } else if c.hubs != b.hubs {
        Some(format!("premises differ ({} vs {})", c.hubs, b.hubs))
    } else {
        None
    };
    if let Some(why) = why {
        return Err(VerdictError::IncompatibleBaseline {
            baseline: describe(baseline),
            current: describe(current),
            why,
        });
    }
    let m = margin.fraction();
    let mut out = Vec::new();
    for kind in AlertKind::ALL {
        let (ck, bk) = (current.kind(kind), baseline.kind(kind));
        for pct in LEVELS {
            out.push(time_check(
                kind,
                pct,
                ck.time_to(pct),
                bk.time_to(pct),
                m,
                margin,
            ));
        }
        out.push(loss_check(
            format!("baseline.{}.loss_rate", kind.as_str()),
            format!("{kind} loss rate"),
            ck.loss_rate,
            bk.loss_rate,
            m,
            margin,
        ));
        for cause in LossCause::ALL {
            let (cn, bn) = (
                ck.loss_by_cause.get(&cause).copied().unwrap_or(0),
                bk.loss_by_cause.get(&cause).copied().unwrap_or(0),
            );
            if cn == 0 && bn == 0 {
                continue;
            }
            out.push(loss_check(
                format!("baseline.{}.loss.{cause}", kind.as_str()),
                format!("{kind} loss to {cause}"),
                rate(cn, ck.expected),
                rate(bn, bk.expected),
                m,
                margin,
            ));
        }
    }
    Ok(out)
}

fn rate(n: u64, expected: u64) -> f64 {
    if expected == 0 {
        0.0
    } else {
        n as f64 / expected as f64
    }
}

fn time_check(
    kind: AlertKind,
    pct: f64,
    current_s: Option<f64>,
    baseline_s: Option<f64>,
    m: f64,
    margin: Margin,
) -> CheckResult {
    let name = format!(
        "baseline.{}.time_to_{}",
        kind.as_str(),
        pct_key(pct).replace('.', "_")
    );
    let measured = format_time_s(current_s);
    let Some(b_ms) = baseline_s.map(seconds_to_ms) else {
        return CheckResult {
            name,
            measured,
            allowed: "any (baseline: never)".into(),
            outcome: Outcome::Pass,
            message: format!("the baseline never reached {kind} {pct}%, so it cannot regress"),
        };
    };
    let slack = ((b_ms as f64 * m).round() as u64).max(TIME_FLOOR_MS);
    let limit = b_ms + slack;
    // Shown to 0.1 s like the measured value; compared in ms.
    let tenth = |ms: u64| format_ms(ms.div_ceil(100) * 100);
    let allowed = format!("<= {} (baseline {} + {margin})", tenth(limit), tenth(b_ms));
    let (outcome, message) = match current_s.map(seconds_to_ms) {
        None => (
            Outcome::Fail,
            format!(
                "{kind} never reached {pct}%; the baseline did after {}",
                tenth(b_ms)
            ),
        ),
        Some(c_ms) => {
            let change = if b_ms == 0 {
                String::new()
            } else {
                format!(" ({:+.1}%)", (c_ms as f64 / b_ms as f64 - 1.0) * 100.0)
            };
            let ok = c_ms <= limit;
            (
                if ok { Outcome::Pass } else { Outcome::Fail },
                format!(
                    "{kind} {pct}% after {} vs baseline {}{change}; {} more than {margin} slower",
                    tenth(c_ms),
                    tenth(b_ms),
                    if ok { "not" } else { "regressed:" }
                ),
            )
        }
    };
    CheckResult {
        name,
        measured,
        allowed,
        outcome,
        message,
    }
}

fn loss_check(
    name: String,
    what: String,
    current: f64,
    baseline: f64,
    m: f64,
    margin: Margin,
) -> CheckResult {
    let limit = baseline + (baseline * m).max(LOSS_FLOOR);
    let ok = current <= limit + 1e-12;
    CheckResult {
        name,
        measured: format_pct(current),
        allowed: format!(
            "<= {} (baseline {} + {margin}, at least +{})",
            format_pct(limit),
            format_pct(baseline),
            format_pct(LOSS_FLOOR)
        ),
        outcome: if ok { Outcome::Pass } else { Outcome::Fail },
        message: format!(
            "{what} {} vs baseline {}{}",
            format_pct(current),
            format_pct(baseline),
            if ok {
                ""
            } else {
                ": regressed beyond the margin"
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::summary_with;

    fn outcome(results: &[CheckResult], name: &str) -> Outcome {
        results
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no {name} in {results:#?}"))
            .outcome
    }

    #[test]
    fn margins_read_as_percentages() {
        assert_eq!("10%".parse::<Margin>().unwrap().fraction(), 0.10);
        assert_eq!(
            " 2.5 % ".parse::<Margin>().map(|m| m.to_string()),
            Ok("2.5%".into())
        );
        assert!("0.1".parse::<Margin>().is_err());
        assert!("-5%".parse::<Margin>().is_err());
        assert!("ten%".parse::<Margin>().is_err());
        assert_eq!(Margin::default().to_string(), "10%");
    }

    #[test]
    fn the_same_run_does_not_regress() {
        let s = summary_with(100, 90, &[(LossCause::Collision, 6)], None);
        let r = compare_baseline(&s, &s, Margin::default()).unwrap();
        assert!(r.iter().all(CheckResult::passed), "{r:#?}");
        // 5 levels + loss rate + collision + not_delivered_by_end for POA; PRA: 5 levels + loss.
        assert_eq!(r.len(), 5 + 1 + 2 + 5 + 1);
    }

    #[test]
    fn slower_beyond_margin_and_never_regress() {
        // Baseline: 90 delivered at 1..=90 s -> 50% at 50 s, 80% at 80 s, 95% never.
        let base = summary_with(100, 90, &[], None);
        // Run: 84 delivered -> 50% at 50 s, 80% at 80 s; stretch times by scaling.
        let mut run = summary_with(100, 90, &[], None);
        run.alerts.poa.time_to_pct_s.insert("50".into(), Some(56.0)); // +12% > 10%
        run.alerts.poa.time_to_pct_s.insert("80".into(), Some(87.0)); // +8.75% <= 10%
        let r = compare_baseline(&run, &base, Margin::default()).unwrap();
        assert_eq!(outcome(&r, "baseline.poa.time_to_50"), Outcome::Fail);
        assert_eq!(outcome(&r, "baseline.poa.time_to_80"), Outcome::Pass);
        assert_eq!(outcome(&r, "baseline.poa.time_to_95"), Outcome::Pass);
        let wide = compare_baseline(&run, &base, "15%".parse().unwrap()).unwrap();
        assert_eq!(outcome(&wide, "baseline.poa.time_to_50"), Outcome::Pass);

        // Reached before, never now.
        let mut never = base.clone();
        never.alerts.poa.time_to_pct_s.insert("80".into(), None);
        let r = compare_baseline(&never, &base, Margin::default()).unwrap();
        let f = r
            .iter()
            .find(|c| c.name == "baseline.poa.time_to_80")
            .unwrap();
        assert_eq!((f.outcome, f.measured.as_str()), (Outcome::Fail, "never"));
        // ... and the reverse is an improvement.
        let r = compare_baseline(&base, &never, Margin::default()).unwrap();
        assert_eq!(outcome(&r, "baseline.poa.time_to_80"), Outcome::Pass);
    }

    #[test]
    fn small_times_have_a_one_second_floor() {
        let mut base = summary_with(100, 100, &[], None);
        base.alerts.poa.time_to_pct_s.insert("50".into(), Some(2.0));
        let mut run = base.clone();
        run.alerts.poa.time_to_pct_s.insert("50".into(), Some(2.9)); // +45% but < 1 s
        let r = compare_baseline(&run, &base, Margin::default()).unwrap();
        assert_eq!(outcome(&r, "baseline.poa.time_to_50"), Outcome::Pass);
        run.alerts.poa.time_to_pct_s.insert("50".into(), Some(3.1));
        let r = compare_baseline(&run, &base, Margin::default()).unwrap();
        assert_eq!(outcome(&r, "baseline.poa.time_to_50"), Outcome::Fail);
    }

    #[test]
    fn loss_rises_are_relative_with_an_absolute_floor() {
        // 0 -> 0.01%: under the 0.1 pp floor, not a regression.
        let base = summary_with(10_000, 10_000, &[], None);
        let run = summary_with(10_000, 9_999, &[(LossCause::Collision, 1)], None);
        let r = compare_baseline(&run, &base, Margin::default()).unwrap();
        assert_eq!(outcome(&r, "baseline.poa.loss_rate"), Outcome::Pass);
        assert_eq!(outcome(&r, "baseline.poa.loss.collision"), Outcome::Pass);
        // 0 -> 0.2%: a regression.
        let run = summary_with(10_000, 9_980, &[(LossCause::Collision, 20)], None);
        let r = compare_baseline(&run, &base, Margin::default()).unwrap();
        assert_eq!(outcome(&r, "baseline.poa.loss_rate"), Outcome::Fail);
        assert_eq!(outcome(&r, "baseline.poa.loss.collision"), Outcome::Fail);
        // 5% -> 5.4% (+8%) passes, 5% -> 5.6% (+12%) fails at 10%.
        let base = summary_with(10_000, 9_500, &[(LossCause::Collision, 500)], None);
        let ok = summary_with(10_000, 9_460, &[(LossCause::Collision, 540)], None);
        let bad = summary_with(10_000, 9_440, &[(LossCause::Collision, 560)], None);
        let r = compare_baseline(&ok, &base, Margin::default()).unwrap();
        assert_eq!(outcome(&r, "baseline.poa.loss_rate"), Outcome::Pass);
        let r = compare_baseline(&bad, &base, Margin::default()).unwrap();
        assert_eq!(outcome(&r, "baseline.poa.loss_rate"), Outcome::Fail);
        // Less loss than the baseline is fine whatever the margin.
        let r = compare_baseline(&base, &bad, "0%".parse().unwrap()).unwrap();
        assert!(r.iter().all(CheckResult::passed));
    }

    #[test]
    fn different_scenarios_do_not_compare() {
        let a = summary_with(100, 90, &[], None);
        let mut b = a.clone();
        b.meta.hubs += 1;
        let e = compare_baseline(&a, &b, Margin::default()).unwrap_err();
        assert!(e.to_string().contains("premises differ"), "{e}");
        let mut c = a.clone();
        c.meta.region = ledger::Region::CENTRAL_SOUTH;
        assert!(compare_baseline(&a, &c, Margin::default()).is_err());
    }
}
