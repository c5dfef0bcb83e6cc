//! The seed's calibration table (DP096, 'based on CSP modelling', 30,000 homes) and the comparison of
//! a simulated ledger against it.
//!
//! The table is reference data (the target), never model output: the model's figures always come
//! from `ledger::time_to_pct` over a simulated ledger. Tolerance: ±10% or ±20 s, whichever is larger.

use ledger::{AlertKind, Ledger, Region};

/// One cell of the seed table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeedCell {
    /// Region.
    pub region: Region,
    /// Alert kind.
    pub kind: AlertKind,
    /// Delivered percentage.
    pub pct: f64,
    /// Seed figures in seconds: Current, Option A, Option B.
    pub secs: [u64; 3],
}

const fn cell(region: Region, kind: AlertKind, pct: f64, secs: [u64; 3]) -> SeedCell {
    SeedCell {
        region,
        kind,
        pct,
        secs,
    }
}

/// The seed table (same figures as `reports/data/dp096-30k.csv`).
pub const SEED_TABLE: [SeedCell; 12] = [
    cell(Region::North, AlertKind::Poa, 50.0, [390, 230, 235]),
    cell(Region::North, AlertKind::Poa, 80.0, [525, 330, 285]),
    cell(Region::North, AlertKind::Poa, 95.0, [900, 600, 600]),
    cell(Region::North, AlertKind::Pra, 50.0, [1440, 227, 227]),
    cell(Region::North, AlertKind::Pra, 80.0, [2160, 312, 312]),
    cell(Region::North, AlertKind::Pra, 95.0, [2700, 480, 480]),
    cell(Region::CentralSouth, AlertKind::Poa, 50.0, [555, 390, 330]),
    cell(Region::CentralSouth, AlertKind::Poa, 80.0, [660, 432, 372]),
    cell(Region::CentralSouth, AlertKind::Poa, 99.0, [780, 480, 420]),
    cell(Region::CentralSouth, AlertKind::Pra, 50.0, [160, 160, 110]),
    cell(Region::CentralSouth, AlertKind::Pra, 80.0, [190, 190, 140]),
    cell(Region::CentralSouth, AlertKind::Pra, 99.0, [210, 210, 180]),
];

/// The options in table order.
pub const OPTIONS: [&str; 3] = ["current", "option-a", "option-b"];

/// Allowed deviation from a seed figure, s: 10% or 20 s, whichever is larger.
pub fn tolerance_s(seed_s: u64) -> f64 {
    (seed_s as f64 * 0.1).max(20.0)
}

/// One compared cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compared {
    /// The seed cell.
    pub cell: SeedCell,
    /// Option index (0 Current, 1 A, 2 B).
    pub option: usize,
    /// Model time to the percentage, s (`None`: never reached).
    pub model_s: Option<f64>,
}

impl Compared {
    /// Seed figure, s.
    pub fn seed_s(&self) -> u64 {
        self.cell.secs[self.option]
    }
    /// Within tolerance?
    pub fn pass(&self) -> bool {
        self.model_s
            .is_some_and(|m| (m - self.seed_s() as f64).abs() <= tolerance_s(self.seed_s()))
    }
}

/// Compares a simulated ledger of `region` under option `option` with the seed cells.
pub fn compare(ledger: &Ledger, region: Region, option: usize) -> Vec<Compared> {
    SEED_TABLE
        .iter()
        .filter(|c| c.region == region)
        .map(|c| Compared {
            cell: *c,
            option,
            model_s: ledger
                .time_to_pct(c.kind, c.pct)
                .map(|ms| ms as f64 / 1000.0),
        })
        .collect()
}

/// Delivered / expected for `kind`, percent.
pub fn plateau_pct(ledger: &Ledger, kind: AlertKind) -> f64 {
    let e = ledger.expected(kind);
    if e == 0 {
        return 0.0;
    }
    100.0 * ledger.delivered(kind) as f64 / e as f64
}

/// `m:ss` for a number of seconds.
pub fn mmss(s: f64) -> String {
    let s = s.round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}
