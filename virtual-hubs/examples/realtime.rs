//! Runs a profile in real time against the in-process instant-ack sink and prints one JSON line:
//! the driver's hand-over lateness (real and scenario ms) and whether what was delivered and lost
//! equals `simulate`'s for the same seed. No network and no endpoint: this measures the driver alone
//! (`bench/model/run.sh`), beside `csp-harness run`, which adds the QUIC egress and the endpoint.
//!
//! `realtime <profile.toml> [--time-scale N] [--seed N] [--premises N] [--look-ahead-ms N]`

use ledger::{AlertKind, Ledger};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use virtual_hubs::{DriveConfig, InstantAckSink, Profile, ScenarioClock, drive, simulate};

fn flag<T: std::str::FromStr>(args: &[String], name: &str) -> Result<Option<T>, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("{name} needs a number")),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: realtime <profile.toml> [--time-scale N] [--seed N] [--premises N] [--look-ahead-ms N]";
    let path = PathBuf::from(args.first().ok_or(usage)?);
    let scale: f64 = flag(&args, "--time-scale")?.unwrap_or(60.0);
    let seed: u64 = flag(&args, "--seed")?.unwrap_or(1);
    let mut profile = Profile::load(&path)?;
    if let Some(n) = flag::<u32>(&args, "--premises")? {
        profile = profile.with_premises(n);
    }
    let (sim, _) = simulate(&profile, seed)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let ledger = Arc::new(Mutex::new(Ledger::new(profile.premises())));
    let wall = Instant::now();
    let report = rt.block_on(async {
        let clock = ScenarioClock::start(scale);
        let sink = Arc::new(InstantAckSink::new(ledger.clone(), clock));
        let mut cfg = DriveConfig::new(Arc::new(profile.clone()), seed, clock);
        if let Some(ms) = flag::<u64>(&args, "--look-ahead-ms")? {
            cfg.look_ahead = Duration::from_millis(ms);
        }
        Ok::<_, Box<dyn std::error::Error>>(drive(cfg, sink, ledger.clone()).await?)
    })?;
    let wall_s = wall.elapsed().as_secs_f64();
    let mut real = ledger.lock().map_err(|_| "ledger poisoned")?.clone();
    real.finish(profile.horizon_ms());
    let same = AlertKind::ALL.iter().all(|&k| {
        sim.delivered(k) == real.delivered(k) && sim.lost_by_cause(k) == real.lost_by_cause(k)
    });
    let kind = |l: &Ledger, k: AlertKind| serde_json::json!({ "delivered": l.delivered(k), "lost": l.lost_by_cause(k) });
    let line = serde_json::json!({
        "profile": profile.name(),
        "premises": profile.premises(),
        "time_scale": scale,
        "seed": seed,
        "sink": "instant",
        "wall_s": wall_s,
        "handed_over": report.submitted,
        "lost_in_model": report.lost_in_model,
        "lag_real_ms": {
            "p99": report.p99_lag_real_ms,
            "p999": report.p999_lag_real_ms,
            "max": report.max_lag_real_ms,
        },
        "lag_scenario_ms": {
            "p99": report.p99_lag_ms,
            "p999": report.p999_lag_ms,
            "max": report.max_lag_ms,
        },
        "same_as_simulate": same,
        "hand_over_realtime": report.hand_over_realtime,
        "real": { "poa": kind(&real, AlertKind::Poa), "pra": kind(&real, AlertKind::Pra) },
        "simulate": { "poa": kind(&sim, AlertKind::Poa), "pra": kind(&sim, AlertKind::Pra) },
    });
    println!("{line}");
    Ok(())
}
