//! How a [`Figure`] is drawn: plotters, onto a PNG (bitmap backend) or an SVG (SVG backend), by
//! one function generic over the backend and following the [`Layout`]; so both files of a graph
//! show the same thing in the same place. Text uses the embedded DejaVu Sans (see
//! [`crate::fonts`]); nothing here decides what is shown.

use crate::error::ReportError;
use crate::figure::{
    Band, Bar, Figure, Layer, LegendPlace, Mark, Marker, Panel, Rgb, Rule, RuleAt, Sample, Span,
};
use crate::fonts::{self, FAMILY};
use crate::layout::{self, Layout, Measure, PanelBox, Rect, font, to_px};
use crate::style;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// Measures text with the embedded fonts, as the renderer draws it.
#[derive(Debug, Clone, Copy, Default)]
pub struct FontMeasure;

impl Measure for FontMeasure {
    fn text_size(&self, text: &str, size: f64, bold: bool) -> (i32, i32) {
        fonts::ensure();
        let style = if bold {
            FontStyle::Bold
        } else {
            FontStyle::Normal
        };
        FontDesc::new(FontFamily::Name(FAMILY), size, style)
            .box_size(text)
            .map_or((0, 0), |(w, h)| (w as i32, h as i32))
    }
}

/// Lays a figure out with the embedded fonts.
pub fn layout_of(fig: &Figure) -> Layout {
    layout::layout(fig, &FontMeasure)
}

/// Draws a figure into a PNG file.
pub fn png(fig: &Figure, path: &Path) -> Result<(), ReportError> {
    if !fonts::ensure() {
        return Err(ReportError::plot(path, "the embedded font was refused"));
    }
    let lay = layout_of(fig);
    let root = BitMapBackend::new(path, (layout::WIDTH, layout::HEIGHT)).into_drawing_area();
    draw(&root, fig, &lay).map_err(|e| ReportError::plot(path, e))?;
    root.present().map_err(|e| ReportError::plot(path, e))
}

/// Draws a figure as an SVG document (text as `<text>` in DejaVu Sans with fallbacks, so it stays
/// searchable and selectable; see `docs/reports.md`).
pub fn svg(fig: &Figure) -> Result<String, ReportError> {
    let name = format!("{}.svg", fig.name);
    if !fonts::ensure() {
        return Err(ReportError::plot(&name, "the embedded font was refused"));
    }
    let lay = layout_of(fig);
    let mut out = String::new();
    {
        let root =
            SVGBackend::with_string(&mut out, (layout::WIDTH, layout::HEIGHT)).into_drawing_area();
        draw(&root, fig, &lay).map_err(|e| ReportError::plot(&name, e))?;
        root.present().map_err(|e| ReportError::plot(&name, e))?;
    }
    Ok(out)
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn rgb(c: Rgb) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

fn text_style(size: f64, bold: bool, color: Rgb) -> TextStyle<'static> {
    let style = if bold {
        FontStyle::Bold
    } else {
        FontStyle::Normal
    };
    TextStyle {
        font: FontDesc::new(FontFamily::Name(FAMILY), size, style),
        color: rgb(color).to_backend_color(),
        pos: Pos::default(),
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    fig: &Figure,
    lay: &Layout,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    root.draw(&Text::new(
        fig.title.clone(),
        (30, 14),
        text_style(font::TITLE, true, style::BLACK),
    ))?;
    for (i, (line, warning)) in lay.header.iter().enumerate() {
        let st = if *warning {
            text_style(font::SUBTITLE, true, style::WARNING)
        } else {
            text_style(font::SUBTITLE, false, style::GREY)
        };
        root.draw(&Text::new(line.clone(), (30, 56 + 26 * i as i32), st))?;
    }
    for (panel, b) in fig.panels.iter().zip(&lay.panels) {
        draw_axes(root, panel, b)?;
        for l in &panel.layers {
            match l {
                Layer::Rule(r) => draw_rule(root, panel, b, r)?,
                Layer::Band(band) => {
                    draw_band(root, panel, b, band, fig.series[band.series].style.color)?;
                }
                Layer::Curve(_) | Layer::Marks(_) | Layer::Bars(_) | Layer::Spans(_) => {}
            }
        }
        draw_rule_labels(root, panel, b)?;
        for (series, pts) in layout::curve_pixels(panel, &b.plot) {
            let st = fig.series[series].style;
            draw_line(root, pts, st.color, 3, st.dash)?;
        }
        for m in panel.marks() {
            draw_mark(root, fig, panel, b, m)?;
        }
        for l in &panel.layers {
            match l {
                Layer::Bars(bars) => {
                    for bar in bars {
                        draw_bar(root, panel, b, bar)?;
                    }
                }
                Layer::Spans(spans) => {
                    for s in spans {
                        draw_span(root, panel, b, s)?;
                    }
                }
                _ => {}
            }
        }
    }
    draw_legend(root, fig, lay)?;
    for l in &lay.labels {
        let color = fig
            .series
            .get(l.series)
            .map_or(style::BLACK, |s| s.style.color);
        let r = l.rect;
        root.draw(&Rectangle::new(
            [(r.x0, r.y0), (r.x1, r.y1)],
            WHITE.mix(0.9).filled(),
        ))?;
        root.draw(&Rectangle::new(
            [(r.x0, r.y0), (r.x1, r.y1)],
            rgb(color).stroke_width(1),
        ))?;
        root.draw(&Text::new(
            l.text.clone(),
            (r.x0 + 4, r.y0 + 3),
            text_style(font::MARK_LABEL, true, color),
        ))?;
    }
    Ok(())
}

fn draw_axes<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panel: &Panel,
    b: &PanelBox,
) -> DrawResult<DB> {
    let p = b.plot;
    let x_of = |v: f64| to_px(panel, &p, (v, panel.y.range.0)).0;
    let y_of = |v: f64| to_px(panel, &p, (panel.x.range.0, v)).1;
    for &m in &panel.x.minor {
        let x = x_of(m);
        root.draw(&PathElement::new(
            vec![(x, p.y0), (x, p.y1)],
            rgb(style::LIGHT).stroke_width(1),
        ))?;
    }
    let tick_style = text_style(font::TICK, false, style::BLACK);
    for t in &panel.x.ticks {
        let x = x_of(t.at);
        root.draw(&PathElement::new(
            vec![(x, p.y0), (x, p.y1)],
            rgb(style::MID).stroke_width(1),
        ))?;
        root.draw(&Text::new(
            t.label.clone(),
            (x, p.y1 + 6),
            tick_style.pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
    }
    for t in &panel.y.ticks {
        let y = y_of(t.at);
        root.draw(&PathElement::new(
            vec![(p.x0, y), (p.x1, y)],
            rgb(style::MID).stroke_width(1),
        ))?;
        root.draw(&Text::new(
            t.label.clone(),
            (p.x0 - 8, y),
            tick_style.pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }
    root.draw(&PathElement::new(
        vec![(p.x0, p.y0), (p.x0, p.y1), (p.x1, p.y1)],
        BLACK.stroke_width(1),
    ))?;
    if let Some(t) = &panel.x.title {
        root.draw(&Text::new(
            t.clone(),
            ((p.x0 + p.x1) / 2, p.y1 + 34),
            text_style(font::AXIS_TITLE, false, style::BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
    }
    if let Some(t) = &panel.y.title {
        let st = text_style(font::AXIS_TITLE, false, style::BLACK)
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(
            t.clone(),
            (b.cell.x0 + 18, (p.y0 + p.y1) / 2),
            st,
        ))?;
    }
    if let Some(t) = &panel.title {
        let (st, at) = if panel.title_is_heading {
            (text_style(22.0, true, style::BLACK), (p.x0, p.y0 - 36))
        } else {
            (
                text_style(font::PANEL_TITLE, false, style::GREY),
                (p.x0 + 4, p.y0 - 28),
            )
        };
        root.draw(&Text::new(t.clone(), at, st))?;
    }
    Ok(())
}

fn draw_rule<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panel: &Panel,
    b: &PanelBox,
    r: &Rule,
) -> DrawResult<DB> {
    let (x0, x1) = panel.x.range;
    let (y0, y1) = panel.y.range;
    let pts = match r.at {
        RuleAt::X(x) => vec![
            to_px(panel, &b.plot, (x, y0)),
            to_px(panel, &b.plot, (x, y1)),
        ],
        RuleAt::Y(y) => vec![
            to_px(panel, &b.plot, (x0, y)),
            to_px(panel, &b.plot, (x1, y)),
        ],
    };
    draw_line(root, pts, r.color, 2, Some(r.dash))
}

/// Deadline times above the plot, pushed right where two would overlap.
fn draw_rule_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panel: &Panel,
    b: &PanelBox,
) -> DrawResult<DB> {
    let mut end = i32::MIN;
    for l in &panel.layers {
        let Layer::Rule(Rule {
            at: RuleAt::X(x),
            color,
            label: Some(text),
            ..
        }) = l
        else {
            continue;
        };
        let top = to_px(panel, &b.plot, (*x, panel.y.range.1));
        let (w, _) = FontMeasure.text_size(text, font::RULE_LABEL, true);
        let x0 = (top.0 - w / 2).max(end + 6).min(b.cell.x1 - w - 2);
        end = x0 + w;
        root.draw(&Text::new(
            text.clone(),
            (x0, top.1 - 24),
            text_style(font::RULE_LABEL, true, *color),
        ))?;
    }
    Ok(())
}

fn draw_line<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    pts: Vec<(i32, i32)>,
    color: Rgb,
    width: u32,
    dash: Option<(u32, u32)>,
) -> DrawResult<DB> {
    let st = rgb(color).stroke_width(width);
    match dash {
        None => root.draw(&PathElement::new(pts, st)),
        Some((len, gap)) => {
            for e in DashedLineSeries::new(pts, len as i32, gap as i32, st) {
                root.draw(&e)?;
            }
            Ok(())
        }
    }
}

fn draw_marker<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    marker: Marker,
    color: Rgb,
    s: i32,
) -> DrawResult<DB> {
    let fill = rgb(color).filled();
    let edge = WHITE.stroke_width(1);
    match marker {
        Marker::Circle => {
            root.draw(&Circle::new(at, s, fill))?;
            root.draw(&Circle::new(at, s, edge))
        }
        Marker::Square => {
            let c = [(at.0 - s, at.1 - s), (at.0 + s, at.1 + s)];
            root.draw(&Rectangle::new(c, fill))?;
            root.draw(&Rectangle::new(c, edge))
        }
        Marker::Triangle => root.draw(&Polygon::new(
            vec![
                (at.0, at.1 - s - 2),
                (at.0 + s + 1, at.1 + s),
                (at.0 - s - 1, at.1 + s),
            ],
            fill,
        )),
        Marker::Diamond => root.draw(&Polygon::new(
            vec![
                (at.0, at.1 - s - 2),
                (at.0 + s + 2, at.1),
                (at.0, at.1 + s + 2),
                (at.0 - s - 2, at.1),
            ],
            fill,
        )),
        Marker::Cross => {
            let st = rgb(color).stroke_width(3);
            root.draw(&PathElement::new(
                vec![(at.0 - s, at.1 - s), (at.0 + s, at.1 + s)],
                st,
            ))?;
            root.draw(&PathElement::new(
                vec![(at.0 - s, at.1 + s), (at.0 + s, at.1 - s)],
                st,
            ))
        }
    }
}

fn draw_mark<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    fig: &Figure,
    panel: &Panel,
    b: &PanelBox,
    m: &Mark,
) -> DrawResult<DB> {
    let c = to_px(panel, &b.plot, m.at);
    let color = fig.series[m.series].style.color;
    let size = if m.marker == Marker::Cross { 7 } else { 6 };
    draw_marker(root, (c.0 + m.nudge_px, c.1), m.marker, color, size)
}

/// A band: the polygon along its highs and back along its lows, translucent.
fn draw_band<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panel: &Panel,
    b: &PanelBox,
    band: &Band,
    color: Rgb,
) -> DrawResult<DB> {
    let clamp = |v: f64| v.clamp(panel.y.range.0, panel.y.range.1);
    let mut pts: Vec<(i32, i32)> = band
        .points
        .iter()
        .map(|&(x, _, hi)| to_px(panel, &b.plot, (x, clamp(hi))))
        .collect();
    pts.extend(
        band.points
            .iter()
            .rev()
            .map(|&(x, lo, _)| to_px(panel, &b.plot, (x, clamp(lo)))),
    );
    if pts.len() < 3 {
        return Ok(());
    }
    root.draw(&Polygon::new(pts, rgb(color).mix(0.22).filled()))
}

/// A horizontal bar, its end label, and the row's name.
fn draw_span<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panel: &Panel,
    b: &PanelBox,
    s: &Span,
) -> DrawResult<DB> {
    let px = |x: f64, y: f64| to_px(panel, &b.plot, (x, y));
    let clamp = |x: f64| x.clamp(panel.x.range.0, panel.x.range.1);
    let (a, c) = (
        px(clamp(s.x0), s.y + s.height / 2.0),
        px(clamp(s.x1), s.y - s.height / 2.0),
    );
    root.draw(&Rectangle::new([a, c], rgb(s.color).filled()))?;
    let mid = (a.1 + c.1) / 2;
    let (x, h) = if s.x1 >= s.x0 {
        (c.0 + 6, HPos::Left)
    } else {
        (c.0 - 6, HPos::Right)
    };
    root.draw(&Text::new(
        s.end_label.clone(),
        (x, mid),
        text_style(font::BAR_LABEL, false, style::BLACK).pos(Pos::new(h, VPos::Center)),
    ))?;
    if let Some(name) = &s.name {
        let top = a.1.min(c.1);
        root.draw(&Text::new(
            name.clone(),
            (b.plot.x0 + 6, top - 4),
            text_style(font::BAR_LABEL, true, style::BLACK).pos(Pos::new(HPos::Left, VPos::Bottom)),
        ))?;
    }
    Ok(())
}

fn draw_bar<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panel: &Panel,
    b: &PanelBox,
    bar: &Bar,
) -> DrawResult<DB> {
    let px = |x: f64, y: f64| to_px(panel, &b.plot, (x, y));
    let (l, r) = (bar.x - bar.width / 2.0, bar.x + bar.width / 2.0);
    let mut acc = 0.0;
    for s in &bar.segments {
        let (a, c) = (px(l, acc), px(r, acc + s.height));
        root.draw(&Rectangle::new([a, c], rgb(s.color).filled()))?;
        root.draw(&Rectangle::new([a, c], WHITE.stroke_width(1)))?;
        let (tw, th) = FontMeasure.text_size(&s.label, font::BAR_LABEL, true);
        if a.1 - c.1 > th + 4 && c.0 - a.0 > tw + 6 {
            root.draw(&Text::new(
                s.label.clone(),
                ((a.0 + c.0) / 2, (a.1 + c.1) / 2),
                text_style(font::BAR_LABEL, true, style::WHITE)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            ))?;
        }
        acc += s.height;
    }
    let top = px(bar.x, acc);
    let n = bar.above.len() as i32;
    for (i, line) in bar.above.iter().enumerate() {
        let (size, bold) = if i == 0 {
            (font::BAR_ABOVE, true)
        } else {
            (font::BAR_LABEL, false)
        };
        let y = (top.1 - 8 - 22 * (n - i as i32)).max(b.plot.y0 + 2 + 22 * i as i32);
        root.draw(&Text::new(
            line.clone(),
            (top.0, y),
            text_style(size, bold, style::BLACK).pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
    }
    let bottom = px(bar.x, 0.0);
    root.draw(&Text::new(
        bar.category.clone(),
        (bottom.0, bottom.1 + 12),
        text_style(font::CATEGORY, false, style::BLACK).pos(Pos::new(HPos::Center, VPos::Top)),
    ))
}

fn draw_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    fig: &Figure,
    lay: &Layout,
) -> DrawResult<DB> {
    let lb = &lay.legend;
    let inside = matches!(fig.legend.place, LegendPlace::Inside(_));
    if inside {
        let r: Rect = lb.rect;
        root.draw(&Rectangle::new(
            [(r.x0, r.y0), (r.x1, r.y1)],
            WHITE.mix(0.93).filled(),
        ))?;
        root.draw(&Rectangle::new(
            [(r.x0, r.y0), (r.x1, r.y1)],
            rgb(style::MID).stroke_width(1),
        ))?;
    }
    let tf = text_style(font::LEGEND, false, style::BLACK);
    for (e, &(x0, y)) in fig.legend.entries.iter().zip(&lb.rows) {
        let x1 = x0 + layout::LEGEND_SAMPLE.1 - layout::LEGEND_SAMPLE.0;
        let text_x = match e.sample {
            Sample::Series(i) => {
                let st = fig.series[i].style;
                draw_line(root, vec![(x0, y), (x1, y)], st.color, 3, st.dash)?;
                draw_marker(root, ((x0 + x1) / 2, y), st.marker, st.color, 6)?;
                x1 + 10
            }
            Sample::Marker(m, c) => {
                draw_marker(root, ((x0 + x1) / 2, y), m, c, 7)?;
                x1 + 10
            }
            Sample::Line(c, d) => {
                draw_line(root, vec![(x0, y), (x1, y)], c, 2, Some(d))?;
                x1 + 10
            }
            Sample::Swatch(c) => {
                let r = [(x0, y - 12), (x0 + 26, y + 12)];
                root.draw(&Rectangle::new(r, rgb(c).filled()))?;
                root.draw(&Rectangle::new(r, rgb(style::MID).stroke_width(1)))?;
                x0 + 34
            }
            Sample::None => {
                if inside {
                    x1 + 10
                } else {
                    x0
                }
            }
        };
        root.draw(&Text::new(
            e.text.clone(),
            (text_x, y),
            tf.pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
}
