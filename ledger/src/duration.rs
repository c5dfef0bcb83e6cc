//! The one duration grammar of csp-loadtest, for profiles and thresholds alike, and its one
//! formatter.
//!
//! Parsing is jiff's "friendly" format, unsigned: a unit after every number, components in any
//! spacing (`"4m"`, `"90s"`, `"1m30s"`, `"1m 30s"`, `"1h 10m"`, `"1.5s"`, `"250ms"`, `"100us"`,
//! `"2 hours 30 mins"`, `"5min"`), nothing negative (`"-5s"`, `"5s ago"`) and no calendar units
//! (`"1d"`, `"1y"`: a day is not always 24 hours). A bare number is refused: is `10` seconds or
//! minutes?
//!
//! Printing is compact and round-trips through the parser: `0s`, `250ms`, `0.5ms`, `45s`, `6m30s`,
//! `6m30.5s`, `1h2m`. This module reads no clock and knows no unit of the model.

use jiff::fmt::friendly::{Designator, FractionalUnit, Spacing, SpanParser, SpanPrinter};
use std::time::Duration;

/// What a user is told to write.
const HINT: &str =
    "write a number with its unit, e.g. \"90s\", \"4m\", \"1m30s\", \"1h 10m\" or \"250ms\"";

/// Parses a duration (see the module's grammar). The error says what is wrong and what to write,
/// without naming the field: the caller knows which it is.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("empty duration: {HINT}"));
    }
    if t.parse::<f64>().is_ok() {
        return Err(format!("duration {t:?} has no unit: {HINT}"));
    }
    static PARSER: SpanParser = SpanParser::new();
    PARSER.parse_unsigned_duration(t).map_err(|e| {
        let why = e.to_string();
        // jiff's message starts by naming its format, which tells a user nothing.
        let why = why
            .strip_prefix("failed to parse input in the \"friendly\" duration format: ")
            .unwrap_or(&why);
        format!("{t:?} is not a duration ({why}): {HINT}")
    })
}

/// Formats a duration compactly, as [`parse`] reads it back: whole units down to the second with
/// a decimal fraction of the second (`6m30.5s`, `1h2m`, `45s`), or below a second in
/// milliseconds (`250ms`, `0.5ms`); zero is `0s`.
pub fn format(d: Duration) -> String {
    static SECONDS: SpanPrinter = SpanPrinter::new()
        .designator(Designator::Compact)
        .spacing(Spacing::None)
        .fractional(Some(FractionalUnit::Second));
    static MILLIS: SpanPrinter = SpanPrinter::new()
        .designator(Designator::Compact)
        .spacing(Spacing::None)
        .fractional(Some(FractionalUnit::Millisecond));
    if d.is_zero() || d >= Duration::from_secs(1) {
        SECONDS.unsigned_duration_to_string(&d)
    } else {
        MILLIS.unsigned_duration_to_string(&d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> Result<u128, String> {
        parse(text).map(|d| d.as_millis())
    }

    #[test]
    fn every_form_people_write_is_read() {
        for (text, want) in [
            ("4m", 240_000),
            ("90s", 90_000),
            ("1m30s", 90_000),
            ("1m 30s", 90_000),
            ("1h 10m", 4_200_000),
            ("1h10m", 4_200_000),
            ("70m", 4_200_000),
            ("250ms", 250),
            ("1.5s", 1_500),
            ("1h5m", 3_900_000),
            ("5min", 300_000),
            ("10 minutes", 600_000),
            ("2 hours 30 mins", 9_000_000),
            (" 0s ", 0),
        ] {
            assert_eq!(ms(text), Ok(want), "{text}");
        }
        assert_eq!(parse("100us"), Ok(Duration::from_micros(100)));
    }

    #[test]
    fn what_is_ambiguous_or_wrong_is_refused_with_a_hint() {
        for bad in [
            "", "10", "1.5", "m", "5x", "-5s", "5s ago", "1m30", "1..5s", "1d", "1y", "PT1H",
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(e.contains("e.g. \"90s\""), "{bad}: {e}");
        }
        assert!(parse("10").unwrap_err().contains("no unit"));
        assert!(!parse("5x").unwrap_err().contains("friendly"));
    }

    #[test]
    fn formats_compactly_and_reads_back() {
        let f = |ms: u64| format(Duration::from_millis(ms));
        assert_eq!(f(0), "0s");
        assert_eq!(f(250), "250ms");
        assert_eq!(format(Duration::from_micros(500)), "0.5ms");
        assert_eq!(f(45_000), "45s");
        assert_eq!(f(390_000), "6m30s");
        assert_eq!(f(390_500), "6m30.5s");
        assert_eq!(f(600_000), "10m");
        assert_eq!(f(3_720_000), "1h2m");
        assert_eq!(f(4_200_000), "1h10m");
        for us in [
            0,
            1,
            500,
            250_000,
            1_000_000,
            61_001_000,
            3_600_000_000,
            5_400_250_000,
        ] {
            let d = Duration::from_micros(us);
            assert_eq!(parse(&format(d)), Ok(d), "{us} µs as {}", format(d));
        }
    }
}
