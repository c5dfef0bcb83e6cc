//! Prints one profile's delivery figures: time to 50/80/95/99% per alert kind, plateau, loss by
//! cause, and the simulation's wall time.
//!
//! `cargo run --release -p csp-model --example curve -- <profile.toml> [seed] [--changes 1,3]`

use csp_model::{Profile, simulate};
use ledger::AlertKind;
use reports::calibration::plateau_pct;
use reports::plot::mmss;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = PathBuf::from(
        args.first()
            .ok_or("usage: curve <profile.toml> [seed] [--changes 1,3]")?,
    );
    let seed: u64 = args.get(1).map_or(Ok(1), |s| s.parse())?;
    let extra: Vec<String> = match args.iter().position(|a| a == "--changes") {
        Some(i) => args
            .get(i + 1)
            .map(|s| s.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let p = Profile::load_with_changes(&path, &extra)?;
    let t = std::time::Instant::now();
    let (l, rep) = simulate(&p, seed)?;
    let wall = t.elapsed();
    for kind in AlertKind::ALL {
        let f = |pct: f64| {
            l.time_to_pct(kind, pct)
                .map_or("never".to_string(), |ms| mmss(ms as f64 / 1000.0))
        };
        println!(
            "{} [{}] {kind}: 50% {} 80% {} 95% {} 99% {} | delivered {:.2}% | lost {:?}",
            p.name(),
            p.option_label(),
            f(50.0),
            f(80.0),
            f(95.0),
            f(99.0),
            plateau_pct(&l, kind),
            l.lost_by_cause(kind)
        );
    }
    println!(
        "wall {wall:.2?}; radio {:?}; backlog {:?}",
        rep.network.radio, rep.network.max_waiting
    );
    Ok(())
}
