//! A storm's outages, one region's runs: when each outage is first known to the operator, how many
//! of its alerts arrive, and its own delivery curves — as graphs (registered in
//! [`crate::graphs::GRAPHS`], drawn only for runs with several outages) and a table.
//!
//! * `outages`: per outage, grouped bars per run: *time to first alert* (from the outage's power
//!   cut to the first of its alerts the endpoint acknowledged) and the share of its POAs delivered
//!   (plus, stacked and labelled, those covered by an acknowledged summary alert, never counted as
//!   delivered).
//! * `outage-poa`, `outage-pra`: each outage's delivery curve, one panel per run.

use crate::figure::{
    Arrangement, Axis, Bar, Curve, Figure, Layer, Legend, LegendEntry, LegendPlace, Panel, Rule,
    RuleAt, Sample, Segment, Series,
};
use crate::format::{mmss, pct, thousands, time_or_never};
use crate::graphs::{self, minutes_axis, nice_minutes, percent_axis};
use crate::requirements::{self, RELIABILITY_PCT};
use crate::runs::RunGroup;
use crate::style;
use crate::tables::Table;
use ledger::AlertKind;
use results::{LoadedRun, OutageSummary};

/// The outages of a group's runs, by name, in the order they first appear.
fn outage_names(g: &RunGroup) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in &g.runs {
        for o in &r.summary.outages {
            if !names.contains(&o.outage.name) {
                names.push(o.outage.name.clone());
            }
        }
    }
    names
}

fn outage<'a>(r: &'a LoadedRun, name: &str) -> Option<&'a OutageSummary> {
    r.summary.outages.iter().find(|o| o.outage.name == name)
}

/// What an outage is, in a few words: `village-a: 40 premises, 1 cell, cut 1:00`.
fn describe(o: &OutageSummary) -> String {
    let m = &o.outage;
    let cells = match &m.shared_with {
        Some(host) => format!("in {host}'s cells"),
        None if m.cells == 1 => "1 cell".to_string(),
        None => format!("{} cells", m.cells),
    };
    format!(
        "{}: {} premises, {cells}, cut {}",
        m.name,
        thousands(u64::from(m.premises)),
        mmss(m.cut_at_s)
    )
}

/// The definition every outage graph and table repeats.
pub const FIRST_ALERT: &str = "Time to first alert: from an outage's power cut to the first of \
its alerts (POA or PRA) the endpoint acknowledged, i.e. when the operator can first know the \
outage exists. Where hubs cannot stay up through the outage (Central&South) nothing can arrive \
before power returns, so a small outage is first known after its restoration.";

/// Grouped bars: one group per outage, one bar per run, centred on the group; the outage's name
/// under its group. With three runs or more the labels over the bars are staggered (every other
/// bar's one row higher), so neighbours' labels never run into each other.
fn grouped(
    g: &RunGroup,
    names: &[String],
    bar: impl Fn(usize, &LoadedRun, &OutageSummary) -> (Vec<Segment>, String),
) -> Vec<Bar> {
    let n = g.runs.len().max(1) as f64;
    let width = 0.8 / n;
    let mut bars = Vec::new();
    for (oi, name) in names.iter().enumerate() {
        let centre = oi as f64;
        let mut label = name.clone();
        for (ri, r) in g.runs.iter().enumerate() {
            let Some(o) = outage(r, name) else { continue };
            label = format!("{name} ({})", thousands(u64::from(o.outage.premises)));
            let (segments, above) = bar(ri, r, o);
            bars.push(Bar {
                x: centre - 0.4 + width * (ri as f64 + 0.5),
                width: width * 0.9,
                segments,
                above: if n >= 3.0 && ri % 2 == 1 {
                    vec![above, String::new()]
                } else {
                    vec![above]
                },
                category: String::new(),
            });
        }
        bars.push(Bar {
            x: centre,
            width: 0.0,
            segments: Vec::new(),
            above: Vec::new(),
            category: label,
        });
    }
    bars
}

fn categories_axis(n: usize) -> Axis {
    Axis {
        title: None,
        range: (-0.5, n as f64 - 0.5),
        ticks: Vec::new(),
        minor: Vec::new(),
    }
}

fn run_colour(g: &RunGroup, ri: usize) -> crate::figure::Rgb {
    style::series_style(g.slots[ri]).color
}

/// `outages`: per outage, time to first alert and POAs delivered, one bar per run.
pub fn outages_figure(g: &RunGroup) -> Option<Figure> {
    let names = outage_names(g);
    if names.len() < 2 {
        return None;
    }
    let first_max = g
        .runs
        .iter()
        .flat_map(|r| r.summary.outages.iter())
        .filter_map(|o| o.time_to_first_alert_s)
        .fold(300.0_f64, f64::max);
    let y_max = nice_minutes(first_max / 60.0 * 1.3);
    let first = grouped(g, &names, |ri, _, o| {
        let t = o.time_to_first_alert_s;
        let segs = t
            .map(|s| Segment {
                height: s / 60.0,
                color: run_colour(g, ri),
                label: String::new(),
            })
            .into_iter()
            .collect();
        (segs, time_or_never(t))
    });
    let any_covered = g.runs.iter().any(|r| {
        r.summary
            .outages
            .iter()
            .any(|o| o.alerts.poa.covered_by_summary.is_some())
    });
    let delivered = grouped(g, &names, |ri, _, o| {
        let k = &o.alerts.poa;
        let mut segs = vec![Segment {
            height: k.delivered_fraction * 100.0,
            color: run_colour(g, ri),
            label: String::new(),
        }];
        if let Some(c) = &k.covered_by_summary {
            segs.push(Segment {
                height: (c.delivered_or_covered_fraction - k.delivered_fraction) * 100.0,
                color: style::cause_color(ledger::LossCause::CoveredBySummary),
                label: String::new(),
            });
        }
        // One decimal, so four runs' labels fit over their bars; the % sign says what it is.
        let above = if k.expected == 0 {
            "none".to_string()
        } else {
            format!("{:.1}%", k.delivered_fraction * 100.0)
        };
        (segs, above)
    });
    let (c, d) = style::deadline_style(1);
    let time_axis = {
        let mut a = minutes_axis(None, y_max);
        a.title = Some("time to first alert (m:ss)".into());
        a.minor.clear();
        a
    };
    let panels = vec![
        Panel {
            title: Some("Time to first alert, from the outage's power cut".into()),
            title_is_heading: true,
            x: categories_axis(names.len()),
            y: time_axis,
            weight: 1.0,
            layers: vec![
                Layer::Rule(Rule {
                    at: RuleAt::Y(5.0),
                    color: c,
                    dash: d,
                    label: None,
                }),
                Layer::Bars(first),
            ],
        },
        Panel {
            title: Some(if any_covered {
                "POAs delivered (and covered by an acknowledged summary), share of expected".into()
            } else {
                "POAs delivered, share of expected".into()
            }),
            title_is_heading: true,
            x: categories_axis(names.len()),
            y: {
                // Room above 100% for the labels (two rows of them when staggered); ticks stop
                // at 100%.
                let top = if g.runs.len() >= 3 { 135.0 } else { 115.0 };
                let mut a = percent_axis("POA delivered / expected (%)", 0.0, top, 6.0);
                a.ticks.retain(|t| t.at <= 100.0 + 1e-9);
                a
            },
            weight: 1.0,
            layers: vec![
                Layer::Rule(Rule {
                    at: RuleAt::Y(RELIABILITY_PCT),
                    color: style::RELIABILITY.0,
                    dash: style::RELIABILITY.1,
                    label: None,
                }),
                Layer::Bars(delivered),
            ],
        },
    ];
    let mut entries: Vec<LegendEntry> = g
        .labels
        .iter()
        .enumerate()
        .map(|(ri, l)| LegendEntry {
            sample: Sample::Swatch(run_colour(g, ri)),
            text: l.clone(),
        })
        .collect();
    if any_covered {
        entries.push(LegendEntry {
            sample: Sample::Swatch(style::cause_color(ledger::LossCause::CoveredBySummary)),
            text: "covered by a summary (not delivered)".into(),
        });
    }
    entries.push(LegendEntry {
        sample: Sample::Line(c, d),
        text: "DNO (ENA): POA within 5:00".into(),
    });
    entries.push(LegendEntry {
        sample: Sample::Line(style::RELIABILITY.0, style::RELIABILITY.1),
        text: format!("{RELIABILITY_PCT}% reliability"),
    });
    Some(Figure {
        name: "outages".into(),
        title: format!(
            "{} — a storm's outages: when each is first known, and its POAs",
            g.region
        ),
        subtitle: graphs::subtitle(g),
        warnings: graphs::warnings(g),
        series: Vec::new(),
        panels,
        arrangement: Arrangement::Rows,
        legend: Legend {
            entries,
            place: LegendPlace::Below,
        },
    })
}

/// Samples of a curve from 0 to `x_max` minutes, finer than a pixel.
fn sampled(c: &results::DeliveryCurve, x_max: f64) -> Vec<(f64, f64)> {
    const N: usize = 1_500;
    (0..=N)
        .map(|j| {
            let t_min = x_max * j as f64 / N as f64;
            (t_min, c.fraction_at((t_min * 60_000.0) as u64) * 100.0)
        })
        .collect()
}

/// `outage-poa` / `outage-pra`: each outage's delivery curve, one panel per run (at most six).
pub fn outage_delivery(kind: AlertKind, g: &RunGroup) -> Option<Figure> {
    let names = outage_names(g);
    let runs: Vec<(usize, &LoadedRun)> = g
        .runs
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, r)| !r.outages.is_empty())
        .take(6)
        .collect();
    if names.len() < 2 || runs.is_empty() {
        return None;
    }
    let curves: Vec<Vec<Option<results::DeliveryCurve>>> = runs
        .iter()
        .map(|(_, r)| {
            names
                .iter()
                .map(|n| {
                    let i = r.summary.outages.iter().position(|o| &o.outage.name == n)?;
                    r.outage_curve(i, kind)
                })
                .collect()
        })
        .collect();
    let deadlines = requirements::deadline_lines(kind);
    let mut last_s = deadlines
        .iter()
        .map(|d| d.0 as f64 * 1.15)
        .fold(0.0, f64::max);
    for c in curves.iter().flatten().flatten() {
        last_s = last_s.max(c.last_ms().unwrap_or(0) as f64 / 1000.0 * 1.05);
    }
    let x_max = nice_minutes(last_s / 60.0);
    let first_run = runs[0].1;
    let series: Vec<Series> = names
        .iter()
        .enumerate()
        .map(|(i, n)| Series {
            label: outage(first_run, n).map_or_else(|| n.clone(), describe),
            style: style::series_style(i),
        })
        .collect();
    let base = match kind {
        AlertKind::Poa => "the outage's power cut",
        AlertKind::Pra => "the restoration",
    };
    let n_runs = runs.len();
    let panels = runs
        .iter()
        .zip(&curves)
        .enumerate()
        .map(|(pi, ((ri, _), cs))| {
            let mut layers = style::deadline_rules(&deadlines, RuleAt::X, false);
            for (si, c) in cs.iter().enumerate() {
                if let Some(c) = c {
                    layers.push(Layer::Curve(Curve {
                        series: si,
                        points: sampled(c, x_max),
                    }));
                }
            }
            Panel {
                title: Some(g.labels[*ri].clone()),
                title_is_heading: false,
                x: minutes_axis(
                    (pi + 1 == n_runs).then(|| format!("time since {base} (m:ss)")),
                    x_max,
                ),
                y: percent_axis("delivered", 0.0, 101.0, 5.0),
                weight: 1.0,
                layers,
            }
        })
        .collect();
    let mut entries: Vec<LegendEntry> = (0..series.len())
        .map(|i| LegendEntry {
            sample: Sample::Series(i),
            text: series[i].label.clone(),
        })
        .collect();
    entries.extend(style::deadline_legend(&deadlines, ""));
    let kind_name = match kind {
        AlertKind::Poa => "POA (AD1)",
        AlertKind::Pra => "PRA (8F35/8F36)",
    };
    Some(Figure {
        name: format!("outage-{}", kind.as_str()),
        title: format!(
            "{} — {kind_name} of each outage: delivered / expected, since {base}",
            g.region
        ),
        subtitle: graphs::subtitle(g),
        warnings: graphs::warnings(g),
        series,
        panels,
        arrangement: Arrangement::Rows,
        legend: Legend {
            entries,
            place: LegendPlace::Below,
        },
    })
}

/// Per outage and run: first alert, first POA, delivery and time to X%, loss by cause.
pub fn outages_table(g: &RunGroup) -> Option<Table> {
    let names = outage_names(g);
    if names.len() < 2 {
        return None;
    }
    let covered = g.runs.iter().any(|r| {
        r.summary.outages.iter().any(|o| {
            AlertKind::ALL
                .iter()
                .any(|&k| o.alerts.kind(k).covered_by_summary.is_some())
        })
    });
    let mut head: Vec<String> = [
        "outage",
        "run",
        "first alert",
        "first POA",
        "POA delivered",
        "POA 50%",
        "POA 95%",
        "PRA delivered",
        "PRA 50%",
        "PRA 95%",
    ]
    .map(String::from)
    .to_vec();
    if covered {
        head.push("POA delivered or covered".into());
        head.push("POA 95% delivered or covered".into());
    }
    head.push("lost, by cause (POA / PRA)".into());
    let mut t = Table::new(
        "Outages: when each is first known, and its alerts (m:ss from the outage's cut / restoration)",
        head,
    );
    t.intro = Some(FIRST_ALERT.into());
    for name in &names {
        for (r, l) in g.runs.iter().zip(&g.labels) {
            let Some(o) = outage(r, name) else { continue };
            let (p, q) = (&o.alerts.poa, &o.alerts.pra);
            let share = |k: &results::KindSummary| {
                format!("{} of {}", pct(k.delivered_fraction), thousands(k.expected))
            };
            let mut row = vec![
                describe(o),
                l.clone(),
                time_or_never(o.time_to_first_alert_s),
                time_or_never(o.time_to_first_poa_s),
                share(p),
                time_or_never(p.time_to(50.0)),
                time_or_never(p.time_to(95.0)),
                share(q),
                time_or_never(q.time_to(50.0)),
                time_or_never(q.time_to(95.0)),
            ];
            if covered {
                match &p.covered_by_summary {
                    Some(c) => {
                        row.push(pct(c.delivered_or_covered_fraction));
                        row.push(time_or_never(c.time_to(95.0)));
                    }
                    None => {
                        row.push(pct(p.delivered_fraction));
                        row.push(time_or_never(p.time_to(95.0)));
                    }
                }
            }
            let causes = |k: &results::KindSummary| {
                let v: Vec<String> = k
                    .loss_by_cause
                    .iter()
                    .map(|(c, n)| format!("{c} {n}"))
                    .collect();
                if v.is_empty() {
                    "-".to_string()
                } else {
                    v.join(", ")
                }
            };
            row.push(format!("{} / {}", causes(p), causes(q)));
            t.rows.push(row);
        }
    }
    if covered {
        t.notes.push(crate::tables::COVERED.into());
    }
    Some(t)
}
