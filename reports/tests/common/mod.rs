//! Synthetic ledgers for the tests: alerts delivered along curves shaped like the DP096 seed table
//! (taken from the crate's own copy), with losses by cause. Test data, not a model.

#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use ledger::{AlertCode, AlertId, AlertKind, Ledger, LossCause, Region};
use reports::calibration;
use reports::{LoadedRun, RunMeta};
use std::path::PathBuf;

/// A small deterministic generator (no rand dependency in this crate).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Lcg(seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407))
    }
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Where the scenario restores power (ms): PRA latencies run from here.
pub fn restoration_ms(region: Region) -> u64 {
    if region == Region::NORTH {
        3_600_000
    } else {
        600_000
    }
}

/// (share delivered, seconds) knots of an inverse CDF through the seed's points, and the losses.
type Shape = (Vec<(f64, f64)>, Vec<(LossCause, f64)>);

fn shape(region: Region, kind: AlertKind, option: &str) -> Shape {
    let levels = calibration::levels(region, kind);
    let t =
        |p: f64| calibration::seed_seconds(region, kind, option, 30_000, p).unwrap_or(600) as f64;
    let t50 = t(levels[0]);
    let start = match kind {
        AlertKind::Poa if region == Region::NORTH => 180.0_f64.max(t50 * 0.55),
        _ => t50 * 0.45,
    };
    let mut knots = vec![(0.0, start)];
    for &p in &levels {
        knots.push((p / 100.0, t(p)));
    }
    let top = levels[levels.len() - 1];
    let (plateau, losses) = match (region.as_str(), kind) {
        ("north", AlertKind::Poa) => (
            0.95,
            vec![
                (LossCause::Collision, 0.035),
                (LossCause::HoldoverExpired, 0.015),
            ],
        ),
        ("north", AlertKind::Pra) => (
            0.982,
            vec![
                (LossCause::QueueOverflow, 0.012),
                (LossCause::NotDeliveredByEnd, 0.006),
            ],
        ),
        (_, AlertKind::Poa) => (0.994, vec![(LossCause::AttachFailure, 0.006)]),
        (_, AlertKind::Pra) => (
            0.991,
            vec![
                (LossCause::AttachFailure, 0.008),
                (LossCause::EndpointRejected, 0.001),
            ],
        ),
    };
    if plateau > top / 100.0 + 1e-9 {
        knots.push((plateau, t(top) * 1.12));
    }
    (knots, losses)
}

fn inverse(knots: &[(f64, f64)], u: f64) -> f64 {
    for w in knots.windows(2) {
        let ((p0, t0), (p1, t1)) = (w[0], w[1]);
        if u <= p1 {
            return t0 + (t1 - t0) * (u - p0) / (p1 - p0).max(1e-12);
        }
    }
    knots[knots.len() - 1].1
}

/// A finished ledger of `hubs` premises shaped like the seed's `option` in `region`, with
/// `extra_false_positives` POAs acknowledged for premises that had no 3-minute outage.
pub fn synthetic(region: Region, option: &str, hubs: u32, seed: u64) -> (RunMeta, Ledger) {
    let extra = 3;
    let mut l = Ledger::new(hubs + extra);
    let mut rng = Lcg::new(seed ^ (option.len() as u64 * 7919));
    let restore = restoration_ms(region);
    for kind in AlertKind::ALL {
        let (knots, losses) = shape(region, kind, option);
        let plateau = knots[knots.len() - 1].0;
        for h in 0..hubs {
            let id = AlertId::new(h, kind);
            let (code, base) = match kind {
                AlertKind::Poa => (AlertCode::Ad1, 0),
                AlertKind::Pra => (AlertCode::Restored8F36, restore),
            };
            l.expect(id, code, base).unwrap();
            let u = rng.next_f64();
            if u < plateau {
                let ms = (inverse(&knots, u) * 1000.0) as u64;
                l.deliver(id, base + ms).unwrap();
            } else {
                let mut acc = plateau;
                let mut cause = losses[0].0;
                for &(c, share) in &losses {
                    cause = c;
                    acc += share;
                    if u < acc {
                        break;
                    }
                }
                if cause != LossCause::NotDeliveredByEnd {
                    l.lose(id, cause, base + 1000).unwrap();
                }
            }
        }
    }
    // Anomalies: a duplicate ack, and false-positive POAs for premises without a long outage.
    let _ = l.deliver(AlertId::new(0, AlertKind::Poa), 1);
    for h in hubs..hubs + extra {
        let _ = l.deliver(AlertId::new(h, AlertKind::Poa), 200_000);
    }
    l.finish(restore + 3_600_000);
    let mut meta = RunMeta::new(
        format!("{}/{option}", region.as_str()),
        region,
        option,
        seed,
        hubs,
    );
    meta.time_scale = 60.0;
    meta.wall_s = 12.5;
    meta.changes = match option {
        "option-a" => (1..=5).map(|c| c.to_string()).collect(),
        "option-b" => (1..=8).map(|c| c.to_string()).collect(),
        _ => Vec::new(),
    };
    (meta, l)
}

/// A fresh directory under the system temp dir (removed first if it exists).
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("csp-reports-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Three options of one region, as in-memory runs.
pub fn three_options(region: Region, hubs: u32, seed: u64) -> Vec<LoadedRun> {
    ["current", "option-a", "option-b"]
        .iter()
        .map(|o| {
            let (m, l) = synthetic(region, o, hubs, seed);
            LoadedRun::from_ledger(reports::summarize(m, &l), &l)
        })
        .collect()
}

/// Decodes a PNG and returns (width, height, variance of the luma).
pub fn png_stats(path: &std::path::Path) -> (u32, u32, f64) {
    let img = image::open(path).unwrap().to_luma8();
    let (w, h) = img.dimensions();
    let n = (w * h) as f64;
    let mean = img.pixels().map(|p| p.0[0] as f64).sum::<f64>() / n;
    let var = img
        .pixels()
        .map(|p| (p.0[0] as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    (w, h, var)
}
