//! The DP096 seed table ("based on CSP modelling", an outage of 30,000 homes), carried as data
//! (`data/dp096-30k.csv`, embedded at build time) so that reports can put the seed's figure beside
//! the harness's. It applies only to a run of the same region and option with 30,000 premises.

use ledger::{AlertKind, Region};
use std::sync::OnceLock;

/// The seed's scenario size: the table applies only to runs with this many premises.
pub const SEED_PREMISES: u32 = 30_000;

static CSV: &str = include_str!("../data/dp096-30k.csv");

/// One row of the seed table: time (s) to reach `pct`% delivered under each option.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeedRow {
    /// The CSP region.
    pub region: Region,
    /// The alert kind.
    pub kind: AlertKind,
    /// Delivered level, percent.
    pub pct: f64,
    /// Seconds under Current, Option A and Option B.
    pub seconds: [u64; 3],
}

/// Parses the seed table's CSV (`region,alert,delivered_pct,current_s,option_a_s,option_b_s`).
pub fn parse(text: &str) -> Result<Vec<SeedRow>, String> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let err = |what: &str| format!("line {}: {what}: {line:?}", i + 1);
        if f.len() != 6 {
            return Err(err("expected 6 fields"));
        }
        let region = match f[0] {
            "north" => Region::NORTH,
            "central_south" | "central-south" => Region::CENTRAL_SOUTH,
            _ => return Err(err("unknown region")),
        };
        let kind = match f[1] {
            "poa" => AlertKind::Poa,
            "pra" => AlertKind::Pra,
            _ => return Err(err("unknown alert kind")),
        };
        let pct: f64 = f[2].parse().map_err(|_| err("bad delivered_pct"))?;
        let mut seconds = [0u64; 3];
        for (s, v) in seconds.iter_mut().zip(&f[3..]) {
            *s = v.parse().map_err(|_| err("bad seconds"))?;
        }
        rows.push(SeedRow {
            region,
            kind,
            pct,
            seconds,
        });
    }
    Ok(rows)
}

/// The embedded seed table (empty only if the embedded file were malformed, which a test forbids).
pub fn table() -> &'static [SeedRow] {
    static TABLE: OnceLock<Vec<SeedRow>> = OnceLock::new();
    TABLE.get_or_init(|| parse(CSV).unwrap_or_default())
}

/// The option's column in the seed table, if the label is one of the seed's options.
pub fn option_index(option_label: &str) -> Option<usize> {
    match option_label {
        "current" => Some(0),
        "option-a" => Some(1),
        "option-b" => Some(2),
        _ => None,
    }
}

/// The delivered levels the seed reports for a region and kind (50/80/95 North, 50/80/99 C&S).
pub fn levels(region: Region, kind: AlertKind) -> Vec<f64> {
    table()
        .iter()
        .filter(|r| r.region == region && r.kind == kind)
        .map(|r| r.pct)
        .collect()
}

/// The seed's time (s) to `pct`% for a run of this region, option and size, if the table applies.
pub fn seed_seconds(
    region: Region,
    kind: AlertKind,
    option_label: &str,
    premises: u32,
    pct: f64,
) -> Option<u64> {
    if premises != SEED_PREMISES {
        return None;
    }
    let col = option_index(option_label)?;
    table()
        .iter()
        .find(|r| r.region == region && r.kind == kind && (r.pct - pct).abs() < 1e-9)
        .map(|r| r.seconds[col])
}

/// The options in the seed table's column order.
pub const OPTIONS: [&str; 3] = ["current", "option-a", "option-b"];

/// Allowed deviation from a seed figure, s: 10% or 20 s, whichever is larger.
pub fn tolerance_s(seed_s: u64) -> f64 {
    (seed_s as f64 * 0.1).max(20.0)
}

/// One seed cell beside the harness's figure for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compared {
    /// The seed row.
    pub cell: SeedRow,
    /// Option column (0 Current, 1 A, 2 B).
    pub option: usize,
    /// The run's time to the row's percentage, s (`None`: never reached).
    pub model_s: Option<f64>,
}

impl Compared {
    /// The seed's figure, s.
    pub fn seed_s(&self) -> u64 {
        self.cell.seconds[self.option]
    }

    /// Within [`tolerance_s`]?
    pub fn pass(&self) -> bool {
        self.model_s
            .is_some_and(|m| (m - self.seed_s() as f64).abs() <= tolerance_s(self.seed_s()))
    }
}

/// Compares a finished ledger of `region` under option column `option` with the seed's cells for
/// that region (times from [`ledger::Ledger::time_to_pct`], the curve definition).
pub fn compare(ledger: &ledger::Ledger, region: Region, option: usize) -> Vec<Compared> {
    table()
        .iter()
        .filter(|r| r.region == region)
        .map(|r| Compared {
            cell: *r,
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

    #[test]
    fn embedded_table_parses() {
        assert_eq!(parse(CSV).unwrap().len(), 12);
        assert_eq!(
            levels(Region::NORTH, AlertKind::Poa),
            vec![50.0, 80.0, 95.0]
        );
        assert_eq!(
            levels(Region::CENTRAL_SOUTH, AlertKind::Pra),
            vec![50.0, 80.0, 99.0]
        );
        assert_eq!(
            seed_seconds(Region::NORTH, AlertKind::Poa, "current", 30_000, 50.0),
            Some(390)
        );
        assert_eq!(
            seed_seconds(Region::NORTH, AlertKind::Poa, "current", 1000, 50.0),
            None
        );
        assert_eq!(
            seed_seconds(Region::NORTH, AlertKind::Poa, "custom", 30_000, 50.0),
            None
        );
    }

    #[test]
    fn bad_rows_are_named() {
        let e = parse("h\nnorth,poa,50,1,2\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }
}
