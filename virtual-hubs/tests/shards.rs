//! Shards split one run exactly: three shards driven in real time (each with its own ledger and
//! sink, as three processes would be) hand over and lose between them every alert of the unsplit
//! simulation, each alert in exactly one shard, with the same fate.

#![allow(clippy::unwrap_used)] // tests may panic on setup failures
use ledger::{Fate, Ledger, Shard};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use virtual_hubs::{
    DriveConfig, InstantAckSink, Profile, ScenarioClock, drive, simulate, simulate_shard,
};

fn profile() -> Profile {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../profiles/test/mixed-short.toml");
    Profile::load(&path).unwrap().with_premises(400)
}

#[test]
fn three_real_time_shards_are_the_simulation_split_by_premises() {
    let profile = Arc::new(profile());
    let (whole, whole_report) = simulate(&profile, 9).unwrap();
    let shards: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3).unwrap()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let parts: Vec<(Shard, Ledger, u64, u64)> = rt.block_on(async {
        let runs = shards.iter().map(|&shard| {
            let profile = profile.clone();
            async move {
                let ledger = Arc::new(Mutex::new(Ledger::new(profile.premises())));
                // 600x: the last alert leaves after ~25 scenario minutes, about 2.5 s.
                let clock = ScenarioClock::start(600.0);
                let sink = Arc::new(InstantAckSink::new(ledger.clone(), clock));
                let mut cfg = DriveConfig::new(profile.clone(), 9, clock);
                cfg.shard = shard;
                let report = drive(cfg, sink, ledger.clone()).await.unwrap();
                let mut l = ledger.lock().unwrap().clone();
                l.finish(profile.horizon_ms());
                (shard, l, report.submitted, report.lost_in_model)
            }
        });
        let mut out = Vec::new();
        for h in runs.map(|f| tokio::spawn(f)).collect::<Vec<_>>() {
            out.push(h.await.unwrap());
        }
        out
    });
    let (mut submitted, mut lost) = (0, 0);
    for (shard, l, s, lo) in &parts {
        submitted += s;
        lost += lo;
        assert!(
            l.records().all(|r| shard.owns(r.id)),
            "{shard}: only its own"
        );
        assert!(*s > 0, "{shard} sent nothing");
        // The virtual-time shard holds exactly the same alerts with the same losses.
        let (v, _) = simulate_shard(&profile, 9, *shard).unwrap();
        let ids = |l: &Ledger| l.records().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(&v), ids(l), "{shard}");
    }
    assert_eq!(submitted, whole_report.submitted);
    assert_eq!(lost, whole_report.lost_in_model);
    // Every expected alert of the whole run is in exactly one shard, with the same fate (a
    // delivery at its intended time or, in real time, a little later).
    let mut seen = 0;
    for r in whole.records() {
        let owners: Vec<_> = parts
            .iter()
            .filter_map(|(_, l, _, _)| l.fate(r.id))
            .collect();
        assert_eq!(owners.len(), 1, "alert {} in {} shards", r.id, owners.len());
        match (r.fate, owners[0]) {
            (Fate::Delivered { at_ms: x }, Fate::Delivered { at_ms: y }) => assert!(y >= x),
            (x, y) => assert_eq!(x, y, "alert {}", r.id),
        }
        seen += 1;
    }
    let total: usize = parts.iter().map(|(_, l, _, _)| l.records().count()).sum();
    assert_eq!(
        total, seen,
        "no shard holds an alert the whole run does not"
    );
}
