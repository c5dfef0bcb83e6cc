//! The tables, built once as data ([`Table`]) and written as Markdown (`summary.md`) or HTML
//! (`report.html`): where each run comes from (date, harness build, profile hash, mode, flags),
//! the technical changes with their titles, and per region the runs, time to X% delivered in the
//! DP096 layout (levels 50/80/95 North, 50/80/99 Central&South; the DP096 reference and the
//! difference beside the harness's figure where it applies), the share delivered by each
//! requirement's deadline, loss by cause, latency percentiles of delivered alerts and anomalies.
//!
//! Times are m:ss; a level that is never reached says so ("never"), it is never left blank.
//! Shares are percentages with two decimals ([`crate::format::pct`]).

use crate::calibration;
use crate::format::{count_range, mmss, pct, pct_range, time_or_never, time_range};
use crate::requirements::{self, RELIABILITY_PCT};
use crate::runs::{self, RunGroup};
use ledger::{AlertKind, LossCause};
use results::{LoadedRun, Mode, Precision, Spread, Worse};
use std::fmt::Write as _;

/// A table: a heading, optional text before and after, a header row and rows of cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The heading.
    pub title: String,
    /// A paragraph before the table.
    pub intro: Option<String>,
    /// Column names.
    pub head: Vec<String>,
    /// Rows of cells, as many as columns.
    pub rows: Vec<Vec<String>>,
    /// Paragraphs after the table (definitions, explanations of unusual figures).
    pub notes: Vec<String>,
}

impl Table {
    pub(crate) fn new(title: impl Into<String>, head: Vec<String>) -> Table {
        Table {
            title: title.into(),
            intro: None,
            head,
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The table as Markdown (a `###` heading, the pipe table, the notes).
    pub fn markdown(&self) -> String {
        let mut md = format!("\n### {}\n\n", self.title);
        if let Some(i) = &self.intro {
            let _ = writeln!(md, "{i}\n");
        }
        let row = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        md.push_str(&row(&self.head));
        md.push_str(&row(&vec!["---".to_string(); self.head.len()]));
        for r in &self.rows {
            md.push_str(&row(r));
        }
        for n in &self.notes {
            let _ = write!(md, "\n{n}\n");
        }
        md
    }
}

/// How a run's clock worked, as a reader should read it: `virtual time` for `simulate` (its
/// time scale means nothing), `real time ×60` for `run`.
pub fn mode_text(r: &LoadedRun) -> String {
    let m = &r.summary.meta;
    match m.mode {
        Mode::Simulate => "virtual time".to_string(),
        Mode::Run => format!("real time ×{}", m.time_scale),
    }
}

/// What must be said about a run before any of its figures is read: `lagged`, an endpoint path
/// that lost more than half of what it was handed (`endpoint-starved`), `incomplete`,
/// `insecure`, and times read from histograms.
pub fn warnings(r: &LoadedRun) -> Vec<String> {
    let mut w = Vec::new();
    if r.summary.meta.lagged() {
        w.push(
            "LAGGED: the harness fell behind its schedule; its delay distorts the curves".into(),
        );
    }
    if let Some(l) = r.summary.endpoint_path_loss()
        && l.starved()
    {
        let causes: Vec<String> = l
            .causes()
            .iter()
            .map(|(c, n)| format!("{c} {}", crate::format::thousands(*n)))
            .collect();
        w.push(format!(
            "ENDPOINT-STARVED: the endpoint path lost {} of the {} alerts handed to it ({}); \
             these results measure the endpoint's failure, not the network's",
            pct(l.share()),
            crate::format::thousands(l.handed),
            causes.join(", ")
        ));
    }
    if !r.summary.meta.complete {
        w.push(
            "INCOMPLETE: the run was interrupted; alerts still pending are shown as such".into(),
        );
    }
    if r.summary.meta.insecure_skip_verify || r.record.as_ref().is_some_and(|rec| rec.insecure) {
        w.push("INSECURE: the endpoint's certificate was not verified".into());
    }
    let hypothetical: Vec<&str> = r
        .summary
        .meta
        .changes
        .iter()
        .filter(|c| c.parse::<u32>().is_err())
        .map(String::as_str)
        .collect();
    if !hypothetical.is_empty() {
        w.push(format!(
            "HYPOTHETICAL: change {} is not in DP096 (illustrative parameters)",
            hypothetical.join(", ")
        ));
    }
    if r.precision() == Precision::Hdr || r.summary.time_precision == Precision::Hdr {
        w.push(
            "HDR: curves (and, after a merge, times) read from HDR histograms, up to 0.1% late: \
             the exact latencies (alerts.csv) were not available"
                .into(),
        );
    }
    w
}

/// Where each run comes from (`run.json`), one row per run.
pub fn provenance_table(runs: &[&LoadedRun], labels: &[String]) -> Table {
    let mut t = Table::new(
        "Provenance",
        [
            "run",
            "started (UTC)",
            "wall s",
            "harness",
            "profile",
            "profile sha256",
            "mode",
            "host",
            "flags",
        ]
        .map(String::from)
        .to_vec(),
    );
    let mut commands = Vec::new();
    for (r, l) in runs.iter().zip(labels) {
        let m = &r.summary.meta;
        let flags: Vec<String> = warnings(r)
            .iter()
            .filter_map(|w| w.split(':').next().map(str::to_lowercase))
            .collect();
        let flags = if flags.is_empty() {
            "-".to_string()
        } else {
            flags.join(", ")
        };
        match &r.record {
            Some(rec) => {
                t.rows.push(vec![
                    l.clone(),
                    rec.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    format!("{:.1}", rec.wall_s),
                    format!("csp-harness {}", rec.harness.describe()),
                    rec.profile.name.clone(),
                    rec.profile.short_hash().to_string(),
                    mode_text(r),
                    format!(
                        "{} ({} CPUs)",
                        rec.host.cpu_model.as_deref().unwrap_or("unknown CPU"),
                        rec.host.logical_cpus
                    ),
                    flags,
                ]);
                commands.push(format!("{l}: `{}`", rec.command_line.join(" ")));
            }
            None => t.rows.push(vec![
                l.clone(),
                "not recorded".into(),
                "-".into(),
                "-".into(),
                m.profile.clone(),
                "-".into(),
                mode_text(r),
                "-".into(),
                flags,
            ]),
        }
    }
    if runs.iter().any(|r| r.record.is_none()) {
        t.notes
            .push("\"not recorded\": the results folder has no run.json (older harness).".into());
    }
    if !commands.is_empty() {
        t.notes
            .push(format!("Command lines: {}", commands.join("; ")));
    }
    t.notes.push(
        "The profile hash is the SHA-256 of `csp-harness profile show FILE` (with the run's \
         `--changes`) without its first line; the table shows its first 8 hex digits, run.json \
         all 64."
            .into(),
    );
    t
}

/// The technical changes any run enabled, with their titles (from `run.json`).
pub fn changes_table(runs: &[&LoadedRun]) -> Option<Table> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for r in runs {
        for c in r.record.iter().flat_map(|rec| rec.profile.changes.iter()) {
            if !seen.iter().any(|(id, _)| *id == c.id) {
                seen.push((c.id.clone(), c.title.clone()));
            }
        }
    }
    if seen.is_empty() {
        return None;
    }
    seen.sort_by_key(|(id, _)| (id.parse::<u32>().unwrap_or(u32::MAX), id.clone()));
    let mut t = Table::new(
        "Technical changes (DP096)",
        ["change", "title", "enabled in"].map(String::from).to_vec(),
    );
    for (id, title) in seen {
        let users: Vec<String> = runs
            .iter()
            .filter(|r| {
                r.record
                    .iter()
                    .any(|rec| rec.profile.changes.iter().any(|c| c.id == id))
            })
            .map(|r| r.summary.meta.profile.clone())
            .collect();
        t.rows.push(vec![id, title, users.join(", ")]);
    }
    Some(t)
}

/// The tables of one region's runs, in report order.
pub fn region_tables(g: &RunGroup) -> Vec<Table> {
    let (runs, labels) = (g.runs.as_slice(), g.labels.as_slice());
    let mut tables = vec![
        runs_table(runs, labels),
        levels_table(g),
        deadlines_table(runs, labels),
        loss_table(runs, labels),
        latency_table(runs, labels),
    ];
    tables.extend(covered_table(runs, labels));
    tables.extend(crate::outages::outages_table(g));
    tables
}

/// How alerts covered by a summary alert are accounted for (the hypothetical `summarised` change).
pub const COVERED: &str = "Covered by a summary (`covered_by_summary`, a hypothetical option not \
in DP096): the CSP folded the alert into a summary alert for its cell, and the endpoint \
acknowledged that summary. The alert was never delivered on its own — the endpoint learnt a count \
that includes its premises, not its premises — so it is counted as lost with that cause and never \
as delivered; a summary lost on the way loses every alert it covers, for the same cause. \
\"Delivered or covered\" counts a covered alert from the time its summary was acknowledged.";

/// For runs where summary alerts covered some: how far the endpoint knew of the alerts.
fn covered_table(runs: &[&LoadedRun], labels: &[String]) -> Option<Table> {
    let any = runs.iter().any(|r| {
        AlertKind::ALL
            .iter()
            .any(|&k| r.summary.kind(k).covered_by_summary.is_some())
    });
    if !any {
        return None;
    }
    let mut t = Table::new(
        "Summary alerts: alerts delivered on their own, or covered by an acknowledged summary",
        [
            "run",
            "alert",
            "expected",
            "delivered",
            "covered by a summary",
            "delivered or covered",
            "50% delivered or covered",
            "80%",
            "95%",
        ]
        .map(String::from)
        .to_vec(),
    );
    for (r, l) in runs.iter().zip(labels) {
        for kind in AlertKind::ALL {
            let k = r.summary.kind(kind);
            let Some(c) = &k.covered_by_summary else {
                continue;
            };
            t.rows.push(vec![
                l.clone(),
                kind.to_string(),
                k.expected.to_string(),
                format!("{} ({})", k.delivered, pct(k.delivered_fraction)),
                c.covered.to_string(),
                pct(c.delivered_or_covered_fraction),
                time_or_never(c.time_to(50.0)),
                time_or_never(c.time_to(80.0)),
                time_or_never(c.time_to(95.0)),
            ]);
        }
    }
    t.notes.push(COVERED.into());
    Some(t)
}

/// The whole `summary.md` for these runs (any regions, in the order they first appear; each
/// region gets its own section).
pub fn summary_markdown(runs: &[&LoadedRun]) -> String {
    let mut md = String::from("# csp-loadtest: alert delivery\n\n");
    md.push_str(INTRO);
    md.push('\n');
    let groups = runs::by_region(runs);
    let ordered: Vec<&LoadedRun> = groups.iter().flat_map(|g| g.runs.iter().copied()).collect();
    let labels: Vec<String> = groups
        .iter()
        .flat_map(|g| g.labels.iter().map(move |l| format!("{} {l}", g.region)))
        .collect();
    md.push_str(&provenance_table(&ordered, &labels).markdown());
    if let Some(t) = changes_table(&ordered) {
        md.push_str(&t.markdown());
    }
    for g in &groups {
        let _ = writeln!(md, "\n## {}", g.region);
        for t in region_tables(g) {
            md.push_str(&t.markdown());
        }
    }
    md
}

/// What every report says first.
pub const INTRO: &str = "All shares are of the *expected* alerts (one POA per outage of 3 \
minutes or more, one PRA per restoration). POA times run from the power cut, PRA times from the \
restoration.\n";

fn runs_table(runs: &[&LoadedRun], labels: &[String]) -> Table {
    let mut t = Table::new(
        "Runs",
        [
            "run", "profile", "changes", "seed", "premises", "mode", "endpoint", "complete",
        ]
        .map(String::from)
        .to_vec(),
    );
    for (r, l) in runs.iter().zip(labels) {
        let m = &r.summary.meta;
        t.rows.push(vec![
            l.clone(),
            m.profile.clone(),
            if m.changes.is_empty() {
                "-".into()
            } else {
                m.changes.join(", ")
            },
            match &r.summary.seeds {
                Some(s) => format!("{} ({} seeds)", s.describe(), s.list.len()),
                None => m.seed.to_string(),
            },
            m.hubs.to_string(),
            mode_text(r),
            match (
                &m.endpoint,
                r.record.as_ref().and_then(|rec| rec.run_id.as_ref()),
            ) {
                (Some(e), Some(id)) => format!("{e} (run {id})"),
                (Some(e), None) => e.clone(),
                (None, _) => "-".into(),
            },
            match (m.complete, &m.incomplete_reason) {
                (true, _) => "yes".into(),
                (false, Some(why)) => format!("no: {why}"),
                (false, None) => "no (interrupted)".into(),
            },
        ]);
    }
    let warned: Vec<String> = runs
        .iter()
        .zip(labels)
        .flat_map(|(r, l)| warnings(r).into_iter().map(move |w| format!("{l} — {w}.")))
        .collect();
    t.notes.extend(warned);
    if runs.iter().any(|r| r.summary.seeds.is_some()) {
        t.notes.push(SEEDS.into());
    }
    t
}

/// How the figures of a run of several seeds read, said under every table that shows them.
pub const SEEDS: &str = "Several seeds (`--seeds`): each figure is the median over the seeds with \
their min–max in brackets (a count or share every seed gave alike is written once; a time always \
with its range); the median is one seed's figure (for an even number of seeds the worse \
of the two middle ones), and a level some seed never reached counts as later than any time. The \
spread is the model's chance (contention, collisions, dither, attach failures), not the \
uncertainty of its calibration (`csp-harness sensitivity`). Latencies, anomalies and a storm's \
per-outage figures are the first seed's.";

/// A time to `p`% of a run: the median (min–max) over its seeds, or its one figure.
fn time_cell(r: &LoadedRun, kind: AlertKind, p: f64) -> String {
    match r
        .summary
        .seeds
        .as_ref()
        .and_then(|s| s.kind(kind).time_to(p))
    {
        Some(s) => time_range(s),
        None => time_or_never(r.summary.kind(kind).time_to(p)),
    }
}

/// The time to `p`% a run is compared by: the median over its seeds, or its one figure.
fn time_of(r: &LoadedRun, kind: AlertKind, p: f64) -> Option<f64> {
    match r
        .summary
        .seeds
        .as_ref()
        .and_then(|s| s.kind(kind).time_to(p))
    {
        Some(s) => s.median,
        None => r.summary.kind(kind).time_to(p),
    }
}

/// A signed difference "+12 s (+3.08%)".
fn diff(harness_s: f64, seed_s: u64) -> String {
    let d = harness_s - seed_s as f64;
    let rel = if seed_s == 0 {
        String::new()
    } else {
        let r = pct(d / seed_s as f64);
        format!(" ({}{r})", if d >= 0.0 { "+" } else { "" })
    };
    if d.abs() < 0.5 {
        format!("0 s{rel}")
    } else {
        format!("{d:+.0} s{rel}")
    }
}

fn levels_table(g: &RunGroup) -> Table {
    let (region, runs, labels) = (g.region, g.runs.as_slice(), g.labels.as_slice());
    // DP096 columns only for runs the table applies to.
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
            head.push("DP096 reference".into());
            head.push("difference".into());
        }
    }
    let mut t = Table::new("Time to X% of expected alerts delivered (m:ss)", head);
    for kind in AlertKind::ALL {
        for p in calibration::levels(region, kind) {
            let mut cells = vec![kind.to_string(), format!("{p:.0}%")];
            for (r, a) in runs.iter().zip(&applies) {
                let time = time_of(r, kind, p);
                cells.push(time_cell(r, kind, p));
                if *a {
                    let m = &r.summary.meta;
                    let seed = calibration::seed_seconds(region, kind, &m.option_label, m.hubs, p);
                    cells.push(seed.map_or("-".into(), |s| mmss(s as f64)));
                    cells.push(match (time, seed) {
                        (Some(time), Some(s)) => diff(time, s),
                        (None, Some(_)) => "never reached".into(),
                        _ => "-".into(),
                    });
                }
            }
            t.rows.push(cells);
        }
    }
    if applies.iter().any(|a| *a) {
        t.notes.push(
            "DP096 reference: the modification's delivery table 'based on CSP modelling', an \
             outage of 30,000 homes (not the run's random seed). Difference = harness - reference \
             (the median, for several seeds)."
                .into(),
        );
    }
    t
}

fn deadlines_table(runs: &[&LoadedRun], labels: &[String]) -> Table {
    let mut head = vec!["alert".to_string(), "requirement".to_string()];
    head.extend(labels.iter().cloned());
    let mut t = Table::new("Against the requirements", head);
    let mut first_seed_only = false;
    for kind in AlertKind::ALL {
        let curves: Vec<_> = runs.iter().map(|r| r.curve(kind)).collect();
        for (secs, label) in requirements::deadline_lines(kind) {
            let mut cells = vec![kind.to_string(), format!("delivered by {label}")];
            for (r, c) in runs.iter().zip(&curves) {
                let share = |c: &results::DeliveryCurve| c.fraction_at(secs * 1000);
                cells.push(match &r.summary.seeds {
                    // Every seed's curve at hand: the share by the deadline over the seeds.
                    Some(set) if !r.seed_runs.is_empty() => {
                        let v: Vec<(u64, Option<f64>)> = set
                            .list
                            .iter()
                            .zip(r.seed_curves(kind))
                            .map(|(&seed, c)| (seed, Some(share(&c))))
                            .collect();
                        pct_range(&Spread::of(&v, Worse::Lower))
                    }
                    Some(set) => {
                        first_seed_only = true;
                        format!("{} (seed {})", pct(share(c)), set.list[0])
                    }
                    None => pct(share(c)),
                });
            }
            t.rows.push(cells);
        }
        let mut cells = vec![
            kind.to_string(),
            format!("time to {RELIABILITY_PCT}% (DNO reliability)"),
        ];
        for (r, c) in runs.iter().zip(&curves) {
            cells.push(match &r.summary.seeds {
                Some(set) => {
                    let plateau = set.kind(kind).delivered_fraction;
                    match set.kind(kind).time_to(RELIABILITY_PCT) {
                        Some(s) if s.max.is_some() => time_range(s),
                        Some(s) => format!("{} (plateau {})", time_range(s), pct_range(&plateau)),
                        None => format!("never (plateau {})", pct_range(&plateau)),
                    }
                }
                None => match r.summary.kind(kind).time_to(RELIABILITY_PCT) {
                    Some(s) => mmss(s),
                    None => format!("never (plateau {})", pct(c.plateau())),
                },
            });
        }
        t.rows.push(cells);
    }
    if first_seed_only {
        t.notes.push(
            "(seed N): read back from a saved folder, whose curves are its first seed's; the \
             table written by the run itself gives the median (min–max) over its seeds."
                .into(),
        );
    }
    t
}

fn loss_table(runs: &[&LoadedRun], labels: &[String]) -> Table {
    let causes: Vec<LossCause> = runs::causes_present(runs);
    let mut head: Vec<String> = ["run", "alert", "expected", "delivered", "lost", "loss rate"]
        .map(String::from)
        .to_vec();
    head.extend(causes.iter().map(|c| c.as_str().to_string()));
    head.push("pending".into());
    let mut t = Table::new("Loss by cause (count, share of expected)", head);
    for (r, l) in runs.iter().zip(labels) {
        for kind in AlertKind::ALL {
            let k = r.summary.kind(kind);
            if let Some(set) = &r.summary.seeds {
                t.rows.push(seeded_loss_row(set, kind, l, &causes));
                continue;
            }
            let share = |n: u64| {
                if k.expected == 0 {
                    n.to_string()
                } else {
                    format!("{n} ({})", pct(n as f64 / k.expected as f64))
                }
            };
            let mut cells = vec![
                l.clone(),
                kind.to_string(),
                k.expected.to_string(),
                k.delivered.to_string(),
                k.lost.to_string(),
                pct(k.loss_rate),
            ];
            for c in &causes {
                cells.push(share(k.loss_by_cause.get(c).copied().unwrap_or(0)));
            }
            cells.push(k.pending.to_string());
            t.rows.push(cells);
        }
    }
    t
}

/// A loss row of a run of several seeds: every count and share as median (min–max).
fn seeded_loss_row(
    set: &results::SeedSet,
    kind: AlertKind,
    label: &str,
    causes: &[LossCause],
) -> Vec<String> {
    let count = |worse, f: &dyn Fn(&results::KindSummary) -> u64| {
        count_range(&set.spread(kind, worse, |k| Some(f(k) as f64)))
    };
    let mut cells = vec![
        label.to_string(),
        kind.to_string(),
        count(Worse::Higher, &|k| k.expected),
        count(Worse::Lower, &|k| k.delivered),
        count(Worse::Higher, &|k| k.lost),
        pct_range(&set.spread(kind, Worse::Higher, |k| Some(k.loss_rate))),
    ];
    for &c in causes {
        let n = |k: &results::KindSummary| k.loss_by_cause.get(&c).copied().unwrap_or(0);
        cells.push(format!(
            "{}, {}",
            count(Worse::Higher, &n),
            pct_range(&set.spread(kind, Worse::Higher, |k| {
                (k.expected > 0).then(|| n(k) as f64 / k.expected as f64)
            }))
        ));
    }
    cells.push(count(Worse::Higher, &|k| k.pending));
    cells
}

fn latency_table(runs: &[&LoadedRun], labels: &[String]) -> Table {
    let mut t = Table::new(
        "Latency of delivered alerts (HDR, m:ss) and anomalies",
        [
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
        .map(String::from)
        .to_vec(),
    );
    t.intro = Some(
        "Percentiles of the delivered alerts only; lost alerts are in the tables above.".into(),
    );
    if runs.iter().any(|r| r.summary.seeds.is_some()) {
        t.notes
            .push("Runs of several seeds: the first seed's latencies and anomalies.".into());
    }
    let ms = |v: Option<u64>| v.map_or("-".to_string(), |ms| mmss(ms as f64 / 1000.0));
    for (r, l) in runs.iter().zip(labels) {
        let s = &r.summary;
        let (p, q) = (s.alerts.poa.latency_ms, s.alerts.pra.latency_ms);
        t.rows.push(vec![
            l.clone(),
            ms(p.p50),
            ms(p.p95),
            ms(p.p99),
            ms(p.max),
            ms(q.p50),
            ms(q.p95),
            ms(q.p99),
            ms(q.max),
            match s.meta.endpoint_duplicates {
                Some(n) => format!("{} (endpoint-reported: {n})", s.duplicates),
                None => s.duplicates.to_string(),
            },
            s.out_of_order.to_string(),
            s.false_positives.to_string(),
            s.unexpected_pra.to_string(),
        ]);
    }
    if runs.iter().any(|r| r.summary.out_of_order > 0) {
        t.notes.push(
            "PRA before POA counts premises whose restoration alert was acknowledged before their \
             outage alert. Where a hub cannot stay up through the outage (Central&South's \
             cellular hubs), it sends both alerts only after the power returns and it has \
             rebooted and re-attached; the POA (AD1) then queues at the head-end while the PRA \
             goes straight through, so nearly every PRA arrives first. That is the network's \
             behaviour, not a harness fault; where hubs alert on holdover (the North) any count \
             here would point at a fault."
                .into(),
        );
    }
    t
}

/// A short plain-text table of one run for the terminal: per kind, expected / delivered / lost,
/// time to 50/80/95/99% (m:ss or "never") and the loss by cause.
pub fn terminal_table(summary: &results::Summary) -> String {
    let m = &summary.meta;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} ({}, {}) seed {} {} {} premises{}",
        m.profile,
        m.region,
        m.option_label,
        m.seed,
        match m.mode {
            Mode::Simulate => "virtual time".to_string(),
            Mode::Run => format!("x{}", m.time_scale),
        },
        m.hubs,
        if m.complete { "" } else { "  INCOMPLETE" }
    );
    let _ = writeln!(
        s,
        "{:<4} {:>9} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7}  loss by cause",
        "", "expected", "delivered", "lost", "50%", "80%", "95%", "99%"
    );
    for kind in AlertKind::ALL {
        let k = summary.kind(kind);
        let t = |p: f64| time_or_never(k.time_to(p));
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
        "duplicates {}{}  out_of_order {}{}  false_positives {}",
        summary.duplicates,
        m.endpoint_duplicates
            .map_or_else(String::new, |n| format!(" (endpoint-reported {n})")),
        summary.out_of_order,
        if summary.out_of_order > 0 {
            " (PRAs acknowledged before their POA: see summary.md)"
        } else {
            ""
        },
        summary.false_positives
    );
    for kind in AlertKind::ALL {
        if let Some(c) = &summary.kind(kind).covered_by_summary {
            let _ = writeln!(
                s,
                "{kind}: {} covered by an acknowledged summary alert (not delivered); delivered \
                 or covered {}, 95% by {}",
                c.covered,
                pct(c.delivered_or_covered_fraction),
                time_or_never(c.time_to(95.0))
            );
        }
    }
    if let Some(set) = &summary.seeds {
        let _ = writeln!(
            s,
            "over {} seeds ({}): median (min–max); the lines above are seed {}",
            set.list.len(),
            set.describe(),
            set.list[0]
        );
        for kind in AlertKind::ALL {
            let k = set.kind(kind);
            let t = |p: f64| k.time_to(p).map_or_else(|| "-".into(), time_range);
            let _ = writeln!(
                s,
                "{:<4} delivered {}  lost {}  50% {}  80% {}  95% {}  99% {}",
                kind.to_string(),
                pct_range(&k.delivered_fraction),
                count_range(&k.lost),
                t(50.0),
                t(80.0),
                t(95.0),
                t(99.0)
            );
        }
    }
    if !summary.outages.is_empty() {
        let _ = writeln!(
            s,
            "{:<12} {:>9} {:>7} {:>11} {:>10} {:>10} {:>7} {:>7}",
            "outage", "premises", "cut", "1st alert", "1st POA", "POA deliv", "POA 50%", "POA 95%"
        );
        for o in &summary.outages {
            let p = &o.alerts.poa;
            let _ = writeln!(
                s,
                "{:<12} {:>9} {:>7} {:>11} {:>10} {:>10} {:>7} {:>7}",
                o.outage.name,
                o.outage.premises,
                mmss(o.outage.cut_at_s),
                time_or_never(o.time_to_first_alert_s),
                time_or_never(o.time_to_first_poa_s),
                pct(p.delivered_fraction),
                time_or_never(p.time_to(50.0)),
                time_or_never(p.time_to(95.0)),
            );
        }
    }
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
        assert_eq!(diff(402.0, 390), "+12 s (+3.08%)");
        assert_eq!(diff(380.0, 390), "-10 s (-2.56%)");
        assert_eq!(diff(390.2, 390), "0 s (+0.05%)");
    }

    #[test]
    fn a_starved_endpoint_is_said_before_any_figure() {
        let mut l = ledger::Ledger::new(4);
        for h in 0..4 {
            let id = ledger::AlertId::new(h, AlertKind::Poa);
            l.expect(id, ledger::AlertCode::Ad1, 0).unwrap();
            l.lose(id, LossCause::EndpointRejected, 10).unwrap();
        }
        l.finish(100);
        // A region by name, as a profile names it (whatever `Region` is made of).
        let north = || serde_json::from_str::<ledger::Region>("\"north\"").unwrap();
        let run_with = |submitted: u64, rejected: u64| {
            let mut meta = results::RunMeta::new("t/current", north(), "current", 1, 4);
            meta.mode = Mode::Run;
            meta.health = Some(results::HealthRecord::Run(Box::new(results::Health {
                egress: Some(results::EgressHealth {
                    submitted,
                    rejected,
                    ..results::EgressHealth::default()
                }),
                ..results::Health::default()
            })));
            LoadedRun::from_ledger(results::summarize(meta, &l), &l)
        };
        let starved = warnings(&run_with(4, 4));
        assert!(
            starved.iter().any(|w| w.starts_with("ENDPOINT-STARVED")
                && w.contains("100.00% of the 4 alerts")
                && w.contains("endpoint_rejected 4")),
            "{starved:?}"
        );
        let md = summary_markdown(&[&run_with(4, 4)]);
        assert!(md.contains("ENDPOINT-STARVED"), "{md}");
        assert!(
            md.contains("endpoint-starved"),
            "the provenance flags say it too: {md}"
        );
        assert!(
            !warnings(&run_with(4, 2))
                .iter()
                .any(|w| w.contains("ENDPOINT-STARVED")),
            "half is not more than half"
        );
    }

    #[test]
    fn an_unverified_endpoint_certificate_is_said_before_any_figure() {
        let mut l = ledger::Ledger::new(1);
        let id = ledger::AlertId::new(0, AlertKind::Poa);
        l.expect(id, ledger::AlertCode::Ad1, 0).unwrap();
        l.deliver(id, 10).unwrap();
        l.finish(100);
        let north = serde_json::from_str::<ledger::Region>("\"north\"").unwrap();
        let mut meta = results::RunMeta::new("t/current", north, "current", 1, 1);
        meta.mode = Mode::Run;
        let verified = LoadedRun::from_ledger(results::summarize(meta.clone(), &l), &l);
        assert!(!warnings(&verified).iter().any(|w| w.contains("INSECURE")));
        // From summary.json alone (no run.json beside it): said in the warnings every figure's
        // subtitle and summary.md carry.
        meta.insecure_skip_verify = true;
        let insecure = LoadedRun::from_ledger(results::summarize(meta, &l), &l);
        assert!(insecure.record.is_none());
        assert!(
            warnings(&insecure)
                .iter()
                .any(|w| w.starts_with("INSECURE")),
            "{:?}",
            warnings(&insecure)
        );
        assert!(summary_markdown(&[&insecure]).contains("INSECURE"));
    }

    #[test]
    fn tables_render_as_markdown() {
        let mut t = Table::new("T", vec!["a".into(), "b".into()]);
        t.rows.push(vec!["1".into(), "2".into()]);
        t.notes.push("n".into());
        assert_eq!(
            t.markdown(),
            "\n### T\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n\nn\n"
        );
    }
}
