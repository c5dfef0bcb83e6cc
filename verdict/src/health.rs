//! The run's own health checks: what a finished run is judged on apart from any threshold. Did it
//! reach its planned end (`run.complete`)? Did the harness keep its schedule
//! (`harness.schedule`)? And, where the alerts went through a real endpoint, did the endpoint path
//! deliver at least half of what it was handed (`endpoint.delivery`)?
//!
//! The binary decides what each one means for the exit code (an incomplete run exits 130, a
//! lagged one 3, whatever the thresholds say; a starved endpoint is a warning unless these checks
//! are the verdict because no thresholds were given); this module only checks, from the summary.

use crate::evaluate::{CheckResult, Outcome, Verdict};
use crate::format_pct;
use results::{ENDPOINT_STARVED_SHARE, Summary};

/// The name of the completeness check.
pub const COMPLETE: &str = "run.complete";
/// The name of the schedule check.
pub const SCHEDULE: &str = "harness.schedule";
/// The name of the endpoint-path check.
pub const ENDPOINT: &str = "endpoint.delivery";

fn outcome(ok: bool) -> Outcome {
    if ok { Outcome::Pass } else { Outcome::Fail }
}

/// `run.complete`: the run reached its planned end (it was not interrupted).
pub fn run_complete(summary: &Summary) -> CheckResult {
    let complete = summary.meta.complete;
    CheckResult {
        name: COMPLETE.into(),
        measured: if complete { "yes" } else { "no" }.into(),
        allowed: "yes".into(),
        outcome: outcome(complete),
        message: if complete {
            "the run reached its planned end".into()
        } else {
            "the run was interrupted: its results are incomplete (alerts still pending count as \
             not delivered)"
                .into()
        },
    }
}

/// `harness.schedule`: the harness did not flag its own schedule lag (the worst shard decides);
/// `None` when the run recorded no health.
pub fn harness_schedule(summary: &Summary) -> Option<CheckResult> {
    let shards = summary.meta.health.as_ref()?.shards();
    let worst = shards.iter().max_by_key(|h| (h.lagged, h.p99_lag_ms))?;
    let allowed = match worst.lag_limit_ms {
        Some(l) => format!("<= {l} ms"),
        None => "not lagged".into(),
    };
    Some(CheckResult {
        name: SCHEDULE.into(),
        measured: format!("p99 {} ms", worst.p99_lag_ms),
        allowed,
        outcome: outcome(!worst.lagged),
        message: if worst.lagged {
            format!(
                "the harness fell behind its schedule (hub tasks p99 {} ms, max {} ms late): its \
                 own delay distorts the curves, so the result cannot be trusted",
                worst.p99_lag_ms, worst.max_lag_ms
            )
        } else {
            "the harness kept its schedule".into()
        },
    })
}

/// `endpoint.delivery`: the endpoint path lost at most half of the alerts handed to it
/// ([`results::EndpointPathLoss`]); `None` for a run without an endpoint path (`simulate`).
pub fn endpoint_delivery(summary: &Summary) -> Option<CheckResult> {
    let loss = summary.endpoint_path_loss()?;
    let causes: Vec<String> = loss
        .causes()
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    let measured = format_pct(loss.share());
    Some(CheckResult {
        name: ENDPOINT.into(),
        measured: measured.clone(),
        allowed: format!("<= {}", format_pct(ENDPOINT_STARVED_SHARE)),
        outcome: outcome(!loss.starved()),
        message: format!(
            "the endpoint path lost {measured} of the {} alerts handed to it ({} lost{}){}",
            loss.handed,
            loss.lost(),
            if causes.is_empty() {
                String::new()
            } else {
                format!(": {}", causes.join(", "))
            },
            if loss.starved() {
                "; these results measure the endpoint's failure, not the network's"
            } else {
                ""
            }
        ),
    })
}

/// The run's health as a verdict of its own: `run.complete`, `harness.schedule` and, with
/// `endpoint`, `endpoint.delivery` (each where the summary can tell).
pub fn health_verdict(summary: &Summary, endpoint: bool) -> Verdict {
    let mut v = Verdict::for_run(summary);
    v.results.push(run_complete(summary));
    v.results.extend(harness_schedule(summary));
    if endpoint {
        v.results.extend(endpoint_delivery(summary));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::summary_with;
    use results::{EgressHealth, Health};

    fn health(lagged: bool, submitted: u64, rejected: u64) -> Health {
        Health {
            egress: Some(EgressHealth {
                submitted,
                rejected,
                ..EgressHealth::default()
            }),
            lag_limit_ms: Some(5000),
            lagged,
            p99_lag_ms: if lagged { 9000 } else { 3 },
            max_lag_ms: if lagged { 12_000 } else { 7 },
            ..Health::default()
        }
    }

    fn outcomes(v: &Verdict) -> Vec<(&str, Outcome)> {
        v.results
            .iter()
            .map(|r| (r.name.as_str(), r.outcome))
            .collect()
    }

    #[test]
    fn a_healthy_run_passes_every_check() {
        let s = summary_with(10, 10, &[], Some(health(false, 10, 0)));
        let v = health_verdict(&s, true);
        assert_eq!(
            outcomes(&v),
            [
                (COMPLETE, Outcome::Pass),
                (SCHEDULE, Outcome::Pass),
                (ENDPOINT, Outcome::Pass)
            ]
        );
        assert!(v.passed());
        assert_eq!(v.results[1].allowed, "<= 5000 ms");
    }

    #[test]
    fn lagged_interrupted_and_starved_runs_fail_by_name() {
        let mut s = summary_with(10, 4, &[], Some(health(true, 10, 6)));
        s.meta.complete = false;
        let v = health_verdict(&s, true);
        assert_eq!(
            outcomes(&v),
            [
                (COMPLETE, Outcome::Fail),
                (SCHEDULE, Outcome::Fail),
                (ENDPOINT, Outcome::Fail)
            ]
        );
        assert!(v.results[1].message.contains("p99 9000 ms"), "{v:?}");
        assert!(
            v.results[2].message.contains("endpoint_rejected 6"),
            "{}",
            v.results[2].message
        );
        assert_eq!(v.results[2].measured, "60.00%");
        // Without the endpoint check (thresholds decide about the endpoint).
        assert_eq!(health_verdict(&s, false).results.len(), 2);
    }

    #[test]
    fn a_simulation_has_no_endpoint_check() {
        let s = summary_with(
            10,
            10,
            &[],
            Some(Health {
                lag_limit_ms: None,
                ..Health::default()
            }),
        );
        let v = health_verdict(&s, true);
        assert_eq!(
            outcomes(&v),
            [(COMPLETE, Outcome::Pass), (SCHEDULE, Outcome::Pass)]
        );
        assert_eq!(v.results[1].allowed, "not lagged");
        let none = summary_with(10, 10, &[], None);
        assert_eq!(health_verdict(&none, true).results.len(), 1);
    }
}
