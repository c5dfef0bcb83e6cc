//! Durations in threshold files and verdicts: the one grammar and formatter of
//! [`ledger::duration`] (the same as in profiles), in whole milliseconds, and "time to X%" as the
//! verdict prints it (`6m23.1s`, `never`).
//!
//! Everything is whole milliseconds: the ledger measures in ms and no threshold needs finer.

use std::time::Duration;

/// Parses a duration (`"4m"`, `"90s"`, `"1m30s"`, `"1h 10m"`, `"250ms"`, `"1.5s"`, ...; see
/// [`ledger::duration`]) into milliseconds, rounding. The error says what was wrong, without the
/// key.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let d = ledger::duration::parse(text)?;
    u64::try_from((d.as_nanos() + 500_000) / 1_000_000)
        .map_err(|_| format!("{:?} is too long a duration", text.trim()))
}

/// Formats milliseconds the way people write them: `0s`, `250ms`, `45s`, `6m30s`, `1h2m`,
/// `6m30.5s` (fractions of a second only when there are some).
pub fn format_ms(ms: u64) -> String {
    ledger::duration::format(Duration::from_millis(ms))
}

/// Formats a "time to X%" as recorded in `summary.json` (seconds, `None` = never reached), to
/// the nearest 0.1 s: `6m23s`, `8m42.8s`.
pub fn format_time_s(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) => format_ms(seconds_to_ms(s).div_ceil(100) * 100),
        None => "never".into(),
    }
}

/// Seconds (as in `summary.json`) to whole milliseconds, rounding; negative and NaN become 0.
pub fn seconds_to_ms(seconds: f64) -> u64 {
    if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1000.0).round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_people_write() {
        assert_eq!(parse_duration_ms("4m"), Ok(240_000));
        assert_eq!(parse_duration_ms("90s"), Ok(90_000));
        assert_eq!(parse_duration_ms("1m30s"), Ok(90_000));
        assert_eq!(parse_duration_ms("1m 30s"), Ok(90_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("1h5m"), Ok(3_900_000));
        assert_eq!(parse_duration_ms("1.5s"), Ok(1_500));
        assert_eq!(parse_duration_ms(" 0s "), Ok(0));
        // The forms profiles also read (one grammar for both, issue 15).
        assert_eq!(parse_duration_ms("1h 10m"), Ok(4_200_000));
        assert_eq!(parse_duration_ms("5min"), Ok(300_000));
        assert_eq!(parse_duration_ms("10 minutes"), Ok(600_000));
        assert_eq!(parse_duration_ms("100us"), Ok(0));
        assert_eq!(parse_duration_ms("1.0005s"), Ok(1_001));
    }

    #[test]
    fn refuses_what_is_ambiguous_or_wrong() {
        for bad in ["", "10", "m", "5x", "-5s", "1m30", "1..5s", "1d"] {
            let e = parse_duration_ms(bad).expect_err(bad);
            assert!(!e.is_empty(), "{bad}");
        }
        assert!(parse_duration_ms("10").unwrap_err().contains("no unit"));
    }

    #[test]
    fn formats_back() {
        assert_eq!(format_ms(0), "0s");
        assert_eq!(format_ms(250), "250ms");
        assert_eq!(format_ms(45_000), "45s");
        assert_eq!(format_ms(390_000), "6m30s");
        assert_eq!(format_ms(390_500), "6m30.5s");
        assert_eq!(format_ms(600_000), "10m");
        assert_eq!(format_ms(3_720_000), "1h2m");
        assert_eq!(format_time_s(None), "never");
        assert_eq!(format_time_s(Some(900.0)), "15m");
        assert_eq!(format_time_s(Some(383.014)), "6m23.1s");
        assert_eq!(format_time_s(Some(522.8)), "8m42.8s");
        for ms in [1_000, 61_001, 3_600_000, 5_400_250] {
            assert_eq!(parse_duration_ms(&format_ms(ms)), Ok(ms), "{ms}");
        }
    }
}
