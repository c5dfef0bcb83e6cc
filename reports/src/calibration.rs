//! The DP096 seed table ("based on CSP modelling", an outage of 30,000 homes), carried as data
//! (`data/dp096-30k.csv`, one row per region, alert, level and option, embedded at build time) so
//! that reports can put the seed's figure beside the harness's. It applies only to a run of the
//! same region and option with 30,000 premises. Regions are matched by name and options by label:
//! the table's rows, not this code, say which exist.

use ledger::{AlertKind, Region};
use serde::Deserialize;
use std::sync::OnceLock;

/// The seed's scenario size: the table applies only to runs with this many premises.
pub const SEED_PREMISES: u32 = 30_000;

/// The seed table's options, in its order. Kept as a constant for callers that iterate the
/// seed's profiles by file name; a test pins it to [`options`].
pub const OPTIONS: [&str; 3] = ["current", "option-a", "option-b"];

static CSV: &str = include_str!("../data/dp096-30k.csv");

/// One cell of the seed table: the time (s) to reach `pct`% delivered under one option.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SeedRow {
    /// The region's name (`north`, `central-south`), as [`Region::as_str`] spells it.
    pub region: String,
    /// The alert kind.
    #[serde(rename = "alert")]
    pub kind: AlertKind,
    /// Delivered level, percent.
    #[serde(rename = "delivered_pct")]
    pub pct: f64,
    /// The option's label (`current`, `option-a`, `option-b`).
    pub option: String,
    /// Seconds to reach the level.
    pub seconds: u64,
}

/// Parses the seed table's CSV (`region,alert,delivered_pct,option,seconds`); errors name the line.
pub fn parse(text: &str) -> Result<Vec<SeedRow>, String> {
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<Vec<SeedRow>, _>>()
        .map_err(|e| format!("dp096-30k.csv: {e}"))
}

/// The embedded seed table (empty only if the embedded file were malformed, which a test forbids).
pub fn table() -> &'static [SeedRow] {
    static TABLE: OnceLock<Vec<SeedRow>> = OnceLock::new();
    TABLE.get_or_init(|| parse(CSV).unwrap_or_default())
}

/// The options the seed table has figures for, in the order they first appear in it.
pub fn options() -> &'static [String] {
    static OPTS: OnceLock<Vec<String>> = OnceLock::new();
    OPTS.get_or_init(|| {
        let mut v: Vec<String> = Vec::new();
        for r in table() {
            if !v.contains(&r.option) {
                v.push(r.option.clone());
            }
        }
        v
    })
}

/// The option's place in [`options`], if the seed table knows it.
pub fn option_index(option_label: &str) -> Option<usize> {
    options().iter().position(|o| o == option_label)
}

/// The delivered levels the seed reports for a region and kind (50/80/95 North, 50/80/99 C&S;
/// none for a region the table does not know).
pub fn levels(region: &Region, kind: AlertKind) -> Vec<f64> {
    let mut out: Vec<f64> = Vec::new();
    for r in table()
        .iter()
        .filter(|r| r.region == region.as_str() && r.kind == kind)
    {
        if !out.contains(&r.pct) {
            out.push(r.pct);
        }
    }
    out
}

/// The seed's time (s) to `pct`% for a run of this region, option and size, if the table applies.
pub fn seed_seconds(
    region: &Region,
    kind: AlertKind,
    option_label: &str,
    premises: u32,
    pct: f64,
) -> Option<u64> {
    if premises != SEED_PREMISES {
        return None;
    }
    table()
        .iter()
        .find(|r| {
            r.region == region.as_str()
                && r.kind == kind
                && r.option == option_label
                && (r.pct - pct).abs() < 1e-9
        })
        .map(|r| r.seconds)
}

/// Allowed deviation from a seed figure, s: 10% or 20 s, whichever is larger.
pub fn tolerance_s(seed_s: u64) -> f64 {
    (seed_s as f64 * 0.1).max(20.0)
}

/// One seed cell beside the harness's figure for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    /// The seed's cell.
    pub cell: SeedRow,
    /// The option's place in [`options`].
    pub option: usize,
    /// The run's time to the cell's percentage, s (`None`: never reached).
    pub model_s: Option<f64>,
}

impl Compared {
    /// The seed's figure, s.
    pub fn seed_s(&self) -> u64 {
        self.cell.seconds
    }

    /// Within [`tolerance_s`]?
    pub fn pass(&self) -> bool {
        self.model_s
            .is_some_and(|m| (m - self.seed_s() as f64).abs() <= tolerance_s(self.seed_s()))
    }
}

/// Compares a finished ledger of `region` under the seed's option number `option` (its place in
/// [`options`]) with the seed's cells for them (times from [`ledger::Ledger::time_to_pct`], the
/// curve definition).
pub fn compare(ledger: &ledger::Ledger, region: Region, option: usize) -> Vec<Compared> {
    let Some(label) = options().get(option) else {
        return Vec::new();
    };
    table()
        .iter()
        .filter(|r| r.region == region.as_str() && &r.option == label)
        .map(|r| Compared {
            cell: r.clone(),
            option,
            model_s: ledger
                .time_to_pct(r.kind, r.pct)
                .map(|ms| ms as f64 / 1000.0),
        })
        .collect()
}

/// Delivered / expected for `kind`, percent (0 when nothing is expected).
pub fn plateau_pct(ledger: &ledger::Ledger, kind: AlertKind) -> f64 {
    let e = ledger.expected(kind);
    if e == 0 {
        return 0.0;
    }
    100.0 * ledger.delivered(kind) as f64 / e as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(name: &str) -> Region {
        serde_json::from_value(serde_json::Value::String(name.into())).unwrap()
    }

    #[test]
    fn embedded_table_parses() {
        assert_eq!(parse(CSV).unwrap().len(), 36);
        assert_eq!(options(), OPTIONS);
        assert_eq!(
            levels(&region("north"), AlertKind::Poa),
            vec![50.0, 80.0, 95.0]
        );
        assert_eq!(
            levels(&region("central-south"), AlertKind::Pra),
            vec![50.0, 80.0, 99.0]
        );
        assert_eq!(
            seed_seconds(&region("north"), AlertKind::Poa, "current", 30_000, 50.0),
            Some(390)
        );
        assert_eq!(
            seed_seconds(
                &region("central-south"),
                AlertKind::Pra,
                "option-b",
                30_000,
                99.0
            ),
            Some(180)
        );
        assert_eq!(
            seed_seconds(&region("north"), AlertKind::Poa, "current", 1000, 50.0),
            None
        );
        assert_eq!(
            seed_seconds(&region("north"), AlertKind::Poa, "custom", 30_000, 50.0),
            None
        );
        // Every region, kind and level has a figure for every option.
        assert_eq!(table().len(), 12 * options().len());
    }

    #[test]
    fn bad_rows_are_named() {
        let e =
            parse("region,alert,delivered_pct,option,seconds\nnorth,poa,50,current\n").unwrap_err();
        assert!(e.contains("line: 2"), "{e}");
        let e = parse("region,alert,delivered_pct,option,seconds\nnorth,xyz,50,current,1\n")
            .unwrap_err();
        assert!(e.contains("xyz"), "{e}");
    }
}
