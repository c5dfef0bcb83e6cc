//! `--metrics-listen`: what `run` and `ingest` show a Prometheus server while they work.
//!
//! The catalogues ([`RUN_METRICS`], [`INGEST_METRICS`]) are the one list of metric names, types,
//! units and meanings: the sources below write exactly those, the README's table and the Grafana
//! dashboard's test are checked against them. The values are read at scrape time from what the
//! run already keeps (the ledger, the driver's [`Progress`], the egress's and the endpoint's
//! counters), so a scrape's final values are the summary's, not a second count that could drift.
//!
//! This module must never count anything itself, and never hold the ledger's lock longer than one
//! pass over it.

use egress::EngineProbe;
use ledger::{AlertKind, Fate, Ledger, LossCause};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, OnceLock};
use telemetry::{Exposition, Histogram, MetricDef, MetricUnit, Registry, Source};
use virtual_hubs::{Progress, ScenarioClock};

const S: MetricUnit = MetricUnit::Seconds;

/// The run's identity (value 1).
pub const RUN_INFO: MetricDef = MetricDef::info(
    "csp_run",
    &["profile", "region", "option", "mode", "run_id", "version"],
    "The run being observed.",
);
/// Alerts expected so far (the model decides an alert exists when its outage or restoration
/// happens).
pub const EXPECTED: MetricDef = MetricDef::counter(
    "csp_alerts_expected",
    &["kind"],
    "Alerts expected so far, by kind (poa, pra).",
);
/// Alerts acknowledged by the endpoint.
pub const DELIVERED: MetricDef = MetricDef::counter(
    "csp_alerts_delivered",
    &["kind"],
    "Expected alerts the endpoint acknowledged, by kind.",
);
/// Alerts lost, by cause (every cause, zero or not).
pub const LOST: MetricDef = MetricDef::counter(
    "csp_alerts_lost",
    &["kind", "cause"],
    "Expected alerts lost, by kind and cause.",
);
/// Alerts without a fate yet.
pub const PENDING: MetricDef = MetricDef::gauge(
    "csp_alerts_pending",
    &["kind"],
    "Expected alerts without a fate yet (in the network or in flight), by kind.",
);
/// Delivery delay of the delivered alerts, scenario seconds.
pub const DELAY: MetricDef = MetricDef::histogram(
    "csp_delivery_delay",
    &["kind"],
    "Scenario seconds from the power cut (POA) or restoration (PRA) to the endpoint's ack.",
)
.in_unit(S);
/// Duplicate and unexpected acknowledgements the ledger saw.
pub const ANOMALIES: MetricDef = MetricDef::counter(
    "csp_acks_anomalous",
    &["what"],
    "Acks for alerts already delivered (duplicate), POAs never expected (false_positive), \
     PRAs never expected (unexpected_pra).",
);
/// Scenario time now.
pub const SCENARIO_TIME: MetricDef = MetricDef::gauge(
    "csp_scenario_time",
    &[],
    "Scenario time the run has reached (frozen at the run's end).",
)
.in_unit(S);
/// Scenario horizon.
pub const HORIZON: MetricDef = MetricDef::gauge(
    "csp_scenario_horizon",
    &[],
    "The profile's scenario horizon.",
)
.in_unit(S);
/// Time scale.
pub const TIME_SCALE: MetricDef =
    MetricDef::gauge("csp_time_scale", &[], "Scenario seconds per real second.");
/// 1 once the results are written.
pub const FINISHED: MetricDef = MetricDef::gauge(
    "csp_run_finished",
    &[],
    "1 once the run has ended and its results are written (the values are then final).",
);
/// Alerts the hubs handed to the egress.
pub const SUBMITTED: MetricDef = MetricDef::counter(
    "csp_alerts_submitted",
    &[],
    "Alerts the modelled network handed to the egress (rate() of it is the send rate).",
);
/// The hand-over's lateness, real seconds.
pub const LAG: MetricDef = MetricDef::histogram(
    "csp_harness_lag",
    &[],
    "Real seconds each hand-over to the egress ran behind its intended time (the harness's lag).",
)
.in_unit(S);
/// Egress: alerts admitted, not yet fated.
pub const IN_FLIGHT: MetricDef = MetricDef::gauge(
    "csp_egress_in_flight",
    &[],
    "Alerts in the egress (queued or sent) without an answer yet.",
);
/// Egress: connections up.
pub const CONNECTIONS_UP: MetricDef = MetricDef::gauge(
    "csp_egress_connections_up",
    &[],
    "Connections to the endpoint up now.",
);
/// Egress: connection events.
pub const CONNECTION_EVENTS: MetricDef = MetricDef::counter(
    "csp_egress_connection_events",
    &["event"],
    "Connections established (connect), attempts failed (connect_failure), connections lost \
     in use (lost), lanes ended by an error (stream_error).",
);
/// Egress: sends.
pub const SENDS: MetricDef = MetricDef::counter(
    "csp_egress_sends",
    &["attempt"],
    "Alerts sent to the endpoint: first sends (first) and sends again (resend).",
);
/// Egress: answers.
pub const ANSWERS: MetricDef = MetricDef::counter(
    "csp_egress_answers",
    &["answer"],
    "Endpoint answers: ack, ack of an alert it had stored before (endpoint_duplicate), second ack \
     (duplicate_ack), reject, back-pressure (429/503), transient failure (retry), unsolicited.",
);
/// Egress: rejections by reason or HTTP status.
pub const REJECTED_BY: MetricDef = MetricDef::counter(
    "csp_egress_rejected",
    &["reason"],
    "Alerts the endpoint rejected, by reason (csp-alert) or HTTP status.",
);
/// Egress: losses it decided.
pub const EGRESS_LOST: MetricDef = MetricDef::counter(
    "csp_egress_lost",
    &["cause"],
    "Alerts the egress gave up on: send queue full (queue_overflow), deadline passed without a \
     connection (expired), no connection at the drain (unreachable_at_drain).",
);

/// Every metric `run --metrics-listen` exposes.
pub const RUN_METRICS: &[MetricDef] = &[
    RUN_INFO,
    EXPECTED,
    DELIVERED,
    LOST,
    PENDING,
    DELAY,
    ANOMALIES,
    SCENARIO_TIME,
    HORIZON,
    TIME_SCALE,
    FINISHED,
    SUBMITTED,
    LAG,
    IN_FLIGHT,
    CONNECTIONS_UP,
    CONNECTION_EVENTS,
    SENDS,
    ANSWERS,
    REJECTED_BY,
    EGRESS_LOST,
];

/// Upper bounds of the delivery-delay buckets, scenario seconds: 30 s, then whole minutes up to the
/// 2 hours a North run's restoration alerts can take (the curves' shape, read at a minute's grain).
pub const DELAY_BUCKETS_S: [f64; 23] = [
    30.0, 60.0, 120.0, 180.0, 240.0, 300.0, 360.0, 480.0, 600.0, 720.0, 900.0, 1200.0, 1500.0,
    1800.0, 2100.0, 2400.0, 2700.0, 3000.0, 3600.0, 4200.0, 5400.0, 6300.0, 7200.0,
];

/// The kinds in label order.
const KINDS: [AlertKind; 2] = [AlertKind::Poa, AlertKind::Pra];

/// What one pass over the ledger finds for one kind.
struct KindFigures {
    expected: u64,
    delivered: u64,
    lost: [u64; LossCause::ALL.len()],
    pending: u64,
    delay: Histogram,
}

/// Counts every record of the ledger in one pass (under its lock).
fn ledger_figures(l: &Ledger) -> [KindFigures; 2] {
    let mut f = KINDS.map(|_| KindFigures {
        expected: 0,
        delivered: 0,
        lost: [0; LossCause::ALL.len()],
        pending: 0,
        delay: Histogram::new(&DELAY_BUCKETS_S),
    });
    for r in l.records() {
        let k = &mut f[usize::from(r.id.kind() == AlertKind::Pra)];
        k.expected += 1;
        match r.fate {
            Fate::Pending => k.pending += 1,
            Fate::Delivered { at_ms } => {
                k.delivered += 1;
                k.delay
                    .observe(at_ms.saturating_sub(r.base_ms) as f64 / 1000.0);
            }
            Fate::Lost { cause, .. } => {
                if let Some(i) = LossCause::ALL.iter().position(|c| *c == cause) {
                    k.lost[i] += 1;
                }
            }
        }
    }
    f
}

/// The live figures of a `run`.
pub struct RunSource {
    ledger: Arc<Mutex<Ledger>>,
    progress: Arc<Progress>,
    clock: ScenarioClock,
    horizon_s: f64,
    info: Vec<String>,
    egress: OnceLock<EngineProbe>,
    /// Scenario ms the run ended at, once it has (the clock keeps running after it).
    end_ms: OnceLock<u64>,
}

impl fmt::Debug for RunSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunSource")
            .field("info", &self.info)
            .finish()
    }
}

/// Who the run is, for [`RUN_INFO`] (in its label order).
#[derive(Debug, Clone)]
pub struct RunIdentity {
    /// Profile name.
    pub profile: String,
    /// Region name.
    pub region: String,
    /// Option label.
    pub option: String,
    /// `run`.
    pub mode: String,
    /// The run id the endpoint sees.
    pub run_id: String,
}

impl RunSource {
    /// A source reading this run's ledger and driver counters; the egress is added once started.
    pub fn new(
        ledger: Arc<Mutex<Ledger>>,
        progress: Arc<Progress>,
        clock: ScenarioClock,
        horizon_ms: u64,
        id: RunIdentity,
    ) -> Self {
        RunSource {
            ledger,
            progress,
            clock,
            horizon_s: horizon_ms as f64 / 1000.0,
            info: vec![
                id.profile,
                id.region,
                id.option,
                id.mode,
                id.run_id,
                env!("CARGO_PKG_VERSION").to_string(),
            ],
            egress: OnceLock::new(),
            end_ms: OnceLock::new(),
        }
    }

    /// The egress whose counters to show.
    pub fn set_egress(&self, probe: EngineProbe) {
        let _ = self.egress.set(probe);
    }

    /// The run has ended at scenario `end_ms` and its results are written: values are final.
    pub fn finished(&self, end_ms: u64) {
        let _ = self.end_ms.set(end_ms);
    }
}

/// `(label values, value)` for metrics without labels.
fn one<V>(v: V) -> [([&'static str; 0], V); 1] {
    [([], v)]
}

impl Source for RunSource {
    fn collect(&self, out: &mut Exposition<'_>) -> fmt::Result {
        let (figures, anomalies) = {
            let l = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
            (ledger_figures(&l), l.anomalies())
        };
        let kinds = || KINDS.iter().zip(figures.iter());
        out.info(&RUN_INFO, &self.info)?;
        out.counter(&EXPECTED, kinds().map(|(k, f)| ([k.as_str()], f.expected)))?;
        out.counter(
            &DELIVERED,
            kinds().map(|(k, f)| ([k.as_str()], f.delivered)),
        )?;
        out.counter(
            &LOST,
            kinds().flat_map(|(k, f)| {
                LossCause::ALL
                    .iter()
                    .zip(f.lost)
                    .map(move |(c, n)| ([k.as_str(), c.as_str()], n))
            }),
        )?;
        out.gauge(
            &PENDING,
            kinds().map(|(k, f)| ([k.as_str()], f.pending as f64)),
        )?;
        out.histogram(&DELAY, kinds().map(|(k, f)| ([k.as_str()], &f.delay)))?;
        out.counter(
            &ANOMALIES,
            [
                (["duplicate"], anomalies.duplicates),
                (["false_positive"], anomalies.false_positives),
                (["unexpected_pra"], anomalies.unexpected_pra),
            ],
        )?;
        let now_ms = self
            .end_ms
            .get()
            .copied()
            .unwrap_or_else(|| self.clock.now_ms());
        out.gauge(&SCENARIO_TIME, one(now_ms as f64 / 1000.0))?;
        out.gauge(&HORIZON, one(self.horizon_s))?;
        out.gauge(&TIME_SCALE, one(self.clock.scale()))?;
        out.gauge(
            &FINISHED,
            one(f64::from(u8::from(self.end_ms.get().is_some()))),
        )?;
        out.counter(
            &SUBMITTED,
            one(self.progress.alerts_submitted.load(Relaxed)),
        )?;
        out.histogram(&LAG, one(&self.progress.lag_real.snapshot()))?;
        // Before the egress has started (or if it never did) its metrics are absent, not zero.
        let Some(probe) = self.egress.get() else {
            return Ok(());
        };
        let s = probe.stats();
        out.gauge(&IN_FLIGHT, one(probe.outstanding() as f64))?;
        out.gauge(&CONNECTIONS_UP, one(probe.connections_up() as f64))?;
        out.counter(
            &CONNECTION_EVENTS,
            [
                (["connect"], s.connects),
                (["connect_failure"], s.connect_failures),
                (["lost"], s.connections_lost),
                (["stream_error"], s.stream_errors),
            ],
        )?;
        out.counter(
            &SENDS,
            [
                (["first"], s.frames_sent.saturating_sub(s.resent)),
                (["resend"], s.resent),
            ],
        )?;
        out.counter(
            &ANSWERS,
            [
                (["ack"], s.delivered),
                (["endpoint_duplicate"], s.endpoint_duplicates),
                (["duplicate_ack"], s.duplicate_acks),
                (["reject"], s.rejected),
                (["backpressure"], s.backpressure),
                (["retry"], s.retried),
                (["unsolicited"], s.unsolicited_replies),
            ],
        )?;
        out.counter(
            &REJECTED_BY,
            s.rejected_by.iter().map(|(r, n)| ([r.as_str()], *n)),
        )?;
        out.counter(
            &EGRESS_LOST,
            [
                (["queue_overflow"], s.queue_overflow),
                (["expired"], s.expired),
                (["unreachable_at_drain"], s.unreachable_at_drain),
            ],
        )
    }
}

/// Ingest: alerts stored.
pub const INGEST_STORED: MetricDef = MetricDef::counter(
    "csp_ingest_alerts_stored",
    &[],
    "Alerts stored (new) and acknowledged.",
);
/// Ingest: acks sent.
pub const INGEST_ACKED: MetricDef = MetricDef::counter(
    "csp_ingest_alerts_acked",
    &[],
    "Alert ids acknowledged, duplicates included.",
);
/// Ingest: duplicates.
pub const INGEST_DUPLICATES: MetricDef = MetricDef::counter(
    "csp_ingest_alerts_duplicate",
    &[],
    "Alerts received again after being stored (acknowledged again, not stored twice).",
);
/// Ingest: rejections by reason.
pub const INGEST_REJECTED: MetricDef = MetricDef::counter(
    "csp_ingest_alerts_rejected",
    &["reason"],
    "Alerts answered with a reject, by reason.",
);
/// Ingest: store latency.
pub const INGEST_STORE_LATENCY: MetricDef = MetricDef::histogram(
    "csp_ingest_store_latency",
    &[],
    "Real seconds one store call took (a csp-alert batch or an HTTP request), ledger write included.",
)
.in_unit(S);
/// Ingest: connections open.
pub const INGEST_CONNECTIONS: MetricDef =
    MetricDef::gauge("csp_ingest_connections_open", &[], "Connections open now.");
/// Ingest: connection and stream events.
pub const INGEST_EVENTS: MetricDef = MetricDef::counter(
    "csp_ingest_events",
    &["event"],
    "Connections accepted (connection), refused at a limit (refused, refused_per_ip), failed \
     handshakes (handshake_failure), streams (stream), auth failures (auth_failure), malformed \
     frames (malformed), other stream errors (stream_error), HTTP requests (http_request), faults \
     injected (fault_injected).",
);
/// Ingest: bytes received.
pub const INGEST_BYTES: MetricDef =
    MetricDef::counter("csp_ingest_received", &[], "Bytes received on streams.")
        .in_unit(MetricUnit::Bytes);

/// Every metric `ingest --metrics-listen` exposes.
pub const INGEST_METRICS: &[MetricDef] = &[
    INGEST_STORED,
    INGEST_ACKED,
    INGEST_DUPLICATES,
    INGEST_REJECTED,
    INGEST_STORE_LATENCY,
    INGEST_CONNECTIONS,
    INGEST_EVENTS,
    INGEST_BYTES,
];

/// The live figures of the reference endpoint.
#[derive(Debug)]
pub struct IngestSource(pub ingest::IngestProbe);

impl Source for IngestSource {
    fn collect(&self, out: &mut Exposition<'_>) -> fmt::Result {
        let s = self.0.stats();
        out.counter(&INGEST_STORED, one(s.alerts_stored))?;
        out.counter(&INGEST_ACKED, one(s.acked))?;
        out.counter(&INGEST_DUPLICATES, one(s.duplicates))?;
        out.counter(
            &INGEST_REJECTED,
            self.0.rejected_by().into_iter().map(|(r, n)| ([r], n)),
        )?;
        out.histogram(&INGEST_STORE_LATENCY, one(&self.0.store_latency()))?;
        out.gauge(&INGEST_CONNECTIONS, one(s.active_connections as f64))?;
        out.counter(
            &INGEST_EVENTS,
            [
                (["connection"], s.connections),
                (["refused"], s.refused_connections),
                (["refused_per_ip"], s.refused_per_ip),
                (["handshake_failure"], s.handshake_failures),
                (["stream"], s.streams),
                (["auth_failure"], s.auth_failures),
                (["malformed"], s.malformed),
                (["stream_error"], s.stream_errors),
                (["http_request"], s.http_requests),
                (["fault_injected"], s.faults_injected),
            ],
        )?;
        out.counter(&INGEST_BYTES, one(s.bytes_received))
    }
}

/// Binds the `/metrics` address (before anything else starts: a busy or bad address is a usage
/// error, exit 2).
pub fn bind(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    std::net::TcpListener::bind(addr)
        .map_err(|e| anyhow::anyhow!("--metrics-listen {addr}: cannot listen: {e}"))
}

/// Serves `/metrics` for `source` on a listener from [`bind`], on the current tokio runtime.
pub fn serve(
    listener: std::net::TcpListener,
    source: Arc<dyn Source>,
) -> anyhow::Result<telemetry::MetricsServer> {
    let mut registry = Registry::default();
    registry.add(source);
    telemetry::serve_on(listener, Arc::new(registry))
        .map_err(|e| anyhow::anyhow!("cannot serve /metrics: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_name_is_unique_and_prefixed() {
        let mut names: Vec<String> = RUN_METRICS
            .iter()
            .chain(INGEST_METRICS)
            .map(MetricDef::family)
            .collect();
        assert!(names.iter().all(|n| n.starts_with("csp_")), "{names:?}");
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "a metric name is used twice");
    }

    #[test]
    fn the_readme_documents_every_metric() {
        let readme = include_str!("../../README.md");
        for def in RUN_METRICS.iter().chain(INGEST_METRICS) {
            let name = match def.kind {
                telemetry::MetricKind::Counter => format!("{}_total", def.family()),
                telemetry::MetricKind::Info => format!("{}_info", def.family()),
                _ => def.family(),
            };
            assert!(
                readme.contains(&format!("| `{name}` | {} |", def.kind.as_str())),
                "README.md's live-metrics tables lack `{name}` ({})",
                def.kind.as_str()
            );
        }
    }

    #[test]
    fn one_pass_over_the_ledger_counts_every_fate_and_delay() {
        use ledger::{AlertCode, AlertId};
        let mut l = Ledger::new(4);
        let poa = |h| AlertId::new(h, AlertKind::Poa);
        for h in 0..4 {
            l.expect(poa(h), AlertCode::Ad1, 1_000).unwrap();
        }
        l.deliver(poa(0), 31_000).unwrap(); // 30 s
        l.deliver(poa(1), 61_001).unwrap(); // just over a minute
        l.lose(poa(2), LossCause::Collision, 5_000).unwrap();
        let [p, r] = ledger_figures(&l);
        assert_eq!((p.expected, p.delivered, p.pending), (4, 2, 1));
        assert_eq!(p.lost.iter().sum::<u64>(), 1);
        assert_eq!(p.delay.count_le(30.0), Some(1));
        assert_eq!(p.delay.count_le(60.0), Some(1));
        assert_eq!(p.delay.count_le(120.0), Some(2));
        assert_eq!((r.expected, r.delivered), (0, 0));
    }
}
