//! Evaluation: a run ([`LoadedRun`]: its summary and delivery curves) against [`Thresholds`], one
//! [`CheckResult`] per threshold.
//!
//! A check *fails* when the measured value breaks its limit and *errors* when the summary does not
//! hold the value at all (a health threshold on a run that recorded no health, a time-to threshold
//! for a kind with no expected alerts). Both make the verdict fail: a limit that could not be
//! verified is not a pass.

use crate::duration::{format_ms, format_time_s, seconds_to_ms};
use crate::format_pct;
use crate::thresholds::{Counter, HealthField, Rule, Thresholds};
use results::{LoadedRun, Precision, Summary};
use serde::Serialize;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Within its limit.
    Pass,
    /// Beyond its limit.
    Fail,
    /// Could not be evaluated (the value is missing from the summary).
    Error,
}

impl Outcome {
    /// `PASS`, `FAIL`, `ERROR`.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Error => "ERROR",
        }
    }
}

/// One threshold (or baseline comparison) checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// The metric, e.g. `poa.time_to_95` or `baseline.poa.loss_rate`.
    pub name: String,
    /// The measured value as printed, e.g. `15m20s`, `never`, `5.81%`.
    pub measured: String,
    /// The limit as printed, e.g. `<= 16m`.
    pub allowed: String,
    /// Pass, fail or error.
    pub outcome: Outcome,
    /// One sentence for a person: what was measured against what.
    pub message: String,
}

impl CheckResult {
    /// Passed?
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Pass
    }
}

/// The checks of one run: a JUnit test suite, a block of the terminal table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The suite name: the run's profile, e.g. `north/current`.
    pub suite: String,
    /// What the run was (region, option, seed, premises, mode, time scale...), for the reader.
    pub properties: Vec<(String, String)>,
    /// One result per threshold, in file order, then the baseline comparisons.
    pub results: Vec<CheckResult>,
}

impl Verdict {
    /// An empty verdict for a run, named after its profile and described by its metadata.
    pub fn for_run(summary: &Summary) -> Verdict {
        let m = &summary.meta;
        let mut properties = vec![
            ("region".to_string(), m.region.as_str().to_string()),
            ("option".to_string(), m.option_label.clone()),
            ("seed".to_string(), m.seed.to_string()),
            ("premises".to_string(), m.hubs.to_string()),
            ("mode".to_string(), m.mode.to_string()),
            ("time_scale".to_string(), m.time_scale.to_string()),
            ("complete".to_string(), m.complete.to_string()),
        ];
        if let Some(e) = &m.endpoint {
            properties.push(("endpoint".to_string(), e.clone()));
        }
        Verdict {
            suite: m.profile.clone(),
            properties,
            results: Vec::new(),
        }
    }

    /// Every check passed (and there was at least one)?
    pub fn passed(&self) -> bool {
        !self.results.is_empty() && self.results.iter().all(CheckResult::passed)
    }

    /// Checks that failed.
    pub fn failures(&self) -> usize {
        self.count(Outcome::Fail)
    }

    /// Checks that could not be evaluated.
    pub fn errors(&self) -> usize {
        self.count(Outcome::Error)
    }

    fn count(&self, o: Outcome) -> usize {
        self.results.iter().filter(|r| r.outcome == o).count()
    }
}

/// Checks a run against thresholds: one result per threshold, in the order written.
pub fn evaluate(run: &LoadedRun, thresholds: &Thresholds) -> Verdict {
    let mut v = Verdict::for_run(&run.summary);
    v.results = thresholds
        .items
        .iter()
        .map(|t| check(run, &t.name, &t.rule))
        .collect();
    v
}

/// Checks the seeds of one run (`--seeds`: the first seed's run and its `seed_runs`) against
/// thresholds, as a load-testing tool checks every run of a suite: each threshold is checked on
/// every seed, and its result is the **worst seed's** (a failure before a pass, then the worse
/// value), named in the measured value and the message with how many seeds breached it. A run of
/// one seed gives exactly [`evaluate`]'s verdict.
pub fn evaluate_seeds(run: &LoadedRun, thresholds: &Thresholds) -> Verdict {
    let seeds = run.all_seeds();
    if seeds.len() < 2 {
        return evaluate(run, thresholds);
    }
    let mut v = Verdict::for_run(&run.summary);
    let list: Vec<u64> = seeds.iter().map(|r| r.summary.meta.seed).collect();
    let described = results::seeds::describe_seeds(&list);
    for (k, val) in &mut v.properties {
        if k == "seed" {
            *k = "seeds".into();
            *val = described.clone();
        }
    }
    let rank = |o: Outcome| match o {
        Outcome::Pass => 0,
        Outcome::Fail => 1,
        Outcome::Error => 2,
    };
    v.results = thresholds
        .items
        .iter()
        .map(|t| {
            let all: Vec<(u64, CheckResult, f64)> = seeds
                .iter()
                .map(|r| {
                    let (c, score) = scored(r, &t.name, &t.rule);
                    (r.summary.meta.seed, c, score)
                })
                .collect();
            let breached = all.iter().filter(|(_, c, _)| !c.passed()).count();
            // The worst seed; among equals, the first run.
            let mut worst = &all[0];
            for a in &all[1..] {
                if (rank(a.1.outcome), a.2) > (rank(worst.1.outcome), worst.2) {
                    worst = a;
                }
            }
            let (seed, c, _) = worst;
            CheckResult {
                measured: format!("{} (worst seed {seed})", c.measured),
                message: format!(
                    "{} — worst of {} seeds ({described}): seed {seed}; {breached} of {} breach it",
                    c.message,
                    all.len(),
                    all.len()
                ),
                ..c.clone()
            }
        })
        .collect();
    v
}

/// " (read from HDR histograms, up to 0.1% late)" when a figure had to come from a curve that is
/// not exact; nothing otherwise.
fn precision_note(p: Precision) -> &'static str {
    match p {
        Precision::Exact => "",
        Precision::Hdr => " (read from HDR histograms: up to 0.1% late, never early)",
    }
}

/// Checks one rule against a run: figures `summary.json` holds are read from it, any other level
/// and the shares delivered by a deadline from the run's delivery curve.
pub fn check(run: &LoadedRun, name: &str, rule: &Rule) -> CheckResult {
    scored(run, name, rule).0
}

/// [`check`], with how bad the measured value is on the rule's own scale (larger is worse: a
/// later time, a smaller share, more loss; a value never reached or missing is infinitely bad),
/// so the seeds of a run can be ranked on it.
fn scored(run: &LoadedRun, name: &str, rule: &Rule) -> (CheckResult, f64) {
    let summary = &run.summary;
    let allowed = rule.allowed();
    let result = |outcome: Outcome, measured: String, message: String| CheckResult {
        name: name.to_string(),
        measured,
        allowed: allowed.clone(),
        outcome,
        message,
    };
    // A share of nothing expected is no figure at all: an error, never a pass.
    let undefined = |kind, what: &str| {
        (
            result(
                Outcome::Error,
                "n/a".into(),
                format!("no {kind} alerts were expected in this run: {what} is undefined"),
            ),
            f64::INFINITY,
        )
    };
    match *rule {
        Rule::TimeTo {
            kind,
            pct,
            within_ms,
        } => {
            let k = summary.kind(kind);
            if k.expected == 0 {
                return undefined(kind, &format!("time to {pct}%"));
            }
            // The summary's own figure where it has one (the curve of a folder without alerts.csv
            // is only HDR-precise); the exact curve for any other level.
            let (t, note) = if results::LEVELS.contains(&pct) {
                (k.time_to(pct), "")
            } else {
                let curve = run.curve(kind);
                (
                    curve.time_to_pct(pct).map(|ms| ms as f64 / 1000.0),
                    precision_note(curve.precision()),
                )
            };
            let measured = format_time_s(t);
            let score = t.unwrap_or(f64::INFINITY);
            let r = match t.map(seconds_to_ms) {
                Some(ms) if ms <= within_ms => result(
                    Outcome::Pass,
                    measured.clone(),
                    format!(
                        "{kind} reached {pct}% of expected after {measured}, within {}{note}",
                        format_ms(within_ms)
                    ),
                ),
                Some(_) => result(
                    Outcome::Fail,
                    measured.clone(),
                    format!(
                        "{kind} reached {pct}% of expected after {measured}, allowed {}{note}",
                        format_ms(within_ms)
                    ),
                ),
                None => result(
                    Outcome::Fail,
                    measured,
                    format!(
                        "{kind} never reached {pct}% of expected (delivered {} of {}, {}), allowed {}",
                        k.delivered,
                        k.expected,
                        format_pct(k.delivered_fraction),
                        format_ms(within_ms)
                    ),
                ),
            };
            (r, score)
        }
        Rule::DeliveredBy {
            kind,
            within_ms,
            min,
        } => {
            let k = summary.kind(kind);
            if k.expected == 0 {
                return undefined(
                    kind,
                    &format!("the share delivered by {}", format_ms(within_ms)),
                );
            }
            let curve = run.curve(kind);
            let share = curve.fraction_at(within_ms);
            let measured = format_pct(share);
            let r = result(
                pass_if(share + 1e-12 >= min),
                measured.clone(),
                format!(
                    "{kind}: {measured} of expected delivered within {}, required at least {}{}",
                    format_ms(within_ms),
                    format_pct(min),
                    precision_note(curve.precision())
                ),
            );
            (r, -share)
        }
        Rule::LossRate { kind, max } => {
            let k = summary.kind(kind);
            let measured = format_pct(k.loss_rate);
            let outcome = pass_if(k.loss_rate <= max + 1e-12);
            let r = result(
                outcome,
                measured.clone(),
                format!(
                    "{kind} lost {measured} ({} of {} expected), allowed {}",
                    k.expected.saturating_sub(k.delivered),
                    k.expected,
                    format_pct(max)
                ),
            );
            (r, k.loss_rate)
        }
        Rule::CauseLoss { kind, cause, max } => {
            let k = summary.kind(kind);
            let n = k.loss_by_cause.get(&cause).copied().unwrap_or(0);
            let rate = if k.expected == 0 {
                0.0
            } else {
                n as f64 / k.expected as f64
            };
            let measured = format_pct(rate);
            let r = result(
                pass_if(rate <= max + 1e-12),
                measured.clone(),
                format!(
                    "{kind} lost {measured} to {cause} ({n} of {} expected), allowed {}",
                    k.expected,
                    format_pct(max)
                ),
            );
            (r, rate)
        }
        Rule::Count { counter, max } => {
            let n = match counter {
                Counter::Duplicates => summary.duplicates,
                Counter::OutOfOrder => summary.out_of_order,
                Counter::FalsePositives => summary.false_positives,
                Counter::UnexpectedPra => summary.unexpected_pra,
            };
            let r = result(
                pass_if(n <= max),
                n.to_string(),
                format!("{n} {}, allowed {max}", counter.as_str().replace('_', " ")),
            );
            (r, n as f64)
        }
        Rule::HealthMs { field, max } => match health_number(summary, field) {
            Some(v) => (
                result(
                    pass_if(v <= max),
                    format!("{v} ms"),
                    format!("harness {} was {v} ms, allowed {max} ms", field.as_str()),
                ),
                v,
            ),
            None => (
                result(
                    Outcome::Error,
                    "missing".into(),
                    missing_health(field.as_str()),
                ),
                f64::INFINITY,
            ),
        },
        Rule::NotLagged => match health_lagged(summary) {
            Some(lagged) => (
                result(
                    pass_if(!lagged),
                    lagged.to_string(),
                    if lagged {
                        "the harness flagged its own schedule lag: its curves may be distorted"
                            .into()
                    } else {
                        "the harness kept to its schedule".into()
                    },
                ),
                f64::from(u8::from(lagged)),
            ),
            None => (
                result(Outcome::Error, "missing".into(), missing_health("lagged")),
                f64::INFINITY,
            ),
        },
    }
}

fn pass_if(ok: bool) -> Outcome {
    if ok { Outcome::Pass } else { Outcome::Fail }
}

/// The shards' health records (one for a single run); empty when the run recorded none.
fn health_shards(summary: &Summary) -> &[results::Health] {
    summary
        .meta
        .health
        .as_ref()
        .map_or(&[], results::HealthRecord::shards)
}

/// The field, or the largest over shards (the worst shard decides); `None` without health.
fn health_number(summary: &Summary, field: HealthField) -> Option<f64> {
    health_shards(summary)
        .iter()
        .map(|h| field.of(h) as f64)
        .reduce(f64::max)
}

/// `lagged`, true if any shard lagged; `None` without health.
fn health_lagged(summary: &Summary) -> Option<bool> {
    health_shards(summary)
        .iter()
        .map(|h| h.lagged)
        .reduce(|a, b| a || b)
}

fn missing_health(field: &str) -> String {
    format!(
        "summary.json records no harness health, so `{field}` cannot be checked \
         (a run that does not measure its own health cannot pass a health threshold)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{run_with, thresholds};

    #[test]
    fn passes_and_fails_each_kind_of_rule() {
        // POA: 100 expected, 90 delivered at 1..=90 s, 6 lost to collision, 4 not delivered.
        let s = run_with(100, 90, &[(ledger::LossCause::Collision, 6)], None);
        let t = thresholds(
            r#"
poa.time_to_50 = "50s"
poa.time_to_80 = "79s"
poa.time_to_95 = "1h"
poa.loss_rate = 0.10
poa.loss.collision = 0.05
pra.loss_rate = "10%"
duplicates = 0
"#,
        );
        let v = evaluate(&s, &t);
        let got: Vec<(&str, Outcome)> = v
            .results
            .iter()
            .map(|r| (r.name.as_str(), r.outcome))
            .collect();
        assert_eq!(
            got,
            [
                ("poa.time_to_50", Outcome::Pass),
                ("poa.time_to_80", Outcome::Fail),
                ("poa.time_to_95", Outcome::Fail),
                ("poa.loss_rate", Outcome::Pass),
                ("poa.loss.collision", Outcome::Fail),
                ("pra.loss_rate", Outcome::Pass),
                ("duplicates", Outcome::Pass),
            ]
        );
        assert_eq!(v.results[0].measured, "50s");
        assert_eq!(v.results[1].measured, "1m20s");
        assert_eq!(v.results[1].allowed, "<= 1m19s");
        assert_eq!(v.results[2].measured, "never");
        assert!(
            v.results[2].message.contains("never reached 95%"),
            "{}",
            v.results[2].message
        );
        assert_eq!(v.results[3].measured, "10.00%");
        assert_eq!(v.results[4].measured, "6.00%");
        assert!(!v.passed());
        assert_eq!((v.failures(), v.errors()), (3, 0));
        assert_eq!(v.suite, "t/current");
    }

    #[test]
    fn health_thresholds_read_health_and_error_without_it() {
        let t = thresholds(
            "harness.max_lag_ms = 2000\nharness.lagged = false\nharness.lag_p99_ms = 50\n",
        );
        let none = run_with(10, 10, &[], None);
        let v = evaluate(&none, &t);
        assert!(v.results.iter().all(|r| r.outcome == Outcome::Error));
        assert!(v.results[0].message.contains("records no harness health"));
        assert!(!v.passed());

        let healthy = results::Health {
            max_lag_ms: 1500,
            p99_lag_ms: 40,
            ..results::Health::default()
        };
        let ok = run_with(10, 10, &[], Some(healthy.clone()));
        let v = evaluate(&ok, &t);
        let outcomes: Vec<Outcome> = v.results.iter().map(|r| r.outcome).collect();
        assert_eq!(outcomes, [Outcome::Pass, Outcome::Pass, Outcome::Pass]);
        assert_eq!(v.results[2].measured, "40 ms");

        // Merged shards: the worst shard decides.
        let mut merged = run_with(10, 10, &[], None);
        merged.summary.meta.health = Some(results::HealthRecord::Shards(vec![
            healthy,
            results::Health {
                max_lag_ms: 2500,
                lagged: true,
                p99_lag_ms: 4,
                ..results::Health::default()
            },
        ]));
        let v = evaluate(&merged, &t);
        let outcomes: Vec<Outcome> = v.results.iter().map(|r| r.outcome).collect();
        assert_eq!(outcomes, [Outcome::Fail, Outcome::Fail, Outcome::Pass]);
        assert_eq!(v.results[0].measured, "2500 ms");
    }

    #[test]
    fn any_level_and_delivered_by_read_the_exact_curve() {
        // POA: 100 expected, 90 delivered at 1..=90 s.
        let run = run_with(100, 90, &[], None);
        let t = thresholds(
            r#"
poa.time_to_90 = "90s"
poa.time_to_85_5 = "85s"
poa.time_to_91 = "1h"
poa.delivered_by.45s = 0.45
poa.delivered_by."44.9s" = "45%"
poa.delivered_by.1h = 0.9
pra.delivered_by.1m = 0.5
"#,
        );
        let v = evaluate(&run, &t);
        let got: Vec<(&str, Outcome, &str)> = v
            .results
            .iter()
            .map(|r| (r.name.as_str(), r.outcome, r.measured.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("poa.time_to_90", Outcome::Pass, "1m30s"),
                // The 86th delivery (ceil(85.5% of 100)) is at 86 s.
                ("poa.time_to_85_5", Outcome::Fail, "1m26s"),
                ("poa.time_to_91", Outcome::Fail, "never"),
                ("poa.delivered_by.45s", Outcome::Pass, "45.00%"),
                ("poa.delivered_by.\"44.9s\"", Outcome::Fail, "44.00%"),
                ("poa.delivered_by.1h", Outcome::Pass, "90.00%"),
                ("pra.delivered_by.1m", Outcome::Error, "n/a"),
            ]
        );
        assert!(
            v.results[4].message.contains("required at least 45.00%"),
            "{}",
            v.results[4].message
        );
        // The same thresholds on the histogram alone say the figure is HDR-precise.
        let hdr = results::LoadedRun {
            poa: results::Latencies::Hdr(run.poa.histogram()),
            ..run.clone()
        };
        let v = evaluate(&hdr, &t);
        assert!(
            v.results[1].message.contains("HDR"),
            "{}",
            v.results[1].message
        );
        let v = evaluate(&hdr, &thresholds("poa.time_to_80 = \"80s\"\n"));
        assert_eq!(v.results[0].outcome, Outcome::Pass);
        assert!(
            !v.results[0].message.contains("HDR"),
            "a level summary.json holds is read from it, exact: {}",
            v.results[0].message
        );
    }

    #[test]
    fn nothing_expected_is_an_error_not_a_pass() {
        let s = run_with(10, 10, &[], None);
        let v = evaluate(&s, &thresholds("pra.time_to_50 = \"1m\"\n"));
        assert_eq!(v.results[0].outcome, Outcome::Error);
        assert!(!v.passed());
    }

    #[test]
    fn several_seeds_are_judged_on_the_worst_one_and_one_seed_as_before() {
        // Three seeds: 95, 90 and 98 of 100 POAs delivered (at 1, 2, ... s).
        let mut run = run_with(100, 95, &[], None);
        let seed = |s: u64, delivered| {
            let mut r = run_with(100, delivered, &[], None);
            r.summary.meta.seed = s;
            r
        };
        let others = vec![seed(2, 90), seed(3, 98)];
        let all: Vec<&results::Summary> = std::iter::once(&run.summary)
            .chain(others.iter().map(|r| &r.summary))
            .collect();
        run.summary.seeds = results::SeedSet::of(&all);
        let t = thresholds("poa.loss_rate = 0.06\npoa.time_to_50 = \"1h\"\n");
        let alone = evaluate(&run, &t);
        assert!(alone.passed(), "the first seed alone passes");
        assert_eq!(
            evaluate_seeds(&run, &t),
            alone,
            "without its other runs: as before"
        );
        run.seed_runs = others;
        let v = evaluate_seeds(&run, &t);
        assert!(!v.passed());
        assert_eq!(v.results[0].outcome, Outcome::Fail);
        assert_eq!(v.results[0].measured, "10.00% (worst seed 2)");
        assert!(
            v.results[0]
                .message
                .contains("worst of 3 seeds (1–3): seed 2; 1 of 3 breach it"),
            "{}",
            v.results[0].message
        );
        // A check every seed passes names the worst seed too (the latest 50%).
        assert_eq!(v.results[1].outcome, Outcome::Pass);
        assert_eq!(v.results[1].measured, "50s (worst seed 1)");
        assert!(
            v.properties
                .contains(&("seeds".to_string(), "1–3".to_string()))
        );
    }

    #[test]
    fn no_thresholds_is_not_a_pass() {
        let s = run_with(10, 10, &[], None);
        assert!(!evaluate(&s, &thresholds("")).passed());
    }
}
