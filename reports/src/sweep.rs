//! A sweep: the same profiles simulated across values of one key (by default the outage's
//! premises), drawn as headline figures against the swept value — time to 50/80/95% and the share
//! delivered, per option, with the SEC/DNO requirement lines — and written as a table.
//!
//! The figures are the ones each run's `summary.json` would hold ([`results::Summary`]); this
//! module only arranges them. It never runs anything.

use crate::error::ReportError;
use crate::figure::{
    Arrangement, Axis, Curve, Figure, Layer, Legend, LegendEntry, LegendPlace, Mark, Panel, Rule,
    RuleAt, Sample, Series, Style, Tick,
};
use crate::format::{mmss, pct, thousands, time_or_never};
use crate::graphs::{percent_axis, step_for};
use crate::requirements::{RELIABILITY_PCT, deadline_lines};
use crate::style;
use crate::tables::Table;
use ledger::{AlertKind, Region};
use results::Summary;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One simulated point of a sweep.
#[derive(Debug, Clone)]
pub struct SweepPoint {
    /// The swept value as a number (the x of the graphs).
    pub x: f64,
    /// The swept value as it was set (`250`, `"90s"`).
    pub text: String,
    /// The run's figures.
    pub summary: Summary,
}

/// One profile across the swept values.
#[derive(Debug, Clone)]
pub struct SweepLine {
    /// The option's name in graphs and tables (`Current`, `Option B + location-aware
    /// (hypothetical)`).
    pub label: String,
    /// The profile's region.
    pub region: Region,
    /// Its points, in the order swept.
    pub points: Vec<SweepPoint>,
}

/// A whole sweep.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The dotted profile key varied (`scenario.premises`).
    pub key: String,
    /// The seed of every run.
    pub seed: u64,
    /// One line per profile.
    pub lines: Vec<SweepLine>,
}

/// The levels drawn, each with its dash (50% solid).
const LEVELS: [(f64, Option<(u32, u32)>); 3] =
    [(50.0, None), (80.0, Some((14, 7))), (95.0, Some((4, 5)))];

impl Sweep {
    /// The regions present, in the order they first appear.
    pub fn regions(&self) -> Vec<Region> {
        let mut out: Vec<Region> = Vec::new();
        for l in &self.lines {
            if !out.contains(&l.region) {
                out.push(l.region);
            }
        }
        out
    }

    fn xs(&self) -> Vec<f64> {
        self.lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.x))
            .collect()
    }

    /// Log-spaced axis when every value is positive and they span more than a factor of 20.
    fn log_x(&self) -> bool {
        let xs = self.xs();
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(0.0, f64::max);
        lo > 0.0 && hi / lo > 20.0
    }
}

/// A number as the axis writes it: `250`, `1,000`, `1M`, `2.5`.
fn axis_number(v: f64) -> String {
    if v >= 1_000_000.0 && (v / 1_000_000.0).fract() == 0.0 {
        format!("{}M", v / 1_000_000.0)
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        thousands(v as u64)
    } else {
        format!("{v}")
    }
}

/// The x axis: log10 of the value (ticks at 1, 2, 5 × 10^n), or linear.
fn x_axis(sweep: &Sweep, title: Option<String>) -> (Axis, bool) {
    let xs = sweep.xs();
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if sweep.log_x() {
        let (a, b) = (lo.log10(), hi.log10());
        let pad = (b - a) * 0.03;
        let mut ticks = Vec::new();
        let mut minor = Vec::new();
        for e in (a.floor() as i32)..=(b.ceil() as i32) {
            for m in [1.0, 2.0, 5.0] {
                let v = m * 10f64.powi(e);
                let at = v.log10();
                if at < a - pad || at > b + pad {
                    continue;
                }
                if m == 1.0 || b - a < 3.5 {
                    ticks.push(Tick {
                        at,
                        label: axis_number(v),
                    });
                } else {
                    minor.push(at);
                }
            }
        }
        let axis = Axis {
            title,
            range: (a - pad, b + pad),
            ticks,
            minor,
        };
        (axis, true)
    } else {
        let span = (hi - lo).max(1e-9);
        let step = step_for(span, 10.0, &nice_steps(span));
        let first = (lo / step).floor() * step;
        let ticks = (0..)
            .map(|i| first + step * f64::from(i))
            .take_while(|v| *v <= hi + step * 0.01)
            .map(|v| Tick {
                at: v,
                label: axis_number((v * 1e6).round() / 1e6),
            })
            .collect();
        let pad = span * 0.03;
        let axis = Axis {
            title,
            range: (lo - pad, hi + pad),
            ticks,
            minor: Vec::new(),
        };
        (axis, false)
    }
}

fn nice_steps(span: f64) -> Vec<f64> {
    let e = span.log10().floor() as i32;
    (e - 2..=e + 1)
        .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)))
        .collect()
}

/// A time axis in minutes from 0 to `max_min`, ticks m:ss.
fn time_axis(title: &str, max_min: f64) -> Axis {
    let step = step_for(max_min, 8.0, &[0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0]);
    let n = (max_min / step).ceil() as i32;
    Axis {
        title: Some(title.to_string()),
        range: (0.0, step * f64::from(n)),
        ticks: (0..=n)
            .map(|i| Tick {
                at: step * f64::from(i),
                label: mmss(step * f64::from(i) * 60.0),
            })
            .collect(),
        minor: Vec::new(),
    }
}

/// Splits `(x, Option<y>)` into runs of consecutive defined points (a level never reached breaks
/// the line rather than bridging it).
fn pieces(pts: &[(f64, Option<f64>)]) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for &(x, y) in pts {
        match y {
            Some(y) => out.last_mut().map_or((), |v| v.push((x, y))),
            None => out.push(Vec::new()),
        }
    }
    out.retain(|v| !v.is_empty());
    out
}

/// The sweep graph of one region: per alert kind, time to 50/80/95% and the share delivered
/// against the swept value, one colour per option.
pub fn sweep_figure(sweep: &Sweep, region: Region) -> Figure {
    let lines: Vec<&SweepLine> = sweep.lines.iter().filter(|l| l.region == region).collect();
    let (x_proto, log) = x_axis(sweep, None);
    let xv = |x: f64| if log { x.log10() } else { x };
    // Series: option × level (colour by option, dash by level).
    let mut series = Vec::new();
    for (oi, l) in lines.iter().enumerate() {
        for (p, dash) in LEVELS {
            series.push(Series {
                label: format!("{}: {p:.0}%", l.label),
                style: Style {
                    color: style::series_style(oi).color,
                    dash,
                    marker: style::series_style(oi).marker,
                },
            });
        }
    }
    let share_series = |oi: usize| oi * LEVELS.len();
    let mut panels = Vec::new();
    for kind in AlertKind::ALL {
        let times: Vec<f64> = lines
            .iter()
            .flat_map(|l| l.points.iter())
            .flat_map(|p| LEVELS.map(|(lv, _)| p.summary.kind(kind).time_to(lv)))
            .flatten()
            .collect();
        let deadlines = deadline_lines(kind);
        let t_max = times
            .iter()
            .copied()
            .chain(deadlines.iter().map(|d| d.0 as f64))
            .fold(60.0, f64::max)
            / 60.0
            * 1.08;
        let mut layers = style::deadline_rules(&deadlines, RuleAt::Y, false);
        let mut marks = Vec::new();
        for (oi, l) in lines.iter().enumerate() {
            for (li, (lv, _)) in LEVELS.iter().enumerate() {
                let pts: Vec<(f64, Option<f64>)> = l
                    .points
                    .iter()
                    .map(|p| (xv(p.x), p.summary.kind(kind).time_to(*lv).map(|s| s / 60.0)))
                    .collect();
                let s = oi * LEVELS.len() + li;
                for piece in pieces(&pts) {
                    for &at in &piece {
                        marks.push(Mark {
                            series: s,
                            at,
                            marker: style::series_style(oi).marker,
                            nudge_px: 0,
                            label: None,
                        });
                    }
                    layers.push(Layer::Curve(Curve {
                        series: s,
                        points: piece,
                    }));
                }
            }
        }
        layers.push(Layer::Marks(marks));
        let mut x = x_proto.clone();
        x.title = None;
        panels.push(Panel {
            title: Some(format!(
                "{kind}: time to 50% (solid), 80% (dashed), 95% (dotted) of expected delivered; \
                 a missing point: never reached"
            )),
            title_is_heading: true,
            x,
            y: time_axis("m:ss from the base", t_max),
            weight: 1.3,
            layers,
        });
    }
    for kind in AlertKind::ALL {
        let shares: Vec<f64> = lines
            .iter()
            .flat_map(|l| l.points.iter())
            .map(|p| p.summary.kind(kind).delivered_fraction * 100.0)
            .collect();
        let lo = shares.iter().copied().fold(100.0, f64::min);
        let floor = if lo >= 90.0 {
            (lo - 1.0).floor().min(99.0)
        } else {
            ((lo - 5.0) / 10.0).floor().max(0.0) * 10.0
        };
        let mut layers = vec![Layer::Rule(Rule {
            at: RuleAt::Y(RELIABILITY_PCT),
            color: style::RELIABILITY.0,
            dash: style::RELIABILITY.1,
            label: None,
        })];
        let mut marks = Vec::new();
        for (oi, l) in lines.iter().enumerate() {
            let pts: Vec<(f64, f64)> = l
                .points
                .iter()
                .map(|p| (xv(p.x), p.summary.kind(kind).delivered_fraction * 100.0))
                .collect();
            for &at in &pts {
                marks.push(Mark {
                    series: share_series(oi),
                    at,
                    marker: style::series_style(oi).marker,
                    nudge_px: 0,
                    label: None,
                });
            }
            layers.push(Layer::Curve(Curve {
                series: share_series(oi),
                points: pts,
            }));
        }
        layers.push(Layer::Marks(marks));
        let mut x = x_proto.clone();
        x.title = (kind == AlertKind::Pra)
            .then(|| format!("{}{}", sweep.key, if log { " (log scale)" } else { "" }));
        panels.push(Panel {
            title: Some(format!("{kind}: delivered / expected")),
            title_is_heading: true,
            x,
            y: percent_axis("delivered", floor, 100.5, 5.0),
            weight: 1.0,
            layers,
        });
    }
    let mut entries: Vec<LegendEntry> = lines
        .iter()
        .enumerate()
        .map(|(oi, l)| LegendEntry {
            sample: Sample::Series(share_series(oi)),
            text: l.label.clone(),
        })
        .collect();
    for kind in AlertKind::ALL {
        entries.extend(style::deadline_legend(
            &deadline_lines(kind),
            &format!("{kind} "),
        ));
    }
    entries.push(LegendEntry {
        sample: Sample::Line(style::RELIABILITY.0, style::RELIABILITY.1),
        text: format!("{RELIABILITY_PCT}% reliability"),
    });
    let seeds = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.summary.meta.seed))
        .collect::<std::collections::BTreeSet<u64>>();
    let mut subtitle = vec![
        format!(
            "{} swept over {} values",
            sweep.key,
            sweep_values(sweep).len()
        ),
        "virtual time (simulate)".to_string(),
        format!(
            "seed {}",
            seeds
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ];
    subtitle.push(format!(
        "options: {}",
        lines
            .iter()
            .map(|l| l.label.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut warnings = Vec::new();
    if lines.iter().any(|l| l.label.contains("hypothetical")) {
        warnings.push(
            "HYPOTHETICAL: options marked (hypothetical) are not in DP096 (illustrative \
             parameters)"
                .to_string(),
        );
    }
    Figure {
        name: format!("{}-sweep", region.as_str()),
        title: format!(
            "{} — headline figures against {}",
            region.title(),
            sweep.key
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

/// The swept values in the order first swept (their text).
fn sweep_values(sweep: &Sweep) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in &sweep.lines {
        for p in &l.points {
            if !out.contains(&p.text) {
                out.push(p.text.clone());
            }
        }
    }
    out
}

/// Every point: region, option, value, and per kind the share delivered and time to 50/80/95%.
pub fn sweep_table(sweep: &Sweep) -> Table {
    let mut head: Vec<String> = vec!["region".into(), "option".into(), sweep.key.clone()];
    for kind in AlertKind::ALL {
        head.push(format!("{kind} delivered"));
        for (lv, _) in LEVELS {
            head.push(format!("{kind} {lv:.0}%"));
        }
        head.push(format!("{kind} lost, by cause"));
    }
    let mut t = Table::new(
        format!(
            "Sweep of {} (m:ss from the power cut / restoration)",
            sweep.key
        ),
        head,
    );
    for l in &sweep.lines {
        for p in &l.points {
            let mut row = vec![
                l.region.title().to_string(),
                l.label.clone(),
                p.text.clone(),
            ];
            for kind in AlertKind::ALL {
                let k = p.summary.kind(kind);
                row.push(pct(k.delivered_fraction));
                for (lv, _) in LEVELS {
                    row.push(time_or_never(k.time_to(lv)));
                }
                let causes: Vec<String> = k
                    .loss_by_cause
                    .iter()
                    .map(|(c, n)| format!("{c} {n}"))
                    .collect();
                row.push(if causes.is_empty() {
                    "-".into()
                } else {
                    causes.join(", ")
                });
            }
            t.rows.push(row);
        }
    }
    t
}

/// A requirement a point meets or not.
type Check = fn(&Summary) -> bool;

/// Per option: up to which swept value each requirement is met at every value up to it (the
/// largest value before the first that fails).
pub fn answers_table(sweep: &Sweep) -> Table {
    let checks: [(&str, Check); 4] = [
        ("POA 95% within 5:00 (DNO)", |s| {
            s.alerts.poa.time_to(95.0).is_some_and(|t| t <= 300.0)
        }),
        ("POA 50% within 4:00 (SEC H3.14(g))", |s| {
            s.alerts.poa.time_to(50.0).is_some_and(|t| t <= 240.0)
        }),
        ("PRA 95% within 1:00 (DNO)", |s| {
            s.alerts.pra.time_to(95.0).is_some_and(|t| t <= 60.0)
        }),
        ("POA delivered ≥ 99.5%", |s| {
            s.alerts.poa.delivered_fraction * 100.0 >= RELIABILITY_PCT
        }),
    ];
    let mut head = vec!["region".to_string(), "option".to_string()];
    head.extend(checks.iter().map(|(n, _)| (*n).to_string()));
    let mut t = Table::new(
        format!("Up to which {} each requirement is met", sweep.key),
        head,
    );
    t.intro = Some(format!(
        "The largest swept value of `{}` up to which the requirement holds at every swept value \
         (\"none\": not even at the smallest; \"all\": at every value swept). Values between the \
         swept ones were not run.",
        sweep.key
    ));
    for l in &sweep.lines {
        let mut row = vec![l.region.title().to_string(), l.label.clone()];
        for (_, ok) in &checks {
            let upto = l.points.iter().take_while(|p| ok(&p.summary)).count();
            row.push(match upto {
                0 => "none".into(),
                n if n == l.points.len() => format!("all (≥ {})", l.points[n - 1].text),
                n => format!("{} (fails at {})", l.points[n - 1].text, l.points[n].text),
            });
        }
        t.rows.push(row);
    }
    t
}

/// `sweep.csv`: one line per point, the figures of the table as numbers (seconds, fractions).
fn sweep_csv(sweep: &Sweep) -> String {
    let mut s = String::from("region,option,key,value");
    for kind in AlertKind::ALL {
        let _ = write!(
            s,
            ",{k}_expected,{k}_delivered,{k}_delivered_fraction,{k}_50_s,{k}_80_s,{k}_95_s",
            k = kind.as_str()
        );
    }
    s.push('\n');
    let q = |t: &str| {
        if t.contains([',', '"']) {
            format!("\"{}\"", t.replace('"', "\"\""))
        } else {
            t.to_string()
        }
    };
    for l in &sweep.lines {
        for p in &l.points {
            let _ = write!(
                s,
                "{},{},{},{}",
                l.region.as_str(),
                q(&l.label),
                q(&sweep.key),
                q(&p.text)
            );
            for kind in AlertKind::ALL {
                let k = p.summary.kind(kind);
                let t = |lv: f64| k.time_to(lv).map_or(String::new(), |v| format!("{v}"));
                let _ = write!(
                    s,
                    ",{},{},{},{},{},{}",
                    k.expected,
                    k.delivered,
                    k.delivered_fraction,
                    t(50.0),
                    t(80.0),
                    t(95.0)
                );
            }
            s.push('\n');
        }
    }
    s
}

/// Writes `<region>-sweep.png` and `.svg` per region, `sweep.md` and `sweep.csv` into `dir`.
pub fn write_sweep(sweep: &Sweep, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|e| ReportError::io(dir, e))?;
    let mut written = Vec::new();
    for region in sweep.regions() {
        written.extend(crate::compare::write_figure(
            &sweep_figure(sweep, region),
            dir,
        )?);
    }
    let md = dir.join("sweep.md");
    let mut text = format!(
        "# Sweep of `{}`\n\nEvery point is `csp-harness simulate` of the profile with `{}` set to \
         the value (after `extends` and the changes), seed {}. Graphs: {}.\n",
        sweep.key,
        sweep.key,
        sweep.seed,
        sweep
            .regions()
            .iter()
            .map(|r| format!("`{}-sweep.png`", r.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    text.push_str(&answers_table(sweep).markdown());
    text.push_str(&sweep_table(sweep).markdown());
    crate::compare::write_text(&md, &text)?;
    written.push(md);
    let csv = dir.join("sweep.csv");
    crate::compare::write_text(&csv, &sweep_csv(sweep))?;
    written.push(csv);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_never_reached_level_breaks_the_line() {
        let p = pieces(&[
            (1.0, Some(1.0)),
            (2.0, None),
            (3.0, Some(2.0)),
            (4.0, Some(3.0)),
        ]);
        assert_eq!(p, vec![vec![(1.0, 1.0)], vec![(3.0, 2.0), (4.0, 3.0)]]);
    }

    #[test]
    fn axis_numbers_read_well() {
        assert_eq!(axis_number(250.0), "250");
        assert_eq!(axis_number(10_000.0), "10,000");
        assert_eq!(axis_number(1_000_000.0), "1M");
        assert_eq!(axis_number(2.5), "2.5");
    }
}
