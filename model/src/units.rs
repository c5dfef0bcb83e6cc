//! Validated value types for profiles: durations, rates, probabilities, counts, distributions.
//!
//! Every check of a single value lives in the `Deserialize` impl of its newtype, so that the TOML
//! parser reports a bad value with its span (and hence file and line). Values are stored in
//! microseconds (durations) or per-second floats (rates); nothing here reads a clock.

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::fmt;

/// A non-negative scenario duration written as `"4m"`, `"90s"`, `"1m30s"`, `"250ms"` or `"1h"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub u64);

impl Dur {
    /// Microseconds.
    pub fn us(self) -> u64 {
        self.0
    }
    /// Milliseconds (truncated).
    pub fn ms(self) -> u64 {
        self.0 / 1000
    }
    /// Seconds as a float.
    pub fn secs(self) -> f64 {
        self.0 as f64 / 1e6
    }
    /// From milliseconds.
    pub fn from_ms(ms: u64) -> Self {
        Dur(ms * 1000)
    }

    /// Parses the textual form.
    pub fn parse(s: &str) -> Result<Dur, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty duration (write e.g. \"90s\", \"4m\", \"1m30s\", \"250ms\")".into());
        }
        if t.starts_with('-') {
            return Err(format!("negative duration `{t}`"));
        }
        let mut total: f64 = 0.0;
        let mut rest = t;
        while !rest.is_empty() {
            let num_end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| format!("duration `{t}` lacks a unit (h, m, s or ms)"))?;
            if num_end == 0 {
                return Err(format!("bad duration `{t}`: expected a number"));
            }
            let n: f64 = rest[..num_end]
                .parse()
                .map_err(|_| format!("bad number in duration `{t}`"))?;
            let after = &rest[num_end..];
            let unit_end = after
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(after.len());
            let mult = match &after[..unit_end] {
                "h" => 3_600e6,
                "m" | "min" => 60e6,
                "s" => 1e6,
                "ms" => 1e3,
                u => {
                    return Err(format!(
                        "unknown unit `{u}` in duration `{t}` (h, m, s, ms)"
                    ));
                }
            };
            total += n * mult;
            rest = &after[unit_end..];
        }
        if !total.is_finite() || total > 1e15 {
            return Err(format!("duration `{t}` is too large"));
        }
        Ok(Dur(total.round() as u64))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0;
        if !us.is_multiple_of(1000) {
            return write!(f, "{}ms", us as f64 / 1000.0);
        }
        let ms = us / 1000;
        if !ms.is_multiple_of(1000) {
            return write!(f, "{ms}ms");
        }
        let s = ms / 1000;
        match (s / 60, s % 60) {
            (0, s) => write!(f, "{s}s"),
            (m, 0) => write!(f, "{m}m"),
            (m, s) => write!(f, "{m}m{s}s"),
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Dur::parse(&s).map_err(de::Error::custom)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

macro_rules! float_newtype {
    ($(#[$m:meta])* $name:ident, $check:expr, $what:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub f64);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = f64::deserialize(d)?;
                let ok: fn(f64) -> bool = $check;
                if v.is_finite() && ok(v) {
                    Ok($name(v))
                } else {
                    Err(de::Error::custom(format!("{} must be {}, got {v}", stringify!($name), $what)))
                }
            }
        }
    };
}

float_newtype!(
    /// A strictly positive rate, per second.
    PositiveRate,
    |v| v > 0.0,
    "a positive number (per second)"
);
float_newtype!(
    /// A probability in [0, 1).
    Probability,
    |v| (0.0..1.0).contains(&v),
    "in [0, 1)"
);
float_newtype!(
    /// A real number of at least 1 (a ratio).
    AtLeastOne,
    |v| v >= 1.0,
    "at least 1"
);
float_newtype!(
    /// A positive real parameter (e.g. a lognormal sigma).
    PositiveReal,
    |v| v > 0.0,
    "a positive number"
);

/// A count that must be at least 1 (capacities, servers, attempts, premises).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct NonZeroCount(pub u32);

impl<'de> Deserialize<'de> for NonZeroCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        if v < 1 {
            return Err(de::Error::custom(format!("must be at least 1, got {v}")));
        }
        u32::try_from(v)
            .map(NonZeroCount)
            .map_err(|_| de::Error::custom(format!("{v} is too large (at most {})", u32::MAX)))
    }
}

/// The csp-alert/1 region byte a profile's alerts carry: 1 to 255 (`docs/protocol.md` registers 1
/// for North and 2 for Central & South; a new region registers its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RegionCode(pub u8);

impl<'de> Deserialize<'de> for RegionCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        u8::try_from(v)
            .ok()
            .filter(|&c| c != 0)
            .map(RegionCode)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "the region byte must be 1 to 255 (docs/protocol.md), got {v}"
                ))
            })
    }
}

/// A uniform range of durations `{ min = "0s", max = "100s" }`, `min <= max`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DurRange {
    /// Lower bound.
    pub min: Dur,
    /// Upper bound.
    pub max: Dur,
}

impl<'de> Deserialize<'de> for DurRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            min: Dur,
            max: Dur,
        }
        let r = Raw::deserialize(d)?;
        if r.min > r.max {
            return Err(de::Error::custom(format!(
                "impossible range: min {} > max {}",
                r.min, r.max
            )));
        }
        Ok(DurRange {
            min: r.min,
            max: r.max,
        })
    }
}

impl DurRange {
    /// Draws uniformly in `[min, max]`, µs.
    pub fn sample(&self, rng: &mut impl rand::Rng) -> u64 {
        if self.max.0 == self.min.0 {
            self.min.0
        } else {
            rng.random_range(self.min.0..=self.max.0)
        }
    }
}

/// How long each premises' outage lasts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
pub enum OutageDist {
    /// Every premises is off for the same time.
    Fixed {
        /// Outage duration.
        duration: Dur,
    },
    /// Uniform between `min` and `max`.
    Uniform {
        /// Shortest outage.
        min: Dur,
        /// Longest outage.
        max: Dur,
    },
    /// Lognormal with the given median and sigma (of the log), clamped to `[min, max]`.
    Lognormal {
        /// Median outage.
        median: Dur,
        /// Standard deviation of ln(duration).
        sigma: PositiveReal,
        /// Clamp below.
        min: Dur,
        /// Clamp above.
        max: Dur,
    },
}

impl OutageDist {
    /// Checks the relations between fields (`min <= max`, positive durations).
    pub fn check(&self) -> Result<(), String> {
        match *self {
            OutageDist::Fixed { duration } if duration.0 == 0 => {
                Err("outage duration must be positive".into())
            }
            OutageDist::Uniform { min, max } | OutageDist::Lognormal { min, max, .. }
                if min > max =>
            {
                Err(format!("impossible outage range: min {min} > max {max}"))
            }
            OutageDist::Lognormal { median, .. } if median.0 == 0 => {
                Err("outage median must be positive".into())
            }
            _ => Ok(()),
        }
    }

    /// Draws an outage duration, µs.
    pub fn sample(&self, rng: &mut impl rand::Rng) -> u64 {
        match *self {
            OutageDist::Fixed { duration } => duration.0,
            OutageDist::Uniform { min, max } => DurRange { min, max }.sample(rng),
            OutageDist::Lognormal {
                median,
                sigma,
                min,
                max,
            } => {
                // Box-Muller from two uniforms: only `rand` is needed.
                let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
                let u2: f64 = rng.random::<f64>();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let v = median.0 as f64 * (sigma.0 * z).exp();
                (v.round() as u64).clamp(min.0, max.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(Dur::parse("4m").unwrap(), Dur(240_000_000));
        assert_eq!(Dur::parse("90s").unwrap(), Dur(90_000_000));
        assert_eq!(Dur::parse("1m30s").unwrap(), Dur(90_000_000));
        assert_eq!(Dur::parse("250ms").unwrap(), Dur(250_000));
        assert_eq!(Dur::parse("1.5s").unwrap(), Dur(1_500_000));
        assert!(Dur::parse("-3s").is_err());
        assert!(Dur::parse("3").is_err());
        assert!(Dur::parse("3x").is_err());
        assert_eq!(Dur(90_000_000).to_string(), "1m30s");
        assert_eq!(Dur(250_000).to_string(), "250ms");
        assert_eq!(Dur(240_000_000).to_string(), "4m");
    }
}
