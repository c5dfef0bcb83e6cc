//! The tokio driver: one task per hub around its [`HubMachine`], one network task, the sink.
//!
//! [`drive`] records every expected alert in the ledger, spawns the network task and one small task
//! per hub, and returns when all have finished. A hub task only relays: it passes its machine's
//! requests to the network (with a oneshot for the reply), feeds replies back, and at an alert's
//! intended exit time hands it to the [`Sink`], measuring how late it woke. [`simulate`] runs the same
//! thing on a paused tokio clock with the instant-ack sink.

use crate::clock::ScenarioClock;
use crate::hub::{Action, Decisions, HubMachine, Reply, kind_index};
use crate::network::{Msg, NetworkCore, NetworkStats, ReplyTx, run_network};
use crate::profile::{Params, Profile};
use crate::scenario::HubScenario;
use crate::sink::{InstantAckSink, Outbound, Sink};
use ledger::{AlertId, AlertKind, Ledger};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Live counters a display can poll while [`drive`] runs (all relaxed atomics).
///
/// Hub states: `hubs_scheduled` wait for the time of their next action; `hubs_in_network` have a
/// request outstanding with the modelled network (waiting for a
/// window, contending, attaching, queued in the transport); `hubs_exiting` have every alert decided
/// and are waiting for an exit time to hand an alert to the sink; `hubs_done` have finished.
#[derive(Debug, Default)]
pub struct Progress {
    /// Hubs spawned.
    pub hubs_started: AtomicU64,
    /// Hubs waiting for the time of their next action (power still off, window not yet open).
    pub hubs_scheduled: AtomicU64,
    /// Hubs with a request outstanding in the model.
    pub hubs_in_network: AtomicU64,
    /// Hubs waiting only to hand alerts to the sink.
    pub hubs_exiting: AtomicU64,
    /// Hubs finished.
    pub hubs_done: AtomicU64,
    /// Alerts handed to the sink.
    pub alerts_submitted: AtomicU64,
    /// Alerts lost inside the model (collision, holdover, attach, queue overflow, horizon).
    pub alerts_lost_in_model: AtomicU64,
    /// Lateness of the most recent hand-over to the sink behind its intended time, scenario ms
    /// (what a live display shows as the harness's current lag).
    pub last_lag_ms: AtomicU64,
}

/// What `drive` needs.
#[derive(Debug, Clone)]
pub struct DriveConfig {
    /// The profile.
    pub profile: Arc<Profile>,
    /// Seed for every random choice.
    pub seed: u64,
    /// Scenario clock.
    pub clock: ScenarioClock,
    /// Optional live counters (see [`Progress`]); `None` to skip.
    pub progress: Option<Arc<Progress>>,
}

impl DriveConfig {
    /// A config without progress counters.
    pub fn new(profile: Arc<Profile>, seed: u64, clock: ScenarioClock) -> Self {
        DriveConfig {
            profile,
            seed,
            clock,
            progress: None,
        }
    }
}

/// What `drive` reports about itself.
#[derive(Debug, Clone, Default)]
pub struct DriveReport {
    /// Scenario time when the last hub task finished, ms.
    pub end_ms: u64,
    /// Hubs that ran.
    pub hubs: u32,
    /// Largest lateness of a hub task behind its intended exit time, scenario ms.
    pub max_lag_ms: u64,
    /// 99th percentile of that lateness, scenario ms (HDR histogram, 3 significant digits).
    pub p99_lag_ms: u64,
    /// 99.9th percentile of that lateness, scenario ms.
    pub p999_lag_ms: u64,
    /// Alerts handed to the sink.
    pub submitted: u64,
    /// Alerts lost inside the model.
    pub lost_in_model: u64,
    /// The network's own counters (contention, late requests, backlogs).
    pub network: NetworkStats,
}

/// Lateness of hand-overs to the sink behind their intended times (scenario ms), in an HDR
/// histogram (3 significant digits) behind a mutex: recorded once per alert, read once at the end.
struct LagStats(std::sync::Mutex<hdrhistogram::Histogram<u64>>);

impl LagStats {
    fn new() -> Self {
        // `new` makes an auto-resizing histogram; 3 significant digits is a valid constant precision.
        let h = hdrhistogram::Histogram::new(3).expect("3 significant digits is a valid precision");
        LagStats(std::sync::Mutex::new(h))
    }
    fn record(&self, ms: u64) {
        let mut h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if h.record(ms).is_err() {
            h.saturating_record(ms);
        }
    }
    fn quantile(&self, q: f64) -> u64 {
        let h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if h.is_empty() {
            0
        } else {
            h.value_at_quantile(q)
        }
    }
    fn max(&self) -> u64 {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).max()
    }
}

struct Shared {
    profile: Arc<Profile>,
    seed: u64,
    clock: ScenarioClock,
    sink: Arc<dyn Sink>,
    ledger: Arc<Mutex<Ledger>>,
    progress: Arc<Progress>,
    lag: LagStats,
    /// How long before its scenario time a hub hands a request to the network, µs.
    lead_us: u64,
    net: mpsc::UnboundedSender<Msg<ReplyTx>>,
}

/// The device id of premises `hub` (EUI-64 style).
pub fn device_id(hub: u32) -> u64 {
    0x0012_4B00_0000_0000 | u64::from(hub)
}

/// Grace the network waits past a due time before resolving it, in real time (so a hub task a few
/// ms late still lands in its slot when running against the real clock).
const GRACE_REAL_MS: f64 = 5.0;

/// Runs the scenario: records expected alerts in the ledger, spawns one task per hub, runs the
/// shaped transport, hands surviving alerts to `sink` at their intended times, records model losses.
///
/// Works on a paused tokio clock and in real time on a multi-thread runtime: the network resolves
/// scenario time `t` only when the clock has passed `t` plus a grace of 5 ms real time, so hub tasks
/// a few ms late still land in their slot (later ones are moved to the next open slot and counted in
/// `DriveReport::network.late_requests`).
pub async fn drive(
    cfg: DriveConfig,
    sink: Arc<dyn Sink>,
    ledger: Arc<Mutex<Ledger>>,
) -> DriveReport {
    let grace_us = (GRACE_REAL_MS * 1000.0 * cfg.clock.scale()).round() as u64;
    drive_with_grace(cfg, sink, ledger, grace_us).await
}

async fn drive_with_grace(
    cfg: DriveConfig,
    sink: Arc<dyn Sink>,
    ledger: Arc<Mutex<Ledger>>,
    grace_us: u64,
) -> DriveReport {
    let profile = cfg.profile.clone();
    let p = profile.params();
    let n = profile.premises();
    if let Ok(mut l) = ledger.lock() {
        for hub in 0..n {
            if let Err(e) = HubScenario::new(p, cfg.seed, hub).expect(p, &mut l) {
                tracing::warn!("ledger refused an expectation: {e}");
            }
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let net = tokio::spawn(run_network(NetworkCore::new(p), rx, cfg.clock, grace_us));
    let progress = cfg.progress.clone().unwrap_or_default();
    let shared = Arc::new(Shared {
        profile: profile.clone(),
        seed: cfg.seed,
        clock: cfg.clock,
        sink,
        ledger,
        progress,
        lag: LagStats::new(),
        lead_us: 1_000_000 + 2 * grace_us,
        net: tx,
    });
    // If `drive` is dropped (Ctrl-C in a run), the hub tasks and the network task stop with it.
    let mut handles = AbortOnDrop(Vec::with_capacity(n as usize + 1));
    for hub in 0..n {
        let fut = hub_task(shared.clone(), hub);
        handles.0.push(tokio::spawn(fut));
    }
    for h in handles.0.iter_mut() {
        if let Err(e) = h.await {
            tracing::error!("hub task failed: {e}");
        }
    }
    let end_ms = shared.clock.now_ms();
    let lag = &shared.lag;
    let report = DriveReport {
        end_ms,
        hubs: n,
        max_lag_ms: lag.max(),
        p99_lag_ms: lag.quantile(0.99),
        p999_lag_ms: lag.quantile(0.999),
        submitted: shared.progress.alerts_submitted.load(Relaxed),
        lost_in_model: shared.progress.alerts_lost_in_model.load(Relaxed),
        network: NetworkStats::default(),
    };
    drop(shared);
    let network = net.await.unwrap_or_default();
    DriveReport { network, ..report }
}

/// Aborts every task it holds when dropped (a no-op for tasks already finished).
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// Per-alert state inside a hub task.
enum Slot {
    Idle,
    /// A decided request, sent to the network shortly before its scenario time.
    Scheduled(Action),
    Waiting(oneshot::Receiver<Reply>),
    Exit(u64),
}

/// Scenario time (µs) a scheduled request is for.
fn action_time(p: &Params, a: &Action) -> u64 {
    match *a {
        Action::Radio { slot, .. } => {
            slot * p.radio.as_ref().map_or(100_000, |r| r.slot.us().max(1))
        }
        Action::Attach { at_us, .. } | Action::Route { at_us, .. } => at_us,
        Action::Exit(t) | Action::Lose(_, t) => t,
    }
}

async fn recv(slot: &mut Slot) -> Option<Reply> {
    match slot {
        Slot::Waiting(rx) => rx.await.ok(),
        _ => std::future::pending().await,
    }
}

async fn hub_task(sh: Arc<Shared>, hub: u32) {
    let p = sh.profile.params();
    let mut m = HubMachine::new(p, sh.seed, hub);
    let mut slots = [Slot::Idle, Slot::Idle];
    let mut seq = 0u32;
    sh.progress.hubs_started.fetch_add(1, Relaxed);
    let mut phase = Phase::None;
    let d = m.start(p);
    apply(&sh, &m, &mut slots, d);
    loop {
        let mut wake: Option<u64> = None;
        let mut waiting = false;
        let mut exiting = false;
        for s in &slots {
            let t = match s {
                Slot::Exit(t) => {
                    exiting = true;
                    *t
                }
                Slot::Scheduled(a) => action_time(p, a).saturating_sub(sh.lead_us),
                Slot::Waiting(_) => {
                    waiting = true;
                    continue;
                }
                Slot::Idle => continue,
            };
            wake = Some(wake.map_or(t, |w| w.min(t)));
        }
        let new_phase = if waiting {
            Phase::Network
        } else if exiting {
            Phase::Exiting
        } else if wake.is_some() {
            Phase::Scheduled
        } else {
            Phase::None
        };
        set_phase(&sh.progress, &mut phase, new_phase);
        if new_phase == Phase::None {
            break;
        }
        let [s0, s1] = &mut slots;
        let at = sh.clock.instant_at_us(wake.unwrap_or(0));
        tokio::select! {
            r = recv(s0) => {
                *s0 = Slot::Idle;
                if let Some(r) = r {
                    let d = m.on_reply(p, AlertKind::Poa, r);
                    apply(&sh, &m, &mut slots, d);
                }
            }
            r = recv(s1) => {
                *s1 = Slot::Idle;
                if let Some(r) = r {
                    let d = m.on_reply(p, AlertKind::Pra, r);
                    apply(&sh, &m, &mut slots, d);
                }
            }
            _ = tokio::time::sleep_until(at), if wake.is_some() => {
                let now_us = sh.clock.now_us();
                for kind in AlertKind::ALL {
                    let k = kind_index(kind);
                    match slots[k] {
                        Slot::Exit(t) if t <= now_us => {
                            slots[k] = Slot::Idle;
                            seq += 1;
                            let lag_ms = (now_us - t) / 1000;
                            sh.lag.record(lag_ms);
                            sh.progress.last_lag_ms.store(lag_ms, Relaxed);
                            submit(&sh, p, &m, kind, t, seq);
                        }
                        Slot::Scheduled(a) if action_time(p, &a).saturating_sub(sh.lead_us) <= now_us => {
                            send_now(&sh, &m, &mut slots, kind, a);
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    set_phase(&sh.progress, &mut phase, Phase::None);
    sh.progress.hubs_done.fetch_add(1, Relaxed);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    None,
    Scheduled,
    Network,
    Exiting,
}

fn set_phase(pr: &Progress, cur: &mut Phase, new: Phase) {
    if *cur == new {
        return;
    }
    match *cur {
        Phase::Scheduled => pr.hubs_scheduled.fetch_sub(1, Relaxed),
        Phase::Network => pr.hubs_in_network.fetch_sub(1, Relaxed),
        Phase::Exiting => pr.hubs_exiting.fetch_sub(1, Relaxed),
        Phase::None => 0,
    };
    match new {
        Phase::Scheduled => pr.hubs_scheduled.fetch_add(1, Relaxed),
        Phase::Network => pr.hubs_in_network.fetch_add(1, Relaxed),
        Phase::Exiting => pr.hubs_exiting.fetch_add(1, Relaxed),
        Phase::None => 0,
    };
    *cur = new;
}

fn submit(sh: &Shared, p: &Params, m: &HubMachine, kind: AlertKind, exit_us: u64, seq: u32) {
    let code = match kind {
        AlertKind::Poa => ledger::AlertCode::Ad1,
        AlertKind::Pra => m.scen.pra_code(p),
    };
    let event_ms = match kind {
        AlertKind::Poa => m.scen.cut_us / 1000,
        AlertKind::Pra => m.scen.restore_us / 1000,
    };
    sh.progress.alerts_submitted.fetch_add(1, Relaxed);
    sh.sink.submit(Outbound {
        id: AlertId::new(m.scen.hub, kind),
        code,
        device_id: device_id(m.scen.hub),
        region: sh.profile.region(),
        event_ms,
        seq,
        exit_ms: exit_us.div_ceil(1000),
    });
}

fn apply(sh: &Shared, m: &HubMachine, slots: &mut [Slot; 2], d: Decisions) {
    let hub = m.scen.hub;
    for kind in AlertKind::ALL {
        let k = kind_index(kind);
        let Some(a) = d[k] else { continue };
        match a {
            Action::Exit(t) => slots[k] = Slot::Exit(t),
            Action::Lose(cause, at_us) => {
                slots[k] = Slot::Idle;
                sh.progress.alerts_lost_in_model.fetch_add(1, Relaxed);
                if let Ok(mut l) = sh.ledger.lock() {
                    let _ = l.lose(AlertId::new(hub, kind), cause, at_us / 1000);
                }
            }
            Action::Radio { .. } | Action::Route { .. } | Action::Attach { .. } => {
                slots[k] = Slot::Scheduled(a);
            }
        }
    }
}

/// Hands a scheduled request to the network, with a oneshot per alert it concerns.
fn send_now(sh: &Shared, m: &HubMachine, slots: &mut [Slot; 2], kind: AlertKind, a: Action) {
    let k = kind_index(kind);
    let mut tokens = [None, None];
    let (t, r) = oneshot::channel();
    tokens[k] = Some(t);
    slots[k] = Slot::Waiting(r);
    if matches!(a, Action::Attach { with_poa: true, .. }) && !m.is_done(AlertKind::Poa) {
        let (t0, r0) = oneshot::channel();
        tokens[0] = Some(t0);
        slots[0] = Slot::Waiting(r0);
    }
    send(sh, m.scen.hub, kind, a, tokens);
}

fn send(sh: &Shared, hub: u32, kind: AlertKind, action: Action, tokens: [Option<ReplyTx>; 2]) {
    if sh
        .net
        .send(Msg {
            hub,
            kind,
            action,
            tokens,
        })
        .is_err()
    {
        tracing::error!("network task ended early");
    }
}

/// Runs `profile` on a paused tokio clock with [`InstantAckSink`] and closes the ledger at the
/// horizon. The same seed gives the same ledger every time.
pub fn simulate(profile: &Profile, seed: u64) -> (Ledger, DriveReport) {
    let ledger = Arc::new(Mutex::new(Ledger::new(profile.premises())));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build();
    let report = match rt {
        Ok(rt) => rt.block_on(async {
            let clock = ScenarioClock::start(1.0);
            let sink = Arc::new(InstantAckSink::new(ledger.clone(), clock));
            let cfg = DriveConfig::new(Arc::new(profile.clone()), seed, clock);
            // A paused clock only advances when every task is idle: no grace is needed.
            drive_with_grace(cfg, sink, ledger.clone(), 0).await
        }),
        Err(e) => {
            tracing::error!("cannot build a tokio runtime: {e}");
            DriveReport::default()
        }
    };
    let mut l = match Arc::try_unwrap(ledger) {
        Ok(m) => m.into_inner().unwrap_or_else(|e| e.into_inner()),
        Err(arc) => arc
            .lock()
            .map(|l| l.clone())
            .unwrap_or_else(|e| e.into_inner().clone()),
    };
    l.finish(profile.horizon_ms());
    (l, report)
}
