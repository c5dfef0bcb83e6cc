//! Durations as people write them in threshold files (`"4m"`, `"90s"`, `"1m30s"`, `"250ms"`,
//! `"1h"`) and as the verdict prints them back (`6m30s`, `250ms`, `never`).
//!
//! Everything is whole milliseconds: the ledger measures in ms and no threshold needs finer.

/// Parses `"1h"`, `"4m"`, `"90s"`, `"1m30s"`, `"1m 30s"`, `"250ms"`, `"1.5s"` into milliseconds.
///
/// Each component is a non-negative number followed by one of `h`, `m`, `s`, `ms`; a bare number
/// is refused (is `10` seconds or minutes?). The error says what was wrong, without the key.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let hint = "write a duration with its unit, e.g. \"10m\", \"90s\", \"1m30s\" or \"250ms\"";
    let s = text.trim();
    if s.is_empty() {
        return Err(format!("empty duration: {hint}"));
    }
    let mut total = 0.0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        if num.is_empty() {
            return Err(format!("{text:?} is not a duration: {hint}"));
        }
        let value: f64 = num
            .parse()
            .map_err(|_| format!("{text:?}: {num:?} is not a number: {hint}"))?;
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale = match unit {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            "" => return Err(format!("{text:?}: {num} has no unit: {hint}")),
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (use h, m, s or ms): {hint}"
                ));
            }
        };
        total += value * scale;
        rest = after.trim_start();
    }
    if !total.is_finite() || total > u64::MAX as f64 / 2.0 {
        return Err(format!("{text:?} is too long a duration"));
    }
    Ok(total.round() as u64)
}

/// Formats milliseconds the way people write them: `0s`, `250ms`, `45s`, `6m30s`, `1h2m`,
/// `6m30.5s` (fractions of a second only when there are some).
pub fn format_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let h = ms / 3_600_000;
    let m = (ms % 3_600_000) / 60_000;
    let rest_ms = ms % 60_000;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if rest_ms > 0 {
        if rest_ms.is_multiple_of(1000) {
            out.push_str(&format!("{}s", rest_ms / 1000));
        } else {
            let s = format!("{:.3}", rest_ms as f64 / 1000.0);
            out.push_str(s.trim_end_matches('0').trim_end_matches('.'));
            out.push('s');
        }
    }
    out
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
    }

    #[test]
    fn refuses_what_is_ambiguous_or_wrong() {
        for bad in ["", "10", "10 minutes", "m", "5x", "-5s", "1m30", "1..5s"] {
            let e = parse_duration_ms(bad).expect_err(bad);
            assert!(!e.is_empty(), "{bad}");
        }
        assert!(parse_duration_ms("10").unwrap_err().contains("no unit"));
        assert!(
            parse_duration_ms("5min")
                .unwrap_err()
                .contains("unknown unit")
        );
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
