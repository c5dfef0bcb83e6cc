//! A sensitivity study: each calibrated parameter of a profile run at, say, 80% and 120% of its
//! value, and for each headline figure (POA time to 50% and 95%, POA delivered, PRA time to 50%
//! and 95%) a tornado chart — one row per parameter, largest swing on top, bars from the base
//! figure to the figure at the lower and at the higher value — and a table.
//!
//! It shows which guesses a conclusion rests on. The figures are the runs' own
//! ([`results::Summary`]); this module only arranges them and never runs anything.

use crate::error::ReportError;
use crate::figure::{
    Arrangement, Axis, Figure, Layer, Legend, LegendEntry, LegendPlace, Panel, Rgb, Rule, RuleAt,
    Sample, Span, Tick,
};
use crate::format::{mmss, pct};
use crate::graphs::step_for;
use crate::style;
use crate::tables::Table;
use ledger::{AlertKind, Region};
use results::Summary;
use std::path::{Path, PathBuf};

/// A headline figure of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Headline {
    /// In file names: `poa-95`.
    pub id: &'static str,
    /// In titles: `POA time to 95%`.
    pub title: &'static str,
    kind: AlertKind,
    /// `Some(p)`: time to p% (minutes); `None`: the share delivered (percent).
    level: Option<f64>,
}

/// The headline figures, each with its tornado.
pub const HEADLINES: [Headline; 5] = [
    Headline {
        id: "poa-50",
        title: "POA time to 50%",
        kind: AlertKind::Poa,
        level: Some(50.0),
    },
    Headline {
        id: "poa-95",
        title: "POA time to 95%",
        kind: AlertKind::Poa,
        level: Some(95.0),
    },
    Headline {
        id: "poa-delivered",
        title: "POA delivered (plateau)",
        kind: AlertKind::Poa,
        level: None,
    },
    Headline {
        id: "pra-50",
        title: "PRA time to 50%",
        kind: AlertKind::Pra,
        level: Some(50.0),
    },
    Headline {
        id: "pra-95",
        title: "PRA time to 95%",
        kind: AlertKind::Pra,
        level: Some(95.0),
    },
];

impl Headline {
    /// The figure: minutes to the level (`None`: never reached), or percent delivered.
    pub fn value(&self, s: &Summary) -> Option<f64> {
        let k = s.kind(self.kind);
        match self.level {
            Some(p) => k.time_to(p).map(|t| t / 60.0),
            None => Some(k.delivered_fraction * 100.0),
        }
    }

    /// The figure as tables write it.
    pub fn text(&self, v: Option<f64>) -> String {
        match (self.level, v) {
            (_, None) => "never".into(),
            (Some(_), Some(m)) => mmss(m * 60.0),
            (None, Some(p)) => pct(p / 100.0),
        }
    }
}

/// One parameter run at its lower and its higher value.
#[derive(Debug, Clone)]
pub struct Perturbed {
    /// Dotted key in the resolved profile.
    pub key: String,
    /// Where its value and `[cal]` tag are written (`profiles/north/current.toml:52`).
    pub place: String,
    /// Its value, as written.
    pub base_text: String,
    /// The lower value run.
    pub low_text: String,
    /// The higher value run.
    pub high_text: String,
    /// The figures at the lower value.
    pub low: Summary,
    /// The figures at the higher value.
    pub high: Summary,
}

/// A whole study of one profile.
#[derive(Debug, Clone)]
pub struct Sensitivity {
    /// Names the profile in titles and files (`north-current`).
    pub name: String,
    /// The option, as graphs name it.
    pub label: String,
    /// The region.
    pub region: Region,
    /// The perturbation, percent.
    pub by_pct: f64,
    /// The source tag the parameters carry (`cal`).
    pub tag: String,
    /// The unperturbed run.
    pub base: Summary,
    /// The parameters run.
    pub params: Vec<Perturbed>,
    /// Tagged parameters not run, with why (e.g. an integer of 1 that ±20% rounds back to 1).
    pub skipped: Vec<(String, String)>,
}

/// The swing of a parameter on a headline: |high − low|, with "never" counted as the largest.
fn swing(h: &Headline, p: &Perturbed, never: f64) -> f64 {
    let v = |s: &Summary| h.value(s).unwrap_or(never);
    (v(&p.high) - v(&p.low)).abs()
}

/// The order of the rows: largest swing first (then by key, so ties are stable).
fn order(s: &Sensitivity, h: &Headline, never: f64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..s.params.len()).collect();
    idx.sort_by(|&a, &b| {
        swing(h, &s.params[b], never)
            .total_cmp(&swing(h, &s.params[a], never))
            .then_with(|| s.params[a].key.cmp(&s.params[b].key))
    });
    idx
}

const LOW: Rgb = Rgb(0, 114, 178);
const HIGH: Rgb = Rgb(213, 94, 0);

/// The tornado chart of one headline figure.
pub fn tornado(s: &Sensitivity, h: &Headline) -> Figure {
    let base = h.value(&s.base);
    let values: Vec<f64> = s
        .params
        .iter()
        .flat_map(|p| [h.value(&p.low), h.value(&p.high)])
        .chain([base])
        .flatten()
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let span = (hi - lo).max(if h.level.is_some() { 0.5 } else { 0.2 });
    // Room for the end labels on both sides, and for "never" beyond the largest figure.
    let (x0, x1) = (lo - span * 0.25, hi + span * 0.35);
    let never = hi + span * 0.2;
    let rows = order(s, h, never);
    let n = rows.len();
    let base_x = base.unwrap_or(never);
    let mut spans = Vec::new();
    for (row, &i) in rows.iter().enumerate() {
        let p = &s.params[i];
        let y = (n - 1 - row) as f64;
        for (j, (sum, text, color)) in [(&p.low, &p.low_text, LOW), (&p.high, &p.high_text, HIGH)]
            .into_iter()
            .enumerate()
        {
            let v = h.value(sum);
            // Low value below, high value above, the name over both.
            spans.push(Span {
                y: y - 0.25 + 0.3 * j as f64,
                height: 0.28,
                x0: base_x,
                x1: v.unwrap_or(never),
                color,
                end_label: format!("{} at {text}", h.text(v)),
                name: (j == 1).then(|| format!("{} = {} ({})", p.key, p.base_text, p.place)),
            });
        }
    }
    let x_axis = if h.level.is_some() {
        let step = step_for(x1 - x0, 10.0, &[0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0]);
        let first = (x0 / step).ceil() * step;
        Axis {
            title: Some(format!("{} (m:ss)", h.title)),
            range: (x0, x1),
            ticks: (0..)
                .map(|i| first + step * f64::from(i))
                .take_while(|v| *v <= x1)
                .filter(|v| *v >= 0.0)
                .map(|v| Tick {
                    at: v,
                    label: mmss(v * 60.0),
                })
                .collect(),
            minor: Vec::new(),
        }
    } else {
        let step = step_for(x1 - x0, 10.0, &[0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]);
        let first = (x0 / step).ceil() * step;
        Axis {
            title: Some(format!("{} (% of expected)", h.title)),
            range: (x0, x1),
            ticks: (0..)
                .map(|i| first + step * f64::from(i))
                .take_while(|v| *v <= x1)
                .map(|v| Tick {
                    at: v,
                    label: format!("{v:.1}%"),
                })
                .collect(),
            minor: Vec::new(),
        }
    };
    let y_axis = Axis {
        title: None,
        range: (-0.6, n as f64 - 0.4),
        ticks: Vec::new(),
        minor: Vec::new(),
    };
    let panel = Panel {
        title: Some(format!(
            "each [{}] parameter at {:.0}% and {:.0}% of its value, the rest unchanged; largest \
             swing on top",
            s.tag,
            100.0 - s.by_pct,
            100.0 + s.by_pct
        )),
        title_is_heading: false,
        x: x_axis,
        y: y_axis,
        weight: 1.0,
        layers: vec![
            Layer::Rule(Rule {
                at: RuleAt::X(base_x),
                color: style::BLACK,
                dash: (6, 3),
                label: None,
            }),
            Layer::Spans(spans),
        ],
    };
    let entries = vec![
        LegendEntry {
            sample: Sample::Swatch(LOW),
            text: format!("parameter at {:.0}%", 100.0 - s.by_pct),
        },
        LegendEntry {
            sample: Sample::Swatch(HIGH),
            text: format!("parameter at {:.0}%", 100.0 + s.by_pct),
        },
        LegendEntry {
            sample: Sample::Line(style::BLACK, (6, 3)),
            text: format!("as calibrated: {}", h.text(base)),
        },
    ];
    let mut subtitle = vec![
        format!(
            "{} premises",
            crate::format::thousands(u64::from(s.base.meta.hubs))
        ),
        "virtual time (simulate)".into(),
        format!("seed {}", s.base.meta.seed),
        format!("{} runs", 1 + 2 * s.params.len()),
    ];
    if !s.skipped.is_empty() {
        subtitle.push(format!(
            "not perturbed: {}",
            s.skipped
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Figure {
        name: format!("{}-tornado-{}", s.name, h.id),
        title: format!(
            "{} {} — sensitivity of {} to the calibrated guesses",
            s.region.title(),
            s.label,
            h.title
        ),
        subtitle,
        warnings: Vec::new(),
        series: Vec::new(),
        panels: vec![panel],
        arrangement: Arrangement::Rows,
        legend: Legend {
            entries,
            place: LegendPlace::Below,
        },
    }
}

/// Per parameter: its place, the values run, and each headline figure at the lower / higher
/// value (rows in the order of the largest swing of the first headline given).
pub fn sensitivity_table(s: &Sensitivity, headlines: &[Headline]) -> Table {
    let mut head = vec!["parameter".to_string(), "values run".to_string()];
    head.extend(
        headlines
            .iter()
            .map(|h| format!("{} (low / high)", h.title)),
    );
    let base_row: Vec<String> = headlines.iter().map(|h| h.text(h.value(&s.base))).collect();
    let mut t = Table::new(
        format!(
            "{} {}: each [{}] parameter at {:.0}% / {:.0}% (as calibrated: {})",
            s.region.title(),
            s.label,
            s.tag,
            100.0 - s.by_pct,
            100.0 + s.by_pct,
            headlines
                .iter()
                .zip(&base_row)
                .map(|(h, v)| format!("{} {v}", h.title))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        head,
    );
    let first = headlines.first().copied().unwrap_or(HEADLINES[0]);
    for i in order(s, &first, 1e9) {
        let p = &s.params[i];
        let mut row = vec![
            format!("`{}` ({})", p.key, p.place),
            format!("{} → {} / {}", p.base_text, p.low_text, p.high_text),
        ];
        for h in headlines {
            row.push(format!(
                "{} / {}",
                h.text(h.value(&p.low)),
                h.text(h.value(&p.high))
            ));
        }
        t.rows.push(row);
    }
    for (k, why) in &s.skipped {
        t.notes.push(format!("`{k}` not perturbed: {why}"));
    }
    t
}

/// Writes every tornado (PNG and SVG) and `sensitivity.md` into `dir`.
pub fn write_sensitivity(studies: &[Sensitivity], dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|e| ReportError::io(dir, e))?;
    let mut written = Vec::new();
    let mut md = String::from(
        "# Sensitivity to the calibrated parameters\n\nEach parameter whose line comment carries \
         the tag is run at the lower and the higher value, every other parameter as calibrated \
         (`csp-harness simulate`, same seed). Tornado charts: `<profile>-tornado-<figure>.png`.\n",
    );
    for s in studies {
        for h in &HEADLINES {
            written.extend(crate::compare::write_figure(&tornado(s, h), dir)?);
        }
        md.push_str(&sensitivity_table(s, &HEADLINES).markdown());
    }
    let path = dir.join("sensitivity.md");
    crate::compare::write_text(&path, &md)?;
    written.push(path);
    Ok(written)
}
