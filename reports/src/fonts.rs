//! The embedded fonts: every graph is drawn with DejaVu Sans from the crate itself, so a PNG comes
//! out the same on every machine and no system font lookup (fontconfig) ever happens.

use plotters::style::{FontStyle, register_font};
use std::sync::OnceLock;

/// The family name every text style in this crate uses. The bitmap backend only uses it as the
/// key the embedded fonts are registered under; the SVG backend writes it as the CSS
/// `font-family` of every text, so it names DejaVu Sans first and metric-compatible fallbacks
/// after it (report.html embeds DejaVu Sans itself, see `crate::html`).
pub(crate) const FAMILY: &str = "DejaVu Sans, Bitstream Vera Sans, Verdana, sans-serif";

pub(crate) static REGULAR: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
pub(crate) static BOLD: &[u8] = include_bytes!("../assets/fonts/DejaVuSans-Bold.ttf");

static REGISTERED: OnceLock<bool> = OnceLock::new();

/// Registers the embedded fonts once per process; returns false if the embedded data were refused
/// (which would be a build defect, reported as a drawing error by the caller).
pub(crate) fn ensure() -> bool {
    *REGISTERED.get_or_init(|| {
        let regular = register_font(FAMILY, FontStyle::Normal, REGULAR).is_ok();
        let bold = register_font(FAMILY, FontStyle::Bold, BOLD).is_ok();
        regular && bold
    })
}
