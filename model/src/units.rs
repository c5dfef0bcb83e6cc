//! Validated value types for profiles: durations, rates, probabilities, counts, distributions.
//!
//! Every check of a single value lives in the `Deserialize` impl of its newtype, so that the TOML
//! parser reports a bad value with its span (and hence file and line). Values are stored in
//! microseconds (durations) or per-second floats (rates); nothing here reads a clock.

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::fmt;
use std::time::Duration;

/// A non-negative scenario duration, in the one grammar of profiles and thresholds
/// ([`ledger::duration`]): `"4m"`, `"90s"`, `"1m30s"`, `"1h 10m"`, `"250ms"`, `"1.5s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub u64);

/// The longest duration a profile may give (about 31 years): far beyond any scenario, and far
/// inside the microseconds a `u64` holds.
const MAX_US: u128 = 1_000_000_000_000_000;

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

    /// Parses the textual form, to the nearest microsecond.
    pub fn parse(s: &str) -> Result<Dur, String> {
        let d = ledger::duration::parse(s)?;
        let us = (d.as_nanos() + 500) / 1000;
        if us > MAX_US {
            return Err(format!("duration `{}` is too large", s.trim()));
        }
        Ok(Dur(us as u64))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&ledger::duration::format(Duration::from_micros(self.0)))
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

    #[test]
    fn profiles_read_every_form_thresholds_read() {
        // The forms that once worked in only one of the two files (issue 15).
        for (text, us) in [
            ("1h 10m", 4_200_000_000),
            ("1m 30s", 90_000_000),
            ("5min", 300_000_000),
            ("2 hours 30 mins", 9_000_000_000),
            ("100us", 100),
            ("0.5ms", 500),
        ] {
            assert_eq!(Dur::parse(text), Ok(Dur(us)), "{text}");
            assert_eq!(
                Dur::parse(&Dur(us).to_string()),
                Ok(Dur(us)),
                "{text} printed back"
            );
        }
        assert!(
            Dur::parse("1d").is_err(),
            "calendar units are not durations"
        );
        assert!(Dur::parse("40000y").is_err());
        assert!(Dur::parse("9000000h").unwrap_err().contains("too large"));
    }
}
