//! The Markdown tables (`summary.md`): time to X% delivered in the DP096 seed's layout (levels
//! 50/80/95 North, 50/80/99 Central&South; POA and PRA; one column per run), the seed's figure and
//! the difference beside the harness's where the seed table applies (same region and option,
//! 30,000 premises), the share delivered by each requirement's deadline, loss by cause, latency
//! percentiles of delivered alerts and anomalies.
//!
//! Times are m:ss; a level that is never reached says so ("never"), it is never left blank.

use crate::calibration;
use crate::plot::{mmss, run_labels};
use crate::requirements::{self, RELIABILITY_PCT};
use crate::results::LoadedRun;
use ledger::{AlertKind, LossCause, Region};
use std::fmt::Write as _;

const REGIONS: [Region; 2] = [Region::North, Region::CentralSouth];

/// The whole `summary.md` for these runs (any regions; each region gets its own section).
pub fn summary_markdown(runs: &[&LoadedRun]) -> String {
    let mut md = String::from("# csp-loadtest: alert delivery\n\n");
    md.push_str(
        "All shares are of the *expected* alerts (one POA per outage of 3 minutes or more, one PRA \
         per restoration). POA times run from the power cut, PRA times from the restoration.\n",
    );
    for region in REGIONS {
        let group: Vec<&LoadedRun> = runs
            .iter()
            .copied()
            .filter(|r| r.summary.meta.region == region)
            .collect();
        if !group.is_empty() {
            region_section(&mut md, region, &group);
        }
    }
    md
}

fn region_section(md: &mut String, region: Region, runs: &[&LoadedRun]) {
    let labels = run_labels(runs);
    let _ = writeln!(md, "\n## {region}\n");
    runs_table(md, runs, &labels);
    levels_table(md, region, runs, &labels);
    deadlines_table(md, runs, &labels);
    loss_table(md, runs, &labels);
    latency_table(md, runs, &labels);
}

fn row(md: &mut String, cells: &[String]) {
    let _ = writeln!(md, "| {} |", cells.join(" | "));
}

fn header(md: &mut String, cells: &[String]) {
    row(md, cells);
    let sep: Vec<String> = cells.iter().map(|_| "---".to_string()).collect();
    row(md, &sep);
}

fn runs_table(md: &mut String, runs: &[&LoadedRun], labels: &[String]) {
    let _ = writeln!(md, "### Runs\n");
    header(
        md,
        &[
            "run",
            "profile",
            "changes",
            "seed",
            "premises",
            "time scale",
            "mode",
            "endpoint",
            "complete",
            "wall s",
        ]
        .map(String::from),
    );
    for (r, l) in runs.iter().zip(labels) {
        let m = &r.summary.meta;
        row(
            md,
            &[
                l.clone(),
                m.profile.clone(),
                if m.changes.is_empty() {
                    "-".into()
                } else {
                    m.changes.join(", ")
                },
                m.seed.to_string(),
                m.hubs.to_string(),
                format!("{}x", m.time_scale),
                m.mode.clone(),
                match (&m.endpoint, &m.run_id) {
                    (Some(e), Some(id)) => format!("{e} (run {id})"),
                    (Some(e), None) => e.clone(),
                    (None, _) => "-".into(),
                },
                match (m.complete, &m.incomplete_reason) {
                    (true, _) => "yes".into(),
                    (false, Some(why)) => format!("**no**: {why}"),
                    (false, None) => "**no**".into(),
                },
                format!("{:.1}", m.wall_s),
            ],
        );
    }
}

/// A signed difference "+12 s (+3.1%)".
fn diff(harness_s: f64, seed_s: u64) -> String {
    let d = harness_s - seed_s as f64;
    let pct = if seed_s == 0 {
        String::new()
    } else {
        format!(" ({:+.1}%)", d / seed_s as f64 * 100.0)
    };
    if d.abs() < 0.5 {
        format!("0 s{pct}")
    } else {
        format!("{d:+.0} s{pct}")
    }
}

fn levels_table(md: &mut String, region: Region, runs: &[&LoadedRun], labels: &[String]) {
    let _ = writeln!(md, "\n### Time to X% of expected alerts delivered (m:ss)\n");
    // Seed columns only for runs the seed table applies to.
    let applies: Vec<bool> = runs
        .iter()
        .map(|r| {
            let m = &r.summary.meta;
            calibration::seed_seconds(region, AlertKind::Poa, &m.option_label, m.hubs, 50.0)
                .is_some()
        })
        .collect();
    let mut head = vec!["alert".to_string(), "delivered".to_string()];
    for (l, a) in labels.iter().zip(&applies) {
        head.push(l.clone());
        if *a {
            head.push("seed (DP096)".into());
            head.push("difference".into());
        }
    }
    header(md, &head);
    for kind in AlertKind::ALL {
        for p in calibration::levels(region, kind) {
            let mut cells = vec![kind.to_string(), format!("{p:.0}%")];
            for (r, a) in runs.iter().zip(&applies) {
                let t = r.summary.kind(kind).time_to(p);
                cells.push(t.map_or("never".into(), mmss));
                if *a {
                    let m = &r.summary.meta;
                    let seed = calibration::seed_seconds(region, kind, &m.option_label, m.hubs, p);
                    cells.push(seed.map_or("-".into(), |s| mmss(s as f64)));
                    cells.push(match (t, seed) {
                        (Some(t), Some(s)) => diff(t, s),
                        (None, Some(_)) => "never reached".into(),
                        _ => "-".into(),
                    });
                }
            }
            row(md, &cells);
        }
    }
    if applies.iter().any(|a| *a) {
        let _ = writeln!(
            md,
            "\nSeed: DP096 table 'based on CSP modelling', an outage of 30,000 homes. Difference = \
             harness - seed."
        );
    }
}

fn deadlines_table(md: &mut String, runs: &[&LoadedRun], labels: &[String]) {
    let _ = writeln!(md, "\n### Against the requirements\n");
    let mut head = vec!["alert".to_string(), "requirement".to_string()];
    head.extend(labels.iter().cloned());
    header(md, &head);
    for kind in AlertKind::ALL {
        let curves: Vec<_> = runs.iter().map(|r| r.curve(kind)).collect();
        for (secs, label) in requirements::deadline_lines(kind) {
            let mut cells = vec![kind.to_string(), format!("delivered by {label}")];
            for c in &curves {
                cells.push(format!("{:.2}%", c.fraction_at(secs * 1000) * 100.0));
            }
            row(md, &cells);
        }
        let mut cells = vec![
            kind.to_string(),
            format!("time to {RELIABILITY_PCT}% (DNO reliability)"),
        ];
        for (r, c) in runs.iter().zip(&curves) {
            cells.push(match r.summary.kind(kind).time_to(RELIABILITY_PCT) {
                Some(t) => mmss(t),
                None => format!("never (plateau {:.2}%)", c.plateau() * 100.0),
            });
        }
        row(md, &cells);
    }
}

fn loss_table(md: &mut String, runs: &[&LoadedRun], labels: &[String]) {
    let _ = writeln!(md, "\n### Loss by cause (count, share of expected)\n");
    let causes: Vec<LossCause> = crate::results::causes_present(runs);
    let mut head: Vec<String> = ["run", "alert", "expected", "delivered", "lost", "loss rate"]
        .map(String::from)
        .to_vec();
    head.extend(causes.iter().map(|c| c.as_str().to_string()));
    head.push("pending".into());
    header(md, &head);
    for (r, l) in runs.iter().zip(labels) {
        for kind in AlertKind::ALL {
            let k = r.summary.kind(kind);
            let share = |n: u64| {
                if k.expected == 0 {
                    n.to_string()
                } else {
                    format!("{n} ({:.2}%)", n as f64 / k.expected as f64 * 100.0)
                }
            };
            let mut cells = vec![
                l.clone(),
                kind.to_string(),
                k.expected.to_string(),
                k.delivered.to_string(),
                k.lost.to_string(),
                format!("{:.2}%", k.loss_rate * 100.0),
            ];
            for c in &causes {
                cells.push(share(k.loss_by_cause.get(c).copied().unwrap_or(0)));
            }
            cells.push(k.pending.to_string());
            row(md, &cells);
        }
    }
}

fn latency_table(md: &mut String, runs: &[&LoadedRun], labels: &[String]) {
    let _ = writeln!(
        md,
        "\n### Latency of delivered alerts (HDR, m:ss) and anomalies\n\nPercentiles of the \
         delivered alerts only; lost alerts are in the tables above.\n"
    );
    header(
        md,
        &[
            "run",
            "POA p50",
            "POA p95",
            "POA p99",
            "POA max",
            "PRA p50",
            "PRA p95",
            "PRA p99",
            "PRA max",
            "duplicates",
            "PRA before POA",
            "false-positive POA",
            "unexpected PRA",
        ]
        .map(String::from),
    );
    let t = |v: Option<u64>| v.map_or("-".to_string(), |ms| mmss(ms as f64 / 1000.0));
    for (r, l) in runs.iter().zip(labels) {
        let s = &r.summary;
        let (p, q) = (s.alerts.poa.latency_ms, s.alerts.pra.latency_ms);
        row(
            md,
            &[
                l.clone(),
                t(p.p50),
                t(p.p95),
                t(p.p99),
                t(p.max),
                t(q.p50),
                t(q.p95),
                t(q.p99),
                t(q.max),
                match s.meta.endpoint_duplicates {
                    Some(n) => format!("{} (endpoint-reported: {n})", s.duplicates),
                    None => s.duplicates.to_string(),
                },
                s.out_of_order.to_string(),
                s.false_positives.to_string(),
                s.unexpected_pra.to_string(),
            ],
        );
    }
}

/// A short plain-text table of one run for the terminal: per kind, expected / delivered / lost,
/// time to 50/80/95/99% (m:ss or "never") and the loss by cause.
pub fn terminal_table(summary: &crate::Summary) -> String {
    use std::fmt::Write as _;
    let m = &summary.meta;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} ({}, {}) seed {} x{} {} premises{}",
        m.profile,
        m.region,
        m.option_label,
        m.seed,
        m.time_scale,
        m.hubs,
        if m.complete { "" } else { "  INCOMPLETE" }
    );
    let _ = writeln!(
        s,
        "{:<4} {:>9} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7}  loss by cause",
        "", "expected", "delivered", "lost", "50%", "80%", "95%", "99%"
    );
    for kind in ledger::AlertKind::ALL {
        let k = summary.kind(kind);
        let t = |p: f64| {
            k.time_to(p)
                .map_or_else(|| "never".to_string(), crate::plot::mmss)
        };
        let causes: Vec<String> = k
            .loss_by_cause
            .iter()
            .map(|(c, n)| format!("{c}={n}"))
            .collect();
        let _ = writeln!(
            s,
            "{:<4} {:>9} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7}  {}",
            kind.to_string(),
            k.expected,
            k.delivered,
            k.lost,
            t(50.0),
            t(80.0),
            t(95.0),
            t(99.0),
            if causes.is_empty() {
                "-".to_string()
            } else {
                causes.join(" ")
            }
        );
    }
    let _ = writeln!(
        s,
        "duplicates {}{}  out_of_order {}  false_positives {}",
        summary.duplicates,
        m.endpoint_duplicates
            .map_or_else(String::new, |n| format!(" (endpoint-reported {n})")),
        summary.out_of_order,
        summary.false_positives
    );
    if let Some(why) = &m.incomplete_reason {
        let _ = writeln!(s, "INCOMPLETE: {why}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_signed() {
        assert_eq!(diff(402.0, 390), "+12 s (+3.1%)");
        assert_eq!(diff(380.0, 390), "-10 s (-2.6%)");
    }
}
