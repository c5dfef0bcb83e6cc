//! `drive` in real time (scaled clock, multi-thread runtime) gives the same fates as `simulate`.

#![allow(clippy::unwrap_used)] // tests may panic on setup failures
use ledger::{AlertKind, Fate, Ledger};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use virtual_hubs::{
    DriveConfig, InstantAckSink, Profile, Progress, ScenarioClock, drive, simulate,
};

#[test]
fn real_time_run_matches_the_simulation() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../profiles/test/mixed-short.toml");
    let profile = Profile::load(&path).unwrap().with_premises(500);
    let (sim, _) = simulate(&profile, 5);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::new(profile.premises())));
    let progress = Arc::new(Progress::default());
    let report = rt.block_on(async {
        // 1 real second = 600 scenario seconds: the ~25-minute scenario takes a few seconds.
        let clock = ScenarioClock::start(600.0);
        let sink = Arc::new(InstantAckSink::new(ledger.clone(), clock));
        let mut cfg = DriveConfig::new(Arc::new(profile.clone()), 5, clock);
        cfg.progress = Some(progress.clone());
        drive(cfg, sink, ledger.clone()).await
    });
    let mut real = ledger.lock().unwrap().clone();
    real.finish(profile.horizon_ms());
    assert_eq!(progress.hubs_done.load(Ordering::Relaxed), 500);
    assert_eq!(progress.hubs_in_network.load(Ordering::Relaxed), 0);
    assert_eq!(report.hubs, 500);
    assert_eq!(report.network.late_requests, 0, "{report:?}");
    // Same decisions: every alert has the same fate (lost with the same cause, or delivered), and a
    // delivery is never earlier than intended; lateness is scheduling lag only (median under 6 s of
    // scenario time = 10 ms real; the machine may be busy, so the bound is loose).
    let mut late = Vec::new();
    for (a, b) in sim.records().zip(real.records()) {
        match (a.fate, b.fate) {
            (Fate::Delivered { at_ms: x }, Fate::Delivered { at_ms: y }) => {
                assert!(y >= x, "delivered before its intended time: {a:?} vs {b:?}");
                late.push(y - x);
            }
            (x, y) => assert_eq!(x, y, "{a:?} vs {b:?}"),
        }
    }
    late.sort_unstable();
    assert!(
        late[late.len() / 2] < 6_000,
        "median lateness {} ms",
        late[late.len() / 2]
    );
    assert_eq!(
        sim.delivered(AlertKind::Pra),
        real.delivered(AlertKind::Pra)
    );
}
