//! The graphs, as [`Figure`] descriptions built from one region's runs, and the registry that
//! names them. A new graph is one function `fn(&RunGroup) -> Figure` and one line in [`GRAPHS`];
//! the results folder, the comparison and the HTML report then all carry it.
//!
//! * `poa`, `pra` ([`delivery`]): delivered / expected against time since the power cut (POA) or
//!   the restoration (PRA), one line per run. Curves flatten below 100% where alerts are lost
//!   (never normalised); the 50/80/95/99% levels are marked with the times `summary.json` holds;
//!   the SEC/DNO deadlines and the 99.5% reliability level are drawn; where the DP096 table
//!   applies its figures are drawn as crosses. A second panel zooms on the top of the curve.
//! * `loss` ([`loss`]): the share of expected alerts never delivered per run, stacked by cause,
//!   POA and PRA side by side.
//! * `outages`, `outage-poa`, `outage-pra` ([`crate::outages`]): a storm's outages (drawn only
//!   for runs with several): time to first alert and POAs delivered per outage, and each
//!   outage's delivery curves.
//!
//! A graph that does not apply to a group's runs (a storm graph for one outage) builds `None` and
//! is not written.

use crate::calibration;
use crate::figure::{
    Arrangement, Axis, Band, Bar, Curve, Figure, Layer, Legend, LegendEntry, LegendPlace, Mark,
    Marker, Panel, Rule, RuleAt, Sample, Segment, Series, Tick,
};
use crate::format::{mmss, pct, pct_range, plural_list, thousands, time_range};
use crate::requirements::{self, RELIABILITY_PCT};
use crate::runs::RunGroup;
use crate::style;
use crate::tables;
use ledger::{AlertKind, LossCause};
use results::DeliveryCurve;

/// The levels marked on each delivery curve, percent of expected.
pub const MARKED_LEVELS: [f64; 4] = [50.0, 80.0, 95.0, 99.0];

/// A graph: its file name (without extension) and how it is built.
#[derive(Debug, Clone, Copy)]
pub struct GraphDef {
    /// File name without extension; a comparison prefixes the region (`north-poa`).
    pub name: &'static str,
    /// Builds the figure from one region's runs (`None`: the graph does not apply to them).
    pub build: fn(&RunGroup) -> Option<Figure>,
}

/// Every graph, in the order they are written and shown.
pub const GRAPHS: [GraphDef; 6] = [
    GraphDef {
        name: "poa",
        build: |g| Some(delivery(AlertKind::Poa, g)),
    },
    GraphDef {
        name: "pra",
        build: |g| Some(delivery(AlertKind::Pra, g)),
    },
    GraphDef {
        name: "loss",
        build: |g| Some(loss(g)),
    },
    GraphDef {
        name: "outages",
        build: crate::outages::outages_figure,
    },
    GraphDef {
        name: "outage-poa",
        build: |g| crate::outages::outage_delivery(AlertKind::Poa, g),
    },
    GraphDef {
        name: "outage-pra",
        build: |g| crate::outages::outage_delivery(AlertKind::Pra, g),
    },
];

/// Samples per curve: finer than a pixel of the widest plot area, so the drawn step function is
/// exact at the resolution it is seen at.
const CURVE_SAMPLES: usize = 2_000;

fn base_of(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Poa => "the power cut",
        AlertKind::Pra => "the restoration",
    }
}

/// What a graph says under its heading about the runs it shows: premises, how the clock ran
/// (`virtual time` for `simulate`), seed, date, harness build and profile hash (from `run.json`),
/// and the titles of any technical changes its legend names by number.
pub fn subtitle(g: &RunGroup) -> Vec<String> {
    let runs = &g.runs;
    let mut parts = vec![
        format!(
            "{} premises",
            plural_list(
                "",
                "",
                runs.iter()
                    .map(|r| thousands(u64::from(r.summary.meta.hubs)))
            )
        ),
        plural_list("", "", runs.iter().map(|r| tables::mode_text(r))),
        match runs.iter().find_map(|r| r.summary.seeds.as_ref()) {
            // Several seeds: which, and how they are drawn.
            Some(_) => plural_list(
                "seeds",
                "seeds",
                runs.iter().map(|r| match &r.summary.seeds {
                    Some(s) if !r.seed_runs.is_empty() => format!(
                        "{} ({} seeds, median and min–max)",
                        s.describe(),
                        s.list.len()
                    ),
                    // Read back from a folder: only the first seed's curves are at hand.
                    Some(s) => format!(
                        "{} (curves of seed {} only; figures of all {})",
                        s.describe(),
                        s.list[0],
                        s.list.len()
                    ),
                    None => r.summary.meta.seed.to_string(),
                }),
            ),
            None => plural_list("seed", "seeds", runs.iter().map(|r| r.summary.meta.seed)),
        },
    ];
    let records: Vec<&results::RunRecord> = runs.iter().filter_map(|r| r.record.as_ref()).collect();
    if records.len() < runs.len() {
        parts.push("provenance not recorded (no run.json)".into());
    }
    if !records.is_empty() {
        parts.push(plural_list(
            "run",
            "runs",
            records
                .iter()
                .map(|r| r.started_at.format("%Y-%m-%d %H:%M UTC").to_string()),
        ));
        parts.push(format!(
            "csp-harness {}",
            plural_list("", "", records.iter().map(|r| r.harness.describe()))
        ));
        let hashes: Vec<String> = runs
            .iter()
            .zip(&g.labels)
            .filter_map(|(r, l)| {
                r.record
                    .as_ref()
                    .map(|rec| format!("{l} {}", rec.profile.short_hash()))
            })
            .collect();
        parts.push(match records.as_slice() {
            [one] if runs.len() == 1 => {
                format!(
                    "profile {} sha256 {}",
                    one.profile.name,
                    one.profile.short_hash()
                )
            }
            _ => format!("profile sha256: {}", hashes.join(", ")),
        });
    }
    // Change numbers appear in the legend only for runs outside the seed's options: name them.
    let numbered: Vec<&results::ChangeRecord> = runs
        .iter()
        .filter(|r| calibration::option_index(&r.summary.meta.option_label).is_none())
        .filter_map(|r| r.record.as_ref())
        .flat_map(|rec| rec.profile.changes.iter())
        .collect();
    let mut seen: Vec<String> = Vec::new();
    for c in numbered {
        let t = format!("change {} = {}", c.id, c.title);
        if !seen.contains(&t) {
            seen.push(t);
        }
    }
    parts.extend(seen);
    parts
}

/// Warnings about the runs of a graph, each naming the runs it concerns when there are several.
pub fn warnings(g: &RunGroup) -> Vec<String> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (r, l) in g.runs.iter().zip(&g.labels) {
        for w in tables::warnings(r) {
            match out.iter_mut().find(|(x, _)| *x == w) {
                Some((_, who)) => who.push(l.clone()),
                None => out.push((w, vec![l.clone()])),
            }
        }
    }
    out.into_iter()
        .map(|(w, who)| {
            if g.runs.len() > 1 {
                format!("{} — {w}", who.join(", "))
            } else {
                w
            }
        })
        .collect()
}

/// Ticks every `step` from `lo` to `hi`, all labelled by `fmt`.
pub(crate) fn ticks(lo: f64, hi: f64, step: f64, fmt: impl Fn(f64) -> String) -> Vec<Tick> {
    let n = ((hi - lo) / step + 1e-9).floor() as usize;
    (0..=n)
        .map(|i| {
            let at = lo + step * i as f64;
            Tick { at, label: fmt(at) }
        })
        .collect()
}

/// The smallest of `steps` that gives at most `max` intervals over `span`.
pub(crate) fn step_for(span: f64, max: f64, steps: &[f64]) -> f64 {
    steps
        .iter()
        .copied()
        .find(|s| span / s <= max)
        .unwrap_or_else(|| steps.last().copied().unwrap_or(1.0))
}

/// A percentage axis: every tick with the decimals its step needs (0 for whole steps).
pub(crate) fn percent_axis(title: &str, lo: f64, hi: f64, max_ticks: f64) -> Axis {
    let step = step_for(
        hi - lo,
        max_ticks,
        &[0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0],
    );
    let decimals = if step.fract() == 0.0 { 0 } else { 1 };
    let first = (lo / step).ceil() * step;
    Axis {
        title: Some(title.to_string()),
        range: (lo, hi),
        ticks: ticks(first, hi, step, |v| format!("{v:.decimals$}%")),
        minor: Vec::new(),
    }
}

/// A time axis in minutes with every tick written m:ss.
pub(crate) fn minutes_axis(title: Option<String>, x_max: f64) -> Axis {
    let step = step_for(x_max, 16.0, &[0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0]);
    Axis {
        title,
        range: (0.0, x_max),
        ticks: ticks(0.0, x_max, step, |m| mmss(m * 60.0)),
        minor: (0..)
            .map(|i| (f64::from(i) + 0.5) * step)
            .take_while(|&m| m < x_max)
            .collect(),
    }
}

/// Rounds a minute range up to a tidy axis end.
pub(crate) fn nice_minutes(m: f64) -> f64 {
    let step = if m <= 10.0 {
        0.5
    } else if m <= 30.0 {
        1.0
    } else {
        5.0
    };
    ((m / step).ceil() * step).max(1.0)
}

/// For each series, the earlier series whose curves (one, or one per seed) are identical to its
/// own, if any.
fn identical_to(curves: &[Vec<DeliveryCurve>]) -> Vec<Option<usize>> {
    curves
        .iter()
        .enumerate()
        .map(|(i, c)| {
            curves[..i]
                .iter()
                .position(|o| o == c && c.iter().any(|c| c.delivered() > 0))
        })
        .collect()
}

/// Level marks of different runs that would cover each other (same level, within a marker's width)
/// are drawn side by side, so every run's mark stays visible; their positions in data are
/// unchanged.
fn spread_coinciding(marks: &mut [Mark], x_max: f64) {
    // A marker is ~14 px wide on a plot area ~1,440 px wide.
    let near = x_max * 14.0 / 1_440.0;
    let mut idx: Vec<usize> = (0..marks.len())
        .filter(|&i| marks[i].marker != Marker::Cross)
        .collect();
    idx.sort_by(|&a, &b| {
        (marks[a].at.1, marks[a].at.0)
            .partial_cmp(&(marks[b].at.1, marks[b].at.0))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut start = 0;
    while start < idx.len() {
        let mut end = start + 1;
        while end < idx.len()
            && marks[idx[end]].at.1 == marks[idx[start]].at.1
            && marks[idx[end]].at.0 - marks[idx[end - 1]].at.0 < near
        {
            end += 1;
        }
        let n = (end - start) as i32;
        for (k, &i) in idx[start..end].iter().enumerate() {
            marks[i].nudge_px = (2 * k as i32 - (n - 1)) * 6;
        }
        start = end;
    }
}

/// What a delivery graph is drawn from: one region's runs, one alert kind.
struct Delivery<'a> {
    kind: AlertKind,
    g: &'a RunGroup<'a>,
    series: Vec<Series>,
    curves: Vec<DeliveryCurve>,
    /// For each run, the earlier run with an identical curve.
    same_as: Vec<Option<usize>>,
    /// For each run, the DP096 reference's (level %, seconds) where it applies.
    seed: Vec<Vec<(f64, f64)>>,
    deadlines: Vec<(u64, String)>,
    x_max: f64,
    zoom_floor: f64,
    /// Runs whose alerts summaries covered: (run, curve of delivered *or covered*), each drawn as
    /// a further series after the runs'.
    covered: Vec<(usize, DeliveryCurve)>,
    /// For each run of several seeds (`--seeds`), every seed's curve (the first seed's first):
    /// the run is drawn as their median curve in their min–max band.
    seeds: Vec<Option<Vec<DeliveryCurve>>>,
}

impl<'a> Delivery<'a> {
    fn new(kind: AlertKind, g: &'a RunGroup<'a>) -> Self {
        let curves: Vec<DeliveryCurve> = g.runs.iter().map(|r| r.curve(kind)).collect();
        let seeds: Vec<Option<Vec<DeliveryCurve>>> = g
            .runs
            .iter()
            .map(|r| (!r.seed_runs.is_empty()).then(|| r.seed_curves(kind)))
            .collect();
        let mut series: Vec<Series> = g
            .labels
            .iter()
            .zip(&g.slots)
            .map(|(l, &s)| Series {
                label: l.clone(),
                style: style::series_style(s),
            })
            .collect();
        let covered: Vec<(usize, DeliveryCurve)> = g
            .runs
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.delivered_or_covered_curve(kind).map(|c| (i, c)))
            .collect();
        for (i, _) in &covered {
            let base = series[*i].clone();
            series.push(Series {
                label: format!(
                    "{}: delivered or covered by an acknowledged summary",
                    base.label
                ),
                style: crate::figure::Style {
                    dash: Some((3, 5)),
                    ..base.style
                },
            });
        }
        // The DP096 reference where it applies (same region and option, 30,000 premises).
        let seed: Vec<Vec<(f64, f64)>> = g
            .runs
            .iter()
            .map(|r| {
                let m = &r.summary.meta;
                calibration::levels(g.region, kind)
                    .into_iter()
                    .filter_map(|p| {
                        calibration::seed_seconds(g.region, kind, &m.option_label, m.hubs, p)
                            .map(|s| (p, s as f64))
                    })
                    .collect()
            })
            .collect();
        // x: minutes, to a little past the last delivery, the reference figures and deadlines.
        let deadlines = requirements::deadline_lines(kind);
        let mut last_s: f64 = deadlines
            .iter()
            .map(|d| d.0 as f64 * 1.15)
            .fold(0.0, f64::max);
        for (c, s) in curves.iter().zip(&seed) {
            last_s = last_s.max(c.last_ms().unwrap_or(0) as f64 / 1000.0 * 1.05);
            for &(_, t) in s {
                last_s = last_s.max(t * 1.05);
            }
        }
        for c in seeds.iter().flatten().flatten() {
            last_s = last_s.max(c.last_ms().unwrap_or(0) as f64 / 1000.0 * 1.05);
        }
        for (_, c) in &covered {
            last_s = last_s.max(c.last_ms().unwrap_or(0) as f64 / 1000.0 * 1.05);
        }
        let min_plateau = curves
            .iter()
            .chain(seeds.iter().flatten().flatten())
            .map(|c| c.plateau() * 100.0)
            .fold(100.0, f64::min);
        // Runs of several seeds are identical only if every seed's curve is.
        let same_as = identical_to(
            &curves
                .iter()
                .zip(&seeds)
                .map(|(c, s)| s.clone().unwrap_or_else(|| vec![c.clone()]))
                .collect::<Vec<_>>(),
        );
        // The zoom starts at 90% unless a curve flattens below that; a curve that stays under
        // 50% is left to the main panel (zooming out to it would make the zoom pointless).
        let zoom_floor = if min_plateau >= 91.0 {
            90.0
        } else {
            let f = ((min_plateau - 3.0) / 5.0).floor() * 5.0;
            if f < 50.0 { 90.0 } else { f.min(85.0) }
        };
        Delivery {
            kind,
            g,
            series,
            same_as,
            curves,
            seed,
            deadlines,
            x_max: nice_minutes(last_s / 60.0),
            zoom_floor,
            covered,
            seeds,
        }
    }

    /// The spreads over the seeds of run `i`'s figures, if it has several seeds.
    fn spread(&self, i: usize) -> Option<&results::KindSpread> {
        self.seeds[i].as_ref()?;
        Some(self.g.runs[i].summary.seeds.as_ref()?.kind(self.kind))
    }

    /// The requirement lines: deadlines (timed above the main panel) and the reliability level.
    fn rules(&self, main: bool) -> Vec<Layer> {
        let mut layers = style::deadline_rules(&self.deadlines, RuleAt::X, main);
        layers.push(Layer::Rule(Rule {
            at: RuleAt::Y(RELIABILITY_PCT),
            color: style::RELIABILITY.0,
            dash: style::RELIABILITY.1,
            label: None,
        }));
        layers
    }

    /// Each run's curve, sampled finer than a pixel, from the panel's floor up; a run of several
    /// seeds as the median of its seeds' curves, over the band of their min–max (drawn first, so
    /// every curve lies on top of every band).
    fn curves(&self, y0: f64) -> Vec<Layer> {
        let runs = self.curves.len();
        let times: Vec<f64> = (0..=CURVE_SAMPLES)
            .map(|j| self.x_max * j as f64 / CURVE_SAMPLES as f64)
            .collect();
        let ms = |t_min: f64| (t_min * 60_000.0) as u64;
        // Drop the stretch lying on the floor so curves do not pile up there.
        let from_floor = |ys: &[f64]| {
            ys.iter()
                .position(|&y| y > y0)
                .unwrap_or(ys.len())
                .saturating_sub(1)
        };
        let mut bands = Vec::new();
        let mut lines = Vec::new();
        let all = self.curves.iter().enumerate().chain(
            self.covered
                .iter()
                .enumerate()
                .map(|(j, (_, c))| (runs + j, c)),
        );
        for (i, c) in all {
            let ys: Vec<f64> = match self.seeds.get(i).and_then(Option::as_ref) {
                Some(seeds) => {
                    let band: Vec<(f64, f64, f64)> = times
                        .iter()
                        .map(|&t| {
                            let mut f: Vec<f64> =
                                seeds.iter().map(|c| c.fraction_at(ms(t))).collect();
                            let (lo, mid, hi) = results::seeds::band_at(&mut f);
                            (lo * 100.0, mid * 100.0, hi * 100.0)
                        })
                        .collect();
                    let highs: Vec<f64> = band.iter().map(|b| b.2).collect();
                    let start = from_floor(&highs);
                    bands.push(Layer::Band(Band {
                        series: i,
                        points: times
                            .iter()
                            .zip(&band)
                            .skip(start)
                            .map(|(&t, &(lo, _, hi))| (t, lo.max(y0), hi.max(y0)))
                            .collect(),
                    }));
                    band.iter().map(|b| b.1).collect()
                }
                None => times
                    .iter()
                    .map(|&t| c.fraction_at(ms(t)) * 100.0)
                    .collect(),
            };
            let start = from_floor(&ys);
            lines.push(Layer::Curve(Curve {
                series: i,
                points: times
                    .iter()
                    .zip(&ys)
                    .skip(start)
                    .map(|(&t, &y)| (t, y.max(y0)))
                    .collect(),
            }));
        }
        bands.extend(lines);
        bands
    }

    /// The reference figures (crosses) and the marked levels with the summary's own times; a
    /// level is labelled on one panel only (the zoom when it is inside it).
    fn marks(&self, main: bool, y0: f64) -> Vec<Mark> {
        let mut marks = Vec::new();
        for (i, r) in self.g.runs.iter().enumerate() {
            for &(p, t) in self.seed[i].iter().filter(|(p, _)| *p >= y0) {
                marks.push(Mark {
                    series: i,
                    at: (t / 60.0, p),
                    marker: Marker::Cross,
                    nudge_px: 0,
                    label: None,
                });
            }
            let k = r.summary.kind(self.kind);
            let spread = self.spread(i);
            for p in MARKED_LEVELS.into_iter().filter(|&p| p >= y0) {
                // Several seeds: the median time, labelled with the seeds' range.
                let (t, text) = match spread.and_then(|s| s.time_to(p)) {
                    Some(s) => (s.median, time_range(s)),
                    None => (k.time_to(p), String::new()),
                };
                let Some(t) = t else { continue };
                let text = if text.is_empty() { mmss(t) } else { text };
                let labelled_here = main != (p >= self.zoom_floor);
                marks.push(Mark {
                    series: i,
                    at: (t / 60.0, p),
                    marker: self.series[i].style.marker,
                    nudge_px: 0,
                    // Identical curves: one label for all of them.
                    label: (labelled_here && self.same_as[i].is_none()).then_some(text),
                });
            }
        }
        spread_coinciding(&mut marks, self.x_max);
        marks
    }

    /// The main panel (0–100%) or the zoom on the top of the curves.
    fn panel(&self, main: bool) -> Panel {
        let (y0, y1) = if main {
            (0.0, 101.0)
        } else {
            (self.zoom_floor, 100.0 + (100.0 - self.zoom_floor) * 0.05)
        };
        let mut layers = self.rules(main);
        layers.extend(self.curves(y0));
        layers.push(Layer::Marks(self.marks(main, y0)));
        Panel {
            title: (!main).then(|| {
                format!(
                    "zoom on {:.0}–100%: where the requirements bite",
                    self.zoom_floor
                )
            }),
            title_is_heading: false,
            x: minutes_axis(
                (!main).then(|| format!("time since {} (m:ss)", base_of(self.kind))),
                self.x_max,
            ),
            y: percent_axis(
                if main {
                    "delivered / expected"
                } else {
                    "delivered (zoom)"
                },
                y0,
                y1,
                if main { 11.0 } else { 6.0 },
            ),
            weight: if main { 560.0 } else { 340.0 },
            layers,
        }
    }

    /// One line per run (what share was delivered, which marked levels never were), then the
    /// reference, the deadlines and the reliability level.
    fn legend(&self) -> Vec<LegendEntry> {
        let mut entries: Vec<LegendEntry> = self
            .curves
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let k = self.g.runs[i].summary.kind(self.kind);
                let spread = self.spread(i);
                let never: Vec<String> = MARKED_LEVELS
                    .iter()
                    .filter(|&&p| match spread.and_then(|s| s.time_to(p)) {
                        Some(s) => s.median.is_none(),
                        None => k.time_to(p).is_none(),
                    })
                    .map(|p| format!("{p:.0}%"))
                    .collect();
                let name = match self.same_as[i] {
                    Some(j) => format!("{} = {}", self.series[i].label, self.series[j].label),
                    None => self.series[i].label.clone(),
                };
                let mut text = if c.expected() == 0 {
                    format!("{name}: nothing expected")
                } else if let Some(s) = spread {
                    format!(
                        "{name}: {} of {} delivered",
                        pct_range(&s.delivered_fraction),
                        thousands(c.expected())
                    )
                } else {
                    format!(
                        "{name}: {} of {} delivered",
                        pct(c.plateau()),
                        thousands(c.expected())
                    )
                };
                if !never.is_empty() && c.expected() > 0 {
                    let what = if spread.is_some() {
                        "median never"
                    } else {
                        "never"
                    };
                    text.push_str(&format!(" ({what} {})", never.join(", ")));
                }
                LegendEntry {
                    sample: Sample::Series(i),
                    text,
                }
            })
            .collect();
        for (j, (i, c)) in self.covered.iter().enumerate() {
            let covered = self.g.runs[*i].covered[self.kind].len() as u64;
            entries.push(LegendEntry {
                sample: Sample::Series(self.curves.len() + j),
                text: format!(
                    "{}: {} delivered or covered ({} covered by an acknowledged summary, not \
                     delivered)",
                    self.series[*i].label,
                    pct(c.plateau()),
                    thousands(covered)
                ),
            });
        }
        let mut seed_sets: Vec<String> = Vec::new();
        for r in &self.g.runs {
            if let (Some(s), false) = (&r.summary.seeds, r.seed_runs.is_empty()) {
                let d = format!("{} seeds ({})", s.list.len(), s.describe());
                if !seed_sets.contains(&d) {
                    seed_sets.push(d);
                }
            }
        }
        if !seed_sets.is_empty() {
            entries.push(LegendEntry {
                sample: Sample::None,
                text: format!(
                    "line: median of {}; shaded band: their min–max; times: median (min–max)",
                    seed_sets.join(" / ")
                ),
            });
        }
        if self.same_as.iter().any(Option::is_some) {
            entries.push(LegendEntry {
                sample: Sample::None,
                text: "X = Y: identical curves, Y drawn over X; coinciding marks are drawn side \
                       by side"
                    .into(),
            });
        }
        if self.seed.iter().any(|s| !s.is_empty()) {
            entries.push(LegendEntry {
                sample: Sample::Marker(Marker::Cross, style::GREY),
                text: "DP096 reference (CSP modelling), in the run's colour".into(),
            });
        }
        entries.extend(style::deadline_legend(&self.deadlines, ""));
        entries.push(LegendEntry {
            sample: Sample::Line(style::RELIABILITY.0, style::RELIABILITY.1),
            text: format!("{RELIABILITY_PCT}% reliability (DNO, ENA)"),
        });
        entries
    }
}

/// The delivery graph of `kind` for one region's runs.
pub fn delivery(kind: AlertKind, g: &RunGroup) -> Figure {
    let d = Delivery::new(kind, g);
    let kind_name = match kind {
        AlertKind::Poa => "Power Outage Alerts (POA, AD1)",
        AlertKind::Pra => "Power Restoration Alerts (PRA, 8F35/8F36)",
    };
    Figure {
        name: kind.as_str().to_string(),
        title: format!(
            "{} — {kind_name}: delivered / expected, since {}",
            g.region,
            base_of(kind)
        ),
        subtitle: subtitle(g),
        warnings: warnings(g),
        panels: vec![d.panel(true), d.panel(false)],
        legend: Legend {
            entries: d.legend(),
            place: LegendPlace::Inside(0),
        },
        series: d.series,
        arrangement: Arrangement::Rows,
    }
}

/// A tidy upper end for a percentage axis (at least 1%).
pub(crate) fn nice_percent(v: f64) -> f64 {
    let v = v.max(1.0);
    let step = if v <= 2.0 {
        0.5
    } else if v <= 10.0 {
        1.0
    } else if v <= 30.0 {
        5.0
    } else {
        10.0
    };
    ((v / step).ceil() * step).min(100.0)
}

/// The loss graph of one region's runs: loss rate per run stacked by cause, POA and PRA.
pub fn loss(g: &RunGroup) -> Figure {
    let runs = &g.runs;
    let causes: Vec<LossCause> = crate::runs::causes_present(runs);
    let any_pending = runs.iter().any(|r| {
        AlertKind::ALL
            .iter()
            .any(|&k| r.summary.kind(k).pending > 0)
    });
    let max_rate = runs
        .iter()
        .flat_map(|r| AlertKind::ALL.map(|k| r.summary.kind(k).loss_rate))
        .fold(0.0, f64::max)
        * 100.0;
    let y_max = nice_percent(max_rate * 1.3);
    let n = runs.len().max(1) as f64;

    let panels = AlertKind::ALL
        .iter()
        .map(|&kind| {
            let bars = runs
                .iter()
                .zip(&g.labels)
                .enumerate()
                .map(|(i, (r, label))| {
                    let k = r.summary.kind(kind);
                    // Several seeds: each cause's median count.
                    let spread = r.summary.seeds.as_ref().map(|s| s.kind(kind));
                    let lost_to = |c: &LossCause| match spread {
                        Some(s) => s
                            .cause(*c)
                            .and_then(|s| s.median)
                            .map_or(0, |v| v.round() as u64),
                        None => k.loss_by_cause.get(c).copied().unwrap_or(0),
                    };
                    let mut parts: Vec<(crate::figure::Rgb, u64)> = causes
                        .iter()
                        .map(|c| (style::cause_color(*c), lost_to(c)))
                        .collect();
                    if any_pending {
                        parts.push((style::PENDING, k.pending));
                    }
                    let segments = parts
                        .into_iter()
                        .filter(|(_, count)| *count > 0 && k.expected > 0)
                        .map(|(color, count)| {
                            let share = count as f64 / k.expected as f64;
                            Segment {
                                height: share * 100.0,
                                color,
                                label: format!("{}  ({})", pct(share), thousands(count)),
                            }
                        })
                        .collect();
                    let above = if k.expected == 0 {
                        vec!["nothing expected".to_string()]
                    } else if let (Some(s), Some(set)) = (spread, &r.summary.seeds) {
                        let lost = |v: Option<f64>| pct(1.0 - v.unwrap_or(0.0));
                        let d = &s.delivered_fraction;
                        vec![
                            format!("{} lost", lost(d.median)),
                            format!(
                                "range {}–{} over {} seeds",
                                lost(d.max),
                                lost(d.min),
                                set.list.len()
                            ),
                        ]
                    } else {
                        vec![
                            format!("{} lost", pct(k.loss_rate)),
                            format!(
                                "{} of {}",
                                thousands(k.expected - k.delivered),
                                thousands(k.expected)
                            ),
                        ]
                    };
                    Bar {
                        x: i as f64,
                        width: 0.6,
                        segments,
                        above,
                        category: label.clone(),
                    }
                })
                .collect();
            Panel {
                title: Some(match kind {
                    AlertKind::Poa => "POA (AD1), from the power cut".to_string(),
                    AlertKind::Pra => "PRA (8F35/8F36), from the restoration".to_string(),
                }),
                title_is_heading: true,
                x: Axis {
                    title: None,
                    range: (-0.5, n - 0.5),
                    ticks: Vec::new(),
                    minor: Vec::new(),
                },
                y: {
                    // Bars start at 0 and the axis ends on a labelled tick.
                    let mut y = percent_axis("lost / expected", 0.0, y_max, 10.0);
                    if let [.., a, b] = y.ticks.as_slice()
                        && b.at < y_max - 1e-9
                    {
                        let next = b.at + (b.at - a.at);
                        y = percent_axis("lost / expected", 0.0, next, 10.0);
                    }
                    y
                },
                weight: 1.0,
                layers: vec![Layer::Bars(bars)],
            }
        })
        .collect();

    let mut entries: Vec<LegendEntry> = causes
        .iter()
        .map(|c| LegendEntry {
            sample: Sample::Swatch(style::cause_color(*c)),
            text: c.as_str().replace('_', " "),
        })
        .collect();
    if any_pending {
        entries.push(LegendEntry {
            sample: Sample::Swatch(style::PENDING),
            text: "pending (run not finished)".into(),
        });
    }
    if entries.is_empty() {
        entries.push(LegendEntry {
            sample: Sample::None,
            text: "no alert lost in any run".into(),
        });
    }
    if runs.iter().any(|r| r.summary.seeds.is_some()) {
        entries.push(LegendEntry {
            sample: Sample::None,
            text: "several seeds: each cause's median, above the bar the median loss and its \
                   min–max"
                .into(),
        });
    }
    Figure {
        name: "loss".into(),
        title: format!("{} — alerts lost, share of expected, by cause", g.region),
        subtitle: subtitle(g),
        warnings: warnings(g),
        series: Vec::new(),
        panels,
        arrangement: Arrangement::Columns,
        legend: Legend {
            entries,
            place: LegendPlace::Below,
        },
    }
}

/// Every registered graph of one region's runs, named `<prefix><name>`.
pub fn figures(g: &RunGroup, prefix: &str) -> Vec<Figure> {
    GRAPHS
        .iter()
        .filter_map(|d| {
            let mut f = (d.build)(g)?;
            f.name = format!("{prefix}{}", d.name);
            Some(f)
        })
        .collect()
}
