//! What a graph shows, apart from how it is drawn: a [`Figure`] is panels of data-space layers
//! (curves, level marks, requirement lines, stacked bars, bands, horizontal spans) with their axes, a legend and notes,
//! built from results by the functions of [`crate::graphs`] and drawn by [`crate::render`].
//!
//! Everything a reader could query — a mark's label, a legend line, an axis tick — is decided
//! here, as data, so tests can check it against the tables without decoding pixels. Nothing here
//! knows about pixels, fonts or plotters.

/// A colour, sRGB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// The shape drawn at a marked point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Filled circle.
    Circle,
    /// Filled triangle, point up.
    Triangle,
    /// Filled square.
    Square,
    /// Filled diamond.
    Diamond,
    /// Two crossing strokes (the seed table's figures).
    Cross,
}

/// How a series is drawn: colour, dash (length, gap in pixels; `None` solid) and marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Line and marker colour.
    pub color: Rgb,
    /// Dash pattern, `None` for a solid line.
    pub dash: Option<(u32, u32)>,
    /// The marker of its marked levels.
    pub marker: Marker,
}

/// One run on a figure: its name and its style.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The run's name ([`crate::runs::run_labels`]).
    pub label: String,
    /// How it is drawn.
    pub style: Style,
}

/// An axis tick: where, and the text under or beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Position, in data units.
    pub at: f64,
    /// Its label (every tick of an axis uses the same format).
    pub label: String,
}

/// One axis of a panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Title, if any.
    pub title: Option<String>,
    /// Data range shown, (low, high).
    pub range: (f64, f64),
    /// Labelled ticks, with a grid line each.
    pub ticks: Vec<Tick>,
    /// Unlabelled grid lines between ticks, in data units.
    pub minor: Vec<f64>,
}

/// A polyline of one series, in data units.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Index into [`Figure::series`].
    pub series: usize,
    /// Points, ascending in x.
    pub points: Vec<(f64, f64)>,
}

/// A marked point of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Index into [`Figure::series`].
    pub series: usize,
    /// Position, data units.
    pub at: (f64, f64),
    /// Its shape (the series' marker, or [`Marker::Cross`] for a seed figure).
    pub marker: Marker,
    /// Pixels to shift the marker sideways so marks of identical series are all visible
    /// (0 for most marks). Only the marker moves: its label still points at the true position.
    pub nudge_px: i32,
    /// A text label beside the mark (e.g. the m:ss at which a level was reached).
    pub label: Option<String>,
}

/// A requirement drawn across a panel: a deadline (vertical) or a level (horizontal).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Vertical at x, or horizontal at y (data units).
    pub at: RuleAt,
    /// Colour.
    pub color: Rgb,
    /// Dash (length, gap), pixels.
    pub dash: (u32, u32),
    /// A short label drawn at the line's end outside the plot (e.g. `4:00` above a deadline).
    pub label: Option<String>,
}

/// Where a [`Rule`] is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RuleAt {
    /// A vertical line at this x.
    X(f64),
    /// A horizontal line at this y.
    Y(f64),
}

/// One segment of a stacked bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Height, data units.
    pub height: f64,
    /// Fill.
    pub color: Rgb,
    /// Text drawn inside when it fits.
    pub label: String,
}

/// One stacked bar, centred on `x` (data units).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Centre, data units.
    pub x: f64,
    /// Width, data units.
    pub width: f64,
    /// Segments from the bottom up.
    pub segments: Vec<Segment>,
    /// Lines of text above the bar (the first drawn bold).
    pub above: Vec<String>,
    /// The category name under the axis.
    pub category: String,
}

/// The range a series spans at each x (e.g. the min-max of several seeds around their median),
/// filled translucent in the series' colour under its curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Index into [`Figure::series`].
    pub series: usize,
    /// (x, low, high), ascending in x.
    pub points: Vec<(f64, f64, f64)>,
}

/// A horizontal bar from `x0` to `x1` at row `y` (a tornado chart's bar), with a text at its far
/// end and, optionally, a name over the row at the left of the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Row centre, data units.
    pub y: f64,
    /// Height, data units.
    pub height: f64,
    /// Where the bar starts (the baseline).
    pub x0: f64,
    /// Where it ends.
    pub x1: f64,
    /// Fill.
    pub color: Rgb,
    /// Text beyond the `x1` end (on the side away from `x0`).
    pub end_label: String,
    /// The row's name, drawn over the row at the plot's left edge.
    pub name: Option<String>,
}

/// Something drawn in a panel's data space.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// A series' curve.
    Curve(Curve),
    /// Marked points (with their labels).
    Marks(Vec<Mark>),
    /// A requirement line.
    Rule(Rule),
    /// Stacked bars.
    Bars(Vec<Bar>),
    /// Bands around curves.
    Band(Band),
    /// Horizontal bars.
    Spans(Vec<Span>),
}

/// A plot area with its axes and layers.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Text above the plot area (e.g. which alerts, or what the zoom is for).
    pub title: Option<String>,
    /// Whether the title is a heading (bold, black) or a remark (grey).
    pub title_is_heading: bool,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// Share of the figure's height (rows) or width (columns) relative to the other panels.
    pub weight: f64,
    /// Drawn in this order.
    pub layers: Vec<Layer>,
}

impl Panel {
    /// The curves of this panel.
    pub fn curves(&self) -> impl Iterator<Item = &Curve> {
        self.layers.iter().filter_map(|l| match l {
            Layer::Curve(c) => Some(c),
            _ => None,
        })
    }

    /// The marks of this panel.
    pub fn marks(&self) -> impl Iterator<Item = &Mark> {
        self.layers.iter().flat_map(|l| match l {
            Layer::Marks(m) => m.as_slice(),
            _ => &[],
        })
    }
}

/// How panels share the figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrangement {
    /// Stacked top to bottom.
    Rows,
    /// Side by side.
    Columns,
}

/// The little picture before a legend line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    /// A series' line and marker.
    Series(usize),
    /// A marker alone.
    Marker(Marker, Rgb),
    /// A dashed line (a requirement).
    Line(Rgb, (u32, u32)),
    /// A filled box (a loss cause).
    Swatch(Rgb),
    /// Nothing (a line of explanation).
    None,
}

/// One legend line.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    /// The sample.
    pub sample: Sample,
    /// The text.
    pub text: String,
}

/// Where the legend goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegendPlace {
    /// Inside this panel, wherever no series is; outside the plot areas when nowhere is free.
    Inside(usize),
    /// In one row along the bottom of the figure.
    Below,
}

/// The legend.
#[derive(Debug, Clone, PartialEq)]
pub struct Legend {
    /// Its lines.
    pub entries: Vec<LegendEntry>,
    /// Where it goes.
    pub place: LegendPlace,
}

/// A whole graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File name without extension, e.g. `poa` or `north-poa`.
    pub name: String,
    /// The heading.
    pub title: String,
    /// What was run and where it comes from, as short phrases (premises, mode, seed, date,
    /// harness build, profile hash); the layout joins them into as many lines as they need.
    pub subtitle: Vec<String>,
    /// What must be read before any figure (lagged, incomplete, insecure, HDR precision), one
    /// line each, drawn in red under the subtitle.
    pub warnings: Vec<String>,
    /// The runs shown.
    pub series: Vec<Series>,
    /// The plot areas.
    pub panels: Vec<Panel>,
    /// How they share the figure.
    pub arrangement: Arrangement,
    /// The legend.
    pub legend: Legend,
}

impl Figure {
    /// Every label of every mark, with the series it belongs to (for tests and the HTML report).
    pub fn mark_labels(&self) -> Vec<(usize, &str)> {
        self.panels
            .iter()
            .flat_map(Panel::marks)
            .filter_map(|m| m.label.as_deref().map(|l| (m.series, l)))
            .collect()
    }
}
