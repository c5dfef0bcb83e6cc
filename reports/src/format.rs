//! How numbers read in every output (graphs, tables, console, HTML): one way to write a time, a
//! count and a share, so the same figure never appears in two forms.

/// "m:ss" from seconds (rounded to the second): `383.014` → `6:23`.
pub fn mmss(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

/// A time to X% as the tables show it: m:ss, or "never" (never blank).
pub fn time_or_never(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "never".to_string(), mmss)
}

/// A share of expected alerts, in percent with two decimals: `0.95956` → `95.96%`. Every share
/// shown anywhere uses this precision.
pub fn pct(fraction: f64) -> String {
    format!("{:.2}%", fraction * 100.0)
}

/// A count with thousands separators: `30000` → `30,000`.
pub fn thousands(n: u64) -> String {
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

/// A time over several seeds: the median with the min–max, `6:42 (6:31–6:55)`; a level some
/// seed never reached reads `never` (`6:42 (6:31–never)`).
pub fn time_range(s: &results::Spread) -> String {
    match (s.min, s.max) {
        (None, None) => "never".to_string(),
        _ => format!(
            "{} ({}–{})",
            time_or_never(s.median),
            time_or_never(s.min),
            time_or_never(s.max)
        ),
    }
}

/// A share over several seeds: `95.99% (95.91–96.03%)`; once (`0.00%`) when every seed gave it.
pub fn pct_range(s: &results::Spread) -> String {
    let p = |v: Option<f64>| format!("{:.2}", v.unwrap_or(0.0) * 100.0);
    if s.is_single() {
        return format!("{}%", p(s.median));
    }
    format!("{}% ({}–{}%)", p(s.median), p(s.min), p(s.max))
}

/// A count over several seeds: `1,202 (1,192–1,228)`; once (`0`) when every seed gave it.
pub fn count_range(s: &results::Spread) -> String {
    let n = |v: Option<f64>| thousands(v.unwrap_or(0.0).round() as u64);
    if s.is_single() {
        return n(s.median);
    }
    format!("{} ({}–{})", n(s.median), n(s.min), n(s.max))
}

/// "seed 42" or "seeds 1, 2": the distinct values in first-seen order, plural only when there
/// are several.
pub(crate) fn plural_list<T: ToString + PartialEq>(
    name: &str,
    plural: &str,
    values: impl IntoIterator<Item = T>,
) -> String {
    let mut uniq: Vec<T> = Vec::new();
    for v in values {
        if !uniq.contains(&v) {
            uniq.push(v);
        }
    }
    let joined: Vec<String> = uniq.iter().map(ToString::to_string).collect();
    let name = if uniq.len() > 1 { plural } else { name };
    format!("{name} {}", joined.join(", ")).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_one_way() {
        assert_eq!(mmss(383.014), "6:23");
        assert_eq!(mmss(2282.6), "38:03");
        assert_eq!(mmss(-3.0), "0:00");
        assert_eq!(time_or_never(None), "never");
        assert_eq!(pct(0.959_566), "95.96%");
        assert_eq!(pct(1.0), "100.00%");
        assert_eq!(thousands(30_000), "30,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(plural_list("seed", "seeds", [1, 1]), "seed 1");
        assert_eq!(plural_list("seed", "seeds", [1, 2, 1]), "seeds 1, 2");
        let sp = |median, min, max| results::Spread {
            median,
            min,
            max,
            worst_seed: 1,
        };
        assert_eq!(
            time_range(&sp(Some(402.0), Some(391.0), Some(415.0))),
            "6:42 (6:31–6:55)"
        );
        assert_eq!(
            time_range(&sp(Some(402.0), Some(391.0), None)),
            "6:42 (6:31–never)"
        );
        assert_eq!(time_range(&sp(None, None, None)), "never");
        assert_eq!(
            pct_range(&sp(Some(0.9599), Some(0.9591), Some(0.9603))),
            "95.99% (95.91–96.03%)"
        );
        assert_eq!(
            count_range(&sp(Some(1202.0), Some(1192.0), Some(1228.0))),
            "1,202 (1,192–1,228)"
        );
        assert_eq!(count_range(&sp(Some(0.0), Some(0.0), Some(0.0))), "0");
        assert_eq!(pct_range(&sp(Some(1.0), Some(1.0), Some(1.0))), "100.00%");
    }
}
