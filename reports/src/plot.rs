//! The PNG graphs (plotters, bitmap backend, embedded DejaVu Sans), 1600×1000.
//!
//! * [`delivery_png`]: one region and alert kind; delivered / expected against minutes since the
//!   power cut (POA) or restoration (PRA), one line per run. Curves flatten below 100% where
//!   alerts are lost (never normalised); the 50/80/95/99% points are marked and timed; the
//!   SEC/DNO deadlines and the 99.5% reliability level are drawn and named in the legend; where
//!   the DP096 seed table applies its points are drawn as crosses. A second panel zooms on the top
//!   of the curve, where the requirements bite.
//! * [`loss_png`]: loss rate (share of expected alerts never delivered) per run, stacked by cause,
//!   POA and PRA side by side, figures printed on the bars.
//!
//! Both draw any number of runs of one region with one mechanism; runs keep their colour, dash and
//! marker by option (Current / Option A / Option B) across every graph.

use crate::calibration;
use crate::error::ReportError;
use crate::fonts::{self, FAMILY};
use crate::requirements::{self, RELIABILITY_PCT};
use crate::results::LoadedRun;
use ledger::{AlertKind, LossCause, Region};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Width of every PNG, pixels.
pub const WIDTH: u32 = 1600;
/// Height of every PNG, pixels.
pub const HEIGHT: u32 = 1000;

/// The levels marked on each curve, percent of expected.
pub const MARKED_LEVELS: [f64; 4] = [50.0, 80.0, 95.0, 99.0];

/// Okabe-Ito colours (distinguishable with the common colour-vision deficiencies).
const PALETTE: [RGBColor; 7] = [
    RGBColor(213, 94, 0),    // vermillion: Current
    RGBColor(0, 114, 178),   // blue: Option A
    RGBColor(0, 158, 115),   // bluish green: Option B
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
];

/// Dash (length, gap) per style; `None` is a solid line.
const DASHES: [Option<(u32, u32)>; 7] = [
    None,
    Some((16, 8)),
    Some((5, 5)),
    Some((24, 6)),
    Some((10, 4)),
    Some((3, 8)),
    Some((30, 10)),
];

#[derive(Debug, Clone, Copy)]
enum Marker {
    Circle,
    Triangle,
    Square,
    Diamond,
    Cross,
}

const MARKERS: [Marker; 5] = [
    Marker::Circle,
    Marker::Triangle,
    Marker::Square,
    Marker::Diamond,
    Marker::Cross,
];

/// How one run is drawn.
#[derive(Debug, Clone, Copy)]
struct RunStyle {
    color: RGBColor,
    dash: Option<(u32, u32)>,
    marker: Marker,
}

fn run_style(i: usize) -> RunStyle {
    RunStyle {
        color: PALETTE[i % PALETTE.len()],
        dash: DASHES[i % DASHES.len()],
        marker: MARKERS[i % MARKERS.len()],
    }
}

/// Style slots: Current, Option A and Option B always get slots 0, 1, 2 (so a colour means the
/// same option on every graph); other runs and repeats take the next free slots.
fn style_slots(runs: &[&LoadedRun]) -> Vec<usize> {
    let mut taken = [false; 3];
    let mut next = 3;
    runs.iter()
        .map(
            |r| match calibration::option_index(&r.summary.meta.option_label) {
                Some(i) if !taken[i] => {
                    taken[i] = true;
                    i
                }
                _ => {
                    next += 1;
                    next - 1
                }
            },
        )
        .collect()
}

/// Names for the runs on legends and tables: the option, with the seed (and then a number) added
/// only where two runs would otherwise share a name.
pub fn run_labels(runs: &[&LoadedRun]) -> Vec<String> {
    let base: Vec<String> = runs
        .iter()
        .map(|r| {
            let m = &r.summary.meta;
            if calibration::option_index(&m.option_label).is_none() && !m.changes.is_empty() {
                format!("{} (changes {})", m.option_name(), m.changes.join(","))
            } else {
                m.option_name()
            }
        })
        .collect();
    let mut out: Vec<String> = base
        .iter()
        .zip(runs)
        .map(|(b, r)| {
            if base.iter().filter(|x| *x == b).count() > 1 {
                format!("{b}, seed {}", r.summary.meta.seed)
            } else {
                b.clone()
            }
        })
        .collect();
    let snapshot = out.clone();
    for (i, l) in out.iter_mut().enumerate() {
        if snapshot.iter().filter(|x| *x == l).count() > 1 {
            l.push_str(&format!(" #{}", i + 1));
        }
    }
    out
}

fn font(size: f64) -> TextStyle<'static> {
    TextStyle::from(FontDesc::new(
        FontFamily::Name(FAMILY),
        size,
        FontStyle::Normal,
    ))
}

fn bold(size: f64) -> TextStyle<'static> {
    TextStyle::from(FontDesc::new(
        FontFamily::Name(FAMILY),
        size,
        FontStyle::Bold,
    ))
}

const GREY: RGBColor = RGBColor(90, 90, 90);
const LIGHT: RGBColor = RGBColor(236, 236, 236);
const MID: RGBColor = RGBColor(200, 200, 200);
const RELIABILITY_COLOR: RGBColor = RGBColor(170, 0, 40);
const DEADLINE_COLORS: [RGBColor; 3] = [
    RGBColor(40, 40, 40),
    RGBColor(120, 80, 160),
    RGBColor(120, 120, 120),
];
const DEADLINE_DASHES: [(u32, u32); 3] = [(12, 6), (4, 4), (20, 4)];

/// "m:ss" from seconds.
pub fn mmss(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

/// "seed 42" or "seeds 1, 2": distinct values, plural only when there are several.
fn plural_list<T: ToString + PartialEq>(name: &str, plural: &str, values: Vec<T>) -> String {
    let mut uniq: Vec<T> = Vec::new();
    for v in values {
        if !uniq.contains(&v) {
            uniq.push(v);
        }
    }
    let joined: Vec<String> = uniq.iter().map(ToString::to_string).collect();
    let name = if uniq.len() > 1 { plural } else { name };
    format!("{name} {}", joined.join(", "))
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The subtitle shared by the graphs: scenario size, time scale, seed and mode of the runs.
fn scenario_line(runs: &[&LoadedRun]) -> String {
    let premises = plural_list(
        "",
        "",
        runs.iter()
            .map(|r| thousands(u64::from(r.summary.meta.hubs)))
            .collect(),
    );
    let scale = plural_list(
        "time scale",
        "time scales",
        runs.iter()
            .map(|r| format!("{}×", r.summary.meta.time_scale))
            .collect(),
    );
    let seed = plural_list(
        "seed",
        "seeds",
        runs.iter().map(|r| r.summary.meta.seed).collect(),
    );
    let mode = plural_list(
        "mode",
        "modes",
        runs.iter().map(|r| r.summary.meta.mode.clone()).collect(),
    );
    let incomplete = if runs.iter().any(|r| !r.summary.meta.complete) {
        "  ·  INCOMPLETE RUN"
    } else {
        ""
    };
    format!(
        "{} premises  ·  {scale}  ·  {seed}  ·  {mode}{incomplete}",
        premises.trim()
    )
}

fn err<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> ReportError + '_ {
    move |e| ReportError::plot(path, e)
}

/// A pixel rectangle (x0, y0, x1, y1).
type Rect = (i32, i32, i32, i32);

fn overlaps(a: Rect, b: Rect) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

/// Places small labels next to anchor points without overlapping each other, the markers or the
/// legend, and inside the plot area.
struct Placer {
    area: Rect,
    taken: Vec<Rect>,
}

impl Placer {
    fn place(&mut self, anchor: (i32, i32), size: (i32, i32)) -> (i32, i32) {
        let (w, h) = (size.0 + 8, size.1 + 4);
        let mut candidates = Vec::new();
        for dy in [0, -22, 22, -44, 44, -66, 66, -88, 88] {
            let y = anchor.1 - h / 2 + dy;
            candidates.push((anchor.0 + 10, y));
            candidates.push((anchor.0 - 10 - w, y));
        }
        let fits = |&(x, y): &(i32, i32)| {
            let r = (x, y, x + w, y + h);
            r.0 >= self.area.0
                && r.2 <= self.area.2
                && r.1 >= self.area.1
                && r.3 <= self.area.3
                && !self.taken.iter().any(|t| overlaps(*t, r))
        };
        let pos = candidates
            .iter()
            .copied()
            .find(fits)
            .unwrap_or(candidates[0]);
        self.taken.push((pos.0, pos.1, pos.0 + w, pos.1 + h));
        pos
    }
}

/// A label waiting to be placed: anchor pixel, text, colour.
struct PendingLabel {
    anchor: (i32, i32),
    text: String,
    color: RGBColor,
}

fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    marker: Marker,
    color: RGBColor,
    size: i32,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let fill = color.filled();
    let edge = WHITE.stroke_width(1);
    let s = size;
    match marker {
        Marker::Circle => {
            area.draw(&Circle::new(at, s, fill))?;
            area.draw(&Circle::new(at, s, edge))
        }
        Marker::Square => {
            area.draw(&Rectangle::new(
                [(at.0 - s, at.1 - s), (at.0 + s, at.1 + s)],
                fill,
            ))?;
            area.draw(&Rectangle::new(
                [(at.0 - s, at.1 - s), (at.0 + s, at.1 + s)],
                edge,
            ))
        }
        Marker::Triangle => {
            let pts = vec![
                (at.0, at.1 - s - 2),
                (at.0 + s + 1, at.1 + s),
                (at.0 - s - 1, at.1 + s),
            ];
            area.draw(&Polygon::new(pts, fill))
        }
        Marker::Diamond => {
            let pts = vec![
                (at.0, at.1 - s - 2),
                (at.0 + s + 2, at.1),
                (at.0, at.1 + s + 2),
                (at.0 - s - 2, at.1),
            ];
            area.draw(&Polygon::new(pts, fill))
        }
        Marker::Cross => {
            let st = color.stroke_width(3);
            area.draw(&PathElement::new(
                vec![(at.0 - s, at.1 - s), (at.0 + s, at.1 + s)],
                st,
            ))?;
            area.draw(&PathElement::new(
                vec![(at.0 - s, at.1 + s), (at.0 + s, at.1 - s)],
                st,
            ))
        }
    }
}

fn draw_line<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    pts: Vec<(i32, i32)>,
    color: RGBColor,
    width: u32,
    dash: Option<(u32, u32)>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let style = color.stroke_width(width);
    match dash {
        None => area.draw(&PathElement::new(pts, style)),
        Some((len, gap)) => {
            for e in DashedLineSeries::new(pts, len as i32, gap as i32, style) {
                area.draw(&e)?;
            }
            Ok(())
        }
    }
}

/// One series of a delivery graph, prepared.
struct CurveSeries {
    label: String,
    style: RunStyle,
    curve: crate::curve::DeliveryCurve,
    /// (level %, seconds) reached.
    marks: Vec<(f64, f64)>,
    /// (level %, seconds) of the seed table, when it applies.
    seed: Vec<(f64, f64)>,
}

/// A white canvas with the graph's heading and the runs' scenario line drawn in its top band;
/// returns the whole canvas and the area below the band.
fn titled_canvas<'a>(
    path: &'a Path,
    heading: &str,
    runs: &[&LoadedRun],
) -> Result<(Canvas<'a>, Canvas<'a>), ReportError> {
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    let e = err(path);
    root.fill(&WHITE).map_err(&e)?;
    let (title, body) = root.split_vertically(96);
    title
        .draw(&Text::new(
            heading.to_string(),
            (30, 14),
            bold(30.0).color(&BLACK),
        ))
        .map_err(&e)?;
    title
        .draw(&Text::new(
            scenario_line(runs),
            (30, 58),
            font(21.0).color(&GREY),
        ))
        .map_err(&e)?;
    Ok((root, body))
}

/// The drawing areas every graph is made of.
type Canvas<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// Draws the delivery curves of `runs` (one region) for `kind` into a PNG at `path`.
pub fn delivery_png(
    path: &Path,
    region: Region,
    kind: AlertKind,
    runs: &[&LoadedRun],
) -> Result<(), ReportError> {
    if !fonts::ensure() {
        return Err(ReportError::plot(path, "the embedded font was refused"));
    }
    let slots = style_slots(runs);
    let labels = run_labels(runs);
    let series: Vec<CurveSeries> = runs
        .iter()
        .zip(&slots)
        .zip(labels)
        .map(|((r, &slot), label)| {
            let curve = r.curve(kind);
            let marks = MARKED_LEVELS
                .iter()
                .filter_map(|&p| curve.time_to_pct(p).map(|ms| (p, ms as f64 / 1000.0)))
                .collect();
            let m = &r.summary.meta;
            let seed = calibration::levels(region, kind)
                .into_iter()
                .filter_map(|p| {
                    calibration::seed_seconds(region, kind, &m.option_label, m.hubs, p)
                        .map(|s| (p, s as f64))
                })
                .collect();
            CurveSeries {
                label,
                style: run_style(slot),
                curve,
                marks,
                seed,
            }
        })
        .collect();

    // x: minutes, to a little past the last delivery, the seed points and the deadlines.
    let deadlines = requirements::deadline_lines(kind);
    let mut last_s: f64 = deadlines
        .iter()
        .map(|d| d.0 as f64 * 1.15)
        .fold(0.0, f64::max);
    for s in &series {
        last_s = last_s.max(s.curve.last_ms().unwrap_or(0) as f64 / 1000.0 * 1.05);
        for &(_, t) in &s.seed {
            last_s = last_s.max(t * 1.05);
        }
    }
    let x_max = nice_minutes(last_s / 60.0);

    let min_plateau = series
        .iter()
        .map(|s| s.curve.plateau() * 100.0)
        .fold(100.0, f64::min);
    // The zoom starts at 90% unless a curve flattens below that; a curve that stays under 50% is
    // left to the main panel (zooming out to it would make the zoom pointless).
    let zoom_floor = if min_plateau >= 91.0 {
        90.0
    } else {
        let f = ((min_plateau - 3.0) / 5.0).floor() * 5.0;
        if f < 50.0 { 90.0 } else { f.min(85.0) }
    };

    let base = match kind {
        AlertKind::Poa => "the power cut",
        AlertKind::Pra => "the restoration",
    };
    let kind_name = match kind {
        AlertKind::Poa => "Power Outage Alerts (POA, AD1)",
        AlertKind::Pra => "Power Restoration Alerts (PRA, 8F35/8F36)",
    };

    let e = err(path);
    let (root, body) = titled_canvas(
        path,
        &format!("{region} — {kind_name}: delivered / expected, since {base}"),
        runs,
    )?;
    let (main_area, zoom_area) = body.split_vertically(560);

    let x_desc = format!("minutes since {base}");
    let mut placed_labels: Vec<PendingLabel> = Vec::new();
    let mut obstacles: Vec<Rect> = Vec::new();
    let mut main_rect: Rect = (0, 0, 0, 0);
    let mut zoom_rect: Rect = (0, 0, 0, 0);
    let mut zoom_labels: Vec<PendingLabel> = Vec::new();

    for (panel, area) in [(0usize, &main_area), (1, &zoom_area)] {
        let (y0, y1) = if panel == 0 {
            (0.0, 101.0)
        } else {
            (zoom_floor, 100.0 + (100.0 - zoom_floor) * 0.05)
        };
        let mut chart = ChartBuilder::on(area)
            .margin_left(20)
            .margin_right(40)
            .margin_top(if panel == 0 { 30 } else { 34 })
            .margin_bottom(6)
            .x_label_area_size(if panel == 0 { 36 } else { 58 })
            .y_label_area_size(96)
            .build_cartesian_2d(0f64..x_max, y0..y1)
            .map_err(&e)?;
        let y_fmt = |v: &f64| {
            if (v - v.round()).abs() < 1e-9 {
                format!("{v:.0}%")
            } else {
                format!("{v:.1}%")
            }
        };
        let x_fmt = |v: &f64| {
            if (v - v.round()).abs() < 1e-9 {
                format!("{v:.0}")
            } else {
                mmss(v * 60.0)
            }
        };
        let mut mesh = chart.configure_mesh();
        mesh.y_label_formatter(&y_fmt)
            .x_label_formatter(&x_fmt)
            .label_style(font(18.0))
            .axis_desc_style(font(20.0))
            .light_line_style(LIGHT)
            .bold_line_style(MID)
            .y_desc(if panel == 0 {
                "delivered / expected"
            } else {
                "delivered (zoom)"
            })
            .x_labels(16)
            .y_labels(if panel == 0 { 11 } else { 6 });
        if panel == 1 {
            mesh.x_desc(x_desc.as_str());
        }
        mesh.draw().map_err(&e)?;

        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let rect = (xr.start, yr.start, xr.end, yr.end);
        if panel == 0 {
            main_rect = rect;
        } else {
            zoom_rect = rect;
            root.draw(&Text::new(
                format!("zoom on {zoom_floor:.0}–100%: where the requirements bite"),
                (rect.0 + 4, rect.1 - 28),
                font(18.0).color(&GREY),
            ))
            .map_err(&e)?;
        }
        let px = |x: f64, y: f64| chart.backend_coord(&(x, y));

        // Requirements: deadlines (vertical, timed above the panel) and 99.5% reliability.
        let mut label_end = i32::MIN;
        for (i, (secs, _)) in deadlines.iter().enumerate() {
            let x = *secs as f64 / 60.0;
            draw_line(
                &root,
                vec![px(x, y0), px(x, y1)],
                DEADLINE_COLORS[i % 3],
                2,
                Some(DEADLINE_DASHES[i % 3]),
            )
            .map_err(&e)?;
            if panel == 0 {
                let top = px(x, y1);
                let text = mmss(*secs as f64);
                let (w, _) = root.estimate_text_size(&text, &bold(16.0)).map_err(&e)?;
                let x0 = (top.0 - w as i32 / 2).max(label_end + 6);
                label_end = x0 + w as i32;
                root.draw(&Text::new(
                    text,
                    (x0, top.1 - 24),
                    bold(16.0).color(&DEADLINE_COLORS[i % 3]),
                ))
                .map_err(&e)?;
            }
        }
        draw_line(
            &root,
            vec![px(0.0, RELIABILITY_PCT), px(x_max, RELIABILITY_PCT)],
            RELIABILITY_COLOR,
            2,
            Some((3, 4)),
        )
        .map_err(&e)?;

        // Curves, sampled at pixel resolution (the step function is exact at that scale).
        let width_px = (xr.end - xr.start).max(1) as usize;
        for s in &series {
            let n = width_px;
            let pts: Vec<(i32, i32)> = (0..=n)
                .map(|i| {
                    let t_min = x_max * i as f64 / n as f64;
                    let f = s.curve.fraction_at((t_min * 60_000.0) as u64) * 100.0;
                    px(t_min, f.max(y0))
                })
                .collect();
            let pts = if panel == 1 {
                clip_to_floor(pts, px(0.0, y0).1)
            } else {
                pts
            };
            let pts = simplify(&pts, 0.6);
            draw_line(&root, pts, s.style.color, 3, s.style.dash).map_err(&e)?;
        }

        // Seed table points (crosses), then the reached levels (markers) and their labels.
        for s in &series {
            for &(p, t) in &s.seed {
                if p >= y0 {
                    let c = px(t / 60.0, p);
                    draw_marker(&root, c, Marker::Cross, s.style.color, 7).map_err(&e)?;
                    obstacles.push((c.0 - 8, c.1 - 8, c.0 + 8, c.1 + 8));
                }
            }
            for &(p, t) in &s.marks {
                if p < y0 {
                    continue;
                }
                let c = px(t / 60.0, p);
                draw_marker(&root, c, s.style.marker, s.style.color, 6).map_err(&e)?;
                obstacles.push((c.0 - 7, c.1 - 7, c.0 + 7, c.1 + 7));
                let label = PendingLabel {
                    anchor: c,
                    text: mmss(t),
                    color: s.style.color,
                };
                // Levels inside the zoom are labelled there; the rest on the main panel.
                match (panel, p >= zoom_floor) {
                    (0, false) => placed_labels.push(label),
                    (1, true) => zoom_labels.push(label),
                    _ => {}
                }
            }
        }
    }

    // Legend (drawn by hand so that labels can avoid it), lower right of the main panel.
    let legend = legend_entries(&series, &deadlines);
    let lf = font(17.0);
    let mut text_w = 0;
    for entry in &legend {
        let (w, _) = root.estimate_text_size(&entry.text, &lf).map_err(&e)?;
        text_w = text_w.max(w as i32);
    }
    let row_h = 25;
    let (lw, lh) = (text_w + 78, legend.len() as i32 * row_h + 14);
    let lx = main_rect.2 - lw - 12;
    let ly = main_rect.3 - lh - 12;
    let legend_rect = (lx, ly, lx + lw, ly + lh);
    root.draw(&Rectangle::new(
        [(lx, ly), (lx + lw, ly + lh)],
        WHITE.mix(0.93).filled(),
    ))
    .map_err(&e)?;
    root.draw(&Rectangle::new(
        [(lx, ly), (lx + lw, ly + lh)],
        MID.stroke_width(1),
    ))
    .map_err(&e)?;
    for (i, entry) in legend.iter().enumerate() {
        let y = ly + 7 + i as i32 * row_h + row_h / 2;
        let (x0, x1) = (lx + 10, lx + 60);
        match entry.sample {
            Sample::Run(st) => {
                draw_line(&root, vec![(x0, y), (x1, y)], st.color, 3, st.dash).map_err(&e)?;
                draw_marker(&root, ((x0 + x1) / 2, y), st.marker, st.color, 6).map_err(&e)?;
            }
            Sample::Seed => {
                draw_marker(&root, ((x0 + x1) / 2, y), Marker::Cross, GREY, 7).map_err(&e)?;
            }
            Sample::Line(c, dash) => {
                draw_line(&root, vec![(x0, y), (x1, y)], c, 2, Some(dash)).map_err(&e)?;
            }
        }
        root.draw(&Text::new(
            entry.text.clone(),
            (x1 + 10, y - 10),
            lf.color(&BLACK),
        ))
        .map_err(&e)?;
    }

    // Time labels at the marked levels, avoiding each other, the markers and the legend.
    for (rect, labels) in [(main_rect, placed_labels), (zoom_rect, zoom_labels)] {
        let mut placer = Placer {
            area: rect,
            taken: obstacles.clone(),
        };
        placer.taken.push(legend_rect);
        let lfont = bold(16.0);
        for l in labels {
            let (w, h) = root.estimate_text_size(&l.text, &lfont).map_err(&e)?;
            let (x, y) = placer.place(l.anchor, (w as i32, h as i32));
            root.draw(&Rectangle::new(
                [(x, y), (x + w as i32 + 8, y + h as i32 + 6)],
                WHITE.mix(0.9).filled(),
            ))
            .map_err(&e)?;
            root.draw(&Rectangle::new(
                [(x, y), (x + w as i32 + 8, y + h as i32 + 6)],
                l.color.stroke_width(1),
            ))
            .map_err(&e)?;
            root.draw(&Text::new(l.text, (x + 4, y + 2), lfont.color(&l.color)))
                .map_err(&e)?;
        }
    }
    root.present().map_err(&e)
}

/// Drops the stretch of a curve that lies on the lower edge of the zoom panel (below its floor)
/// so that curves do not pile up along the axis.
fn clip_to_floor(pts: Vec<(i32, i32)>, floor_y: i32) -> Vec<(i32, i32)> {
    let first_above = pts.iter().position(|p| p.1 < floor_y).unwrap_or(pts.len());
    pts[first_above.saturating_sub(1)..].to_vec()
}

/// Ramer-Douglas-Peucker: drops points closer than `eps` pixels to the line through their
/// neighbours, so a thick stroke is drawn as a few clean segments instead of a hairy zigzag.
fn simplify(pts: &[(i32, i32)], eps: f64) -> Vec<(i32, i32)> {
    if pts.len() < 3 {
        return pts.to_vec();
    }
    let mut keep = vec![false; pts.len()];
    keep[0] = true;
    keep[pts.len() - 1] = true;
    let mut stack = vec![(0usize, pts.len() - 1)];
    while let Some((a, b)) = stack.pop() {
        let (ax, ay) = (f64::from(pts[a].0), f64::from(pts[a].1));
        let (bx, by) = (f64::from(pts[b].0), f64::from(pts[b].1));
        let (dx, dy) = (bx - ax, by - ay);
        let len = (dx * dx + dy * dy).sqrt();
        let mut worst = (0.0, a);
        for (i, p) in pts.iter().enumerate().take(b).skip(a + 1) {
            let (px, py) = (f64::from(p.0), f64::from(p.1));
            let d = if len == 0.0 {
                ((px - ax).powi(2) + (py - ay).powi(2)).sqrt()
            } else {
                ((px - ax) * dy - (py - ay) * dx).abs() / len
            };
            if d > worst.0 {
                worst = (d, i);
            }
        }
        if worst.0 > eps {
            keep[worst.1] = true;
            stack.push((a, worst.1));
            stack.push((worst.1, b));
        }
    }
    pts.iter()
        .zip(keep)
        .filter_map(|(p, k)| k.then_some(*p))
        .collect()
}

enum Sample {
    Run(RunStyle),
    Seed,
    Line(RGBColor, (u32, u32)),
}

struct LegendEntry {
    sample: Sample,
    text: String,
}

fn legend_entries(series: &[CurveSeries], deadlines: &[(u64, String)]) -> Vec<LegendEntry> {
    let mut out = Vec::new();
    for s in series {
        let never: Vec<String> = MARKED_LEVELS
            .iter()
            .filter(|&&p| s.curve.time_to_pct(p).is_none())
            .map(|p| format!("{p:.0}%"))
            .collect();
        let mut text = format!(
            "{}: {:.2}% of {} delivered",
            s.label,
            s.curve.plateau() * 100.0,
            thousands(s.curve.expected())
        );
        if !never.is_empty() {
            text.push_str(&format!(" (never {})", never.join(", ")));
        }
        out.push(LegendEntry {
            sample: Sample::Run(s.style),
            text,
        });
    }
    if series.iter().any(|s| !s.seed.is_empty()) {
        out.push(LegendEntry {
            sample: Sample::Seed,
            text: "DP096 seed table, 30,000 premises (CSP modelling), in the run's colour".into(),
        });
    }
    for (i, (_, label)) in deadlines.iter().enumerate() {
        out.push(LegendEntry {
            sample: Sample::Line(DEADLINE_COLORS[i % 3], DEADLINE_DASHES[i % 3]),
            text: label.clone(),
        });
    }
    out.push(LegendEntry {
        sample: Sample::Line(RELIABILITY_COLOR, (3, 4)),
        text: format!("{RELIABILITY_PCT}% reliability (DNO, ENA)"),
    });
    out
}

/// Rounds a minute range up to a tidy axis end.
fn nice_minutes(m: f64) -> f64 {
    let step = if m <= 10.0 {
        0.5
    } else if m <= 30.0 {
        1.0
    } else {
        5.0
    };
    ((m / step).ceil() * step).max(1.0)
}

fn cause_color(c: LossCause) -> RGBColor {
    match c {
        LossCause::Collision => RGBColor(230, 75, 53),
        LossCause::HoldoverExpired => RGBColor(77, 187, 213),
        LossCause::AttachFailure => RGBColor(0, 160, 135),
        LossCause::QueueOverflow => RGBColor(60, 84, 136),
        LossCause::SendQueueOverflow => RGBColor(243, 155, 127),
        LossCause::EndpointRejected => RGBColor(132, 145, 180),
        LossCause::EndpointUnreachable => RGBColor(145, 209, 194),
        LossCause::NotDeliveredByEnd => RGBColor(126, 97, 72),
    }
}

const PENDING_COLOR: RGBColor = RGBColor(190, 190, 190);

/// Draws the loss rate of `runs` (one region), stacked by cause, POA and PRA side by side.
pub fn loss_png(path: &Path, region: Region, runs: &[&LoadedRun]) -> Result<(), ReportError> {
    if !fonts::ensure() {
        return Err(ReportError::plot(path, "the embedded font was refused"));
    }
    let labels = run_labels(runs);
    let e = err(path);
    let (root, body) = titled_canvas(
        path,
        &format!("{region} — alerts lost, share of expected, by cause"),
        runs,
    )?;
    let (body, legend_area) = body.split_vertically(HEIGHT as i32 - 96 - 70);

    // Causes that occur anywhere, in report order, then "pending" if any run was unfinished.
    let mut causes: Vec<LossCause> = crate::results::causes_present(runs);
    causes.sort();
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

    let panels = body.split_evenly((1, 2));
    for (area, kind) in panels.iter().zip(AlertKind::ALL) {
        let n = runs.len().max(1) as f64;
        let mut chart = ChartBuilder::on(area)
            .margin(20)
            .margin_top(44)
            .x_label_area_size(70)
            .y_label_area_size(90)
            .build_cartesian_2d(-0.5f64..n - 0.5, 0f64..y_max)
            .map_err(&e)?;
        let y_fmt = |v: &f64| {
            let t = format!("{v:.2}");
            format!("{}%", t.trim_end_matches('0').trim_end_matches('.'))
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_label_formatter(&y_fmt)
            .y_labels(10)
            .label_style(font(18.0))
            .axis_desc_style(font(20.0))
            .light_line_style(WHITE)
            .bold_line_style(MID)
            .y_desc("lost / expected")
            .draw()
            .map_err(&e)?;
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let kind_name = match kind {
            AlertKind::Poa => "POA (AD1), from the power cut",
            AlertKind::Pra => "PRA (8F35/8F36), from the restoration",
        };
        root.draw(&Text::new(
            kind_name,
            (xr.start, yr.start - 36),
            bold(22.0).color(&BLACK),
        ))
        .map_err(&e)?;
        let px = |x: f64, y: f64| chart.backend_coord(&(x, y));
        for (i, (r, label)) in runs.iter().zip(&labels).enumerate() {
            let k = r.summary.kind(kind);
            let x = i as f64;
            let mut segments: Vec<(RGBColor, u64)> = causes
                .iter()
                .map(|c| {
                    (
                        cause_color(*c),
                        k.loss_by_cause.get(c).copied().unwrap_or(0),
                    )
                })
                .collect();
            if any_pending {
                segments.push((PENDING_COLOR, k.pending));
            }
            let mut acc = 0.0;
            for (color, count) in segments {
                if count == 0 || k.expected == 0 {
                    continue;
                }
                let h = count as f64 / k.expected as f64 * 100.0;
                let (a, b) = (px(x - 0.3, acc), px(x + 0.3, acc + h));
                root.draw(&Rectangle::new([a, b], color.filled()))
                    .map_err(&e)?;
                root.draw(&Rectangle::new([a, b], WHITE.stroke_width(1)))
                    .map_err(&e)?;
                let text = format!("{h:.2}%  ({})", thousands(count));
                let tf = bold(16.0);
                let (tw, th) = root.estimate_text_size(&text, &tf).map_err(&e)?;
                if (a.1 - b.1) as u32 > th + 4 && (b.0 - a.0) as u32 > tw + 6 {
                    let c = (
                        (a.0 + b.0) / 2 - tw as i32 / 2,
                        (a.1 + b.1) / 2 - th as i32 / 2,
                    );
                    root.draw(&Text::new(text, c, tf.color(&WHITE)))
                        .map_err(&e)?;
                }
                acc += h;
            }
            // Total above the bar, the run's name below the axis.
            let top = px(x, acc);
            let lines = if k.expected == 0 {
                vec![("nothing expected".to_string(), font(17.0))]
            } else {
                vec![
                    (format!("{:.2}% lost", k.loss_rate * 100.0), bold(19.0)),
                    (
                        format!(
                            "{} of {}",
                            thousands(k.expected - k.delivered),
                            thousands(k.expected)
                        ),
                        font(16.0),
                    ),
                ]
            };
            let mut y = top.1 - 8 - 22 * lines.len() as i32;
            for (text, tf) in lines {
                let (tw, _) = root.estimate_text_size(&text, &tf).map_err(&e)?;
                root.draw(&Text::new(
                    text,
                    (top.0 - tw as i32 / 2, y),
                    tf.color(&BLACK),
                ))
                .map_err(&e)?;
                y += 22;
            }
            let lf = font(19.0);
            let (lw, _) = root.estimate_text_size(label, &lf).map_err(&e)?;
            let bottom = px(x, 0.0);
            root.draw(&Text::new(
                label.clone(),
                (bottom.0 - lw as i32 / 2, bottom.1 + 12),
                lf.color(&BLACK),
            ))
            .map_err(&e)?;
        }
    }

    // Cause legend along the bottom.
    let mut entries: Vec<(RGBColor, String)> = causes
        .iter()
        .map(|c| (cause_color(*c), c.as_str().replace('_', " ")))
        .collect();
    if any_pending {
        entries.push((PENDING_COLOR, "pending (run not finished)".into()));
    }
    if entries.is_empty() {
        entries.push((WHITE, "no alert lost in any run".into()));
    }
    let lf = font(18.0);
    let mut x = 40;
    for (color, text) in entries {
        legend_area
            .draw(&Rectangle::new([(x, 20), (x + 26, 44)], color.filled()))
            .map_err(&e)?;
        legend_area
            .draw(&Rectangle::new(
                [(x, 20), (x + 26, 44)],
                MID.stroke_width(1),
            ))
            .map_err(&e)?;
        legend_area
            .draw(&Text::new(text.clone(), (x + 34, 22), lf.color(&BLACK)))
            .map_err(&e)?;
        let (w, _) = legend_area.estimate_text_size(&text, &lf).map_err(&e)?;
        x += 34 + w as i32 + 34;
    }
    root.present().map_err(&e)
}

/// A tidy upper end for a percentage axis (at least 1%).
fn nice_percent(v: f64) -> f64 {
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
