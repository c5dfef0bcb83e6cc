//! The look shared by every graph: series styles by slot, requirement lines, loss-cause colours.
//! Colours are Okabe-Ito for the runs (distinguishable with the common colour-vision
//! deficiencies), and a run is told apart by dash and marker too, so a greyscale print still
//! separates them.

use crate::figure::{Layer, LegendEntry, Marker, Rgb, Rule, RuleAt, Sample, Style};
use ledger::LossCause;

const PALETTE: [Rgb; 7] = [
    Rgb(213, 94, 0),    // vermillion: the seed's first option (Current)
    Rgb(0, 114, 178),   // blue: the second (Option A)
    Rgb(0, 158, 115),   // bluish green: the third (Option B)
    Rgb(204, 121, 167), // reddish purple
    Rgb(230, 159, 0),   // orange
    Rgb(86, 180, 233),  // sky blue
    Rgb(0, 0, 0),       // black
];

const DASHES: [Option<(u32, u32)>; 7] = [
    None,
    Some((16, 8)),
    Some((5, 5)),
    Some((24, 6)),
    Some((10, 4)),
    Some((3, 8)),
    Some((30, 10)),
];

const MARKERS: [Marker; 4] = [
    Marker::Circle,
    Marker::Triangle,
    Marker::Square,
    Marker::Diamond,
];

/// The style of a style slot ([`crate::runs::style_slots`]).
pub fn series_style(slot: usize) -> Style {
    Style {
        color: PALETTE[slot % PALETTE.len()],
        dash: DASHES[slot % DASHES.len()],
        marker: MARKERS[slot % MARKERS.len()],
    }
}

/// Warnings under a graph's heading.
pub const WARNING: Rgb = Rgb(170, 0, 40);
/// Text that explains rather than shows data.
pub const GREY: Rgb = Rgb(90, 90, 90);
/// Minor grid lines.
pub const LIGHT: Rgb = Rgb(236, 236, 236);
/// Major grid lines and frames.
pub const MID: Rgb = Rgb(200, 200, 200);
/// Black.
pub const BLACK: Rgb = Rgb(0, 0, 0);
/// White.
pub const WHITE: Rgb = Rgb(255, 255, 255);
/// The reliability level's line.
pub const RELIABILITY: (Rgb, (u32, u32)) = (Rgb(170, 0, 40), (3, 4));

/// The n-th deadline line of a graph: colour and dash.
pub fn deadline_style(i: usize) -> (Rgb, (u32, u32)) {
    const COLORS: [Rgb; 3] = [Rgb(40, 40, 40), Rgb(120, 80, 160), Rgb(120, 120, 120)];
    const DASHES: [(u32, u32); 3] = [(12, 6), (4, 4), (20, 4)];
    (COLORS[i % 3], DASHES[i % 3])
}

/// The requirement deadlines (`requirements::deadline_lines`: seconds and label) as rules across
/// a panel, each in its [`deadline_style`], at minutes on the axis `at` makes (`RuleAt::X` on a
/// delivery curve, `RuleAt::Y` where time is upwards), labelled `m:ss` when `labelled`.
pub fn deadline_rules(
    deadlines: &[(u64, String)],
    at: fn(f64) -> RuleAt,
    labelled: bool,
) -> Vec<Layer> {
    deadlines
        .iter()
        .enumerate()
        .map(|(i, (secs, _))| {
            let (color, dash) = deadline_style(i);
            Layer::Rule(Rule {
                at: at(*secs as f64 / 60.0),
                color,
                dash,
                label: labelled.then(|| crate::format::mmss(*secs as f64)),
            })
        })
        .collect()
}

/// The legend entries of [`deadline_rules`]: each deadline's line and label, after `prefix`
/// (e.g. "POA " where both kinds' deadlines share a legend).
pub fn deadline_legend(deadlines: &[(u64, String)], prefix: &str) -> Vec<LegendEntry> {
    deadlines
        .iter()
        .enumerate()
        .map(|(i, (_, label))| {
            let (c, d) = deadline_style(i);
            LegendEntry {
                sample: Sample::Line(c, d),
                text: format!("{prefix}{label}"),
            }
        })
        .collect()
}

/// The fill of a loss cause on the loss graph.
pub fn cause_color(c: LossCause) -> Rgb {
    match c {
        LossCause::Collision => Rgb(230, 75, 53),
        LossCause::HoldoverExpired => Rgb(77, 187, 213),
        LossCause::AttachFailure => Rgb(0, 160, 135),
        LossCause::QueueOverflow => Rgb(60, 84, 136),
        LossCause::SendQueueOverflow => Rgb(243, 155, 127),
        LossCause::EndpointRejected => Rgb(132, 145, 180),
        LossCause::EndpointUnreachable => Rgb(145, 209, 194),
        LossCause::NotDeliveredByEnd => Rgb(126, 97, 72),
        LossCause::CoveredBySummary => Rgb(176, 196, 96),
    }
}

/// The fill of alerts still pending when an interrupted run ended.
pub const PENDING: Rgb = Rgb(190, 190, 190);
