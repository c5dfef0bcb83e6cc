//! Where everything of a [`Figure`] goes on the canvas, in pixels: panel areas, the legend and
//! every label. Pure geometry over a text-measuring function, so the PNG and the SVG of a figure
//! have the same layout and tests can check it (the legend covers no series; no label leaves its
//! panel) without rendering.
//!
//! The legend is placed inside its panel only where it meets no curve segment, no mark and no
//! band;
//! when no such place exists it moves out of the plot areas into a band under the heading.
//! Labels are placed next to their anchor, inside their panel, avoiding marks, the legend, other
//! labels and — where possible — curves.

use crate::figure::{Arrangement, Figure, Layer, LegendPlace, Panel, RuleAt};

/// A pixel rectangle: left, top, right, bottom (right and bottom exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left edge.
    pub x0: i32,
    /// Top edge.
    pub y0: i32,
    /// Right edge.
    pub x1: i32,
    /// Bottom edge.
    pub y1: i32,
}

impl Rect {
    /// From corner and size.
    pub fn new(x: i32, y: i32, w: i32, h: i32) -> Rect {
        Rect {
            x0: x,
            y0: y,
            x1: x + w,
            y1: y + h,
        }
    }

    /// Width.
    pub fn w(&self) -> i32 {
        self.x1 - self.x0
    }

    /// Height.
    pub fn h(&self) -> i32 {
        self.y1 - self.y0
    }

    /// Do the two share any pixel?
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }

    /// Is `o` wholly inside?
    pub fn contains_rect(&self, o: &Rect) -> bool {
        o.x0 >= self.x0 && o.x1 <= self.x1 && o.y0 >= self.y0 && o.y1 <= self.y1
    }

    /// Is the point inside?
    pub fn contains(&self, p: (i32, i32)) -> bool {
        p.0 >= self.x0 && p.0 < self.x1 && p.1 >= self.y0 && p.1 < self.y1
    }

    /// Grown by `d` on every side.
    pub fn inflate(&self, d: i32) -> Rect {
        Rect {
            x0: self.x0 - d,
            y0: self.y0 - d,
            x1: self.x1 + d,
            y1: self.y1 + d,
        }
    }

    /// Does the segment a–b pass through the rectangle (or touch it)?
    pub fn hits_segment(&self, a: (i32, i32), b: (i32, i32)) -> bool {
        if self.contains(a) || self.contains(b) {
            return true;
        }
        let (x0, y0, x1, y1) = (
            f64::from(self.x0),
            f64::from(self.y0),
            f64::from(self.x1),
            f64::from(self.y1),
        );
        // Liang–Barsky clipping: the segment meets the box iff some parameter range survives.
        let (ax, ay) = (f64::from(a.0), f64::from(a.1));
        let (dx, dy) = (f64::from(b.0) - ax, f64::from(b.1) - ay);
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        for (p, q) in [(-dx, ax - x0), (dx, x1 - ax), (-dy, ay - y0), (dy, y1 - ay)] {
            if p == 0.0 {
                if q < 0.0 {
                    return false;
                }
            } else {
                let r = q / p;
                if p < 0.0 {
                    t0 = t0.max(r);
                } else {
                    t1 = t1.min(r);
                }
                if t0 > t1 {
                    return false;
                }
            }
        }
        true
    }
}

/// Text sizes, in pixels, as the renderer's font draws them.
pub trait Measure {
    /// Width and height of `text` at `size` pixels.
    fn text_size(&self, text: &str, size: f64, bold: bool) -> (i32, i32);
}

/// Canvas width, pixels.
pub const WIDTH: u32 = 1600;
/// Canvas height, pixels.
pub const HEIGHT: u32 = 1000;

/// Font sizes, pixels.
pub(crate) mod font {
    pub const TITLE: f64 = 30.0;
    pub const SUBTITLE: f64 = 20.0;
    pub const PANEL_TITLE: f64 = 20.0;
    pub const TICK: f64 = 18.0;
    pub const AXIS_TITLE: f64 = 20.0;
    pub const LEGEND: f64 = 17.0;
    pub const MARK_LABEL: f64 = 16.0;
    pub const RULE_LABEL: f64 = 16.0;
    pub const BAR_LABEL: f64 = 16.0;
    pub const BAR_ABOVE: f64 = 18.0;
    pub const CATEGORY: f64 = 19.0;
}

const SUBTITLE_TOP: i32 = 56;
const SUBTITLE_LINE: i32 = 26;
const LEGEND_ROW: i32 = 25;
/// Sample (line + marker) width in a legend line, and the gaps around it.
pub(crate) const LEGEND_SAMPLE: (i32, i32) = (10, 60);

/// A placed panel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PanelBox {
    /// The panel's whole cell (axes, titles and labels stay inside it).
    pub cell: Rect,
    /// The plot area (data space).
    pub plot: Rect,
}

/// A placed legend.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendBox {
    /// Its frame.
    pub rect: Rect,
    /// Each entry's sample origin (left end of the sample, vertical centre of its row).
    pub rows: Vec<(i32, i32)>,
    /// True when no place inside the panel was free and it went outside the plot areas.
    pub outside: bool,
}

/// A placed label.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedLabel {
    /// The panel it belongs to.
    pub panel: usize,
    /// Its box (text plus padding).
    pub rect: Rect,
    /// The text.
    pub text: String,
    /// The series whose colour it takes.
    pub series: usize,
}

/// The layout of a figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// The lines under the heading, top to bottom, each with whether it is a warning.
    pub header: Vec<(String, bool)>,
    /// One per panel.
    pub panels: Vec<PanelBox>,
    /// The legend.
    pub legend: LegendBox,
    /// The mark labels.
    pub labels: Vec<PlacedLabel>,
}

/// Maps a data point of `panel` into pixels of its plot area.
pub fn to_px(panel: &Panel, plot: &Rect, p: (f64, f64)) -> (i32, i32) {
    let (x0, x1) = panel.x.range;
    let (y0, y1) = panel.y.range;
    let fx = (p.0 - x0) / (x1 - x0);
    let fy = (p.1 - y0) / (y1 - y0);
    (
        (f64::from(plot.x0) + fx * f64::from(plot.w())).round() as i32,
        (f64::from(plot.y1) - fy * f64::from(plot.h())).round() as i32,
    )
}

/// The pixel polylines of a panel's curves (what the renderer draws), with their series.
pub fn curve_pixels(panel: &Panel, plot: &Rect) -> Vec<(usize, Vec<(i32, i32)>)> {
    panel
        .curves()
        .map(|c| {
            let pts: Vec<(i32, i32)> = c.points.iter().map(|&p| to_px(panel, plot, p)).collect();
            (c.series, simplify(&pts, 0.6))
        })
        .collect()
}

/// The pixel box a mark's marker covers (nudge included).
pub fn mark_box(panel: &Panel, plot: &Rect, m: &crate::figure::Mark) -> Rect {
    let c = to_px(panel, plot, m.at);
    Rect::new(c.0 + m.nudge_px - 8, c.1 - 8, 17, 17)
}

/// Lays a figure out on a [`WIDTH`]×[`HEIGHT`] canvas.
pub fn layout(fig: &Figure, m: &dyn Measure) -> Layout {
    let legend_size = legend_size(fig, m);
    let header = header_lines(fig, m);
    let top = SUBTITLE_TOP + SUBTITLE_LINE * header.len() as i32 + 10;
    let bottom_band = match fig.legend.place {
        LegendPlace::Below => below_rows(fig, m).len() as i32 * 34 + 16,
        LegendPlace::Inside(_) => 0,
    };
    let body = Rect {
        x0: 0,
        y0: top,
        x1: WIDTH as i32,
        y1: HEIGHT as i32 - bottom_band,
    };
    let panels = place_panels(fig, body);
    let legend = match fig.legend.place {
        LegendPlace::Inside(p) => match inside_spot(fig, &panels, p, legend_size) {
            Some(rect) => legend_box(rect, fig.legend.entries.len(), false),
            None => {
                // Nowhere free inside: a band under the heading (two columns where they fit),
                // the panels below it.
                let n = fig.legend.entries.len();
                let cols = if 2 * legend_size.0 + 30 <= WIDTH as i32 - 60 {
                    2
                } else {
                    1
                };
                let rows = n.div_ceil(cols);
                let rect = Rect::new(
                    30,
                    top,
                    legend_size.0 * cols as i32,
                    rows as i32 * LEGEND_ROW + 14,
                );
                let body = Rect {
                    y0: top + rect.h() + 8,
                    ..body
                };
                let mut lb = legend_box(rect, n, true);
                for (i, row) in lb.rows.iter_mut().enumerate() {
                    *row = (
                        rect.x0 + LEGEND_SAMPLE.0 + (i / rows) as i32 * legend_size.0,
                        rect.y0 + 7 + (i % rows) as i32 * LEGEND_ROW + LEGEND_ROW / 2,
                    );
                }
                let panels = place_panels(fig, body);
                let labels = place_labels(fig, &panels, &lb.rect, m);
                return Layout {
                    header,
                    panels,
                    legend: lb,
                    labels,
                };
            }
        },
        LegendPlace::Below => {
            let rows = below_rows(fig, m);
            let y = HEIGHT as i32 - bottom_band + 12;
            let mut origins = Vec::new();
            for (r, row) in rows.iter().enumerate() {
                for &x in row {
                    origins.push((x, y + r as i32 * 34 + 12));
                }
            }
            LegendBox {
                rect: Rect {
                    x0: 0,
                    y0: HEIGHT as i32 - bottom_band,
                    x1: WIDTH as i32,
                    y1: HEIGHT as i32,
                },
                rows: origins,
                outside: true,
            }
        }
    };
    let labels = place_labels(fig, &panels, &legend.rect, m);
    Layout {
        header,
        panels,
        legend,
        labels,
    }
}

/// The subtitle's phrases joined by " · " into lines no wider than the canvas, then the warnings.
fn header_lines(fig: &Figure, m: &dyn Measure) -> Vec<(String, bool)> {
    const SEP: &str = "  ·  ";
    let max_w = WIDTH as i32 - 60;
    let mut lines: Vec<(String, bool)> = Vec::new();
    let mut cur = String::new();
    for p in &fig.subtitle {
        let candidate = if cur.is_empty() {
            p.clone()
        } else {
            format!("{cur}{SEP}{p}")
        };
        if !cur.is_empty() && m.text_size(&candidate, font::SUBTITLE, false).0 > max_w {
            lines.push((std::mem::take(&mut cur), false));
            cur = p.clone();
        } else {
            cur = candidate;
        }
    }
    if !cur.is_empty() {
        lines.push((cur, false));
    }
    lines.extend(fig.warnings.iter().map(|w| (w.clone(), true)));
    lines
}

fn legend_size(fig: &Figure, m: &dyn Measure) -> (i32, i32) {
    let text_w = fig
        .legend
        .entries
        .iter()
        .map(|e| m.text_size(&e.text, font::LEGEND, false).0)
        .max()
        .unwrap_or(0);
    (
        text_w + LEGEND_SAMPLE.1 + 18,
        fig.legend.entries.len() as i32 * LEGEND_ROW + 14,
    )
}

fn legend_box(rect: Rect, n: usize, outside: bool) -> LegendBox {
    LegendBox {
        rect,
        rows: (0..n)
            .map(|i| {
                (
                    rect.x0 + LEGEND_SAMPLE.0,
                    rect.y0 + 7 + i as i32 * LEGEND_ROW + LEGEND_ROW / 2,
                )
            })
            .collect(),
        outside,
    }
}

/// The x of each swatch of a legend drawn along the bottom, wrapped into rows.
fn below_rows(fig: &Figure, m: &dyn Measure) -> Vec<Vec<i32>> {
    let mut rows: Vec<Vec<i32>> = vec![Vec::new()];
    let mut x = 40;
    for e in &fig.legend.entries {
        let w = 34 + m.text_size(&e.text, font::LEGEND, false).0 + 34;
        if x + w > WIDTH as i32 - 20 && x > 40 {
            rows.push(Vec::new());
            x = 40;
        }
        if let Some(r) = rows.last_mut() {
            r.push(x);
        }
        x += w;
    }
    rows
}

fn place_panels(fig: &Figure, body: Rect) -> Vec<PanelBox> {
    let total: f64 = fig.panels.iter().map(|p| p.weight).sum::<f64>().max(1e-9);
    let mut at = 0.0;
    fig.panels
        .iter()
        .map(|p| {
            let (a, b) = (at / total, (at + p.weight) / total);
            at += p.weight;
            let cell = match fig.arrangement {
                Arrangement::Rows => {
                    let h = f64::from(body.h());
                    Rect {
                        y0: body.y0 + (a * h).round() as i32,
                        y1: body.y0 + (b * h).round() as i32,
                        ..body
                    }
                }
                Arrangement::Columns => {
                    let w = f64::from(body.w());
                    Rect {
                        x0: body.x0 + (a * w).round() as i32,
                        x1: body.x0 + (b * w).round() as i32,
                        ..body
                    }
                }
            };
            let has_bars = p.layers.iter().any(|l| matches!(l, Layer::Bars(_)));
            let has_rule_labels = p.layers.iter().any(|l| {
                matches!(l, Layer::Rule(r) if r.label.is_some() && matches!(r.at, RuleAt::X(_)))
            });
            let top = 12
                + if p.title.is_some() || has_rule_labels {
                    32
                } else {
                    6
                };
            let bottom = if has_bars {
                70
            } else if p.x.title.is_some() {
                64
            } else {
                42
            };
            let plot = Rect {
                x0: cell.x0 + 20 + 96,
                y0: cell.y0 + top,
                x1: cell.x1 - 40,
                y1: cell.y1 - bottom,
            };
            PanelBox { cell, plot }
        })
        .collect()
}

/// What a legend inside panel `p` must not cover: every curve segment, every mark and every
/// band's shaded area.
fn obstacles_hit(fig: &Figure, panels: &[PanelBox], p: usize, r: &Rect) -> bool {
    let (panel, b) = (&fig.panels[p], &panels[p]);
    let in_band = panel.layers.iter().any(|l| match l {
        Layer::Band(band) => band.points.iter().any(|&(x, lo, hi)| {
            r.hits_segment(
                to_px(panel, &b.plot, (x, lo)),
                to_px(panel, &b.plot, (x, hi)),
            )
        }),
        _ => false,
    });
    in_band
        || curve_pixels(panel, &b.plot)
            .iter()
            .any(|(_, pts)| pts.windows(2).any(|w| r.hits_segment(w[0], w[1])))
        || panel
            .marks()
            .any(|mk| r.overlaps(&mark_box(panel, &b.plot, mk)))
}

fn inside_spot(fig: &Figure, panels: &[PanelBox], p: usize, size: (i32, i32)) -> Option<Rect> {
    let plot = panels.get(p)?.plot;
    let (w, h) = size;
    if w > plot.w() - 24 || h > plot.h() - 24 {
        return None;
    }
    let (l, r) = (plot.x0 + 12, plot.x1 - 12 - w);
    let (t, b) = (plot.y0 + 12, plot.y1 - 12 - h);
    let (cx, cy) = ((l + r) / 2, (t + b) / 2);
    [
        (r, b),
        (l, t),
        (l, b),
        (r, t),
        (r, cy),
        (l, cy),
        (cx, t),
        (cx, b),
    ]
    .into_iter()
    .map(|(x, y)| Rect::new(x, y, w, h))
    .find(|rect| !obstacles_hit(fig, panels, p, &rect.inflate(4)))
}

fn place_labels(
    fig: &Figure,
    panels: &[PanelBox],
    legend: &Rect,
    m: &dyn Measure,
) -> Vec<PlacedLabel> {
    let mut out: Vec<PlacedLabel> = Vec::new();
    for (pi, (panel, b)) in fig.panels.iter().zip(panels).enumerate() {
        let curves = curve_pixels(panel, &b.plot);
        let mut taken: Vec<Rect> = panel
            .marks()
            .map(|mk| mark_box(panel, &b.plot, mk))
            .collect();
        taken.push(*legend);
        for mk in panel.marks() {
            let Some(text) = &mk.label else { continue };
            let (tw, th) = m.text_size(text, font::MARK_LABEL, true);
            let anchor = to_px(panel, &b.plot, mk.at);
            let rect = place_one(anchor, (tw + 8, th + 6), &b.plot, &taken, &curves);
            taken.push(rect);
            out.push(PlacedLabel {
                panel: pi,
                rect,
                text: text.clone(),
                series: mk.series,
            });
        }
    }
    out
}

/// The first candidate beside the anchor that stays in the plot area and covers no other label,
/// mark or the legend — preferring one that crosses no curve; clamped into the plot area if none.
fn place_one(
    anchor: (i32, i32),
    size: (i32, i32),
    plot: &Rect,
    taken: &[Rect],
    curves: &[(usize, Vec<(i32, i32)>)],
) -> Rect {
    let (w, h) = size;
    let mut candidates = Vec::new();
    for dy in [0, -22, 22, -44, 44, -66, 66, -88, 88, -110, 110] {
        let y = anchor.1 - h / 2 + dy;
        candidates.push(Rect::new(anchor.0 + 12, y, w, h));
        candidates.push(Rect::new(anchor.0 - 12 - w, y, w, h));
    }
    let free = |r: &Rect| plot.contains_rect(r) && !taken.iter().any(|t| t.overlaps(r));
    let clear = |r: &Rect| {
        !curves
            .iter()
            .any(|(_, pts)| pts.windows(2).any(|s| r.hits_segment(s[0], s[1])))
    };
    candidates
        .iter()
        .find(|r| free(r) && clear(r))
        .or_else(|| candidates.iter().find(|r| free(r)))
        .copied()
        .unwrap_or_else(|| {
            let r = candidates[0];
            let x = r.x0.clamp(plot.x0, (plot.x1 - w).max(plot.x0));
            let y = r.y0.clamp(plot.y0, (plot.y1 - h).max(plot.y0));
            Rect::new(x, y, w, h)
        })
}

/// Ramer-Douglas-Peucker: drops points closer than `eps` pixels to the line through their
/// neighbours, so a thick stroke is drawn as a few clean segments instead of a hairy zigzag.
pub fn simplify(pts: &[(i32, i32)], eps: f64) -> Vec<(i32, i32)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_meet_boxes_only_where_they_cross() {
        let r = Rect::new(10, 10, 10, 10);
        assert!(r.hits_segment((0, 15), (30, 15)));
        assert!(r.hits_segment((15, 0), (15, 12)));
        assert!(!r.hits_segment((0, 0), (30, 5)));
        assert!(!r.hits_segment((0, 25), (30, 25)));
        assert!(r.hits_segment((0, 0), (30, 30)));
        assert!(!r.hits_segment((21, 0), (40, 30)));
    }

    #[test]
    fn simplify_keeps_corners() {
        let pts: Vec<(i32, i32)> = (0..100).map(|x| (x, if x < 50 { 0 } else { 50 })).collect();
        let s = simplify(&pts, 0.6);
        assert!(s.len() <= 5, "{s:?}");
        assert_eq!(s.first(), Some(&(0, 0)));
        assert_eq!(s.last(), Some(&(99, 50)));
    }
}
