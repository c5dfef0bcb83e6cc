//! The thresholds format: what a run must achieve, written in TOML as a `[thresholds]` table of a
//! profile or as a file of its own.
//!
//! ```toml
//! [thresholds]
//! poa.time_to_50 = "6m"        # 50% of expected POAs delivered within 6 minutes ("never" fails)
//! poa.time_to_95 = "16m"
//! poa.time_to_99_9 = "1h"      # any level: 99.9% within an hour
//! poa.delivered_by.4m = 0.95   # at least 95% of expected POAs delivered within 4 minutes (SEC)
//! pra.delivered_by."1m" = "99%"  # quoting the duration is the same key
//! poa.loss_rate = 0.06         # at most 6% of expected POAs lost (or "6%")
//! pra.loss.attach_failure = 0.015   # at most 1.5% of expected PRAs lost to attach failures
//! duplicates = 0               # counts: at most this many
//! out_of_order = 0
//! false_positives = 0
//! harness.max_lag_ms = 2000    # the harness's own schedule lag, from summary.json's health
//! harness.lagged = false       # the harness must not have flagged its own lag
//! ```
//!
//! The metric names ([`Rule::parse`]):
//!
//! | key | value | passes when |
//! |---|---|---|
//! | `poa.time_to_P`, `pra.time_to_P` (P any level in (0, 100], `_` for a decimal point: 50, 90, 99_5, 99_95) | duration | "time to P% of expected delivered" ≤ value; never reached fails |
//! | `poa.delivered_by.T`, `pra.delivered_by.T` (T a duration: `4m`, `"1m30s"`) | fraction 0..1 or `"95%"` | share of expected delivered within T ≥ value |
//! | `poa.loss_rate`, `pra.loss_rate` | fraction 0..1 or `"6%"` | 1 − delivered/expected ≤ value |
//! | `poa.loss.CAUSE`, `pra.loss.CAUSE` (CAUSE as in `loss_by_cause`) | fraction or percent | lost to CAUSE / expected ≤ value |
//! | `duplicates`, `out_of_order`, `false_positives`, `unexpected_pra` | count ≥ 0 | count ≤ value |
//! | `harness.max_lag_ms`, `harness.lag_p99_ms` | ms ≥ 0 | health value ≤ value (missing: error) |
//! | `harness.lagged` | `false` | health `lagged` is false (missing: error) |
//!
//! Dotted keys and sub-tables are the same thing in TOML, so `[thresholds.poa]` + `time_to_50 =
//! "6m"` works too. In a file of its own the thresholds may sit at the top level or under a
//! `[thresholds]` table; when a file has a `[thresholds]` table (a profile), the other top-level
//! keys are not this module's business. Anything unknown, and any value of the wrong kind, is an
//! error naming the file, the line and the key.
//!
//! The levels `summary.json` holds (50, 80, 95, 99, 99.5) are read from it; any other level and
//! every `delivered_by` share are read from the run's delivery curve
//! ([`results::DeliveryCurve`]), exact when the folder has `alerts.csv`.

use crate::duration::{format_ms, parse_duration_ms};
use crate::error::VerdictError;
use ledger::text_pos::{key_on_line, line_col};
use ledger::{AlertKind, LossCause};
use serde::Serialize;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};

/// A set of thresholds, in the order they were written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Thresholds {
    /// The file they were read from (or the label given to [`Thresholds::parse`]).
    pub source: PathBuf,
    /// The thresholds, in file order.
    pub items: Vec<Threshold>,
}

/// One threshold: a metric and its limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Threshold {
    /// The canonical dotted name, e.g. `poa.time_to_95`, `pra.loss.attach_failure`.
    pub name: String,
    /// What is checked, with its limit.
    pub rule: Rule,
    /// 1-based line in [`Thresholds::source`] where it was written.
    pub line: usize,
}

/// A metric with its limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "metric", rename_all = "snake_case")]
pub enum Rule {
    /// "Time to `pct`% of expected `kind` alerts delivered" must be at most `within_ms`.
    TimeTo {
        /// The alert kind.
        kind: AlertKind,
        /// The delivered level, percent in (0, 100] to a hundredth.
        pct: f64,
        /// The limit, ms.
        within_ms: u64,
    },
    /// The share of expected `kind` alerts delivered within `within_ms` must be at least `min`
    /// (the SEC/DNO form: "95% of POAs within 4 minutes").
    DeliveredBy {
        /// The alert kind.
        kind: AlertKind,
        /// The deadline, ms from the alert's base time.
        within_ms: u64,
        /// The least share, a fraction 0..=1.
        min: f64,
    },
    /// The loss rate (1 − delivered / expected) of `kind` must be at most `max`.
    LossRate {
        /// The alert kind.
        kind: AlertKind,
        /// The limit, a fraction 0..=1.
        max: f64,
    },
    /// Alerts of `kind` lost to `cause`, as a share of the expected ones, must be at most `max`.
    CauseLoss {
        /// The alert kind.
        kind: AlertKind,
        /// The loss cause.
        cause: LossCause,
        /// The limit, a fraction 0..=1.
        max: f64,
    },
    /// An anomaly count must be at most `max`.
    Count {
        /// Which count.
        counter: Counter,
        /// The limit.
        max: u64,
    },
    /// A numeric field of the harness's health (ms) must be at most `max`.
    HealthMs {
        /// Which field.
        field: HealthField,
        /// The limit, ms.
        max: f64,
    },
    /// The harness must not have flagged its own lag (`health.lagged` false).
    NotLagged,
}

/// The anomaly counts of `summary.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Counter {
    /// Acks the endpoint sent twice for one alert.
    Duplicates,
    /// PRAs delivered before their premises' POA.
    OutOfOrder,
    /// POAs acknowledged for an outage under 3 minutes.
    FalsePositives,
    /// PRAs acknowledged that were never expected.
    UnexpectedPra,
}

impl Counter {
    /// Every counter.
    pub const ALL: [Counter; 4] = [
        Counter::Duplicates,
        Counter::OutOfOrder,
        Counter::FalsePositives,
        Counter::UnexpectedPra,
    ];

    /// The key in thresholds files and in `summary.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Counter::Duplicates => "duplicates",
            Counter::OutOfOrder => "out_of_order",
            Counter::FalsePositives => "false_positives",
            Counter::UnexpectedPra => "unexpected_pra",
        }
    }
}

/// The numeric health fields a threshold can limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthField {
    /// Largest schedule lag of the harness, ms.
    MaxLagMs,
    /// 99th percentile of the schedule lag, ms.
    LagP99Ms,
}

impl HealthField {
    /// The key in thresholds files (`harness.KEY`); `lag_p99_ms` reads `health.p99_lag_ms`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthField::MaxLagMs => "max_lag_ms",
            HealthField::LagP99Ms => "lag_p99_ms",
        }
    }

    /// The field's value in a run's health record.
    pub fn of(self, h: &results::Health) -> u64 {
        match self {
            HealthField::MaxLagMs => h.max_lag_ms,
            HealthField::LagP99Ms => h.p99_lag_ms,
        }
    }
}

/// The level of a `time_to_P` key: `50` is 50%, `99_5` is 99.5% (a dot would start a TOML
/// sub-table), `99_95` is 99.95%. Levels are kept to a hundredth of a percent, as the curve
/// counts them.
fn level_of(key: &str) -> Result<f64, String> {
    let hint = "a level is a percentage in (0, 100] written with `_` for the decimal point, \
                e.g. time_to_50, time_to_90, time_to_99_5, time_to_99_95";
    let (int, dec) = key.split_once('_').unwrap_or((key, ""));
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if !digits(int) || (key.contains('_') && !digits(dec)) {
        return Err(format!("no such level `time_to_{key}`: {hint}"));
    }
    if dec.len() > 2 {
        return Err(format!(
            "level `time_to_{key}` is finer than a hundredth of a percent: {hint}"
        ));
    }
    let pct: f64 = format!("{int}.{}", if dec.is_empty() { "0" } else { dec })
        .parse()
        .map_err(|_| format!("no such level `time_to_{key}`: {hint}"))?;
    if !(pct > 0.0 && pct <= 100.0) {
        return Err(format!("level `time_to_{key}` is not in (0, 100]: {hint}"));
    }
    Ok(pct)
}

/// Groups that may appear as (possibly empty) tables.
const GROUPS: [&str; 7] = [
    "poa",
    "pra",
    "poa.loss",
    "pra.loss",
    "poa.delivered_by",
    "pra.delivered_by",
    "harness",
];

/// A leaf value, reduced to what rules need (keeps the TOML parser's types out of the API).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Anything else (array, datetime); named for the message.
    Other(&'static str),
}

impl Rule {
    /// Reads one threshold from its dotted key and value. The error says what is wrong (the
    /// caller adds file, line and key).
    pub fn parse(key: &str, value: &Value) -> Result<Rule, String> {
        let parts: Vec<&str> = key.split('.').collect();
        Rule::parse_path(&parts, value)
    }

    /// As [`Rule::parse`], from the key's elements as TOML gives them (a quoted element such as
    /// the `"1.5m"` of `delivered_by."1.5m"` may hold a dot).
    pub fn parse_path(parts: &[&str], value: &Value) -> Result<Rule, String> {
        let key = key_name(parts);
        let key = key.as_str();
        match parts {
            [kind, metric] if kind_of(kind).is_some() => {
                let kind = kind_of(kind).unwrap_or(AlertKind::Poa);
                if let Some(level) = metric.strip_prefix("time_to_") {
                    let pct = level_of(level)?;
                    let within_ms = duration(value)?;
                    Ok(Rule::TimeTo {
                        kind,
                        pct,
                        within_ms,
                    })
                } else if *metric == "loss_rate" {
                    Ok(Rule::LossRate {
                        kind,
                        max: fraction(value, "a loss rate")?,
                    })
                } else {
                    Err(unknown(key))
                }
            }
            [kind, "loss", cause] if kind_of(kind).is_some() => {
                let kind = kind_of(kind).unwrap_or(AlertKind::Poa);
                let cause = LossCause::ALL
                    .into_iter()
                    .find(|c| c.as_str() == *cause)
                    .ok_or_else(|| {
                        format!(
                            "no such loss cause `{cause}`; the causes are {}",
                            LossCause::ALL.map(|c| c.as_str()).join(", ")
                        )
                    })?;
                Ok(Rule::CauseLoss {
                    kind,
                    cause,
                    max: fraction(value, "a loss rate")?,
                })
            }
            [kind, "delivered_by", deadline] if kind_of(kind).is_some() => {
                let kind = kind_of(kind).unwrap_or(AlertKind::Poa);
                let within_ms = parse_duration_ms(deadline)
                    .map_err(|e| format!("the deadline after `delivered_by.`: {e}"))?;
                Ok(Rule::DeliveredBy {
                    kind,
                    within_ms,
                    min: fraction(value, "a share delivered")?,
                })
            }
            [name] if Counter::ALL.iter().any(|c| c.as_str() == *name) => {
                let counter = Counter::ALL
                    .into_iter()
                    .find(|c| c.as_str() == *name)
                    .unwrap_or(Counter::Duplicates);
                Ok(Rule::Count {
                    counter,
                    max: count(value)?,
                })
            }
            ["harness", "max_lag_ms"] => Ok(Rule::HealthMs {
                field: HealthField::MaxLagMs,
                max: millis(value)?,
            }),
            ["harness", "lag_p99_ms"] => Ok(Rule::HealthMs {
                field: HealthField::LagP99Ms,
                max: millis(value)?,
            }),
            ["harness", "lagged"] => match value {
                Value::Bool(false) => Ok(Rule::NotLagged),
                Value::Bool(true) => Err(
                    "`harness.lagged = true` would check nothing; write `false` (the run must \
                     not be flagged as lagging) or remove the line"
                        .into(),
                ),
                other => Err(format!("expected `false`, found {}", describe(other))),
            },
            _ => Err(unknown(key)),
        }
    }

    /// The limit as the verdict prints it, e.g. `<= 16m`, `<= 6.00%`, `= false`.
    pub fn allowed(&self) -> String {
        match self {
            Rule::TimeTo { within_ms, .. } => format!("<= {}", format_ms(*within_ms)),
            Rule::DeliveredBy { min, .. } => format!(">= {}", crate::format_pct(*min)),
            Rule::LossRate { max, .. } | Rule::CauseLoss { max, .. } => {
                format!("<= {}", crate::format_pct(*max))
            }
            Rule::Count { max, .. } => format!("<= {max}"),
            Rule::HealthMs { max, .. } => format!("<= {max} ms"),
            Rule::NotLagged => "false".into(),
        }
    }
}

fn kind_of(s: &str) -> Option<AlertKind> {
    AlertKind::ALL.into_iter().find(|k| k.as_str() == s)
}

fn unknown(key: &str) -> String {
    format!(
        "unknown metric; known: poa|pra.time_to_<level> (50, 80, 99_5, ...), \
         poa|pra.delivered_by.<duration>, poa|pra.loss_rate, poa|pra.loss.<cause>, duplicates, out_of_order, false_positives, unexpected_pra, \
         harness.max_lag_ms, harness.lag_p99_ms, harness.lagged{}",
        if key
            .split_once("time_to_")
            .is_some_and(|(_, level)| level.contains('.'))
        {
            " (write 99.5% as `time_to_99_5`)"
        } else {
            ""
        }
    )
}

fn describe(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("the string {s:?}"),
        Value::Int(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the number {f}"),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Other(t) => format!("a {t}"),
    }
}

fn duration(v: &Value) -> Result<u64, String> {
    match v {
        Value::Str(s) => parse_duration_ms(s),
        other => Err(format!(
            "expected a duration string such as \"10m\" or \"1m30s\", found {}",
            describe(other)
        )),
    }
}

/// A share: `0.06` or `"6%"`; `what` names it in errors (`a loss rate`, `a share delivered`).
fn fraction(v: &Value, what: &str) -> Result<f64, String> {
    let f = match v {
        Value::Float(f) => *f,
        Value::Int(i) => *i as f64,
        Value::Str(s) => {
            let num = s.trim().strip_suffix('%').ok_or_else(|| {
                format!(
                    "expected a fraction such as 0.06 or a percentage such as \"6%\", found {s:?}"
                )
            })?;
            let p: f64 = num
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not a percentage such as \"6%\""))?;
            p / 100.0
        }
        other => {
            return Err(format!(
                "expected a fraction such as 0.06 or a percentage such as \"6%\", found {}",
                describe(other)
            ));
        }
    };
    if !(0.0..=1.0).contains(&f) {
        return Err(format!(
            "{what} is a fraction between 0 and 1 (or \"0%\" to \"100%\"), found {f}"
        ));
    }
    Ok(f)
}

fn count(v: &Value) -> Result<u64, String> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        other => Err(format!(
            "expected a whole number ≥ 0 (the largest count allowed), found {}",
            describe(other)
        )),
    }
}

fn millis(v: &Value) -> Result<f64, String> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as f64),
        Value::Float(f) if *f >= 0.0 && f.is_finite() => Ok(*f),
        other => Err(format!(
            "expected milliseconds ≥ 0 (a number), found {}",
            describe(other)
        )),
    }
}

impl Thresholds {
    /// Reads a thresholds file: thresholds at the top level, or under a `[thresholds]` table.
    pub fn load(path: &Path) -> Result<Thresholds, VerdictError> {
        let text = read(path, "thresholds file")?;
        Thresholds::parse(&text, path)
    }

    /// Reads the `[thresholds]` table of a profile file; `None` when it has none.
    ///
    /// Only the file's own table is read (a base named by `extends` is not consulted), so the
    /// limits a CI job applies are written where the job points.
    pub fn load_from_profile(path: &Path) -> Result<Option<Thresholds>, VerdictError> {
        let text = read(path, "profile")?;
        Thresholds::parse_profile(&text, path)
    }

    /// Parses the text of a thresholds file; `source` names it in errors.
    pub fn parse(text: &str, source: &Path) -> Result<Thresholds, VerdictError> {
        let doc = parse_doc(text, source)?;
        match doc.get("thresholds") {
            Some(t) => {
                table_of(text, source, "thresholds", t).and_then(|t| collect(text, source, t))
            }
            None => collect(text, source, &doc),
        }
    }

    /// Parses the text of a profile and reads its `[thresholds]` table, if any.
    pub fn parse_profile(text: &str, source: &Path) -> Result<Option<Thresholds>, VerdictError> {
        let doc = parse_doc(text, source)?;
        match doc.get("thresholds") {
            Some(t) => table_of(text, source, "thresholds", t)
                .and_then(|t| collect(text, source, t))
                .map(Some),
            None => Ok(None),
        }
    }

    /// No thresholds at all?
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

fn read(path: &Path, what: &'static str) -> Result<String, VerdictError> {
    std::fs::read_to_string(path).map_err(|source| VerdictError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn parse_doc<'t>(text: &'t str, source: &Path) -> Result<DeTable<'t>, VerdictError> {
    DeTable::parse(text).map(|t| t.into_inner()).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let (line, column) = line_col(text, offset);
        VerdictError::Syntax {
            path: source.to_path_buf(),
            line,
            column,
            key: key_on_line(text, line),
            message: e.message().trim().to_string(),
        }
    })
}

fn table_of<'a, 't>(
    text: &str,
    source: &Path,
    key: &str,
    v: &'a toml::Spanned<DeValue<'t>>,
) -> Result<&'a DeTable<'t>, VerdictError> {
    v.get_ref().as_table().ok_or_else(|| VerdictError::Key {
        path: source.to_path_buf(),
        line: line_col(text, v.span().start).0,
        key: key.to_string(),
        message: "must be a table of thresholds ([thresholds])".into(),
    })
}

/// Walks the table depth-first; each leaf is one threshold. Sorted by line at the end.
fn collect(text: &str, source: &Path, table: &DeTable<'_>) -> Result<Thresholds, VerdictError> {
    let mut items = Vec::new();
    walk(text, source, table, &[], &mut items)?;
    items.sort_by_key(|t: &Threshold| t.line);
    Ok(Thresholds {
        source: source.to_path_buf(),
        items,
    })
}

/// A dotted key as it would be written: elements joined by `.`, those that are not bare keys
/// quoted (`poa.delivered_by."1.5m"`).
fn key_name<S: AsRef<str>>(parts: &[S]) -> String {
    parts
        .iter()
        .map(|p| {
            let p = p.as_ref();
            let bare = !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if bare {
                p.to_string()
            } else {
                format!("{p:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn walk(
    text: &str,
    source: &Path,
    table: &DeTable<'_>,
    prefix: &[String],
    out: &mut Vec<Threshold>,
) -> Result<(), VerdictError> {
    for (k, v) in table {
        let mut path = prefix.to_vec();
        path.push(k.get_ref().to_string());
        let key = key_name(&path);
        let line = line_col(text, k.span().start).0;
        let err = |message: String| VerdictError::Key {
            path: source.to_path_buf(),
            line,
            key: key.clone(),
            message,
        };
        let value = match v.get_ref() {
            DeValue::Table(t) => {
                if t.is_empty() && !GROUPS.contains(&key.as_str()) {
                    return Err(err(unknown(&key)));
                }
                walk(text, source, t, &path, out)?;
                continue;
            }
            DeValue::String(s) => Value::Str(s.to_string()),
            DeValue::Integer(i) => Value::Int(
                i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
                    .map_err(|e| err(format!("bad integer: {e}")))?,
            ),
            DeValue::Float(f) => Value::Float(
                f.as_str()
                    .replace('_', "")
                    .parse()
                    .map_err(|e| err(format!("bad number: {e}")))?,
            ),
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Datetime(_) => Value::Other("date-time"),
            DeValue::Array(_) => Value::Other("array"),
        };
        let parts: Vec<&str> = path.iter().map(String::as_str).collect();
        let rule = Rule::parse_path(&parts, &value).map_err(err)?;
        out.push(Threshold {
            name: key.clone(),
            rule,
            line,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Thresholds, VerdictError> {
        Thresholds::parse(text, Path::new("ci/x.thresholds.toml"))
    }

    #[test]
    fn reads_the_documented_example() {
        let t = parse(
            r#"
[thresholds]
poa.time_to_50 = "6m"
poa.time_to_95 = "16m"
poa.time_to_99_5 = "1h"
poa.loss_rate = 0.06
pra.loss.attach_failure = "1.5%"
duplicates = 0
harness.max_lag_ms = 2000
harness.lagged = false
"#,
        )
        .unwrap();
        let names: Vec<&str> = t.items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "poa.time_to_50",
                "poa.time_to_95",
                "poa.time_to_99_5",
                "poa.loss_rate",
                "pra.loss.attach_failure",
                "duplicates",
                "harness.max_lag_ms",
                "harness.lagged"
            ]
        );
        assert_eq!(
            t.items[1].rule,
            Rule::TimeTo {
                kind: AlertKind::Poa,
                pct: 95.0,
                within_ms: 960_000
            }
        );
        assert_eq!(t.items[1].line, 4);
        assert_eq!(
            t.items[2].rule,
            Rule::TimeTo {
                kind: AlertKind::Poa,
                pct: 99.5,
                within_ms: 3_600_000
            }
        );
        match t.items[4].rule {
            Rule::CauseLoss { kind, cause, max } => {
                assert_eq!((kind, cause), (AlertKind::Pra, LossCause::AttachFailure));
                assert!((max - 0.015).abs() < 1e-12);
            }
            ref other => panic!("{other:?}"),
        }
        assert_eq!(
            t.items[5].rule,
            Rule::Count {
                counter: Counter::Duplicates,
                max: 0
            }
        );
        assert_eq!(t.items[7].rule, Rule::NotLagged);
    }

    #[test]
    fn any_level_and_delivered_by_state_the_sec_rules_directly() {
        let t = parse(
            r#"
poa.time_to_90 = "5m"
poa.time_to_99_95 = "1h"
poa.time_to_100 = "2h"
poa.delivered_by.4m = 0.95
pra.delivered_by."1m30s" = "99%"
pra.delivered_by."1.5m" = "99%"
"#,
        )
        .unwrap();
        let rules: Vec<&Rule> = t.items.iter().map(|i| &i.rule).collect();
        assert_eq!(
            rules[..3],
            [
                &Rule::TimeTo {
                    kind: AlertKind::Poa,
                    pct: 90.0,
                    within_ms: 300_000
                },
                &Rule::TimeTo {
                    kind: AlertKind::Poa,
                    pct: 99.95,
                    within_ms: 3_600_000
                },
                &Rule::TimeTo {
                    kind: AlertKind::Poa,
                    pct: 100.0,
                    within_ms: 7_200_000
                },
            ]
        );
        assert_eq!(
            *rules[3],
            Rule::DeliveredBy {
                kind: AlertKind::Poa,
                within_ms: 240_000,
                min: 0.95
            }
        );
        assert_eq!(t.items[3].name, "poa.delivered_by.4m");
        assert_eq!(rules[3].allowed(), ">= 95.00%");
        match *rules[4] {
            Rule::DeliveredBy {
                kind,
                within_ms,
                min,
            } => {
                assert_eq!((kind, within_ms), (AlertKind::Pra, 90_000));
                assert!((min - 0.99).abs() < 1e-12);
            }
            ref other => panic!("{other:?}"),
        }
        assert_eq!(
            rules[4], rules[5],
            "\"1m30s\" and \"1.5m\" are one deadline"
        );
        assert_eq!(t.items[5].name, "pra.delivered_by.\"1.5m\"");
        // A sub-table says the same.
        let sub = parse("[poa.delivered_by]\n4m = 0.95\n").unwrap();
        assert_eq!(sub.items[0].rule, *rules[3]);
        for (text, want) in [
            ("poa.delivered_by.4 = 0.95\n", "has no unit"),
            (
                "poa.delivered_by.4m = 1.5\n",
                "a share delivered is a fraction",
            ),
            ("poa.delivered_by.4m = \"4m\"\n", "percentage"),
        ] {
            let e = parse(text).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains("threshold `poa.delivered_by.4"),
                "{text}: {msg}"
            );
            assert!(msg.contains(want), "{text}: {msg}");
        }
    }

    #[test]
    fn top_level_and_subtables_mean_the_same() {
        let flat = parse("poa.time_to_80 = \"9m\"\nduplicates = 3\n").unwrap();
        let nested = parse("duplicates = 3\n[poa]\ntime_to_80 = \"9m\"\n").unwrap();
        let rules = |t: &Thresholds| {
            let mut r: Vec<(String, Rule)> = t
                .items
                .iter()
                .map(|i| (i.name.clone(), i.rule.clone()))
                .collect();
            r.sort_by(|a, b| a.0.cmp(&b.0));
            r
        };
        assert_eq!(rules(&flat), rules(&nested));
        assert_eq!(flat.items.len(), 2);
    }

    #[test]
    fn unknown_metric_names_file_line_and_key() {
        let e = parse("[thresholds]\npoa.time_to_50 = \"6m\"\n\npoa.time_to_101 = \"7m\"\n")
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("ci/x.thresholds.toml:4: threshold `poa.time_to_101`:"),
            "{msg}"
        );
        assert!(msg.contains("not in (0, 100]"), "{msg}");
        assert!(msg.contains("time_to_99_5"), "{msg}");
        for bad in ["time_to_fast", "time_to_99_", "time_to_99_123", "time_to_0"] {
            let e = parse(&format!("poa.{bad} = \"1m\"\n")).unwrap_err();
            assert!(
                e.to_string().contains(&format!("`poa.{bad}`")),
                "{bad}: {e}"
            );
        }
        let e = parse("poa.time_to_99.5 = \"1m\"\n").unwrap_err();
        assert!(e.to_string().contains("write 99.5% as"), "{e}");

        let e = parse("[thresholds]\npoa.latency = \"6m\"\n").unwrap_err();
        assert!(matches!(e, VerdictError::Key { line: 2, ref key, .. } if key == "poa.latency"));
        let e = parse("[thresholds]\npra.loss.gremlins = 0.1\n").unwrap_err();
        assert!(
            e.to_string().contains("no such loss cause `gremlins`"),
            "{e}"
        );
        let e = parse("[thresholds.qos]\n").unwrap_err();
        assert!(
            matches!(e, VerdictError::Key { line: 1, ref key, .. } if key == "qos"),
            "{e}"
        );
        let e = parse("harness.lag = 5\n").unwrap_err();
        assert!(
            e.to_string()
                .contains(":1: threshold `harness.lag`: unknown metric"),
            "{e}"
        );
    }

    #[test]
    fn wrong_values_name_file_line_and_key() {
        let cases = [
            ("poa.time_to_50 = 360\n", "duration string"),
            ("poa.time_to_50 = \"6 fortnights\"\n", "is not a duration"),
            ("poa.time_to_50 = \"6\"\n", "no unit"),
            ("poa.loss_rate = 6\n", "between 0 and 1"),
            ("poa.loss_rate = \"6\"\n", "percentage"),
            ("duplicates = -1\n", "whole number"),
            ("duplicates = 0.5\n", "whole number"),
            ("harness.lagged = true\n", "would check nothing"),
            ("harness.max_lag_ms = \"2s\"\n", "milliseconds"),
        ];
        for (text, want) in cases {
            let e = parse(&format!("# header\n{text}")).unwrap_err();
            let key = text.split('=').next().unwrap().trim();
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("ci/x.thresholds.toml:2: threshold `{key}`:")),
                "{text}: {msg}"
            );
            assert!(msg.contains(want), "{text}: {msg}");
        }
    }

    #[test]
    fn malformed_toml_names_file_line_and_key() {
        let e = parse("[thresholds]\npoa.time_to_50 = \"6m\"\npoa.time_to_95 = 16m\n").unwrap_err();
        match &e {
            VerdictError::Syntax {
                path, line, key, ..
            } => {
                assert_eq!(path, Path::new("ci/x.thresholds.toml"));
                assert_eq!(*line, 3);
                assert_eq!(key.as_deref(), Some("poa.time_to_95"));
            }
            other => panic!("{other:?}"),
        }
        let msg = e.to_string();
        assert!(msg.starts_with("ci/x.thresholds.toml:3:"), "{msg}");
        assert!(msg.contains("`poa.time_to_95`"), "{msg}");
        // A key written twice is a TOML error too.
        let e = parse("duplicates = 0\nduplicates = 1\n").unwrap_err();
        assert!(matches!(e, VerdictError::Syntax { line: 2, .. }), "{e}");
    }

    #[test]
    fn profiles_keep_their_own_keys() {
        let profile = "name = \"north/current\"\nregion = \"north\"\n[scenario]\npremises = 10\n\
                       [thresholds]\npoa.loss_rate = \"5%\"\n";
        let t = Thresholds::parse_profile(profile, Path::new("p.toml"))
            .unwrap()
            .unwrap();
        assert_eq!(t.items.len(), 1);
        assert_eq!(t.items[0].line, 6);
        assert!(
            Thresholds::parse_profile("name = \"x\"\n", Path::new("p.toml"))
                .unwrap()
                .is_none()
        );
        let e =
            Thresholds::parse_profile("[thresholds]\npoa.loss_rat = 0.1\n", Path::new("p.toml"))
                .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("p.toml:2: threshold `poa.loss_rat`"),
            "{e}"
        );
        // Without a [thresholds] table, a standalone file's top level is all thresholds.
        assert!(parse("name = \"north/current\"\n").is_err());
    }

    #[test]
    fn missing_file_is_named_as_what_it_was_read_for() {
        let e = Thresholds::load(Path::new("/nonexistent/t.toml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot read thresholds file /nonexistent/t.toml"
        );
        let e = Thresholds::load_from_profile(Path::new("/nonexistent/p.toml")).unwrap_err();
        assert_eq!(e.to_string(), "cannot read profile /nonexistent/p.toml");
    }
}
