//! Nights over time: how a scenario's delivery has moved from one nightly run to the next.
//!
//! A [`Trend`] is one series (one profile with one set of changes) of runs in the order they ran
//! (`run.json`'s start time). Its graphs are registered in [`TREND_GRAPHS`], like the run graphs in
//! [`crate::graphs::GRAPHS`]: `<series>-times` (time to 50/80/95% of expected delivered, POA and
//! PRA panels, one point per night, the thresholds drawn as dashed lines in the level's colour)
//! and `<series>-loss` (loss rate per kind, with its thresholds). [`benchmark_json`] gives the
//! newest night's figures in github-action-benchmark's custom formats
//! (`customSmallerIsBetter`: times and loss; `customBiggerIsBetter`: shares delivered by the
//! SEC/DNO deadlines), which that action keeps as its own history and alerts on.
//!
//! Every figure is read from the runs' summaries and curves, never recomputed for the picture; a
//! level never reached is drawn as "never" at the top of its panel and left out of the benchmark
//! JSON (the loss rate carries it).

use crate::ReportError;
use crate::figure::{
    Arrangement, Axis, Curve, Figure, Layer, Legend, LegendEntry, LegendPlace, Mark, Marker, Panel,
    Rule, RuleAt, Sample, Series, Tick,
};
use crate::format::{mmss, pct, plural_list, thousands};
use crate::graphs::{minutes_axis, nice_minutes, nice_percent, percent_axis};
use crate::style;
use ledger::AlertKind;
use results::LoadedRun;
use serde::Serialize;
use std::path::{Path, PathBuf};
use verdict::{Rule as Limit, Thresholds};

/// The levels drawn over time, percent of expected.
pub const TREND_LEVELS: [f64; 3] = [50.0, 80.0, 95.0];

/// One series of nights: the same profile and changes, oldest first.
#[derive(Debug, Clone)]
pub struct Trend<'a> {
    /// The series' name, e.g. `north/current` or `north/current +3,4`.
    pub name: String,
    /// The runs, in the order they started; each has its `run.json` record.
    pub nights: Vec<&'a LoadedRun>,
    /// Thresholds to draw as limits, if any.
    pub thresholds: Option<&'a Thresholds>,
}

/// A trend graph: its file name suffix and how it is built.
#[derive(Debug, Clone, Copy)]
pub struct TrendDef {
    /// File name suffix: the file is `<series>-<name>.png`.
    pub name: &'static str,
    /// Builds the figure.
    pub build: fn(&Trend) -> Figure,
}

/// Every trend graph, in the order they are written.
pub const TREND_GRAPHS: [TrendDef; 2] = [
    TrendDef {
        name: "times",
        build: times,
    },
    TrendDef {
        name: "loss",
        build: loss,
    },
];

impl Trend<'_> {
    /// The series' name as a file name: `north-current`, `north-current+3,4`.
    pub fn file_stem(&self) -> String {
        self.name.replace(['/', '\\'], "-").replace(" +", "+")
    }

    /// The nights' start times as x-axis labels: `11-28`, or with the time (`11-28 02:17`,
    /// `11-28 02:17:05`) as far as needed to tell the nights apart.
    fn dates(&self) -> Vec<String> {
        let formats = ["%m-%d", "%m-%d %H:%M", "%m-%d %H:%M:%S"];
        let mut labels = Vec::new();
        for f in formats {
            labels = self.nights.iter().map(|r| started(r, f)).collect();
            let distinct = labels
                .iter()
                .enumerate()
                .all(|(i, d)| !labels[..i].contains(d));
            if distinct {
                break;
            }
        }
        labels
    }

    /// The x axis: one position per night, at most ~12 labelled.
    fn night_axis(&self) -> Axis {
        let n = self.nights.len();
        let dates = self.dates();
        let every = n.div_ceil(12).max(1);
        Axis {
            title: Some("night (run start, UTC)".into()),
            range: (-0.5, n as f64 - 0.5),
            ticks: (0..n)
                .step_by(every)
                .map(|i| Tick {
                    at: i as f64,
                    label: dates[i].clone(),
                })
                .collect(),
            minor: Vec::new(),
        }
    }

    /// The limits its thresholds set on `kind`: `(level %, ms)` for time-to levels drawn here,
    /// and the loss rate.
    fn limits(&self, kind: AlertKind) -> (Vec<(f64, u64)>, Option<f64>) {
        let mut times = Vec::new();
        let mut loss = None;
        for t in self.thresholds.iter().flat_map(|t| t.items.iter()) {
            match t.rule {
                Limit::TimeTo {
                    kind: k,
                    pct,
                    within_ms,
                } if k == kind && TREND_LEVELS.contains(&pct) => times.push((pct, within_ms)),
                Limit::LossRate { kind: k, max } if k == kind => loss = Some(max),
                _ => {}
            }
        }
        (times, loss)
    }

    /// Premises, clock, nights and their span; in red, the nights a reader must not trust blindly.
    fn heading(&self) -> (Vec<String>, Vec<String>) {
        let runs = &self.nights;
        let mut sub = vec![
            format!(
                "{} premises",
                plural_list(
                    "",
                    "",
                    runs.iter()
                        .map(|r| thousands(u64::from(r.summary.meta.hubs)))
                )
            ),
            plural_list("", "", runs.iter().map(|r| crate::tables::mode_text(r))),
            plural_list("seed", "seeds", runs.iter().map(|r| r.summary.meta.seed)),
        ];
        if let (Some(first), Some(last)) = (runs.first(), runs.last()) {
            sub.push(format!(
                "{} night{} from {} to {}",
                runs.len(),
                if runs.len() == 1 { "" } else { "s" },
                started(first, "%Y-%m-%d %H:%M"),
                started(last, "%Y-%m-%d %H:%M UTC")
            ));
        }
        if let Some(t) = self.thresholds {
            sub.push(format!("thresholds {}", t.source.display()));
        }
        let mut warnings: Vec<String> = Vec::new();
        for (r, date) in runs.iter().zip(self.dates()) {
            for w in crate::tables::warnings(r) {
                let head = w.split(':').next().unwrap_or(&w).to_string();
                warnings.push(format!("{date}: {head}"));
            }
        }
        let warnings = if warnings.is_empty() {
            Vec::new()
        } else {
            vec![format!(
                "Nights to read with care (see their summary.md): {}",
                warnings.join(", ")
            )]
        };
        (sub, warnings)
    }
}

fn started(r: &LoadedRun, fmt: &str) -> String {
    r.record
        .as_ref()
        .map_or_else(|| "?".into(), |rec| rec.started_at.format(fmt).to_string())
}

/// The style of a level's series (50%, 80%, 95%: the first three run styles).
fn level_series() -> Vec<Series> {
    TREND_LEVELS
        .iter()
        .enumerate()
        .map(|(i, p)| Series {
            label: format!("time to {p:.0}%"),
            style: style::series_style(i),
        })
        .collect()
}

/// Polylines through the points that exist, broken where a value is missing.
fn broken_curves(series: usize, values: &[Option<f64>]) -> Vec<Layer> {
    let mut layers = Vec::new();
    let mut run: Vec<(f64, f64)> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(y) => run.push((i as f64, *y)),
            None => {
                if !run.is_empty() {
                    layers.push(std::mem::take(&mut run));
                }
            }
        }
    }
    if !run.is_empty() {
        layers.push(run);
    }
    layers
        .into_iter()
        .map(|points| Layer::Curve(Curve { series, points }))
        .collect()
}

/// The dash of a threshold line.
const LIMIT_DASH: (u32, u32) = (10, 6);

/// The layers of one trend panel: each series' value per night (`None`: none that night) as a
/// polyline broken where a value is missing and a mark per night, the newest labelled by `label`;
/// a missing value drawn as a grey cross labelled "never" at `never_at`, or left out without it;
/// and each limit `(series, y)` as a dashed line in its series' colour.
fn night_layers(
    series: &[Series],
    values: &[Vec<Option<f64>>],
    limits: &[(usize, f64)],
    label: fn(f64) -> String,
    never_at: Option<f64>,
) -> Vec<Layer> {
    let mut layers: Vec<Layer> = limits
        .iter()
        .map(|&(i, y)| {
            Layer::Rule(Rule {
                at: RuleAt::Y(y),
                color: series[i].style.color,
                dash: LIMIT_DASH,
                label: None,
            })
        })
        .collect();
    let mut marks = Vec::new();
    for (i, vals) in values.iter().enumerate() {
        layers.extend(broken_curves(i, vals));
        for (n, v) in vals.iter().enumerate() {
            // Only the newest night is labelled: the axis reads the others.
            let newest = n + 1 == vals.len();
            let (at, marker, text) = match (v, never_at) {
                (Some(v), _) => (*v, series[i].style.marker, label(*v)),
                (None, Some(top)) => (top, Marker::Cross, "never".to_string()),
                (None, None) => continue,
            };
            marks.push(Mark {
                series: i,
                at: (n as f64, at),
                marker,
                nudge_px: 0,
                label: newest.then_some(text),
            });
        }
    }
    layers.push(Layer::Marks(marks));
    layers
}

/// The largest value or limit drawn (0 when there is none).
fn highest(values: &[Vec<Option<f64>>], limits: &[(usize, f64)]) -> f64 {
    values
        .iter()
        .flatten()
        .flatten()
        .copied()
        .chain(limits.iter().map(|l| l.1))
        .fold(0.0, f64::max)
}

/// A legend line for a threshold drawn in `series`' colour.
fn limit_entry(series: &Series, text: String) -> LegendEntry {
    LegendEntry {
        sample: Sample::Line(series.style.color, LIMIT_DASH),
        text,
    }
}

/// Time to 50/80/95% per night, POA above PRA, with the thresholds.
fn times(t: &Trend) -> Figure {
    let series = level_series();
    let level_index = |p: f64| TREND_LEVELS.iter().position(|l| *l == p).unwrap_or(0);
    let panels = AlertKind::ALL
        .iter()
        .map(|&kind| {
            let minutes: Vec<Vec<Option<f64>>> = TREND_LEVELS
                .iter()
                .map(|&p| {
                    t.nights
                        .iter()
                        .map(|r| r.summary.kind(kind).time_to(p).map(|s| s / 60.0))
                        .collect()
                })
                .collect();
            let limits: Vec<(usize, f64)> = t
                .limits(kind)
                .0
                .iter()
                .map(|&(p, ms)| (level_index(p), ms as f64 / 60_000.0))
                .collect();
            let y_max = nice_minutes(highest(&minutes, &limits) * 1.15);
            let mut y = minutes_axis(
                Some("time to X% of expected delivered (m:ss)".into()),
                y_max,
            );
            y.minor.clear();
            Panel {
                title: Some(match kind {
                    AlertKind::Poa => "POA (AD1), from the power cut".into(),
                    AlertKind::Pra => "PRA (8F35/8F36), from the restoration".into(),
                }),
                title_is_heading: true,
                x: t.night_axis(),
                y,
                weight: 1.0,
                layers: night_layers(&series, &minutes, &limits, |m| mmss(m * 60.0), Some(y_max)),
            }
        })
        .collect();
    let mut entries: Vec<LegendEntry> = (0..series.len())
        .map(|i| LegendEntry {
            sample: Sample::Series(i),
            text: series[i].label.clone(),
        })
        .collect();
    let never = t.nights.iter().any(|r| {
        AlertKind::ALL.iter().any(|&k| {
            let s = r.summary.kind(k);
            s.expected > 0 && TREND_LEVELS.iter().any(|&p| s.time_to(p).is_none())
        })
    });
    if never {
        entries.push(LegendEntry {
            sample: Sample::Marker(Marker::Cross, style::GREY),
            text: "never reached (drawn at the top)".into(),
        });
    }
    for kind in AlertKind::ALL {
        for (p, ms) in t.limits(kind).0 {
            entries.push(limit_entry(
                &series[level_index(p)],
                format!("{kind} {p:.0}% limit {}", mmss(ms as f64 / 1000.0)),
            ));
        }
    }
    let (subtitle, warnings) = t.heading();
    Figure {
        name: "times".into(),
        title: format!(
            "{} — time to 50/80/95% of expected delivered, night by night",
            t.name
        ),
        subtitle,
        warnings,
        series,
        panels,
        arrangement: Arrangement::Rows,
        legend: Legend {
            entries,
            place: LegendPlace::Below,
        },
    }
}

/// Loss rate per kind per night, with the thresholds.
fn loss(t: &Trend) -> Figure {
    let series: Vec<Series> = AlertKind::ALL
        .iter()
        .enumerate()
        .map(|(i, k)| Series {
            label: format!("{k} lost / expected"),
            style: style::series_style(i),
        })
        .collect();
    let rates: Vec<Vec<Option<f64>>> = AlertKind::ALL
        .iter()
        .map(|&k| {
            t.nights
                .iter()
                .map(|r| {
                    let s = r.summary.kind(k);
                    (s.expected > 0).then_some(s.loss_rate * 100.0)
                })
                .collect()
        })
        .collect();
    let limits: Vec<(usize, f64)> = AlertKind::ALL
        .iter()
        .enumerate()
        .filter_map(|(i, &k)| t.limits(k).1.map(|max| (i, max * 100.0)))
        .collect();
    let y_max = nice_percent(highest(&rates, &limits) * 1.3);
    let mut entries: Vec<LegendEntry> = series
        .iter()
        .enumerate()
        .map(|(i, s)| LegendEntry {
            sample: Sample::Series(i),
            text: s.label.clone(),
        })
        .collect();
    for &(i, max) in &limits {
        entries.push(limit_entry(
            &series[i],
            format!("{} loss limit {}", AlertKind::ALL[i], pct(max / 100.0)),
        ));
    }
    let (subtitle, warnings) = t.heading();
    Figure {
        name: "loss".into(),
        title: format!(
            "{} — alerts lost, share of expected, night by night",
            t.name
        ),
        subtitle,
        warnings,
        panels: vec![Panel {
            title: None,
            title_is_heading: false,
            x: t.night_axis(),
            y: percent_axis("lost / expected", 0.0, y_max, 10.0),
            weight: 1.0,
            layers: night_layers(&series, &rates, &limits, |v| pct(v / 100.0), None),
        }],
        series,
        arrangement: Arrangement::Rows,
        legend: Legend {
            entries,
            place: LegendPlace::Below,
        },
    }
}

/// Every trend graph of a series, named `<series>-<graph>`.
pub fn figures(t: &Trend) -> Vec<Figure> {
    TREND_GRAPHS
        .iter()
        .map(|d| {
            let mut f = (d.build)(t);
            f.name = format!("{}-{}", t.file_stem(), d.name);
            f
        })
        .collect()
}

/// One entry of github-action-benchmark's custom JSON formats.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchmarkEntry {
    /// What was measured, e.g. `north/current POA time to 95%`.
    pub name: String,
    /// Its unit: `s` or `%`.
    pub unit: String,
    /// The newest night's figure.
    pub value: f64,
    /// Where it comes from: the night, seed and harness build.
    pub extra: String,
}

/// The newest night of each series in github-action-benchmark's formats:
/// (`customSmallerIsBetter`: time to 50/80/95% in seconds and loss rate in percent per kind;
/// `customBiggerIsBetter`: the share of expected delivered by each SEC/DNO deadline, percent).
/// A level never reached has no entry (its loss rate says why).
pub fn benchmark_json(trends: &[Trend]) -> (Vec<BenchmarkEntry>, Vec<BenchmarkEntry>) {
    let mut smaller = Vec::new();
    let mut bigger = Vec::new();
    for t in trends {
        let Some(r) = t.nights.last() else { continue };
        let mut extra = format!(
            "night {}, seed {}",
            started(r, "%Y-%m-%d %H:%M UTC"),
            r.summary.meta.seed
        );
        if let Some(rec) = &r.record {
            extra.push_str(&format!(", csp-harness {}", rec.harness.describe()));
        }
        for w in crate::tables::warnings(r) {
            extra.push_str(&format!(", {}", w.split(':').next().unwrap_or(&w)));
        }
        let entry = |name: String, unit: &str, value: f64| BenchmarkEntry {
            name,
            unit: unit.into(),
            value,
            extra: extra.clone(),
        };
        for kind in AlertKind::ALL {
            let k = r.summary.kind(kind);
            if k.expected == 0 {
                continue;
            }
            for p in TREND_LEVELS {
                if let Some(s) = k.time_to(p) {
                    smaller.push(entry(format!("{} {kind} time to {p:.0}%", t.name), "s", s));
                }
            }
            smaller.push(entry(
                format!("{} {kind} loss rate", t.name),
                "%",
                round4(k.loss_rate * 100.0),
            ));
            let curve = r.curve(kind);
            for (secs, label) in crate::requirements::deadline_lines(kind) {
                bigger.push(entry(
                    format!(
                        "{} {kind} delivered by {} ({label})",
                        t.name,
                        mmss(secs as f64)
                    ),
                    "%",
                    round4(curve.fraction_at(secs * 1000) * 100.0),
                ));
            }
        }
    }
    (smaller, bigger)
}

/// Four decimals: a percentage to a ten-thousandth, without float noise (`4.0066666666666695`).
fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// The benchmark files, written by [`write_trend`].
pub const BENCHMARK_SMALLER: &str = "benchmark-smaller-is-better.json";
/// See [`BENCHMARK_SMALLER`].
pub const BENCHMARK_BIGGER: &str = "benchmark-bigger-is-better.json";

/// Writes every trend graph of every series (PNG and SVG) and the two benchmark JSON files into
/// `out` (created if needed); returns the paths written.
pub fn write_trend(trends: &[Trend], out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    if trends.iter().all(|t| t.nights.is_empty()) {
        return Err(ReportError::NoRuns);
    }
    std::fs::create_dir_all(out).map_err(|e| ReportError::io(out, e))?;
    let mut written = Vec::new();
    for t in trends {
        for fig in figures(t) {
            written.extend(crate::compare::write_figure(&fig, out)?);
        }
    }
    let (smaller, bigger) = benchmark_json(trends);
    for (name, entries) in [(BENCHMARK_SMALLER, smaller), (BENCHMARK_BIGGER, bigger)] {
        let path = out.join(name);
        let text = serde_json::to_string_pretty(&entries)
            .map_err(|e| ReportError::io(&path, std::io::Error::other(e)))?;
        crate::compare::write_text(&path, &format!("{text}\n"))?;
        written.push(path);
    }
    Ok(written)
}
