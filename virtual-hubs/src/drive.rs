//! The real-time driver: the model's discrete-event loop, paced by the scaled clock.
//!
//! The network model is deterministic and nothing the endpoint does feeds back into it, so real
//! time needs no model of its own: [`drive`] runs the same [`Simulation`] as [`simulate`], paced
//! by the clock, on two dedicated threads:
//!
//! * the **model thread** advances the simulation one scenario instant at a time, never more than
//!   a bounded look-ahead ([`DriveConfig::look_ahead`]) ahead of the clock, sends each exit it
//!   produces to the hand-over thread (exits come out in time order) and writes the model's losses
//!   to the ledger; when it is that far ahead it sleeps until the window moves;
//! * the **hand-over thread** sleeps until the next exit's intended time, hands the alert to the
//!   [`Sink`] and records how late the hand-over was against that intended time (a slow hand-over
//!   is measured, never hidden), in real ms and in scenario ms.
//!
//! A shard ([`DriveConfig::shard`], [`ledger::Shard`]) runs the same whole model and keeps only its
//! own premises' alerts: it expects, hands over and records the losses of those alone, so the
//! union of the shards' ledgers is the ledger of the unsplit run.
//!
//! The model's decisions are the same as `simulate`'s by construction, whatever the machine's load;
//! only the hand-over time can be late, and bursts of model work never delay a hand-over (they run
//! on the other thread, ahead of time). Threads rather than tokio tasks: the model's steps are CPU
//! work that would hold up the egress's tasks, and a thread sleep is precise to tens of µs where
//! tokio's timers round to the millisecond.

use crate::clock::ScenarioClock;
use crate::sink::Sink;
use csp_model::sim::{Event, Outbound, SimReport, Simulation};
use csp_model::{NetworkStats, Profile, SimError};
use hdrhistogram::Histogram;
use ledger::{Ledger, LedgerError, Shard};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, TryLockError};
use std::time::{Duration, Instant};

/// Live counters a display can poll while [`drive`] runs (all relaxed atomics).
#[derive(Debug, Default)]
pub struct Progress {
    /// Scenario time the model has reached (it runs up to the look-ahead ahead of the clock), ms.
    pub model_ms: AtomicU64,
    /// Alerts handed to the sink.
    pub alerts_submitted: AtomicU64,
    /// Alerts lost inside the model (collision, holdover, attach, queue overflow, horizon).
    pub alerts_lost_in_model: AtomicU64,
    /// Lateness of the most recent hand-over to the sink behind its intended time, scenario ms
    /// (what a live display shows as the harness's current lag).
    pub last_lag_ms: AtomicU64,
    /// Lateness of every hand-over behind its intended time, real time (lock-free buckets a
    /// metrics exporter reads; the report's percentiles come from the thread's own histogram).
    pub lag_real: telemetry::AtomicHistogram,
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
    /// How far (real time) the model may run ahead of the clock. It absorbs bursts of model work
    /// (a million hubs re-attaching within a scenario minute is about a second of CPU) on a machine
    /// that also runs the egress and the endpoint; the results do not depend on it. The exits
    /// waiting for their time are what it costs in memory.
    pub look_ahead: Duration,
    /// The share of the premises this process sends ([`Shard::WHOLE`]: all of them).
    pub shard: Shard,
}

impl DriveConfig {
    /// A config without progress counters, a 10 s look-ahead and the whole population.
    pub fn new(profile: Arc<Profile>, seed: u64, clock: ScenarioClock) -> Self {
        DriveConfig {
            profile,
            seed,
            clock,
            progress: None,
            look_ahead: Duration::from_secs(10),
            shard: Shard::WHOLE,
        }
    }
}

/// What `drive` reports about itself.
#[derive(Debug, Clone, Default)]
pub struct DriveReport {
    /// Scenario time when the last alert was handed over (or decided), ms.
    pub end_ms: u64,
    /// Hubs that ran.
    pub hubs: u32,
    /// Largest lateness of a hand-over behind its intended time, scenario ms.
    pub max_lag_ms: u64,
    /// 99th percentile of that lateness, scenario ms (HDR histogram, 3 significant digits).
    pub p99_lag_ms: u64,
    /// 99.9th percentile of that lateness, scenario ms.
    pub p999_lag_ms: u64,
    /// Largest lateness of a hand-over, real ms.
    pub max_lag_real_ms: f64,
    /// 99th percentile of the lateness, real ms.
    pub p99_lag_real_ms: f64,
    /// 99.9th percentile of the lateness, real ms.
    pub p999_lag_real_ms: f64,
    /// Did the hand-over thread get real-time scheduling (SCHED_FIFO)? Without it (no privilege to
    /// ask for it, or not Linux) it competes with every other thread on the machine for a core
    /// when it wakes, and a busy machine makes hand-overs later.
    pub hand_over_realtime: bool,
    /// Alerts handed to the sink.
    pub submitted: u64,
    /// Alerts lost inside the model (of this shard's premises, in a shard).
    pub lost_in_model: u64,
    /// The network's own counters (contention, late requests, backlogs).
    pub network: NetworkStats,
}

impl DriveReport {
    /// The report of a run without hand-over lateness (virtual time).
    fn from_model(r: SimReport) -> Self {
        DriveReport {
            end_ms: r.end_ms,
            hubs: r.hubs,
            submitted: r.submitted,
            lost_in_model: r.lost_in_model,
            network: r.network,
            ..DriveReport::default()
        }
    }
}

/// Why `drive` could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// The ledger was refused an expectation or a loss.
    #[error("the ledger refused the model's record: {0}")]
    Ledger(#[from] LedgerError),
    /// Another thread panicked while holding the ledger: its contents cannot be trusted.
    #[error("the ledger's lock was poisoned by a panic elsewhere; the run cannot be trusted")]
    LedgerPoisoned,
    /// The driver's thread could not be started.
    #[error("cannot start the driver thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// The lateness histogram could not be created.
    #[error("cannot create the lag histogram: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
    /// The driver's thread panicked.
    #[error("the driver thread panicked")]
    Panicked,
    /// The profile folds alerts into summary alerts (the hypothetical `summarise` stage option),
    /// which the endpoint path cannot carry yet.
    #[error(
        "the profile summarises alerts (a stage has `summarise`): the real-time path cannot carry \
         summary alerts yet (csp-alert and the HTTP payloads have no count field); use `simulate`"
    )]
    SummariesUnsupported,
}

/// Runs `profile` on virtual time with every alert acknowledged as it leaves the model (see
/// [`csp_model::simulate`]). No hand-over can be late in virtual time: the lag figures are 0.
pub fn simulate(profile: &Profile, seed: u64) -> Result<(Ledger, DriveReport), SimError> {
    simulate_shard(profile, seed, Shard::WHOLE)
}

/// [`simulate`], keeping only `shard`'s premises' alerts in the ledger (the model runs whole; the
/// report's counters are the whole model's).
pub fn simulate_shard(
    profile: &Profile,
    seed: u64,
    shard: Shard,
) -> Result<(Ledger, DriveReport), SimError> {
    let (mut ledger, report) = csp_model::simulate(profile, seed)?;
    if !shard.is_whole() {
        ledger.retain_hubs(|h| shard.owns_hub(h));
    }
    Ok((ledger, DriveReport::from_model(report)))
}

/// Runs the scenario in real time: records the expected alerts in `ledger`, runs the model paced
/// by `cfg.clock`, hands every alert that leaves the model to `sink` at its intended time and
/// records the model's losses. Returns when every alert has been handed over or lost.
///
/// Dropping the future (Ctrl-C in a run) stops both threads within a few milliseconds.
pub async fn drive(
    cfg: DriveConfig,
    sink: Arc<dyn Sink>,
    ledger: Arc<Mutex<Ledger>>,
) -> Result<DriveReport, DriveError> {
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let progress = cfg.progress.clone().unwrap_or_default();
    let (exits, due) = mpsc::channel();
    let hand_over = HandOver::new(cfg.clock, sink, progress.clone(), stop.0.clone(), due)?;
    let clock = cfg.clock;
    let flag = stop.0.clone();
    // Building a million hubs takes a while: on the model's thread, not the async runtime's.
    let model = spawn("csp-model", move || {
        Model::new(&cfg, ledger, progress, flag, exits).and_then(Model::run)
    })?;
    let hand_over = spawn("csp-hand-over", move || hand_over.run())?;
    let model = model.await.map_err(|_| DriveError::Panicked)??;
    let lag = hand_over.await.map_err(|_| DriveError::Panicked)?;
    Ok(lag.report(clock, model))
}

/// Runs `f` on a new named thread; its result arrives on the returned receiver.
fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<tokio::sync::oneshot::Receiver<T>, DriveError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(DriveError::Spawn)?;
    Ok(rx)
}

/// Sets the stop flag when `drive`'s future is dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Relaxed);
    }
}

/// Longest single sleep, so a stop request is seen promptly.
const MAX_SLEEP: Duration = Duration::from_millis(20);

/// Sleeps until `at` or for [`MAX_SLEEP`], whichever comes first.
fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep((at - now).min(MAX_SLEEP));
    }
}

/// The model thread: the simulation, a look-ahead ahead of the clock.
struct Model {
    sim: Simulation,
    clock: ScenarioClock,
    ledger: Arc<Mutex<Ledger>>,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    look_ahead_us: u64,
    shard: Shard,
    exits: Sender<Outbound>,
    losses: Vec<(ledger::AlertId, ledger::LossCause, u64)>,
    /// This shard's alerts lost inside the model.
    lost: u64,
}

impl Model {
    fn new(
        cfg: &DriveConfig,
        ledger: Arc<Mutex<Ledger>>,
        progress: Arc<Progress>,
        stop: Arc<AtomicBool>,
        exits: Sender<Outbound>,
    ) -> Result<Self, DriveError> {
        if cfg.profile.summarises() {
            return Err(DriveError::SummariesUnsupported);
        }
        let sim = Simulation::new(&cfg.profile, cfg.seed);
        {
            let mut l = ledger.lock().map_err(|_| DriveError::LedgerPoisoned)?;
            sim.expect(&mut l)?;
            if !cfg.shard.is_whole() {
                l.retain_hubs(|h| cfg.shard.owns_hub(h));
            }
        }
        let look_ahead_us = (cfg.look_ahead.as_secs_f64() * cfg.clock.scale() * 1e6) as u64;
        Ok(Model {
            sim,
            clock: cfg.clock,
            ledger,
            progress,
            stop,
            look_ahead_us,
            shard: cfg.shard,
            exits,
            losses: Vec::new(),
            lost: 0,
        })
    }

    fn run(mut self) -> Result<SimReport, DriveError> {
        self.drain_events()?;
        while !self.stop.load(Relaxed) {
            let horizon = self.clock.now_us() + self.look_ahead_us;
            match self.sim.poll_timeout() {
                Some(t) if t <= horizon => {
                    self.sim.handle_timeout(t);
                    self.progress.model_ms.store(t / 1000, Relaxed);
                    self.drain_events()?;
                }
                Some(t) => sleep_until(self.clock.instant_at_us(t - self.look_ahead_us).into_std()),
                None => break,
            }
        }
        self.record_losses(true)?;
        Ok(SimReport {
            lost_in_model: self.lost,
            ..self.sim.report()
        })
    }

    /// Moves the model's new events out: exits to the hand-over thread, losses to the ledger; of
    /// this shard's premises only.
    fn drain_events(&mut self) -> Result<(), DriveError> {
        while let Some(e) = self.sim.poll_event() {
            match e {
                // The hand-over thread only stops early on a stop request: then exits are moot.
                Event::Exit(o) if self.shard.owns(o.id) => drop(self.exits.send(o)),
                Event::Lost { id, cause, at_ms } if self.shard.owns(id) => {
                    self.lost += 1;
                    self.losses.push((id, cause, at_ms));
                }
                Event::Exit(_) | Event::Lost { .. } => {}
                Event::Covered { .. } => return Err(DriveError::SummariesUnsupported),
            }
        }
        self.record_losses(false)
    }

    /// Writes the buffered losses to the ledger, a few at a time so the lock is never held for
    /// long (a sink may record deliveries in the same ledger at hand-over time). Unless `wait`, a
    /// ledger busy elsewhere (a live display reading it, the egress recording acks) is left for the
    /// next step: the model keeps going rather than wait for it.
    fn record_losses(&mut self, wait: bool) -> Result<(), DriveError> {
        const PER_LOCK: usize = 64;
        while !self.losses.is_empty() {
            let mut l = match self.ledger.try_lock() {
                Ok(l) => l,
                Err(TryLockError::WouldBlock) if !wait => return Ok(()),
                Err(TryLockError::WouldBlock) => {
                    self.ledger.lock().map_err(|_| DriveError::LedgerPoisoned)?
                }
                Err(TryLockError::Poisoned(_)) => return Err(DriveError::LedgerPoisoned),
            };
            // Each alert's loss is its own record: the order they are written in does not matter.
            let keep = self.losses.len().saturating_sub(PER_LOCK);
            let n = self.losses.len() - keep;
            for (id, cause, at_ms) in self.losses.drain(keep..) {
                l.lose(id, cause, at_ms)?;
            }
            drop(l);
            self.progress
                .alerts_lost_in_model
                .fetch_add(n as u64, Relaxed);
        }
        Ok(())
    }
}

/// The hand-over thread: each exit to the sink at its intended time.
struct HandOver {
    clock: ScenarioClock,
    sink: Arc<dyn Sink>,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    due: Receiver<Outbound>,
    /// Lateness of hand-overs, real µs.
    lag_us: Histogram<u64>,
    handed_over: u64,
    realtime: bool,
}

impl HandOver {
    fn new(
        clock: ScenarioClock,
        sink: Arc<dyn Sink>,
        progress: Arc<Progress>,
        stop: Arc<AtomicBool>,
        due: Receiver<Outbound>,
    ) -> Result<Self, DriveError> {
        Ok(HandOver {
            clock,
            sink,
            progress,
            stop,
            due,
            lag_us: Histogram::new(3)?,
            handed_over: 0,
            realtime: false,
        })
    }

    fn run(mut self) -> Self {
        self.realtime = realtime_priority();
        let mut next: Option<Outbound> = None;
        while !self.stop.load(Relaxed) {
            let o = match next.take() {
                Some(o) => o,
                None => match self.due.recv_timeout(MAX_SLEEP) {
                    Ok(o) => o,
                    Err(RecvTimeoutError::Timeout) => continue,
                    // The model has finished and everything it sent is handed over.
                    Err(RecvTimeoutError::Disconnected) => break,
                },
            };
            let intended = self.clock.instant_at_us(o.exit_ms * 1000).into_std();
            if Instant::now() < intended {
                sleep_until(intended);
                next = Some(o);
                continue;
            }
            self.sink.submit(o);
            let late_us = Instant::now()
                .saturating_duration_since(intended)
                .as_micros() as u64;
            // `record` grows the histogram as needed (`saturating_record` would clamp at its
            // current top, 2 ms at the start); only a value beyond u64 range can fail.
            if self.lag_us.record(late_us).is_err() {
                self.lag_us.saturating_record(late_us);
            }
            self.handed_over += 1;
            self.progress
                .last_lag_ms
                .store(scenario_ms(&self.clock, late_us), Relaxed);
            self.progress
                .lag_real
                .record_ns(late_us.saturating_mul(1000));
            self.progress.alerts_submitted.fetch_add(1, Relaxed);
        }
        self
    }

    fn report(&self, clock: ScenarioClock, model: SimReport) -> DriveReport {
        let h = &self.lag_us;
        let q = |q: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(q)
            }
        };
        let real_ms = |us: u64| us as f64 / 1000.0;
        DriveReport {
            end_ms: clock.now_ms(),
            max_lag_ms: scenario_ms(&clock, h.max()),
            p99_lag_ms: scenario_ms(&clock, q(0.99)),
            p999_lag_ms: scenario_ms(&clock, q(0.999)),
            max_lag_real_ms: real_ms(h.max()),
            p99_lag_real_ms: real_ms(q(0.99)),
            p999_lag_real_ms: real_ms(q(0.999)),
            hand_over_realtime: self.realtime,
            submitted: self.handed_over,
            ..DriveReport::from_model(model)
        }
    }
}

/// Asks for real-time (SCHED_FIFO, lowest priority) scheduling for the calling thread, so that it
/// preempts ordinary threads when its sleep ends instead of waiting for a core. Best effort: it
/// needs the privilege (root or CAP_SYS_NICE). The hand-over thread sleeps between hand-overs and
/// does little work when awake, so it cannot starve the rest of the machine (and the kernel caps
/// real-time threads at 95% of a core in any case).
fn realtime_priority() -> bool {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            RealtimeThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
            set_thread_priority_and_policy, thread_native_id,
        };
        let fifo = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
        match set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, fifo) {
            Ok(()) => true,
            Err(e) => {
                tracing::info!("hand-over thread keeps ordinary scheduling: {e:?}");
                false
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// A real-time lateness (µs) in scenario ms, rounded up.
fn scenario_ms(clock: &ScenarioClock, real_us: u64) -> u64 {
    (real_us as f64 * clock.scale() / 1000.0).ceil() as u64
}
