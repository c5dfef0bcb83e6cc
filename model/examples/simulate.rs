//! Simulates one profile and prints one JSON line (for `bench/model/run.sh`).
//!
//! `simulate <profile.toml> [seed] [--premises N]` — `--premises` rescales the population (cells
//! scale with it, so premises per cell stay as in the profile).

use csp_model::{Profile, simulate};
use ledger::AlertKind;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = PathBuf::from(
        args.first()
            .ok_or("usage: simulate <profile.toml> [seed] [--premises N]")?,
    );
    let seed: u64 = match args.get(1) {
        Some(s) if !s.starts_with("--") => s.parse()?,
        _ => 1,
    };
    let mut profile = Profile::load(&path)?;
    if let Some(i) = args.iter().position(|a| a == "--premises") {
        let n: u32 = args
            .get(i + 1)
            .ok_or("--premises needs a number")?
            .parse()?;
        profile = profile.with_premises(n);
    }
    let t = std::time::Instant::now();
    let (ledger, rep) = simulate(&profile, seed)?;
    let wall = t.elapsed().as_secs_f64();
    let kind = |k: AlertKind| {
        serde_json::json!({
            "expected": ledger.expected(k),
            "delivered": ledger.delivered(k),
            "t50_ms": ledger.time_to_pct(k, 50.0),
            "t80_ms": ledger.time_to_pct(k, 80.0),
            "t95_ms": ledger.time_to_pct(k, 95.0),
        })
    };
    let line = serde_json::json!({
        "profile": profile.name(),
        "option": profile.option_label(),
        "premises": profile.premises(),
        "cells": profile.population().cells,
        "seed": seed,
        "wall_s": wall,
        "scenario_end_ms": rep.end_ms,
        "submitted": rep.submitted,
        "lost_in_model": rep.lost_in_model,
        "radio_transmissions": rep.network.radio.transmissions,
        "late_requests": rep.network.late_requests,
        "poa": kind(AlertKind::Poa),
        "pra": kind(AlertKind::Pra),
    });
    println!("{line}");
    Ok(())
}
