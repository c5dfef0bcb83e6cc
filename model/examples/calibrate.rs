//! Prints the seed table against the model (36 cells, PASS/FAIL), the North/C&S plateaus with loss
//! by cause, and the effect of each technical change alone applied to Current.
//!
//! `cargo run --release -p csp-model --example calibrate -- [profiles-dir] [seed]`

use csp_model::{Profile, simulate};
use ledger::{AlertKind, Ledger, Region};
use reports::calibration::{OPTIONS, compare, plateau_pct, tolerance_s};
use reports::plot::mmss;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "profiles".into()));
    let seed: u64 = args.next().map_or(Ok(1), |s| s.parse())?;
    let regions = [
        ("north", Region::NORTH),
        ("central-south", Region::CENTRAL_SOUTH),
    ];
    let mut fails = 0;
    println!("seed {seed}; tolerance ±10% or ±20 s, whichever is larger");
    println!(
        "| region | alert | delivered | option | seed | model | diff | tol | |\n|---|---|---|---|---|---|---|---|---|"
    );
    let mut currents: Vec<(Region, Ledger)> = Vec::new();
    for (dirname, region) in regions {
        for (oi, opt) in OPTIONS.iter().enumerate() {
            let path = dir.join(dirname).join(format!("{opt}.toml"));
            let p = Profile::load(&path)?;
            let t = std::time::Instant::now();
            let (l, rep) = simulate(&p, seed)?;
            let el = t.elapsed();
            for c in compare(&l, region, oi) {
                let ok = c.pass();
                if !ok {
                    fails += 1;
                }
                let (m, d) = match c.model_s {
                    Some(m) => (mmss(m), format!("{:+.0}", m - c.seed_s() as f64)),
                    None => ("never".into(), "-".into()),
                };
                println!(
                    "| {region} | {} | {}% | {opt} | {} | {m} | {d} | {:.0} | {} |",
                    c.cell.kind,
                    c.cell.pct,
                    mmss(c.seed_s() as f64),
                    tolerance_s(c.seed_s()),
                    if ok { "PASS" } else { "FAIL" }
                );
            }
            for kind in AlertKind::ALL {
                eprintln!(
                    "  {} {kind}: delivered {:.2}% of {} expected; lost {:?}",
                    p.name(),
                    plateau_pct(&l, kind),
                    l.expected(kind),
                    l.lost_by_cause(kind)
                );
            }
            eprintln!(
                "  {}: {:.2?} wall, radio {:?}, late {}, backlog {:?}",
                p.name(),
                el,
                rep.network.radio,
                rep.network.late_requests,
                rep.network.max_waiting
            );
            if oi == 0 {
                currents.push((region, l));
            }
        }
    }
    println!("\n{fails} of 36 cells outside tolerance");
    println!("\nEach change alone applied to Current (model seconds; Current → with the change):");
    println!(
        "| change | region | cell | current | with change | delta |\n|---|---|---|---|---|---|"
    );
    for ch in 1..=8 {
        for ((dirname, region), (_, cur)) in regions.iter().zip(&currents) {
            let path = dir.join(dirname).join("current.toml");
            let p = Profile::load_with_changes(&path, &[ch.to_string()])?;
            let (l, _) = simulate(&p, seed)?;
            for c in compare(&l, *region, 0) {
                let before = cur
                    .time_to_pct(c.cell.kind, c.cell.pct)
                    .map(|v| v as f64 / 1000.0);
                let (b, a) = (
                    before.map_or("never".into(), mmss),
                    c.model_s.map_or("never".into(), mmss),
                );
                let delta = match (before, c.model_s) {
                    (Some(b), Some(a)) => format!("{:+.0} s", a - b),
                    (None, Some(_)) => "now reached".into(),
                    (Some(_), None) => "NO LONGER REACHED".into(),
                    (None, None) => "-".into(),
                };
                println!(
                    "| {ch} | {region} | {} {}% | {b} | {a} | {delta} |",
                    c.cell.kind, c.cell.pct
                );
            }
        }
    }
    Ok(())
}
