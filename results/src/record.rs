//! `summary.json`, typed: the run's identity ([`RunMeta`]), the harness's own [`Health`], and per
//! alert kind the counts, loss by cause, time to X% of *expected* delivered and latency
//! percentiles of the delivered alerts ([`KindSummary`]).
//!
//! POA latencies run from the power cut and PRA latencies from the restoration: the ledger's
//! `base_ms` already says which, so nothing here re-derives a base time.
//!
//! Field order is the file's key order and is part of the format: the same seed must give a
//! byte-identical `summary.json`, so fields are only ever appended or moved with a schema bump.

use crate::curve::{DeliveryCurve, Precision};
use crate::storm::{self, CoveredFigures, OutageMeta, OutageSummary};
use hdrhistogram::Histogram;
use ledger::{AlertKind, Ledger, LossCause, Region, Shard};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The delivered levels (percent of expected) reported as "time to X%".
pub const LEVELS: [f64; 5] = [50.0, 80.0, 95.0, 99.0, 99.5];

/// The format version written into `summary.json`. Version 2 moved what changes from one
/// invocation to the next (wall time, CPU, memory, host) to `run.json`; version 1 files still read.
pub const SCHEMA_VERSION: u32 = 2;

/// Largest latency the histograms track (24 h in ms); longer ones are clamped to it, which only a
/// scenario longer than a day could reach.
pub const MAX_LATENCY_MS: u64 = 24 * 3_600_000;

/// How a run was driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Scaled real time against a real endpoint.
    Run,
    /// Virtual time with an in-process endpoint that acknowledges at once.
    Simulate,
}

impl Mode {
    /// The name used in files and tables (`run`, `simulate`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Run => "run",
            Mode::Simulate => "simulate",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a run was: profile, region, option, seed, scale, mode and the harness's own health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// Profile name, e.g. `north/current`.
    pub profile: String,
    /// Where the profile was read from, if from a file.
    #[serde(default)]
    pub profile_path: Option<String>,
    /// The CSP region.
    pub region: Region,
    /// `current`, `option-a`, `option-b`, `custom` or any other label of a change set.
    pub option_label: String,
    /// The technical changes applied (e.g. `["1", "5"]` or their names).
    #[serde(default)]
    pub changes: Vec<String>,
    /// The scenario's random seed.
    pub seed: u64,
    /// Real time divided by this is scenario time (1 = real time; `simulate` writes 1 although
    /// it runs on virtual time, see [`RunMeta::mode`]).
    pub time_scale: f64,
    /// Premises (hubs) in the scenario.
    pub hubs: u32,
    /// Real endpoint and clock, or virtual time.
    pub mode: Mode,
    /// The endpoint under test, if any.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Did the run reach its planned end (false when interrupted)?
    pub complete: bool,
    /// The harness's own health, when it measured it (absent from test fixtures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthRecord>,
    /// Alerts the endpoint reported as stored before for this run (resends it recognised), as the
    /// endpoint counted them (`run` only; the harness's own `duplicates` are ACKs it got twice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_duplicates: Option<u64>,
    /// Why the run is incomplete, when it is (interrupted, credentials refused mid-run...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_reason: Option<String>,
    /// When this folder is one shard of a split run (`--shard I/N`): which. Its alerts are then
    /// only those of its premises, and `csp-harness merge` combines the shards into the run.
    /// Absent for a whole run, and for a merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Was the endpoint's certificate left unverified (`--insecure-skip-verify`)? Anyone on the
    /// path could have read or altered the alerts: such a result is no evidence about a real
    /// endpoint. Always written (`false` too), so that its absence is never read as "verified".
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

impl RunMeta {
    /// Metadata with the given identity and neutral defaults: time scale 1, mode `simulate`,
    /// complete, no endpoint, no changes listed, no health.
    pub fn new(
        profile: impl Into<String>,
        region: Region,
        option_label: impl Into<String>,
        seed: u64,
        hubs: u32,
    ) -> Self {
        RunMeta {
            profile: profile.into(),
            profile_path: None,
            region,
            option_label: option_label.into(),
            changes: Vec::new(),
            seed,
            time_scale: 1.0,
            hubs,
            mode: Mode::Simulate,
            endpoint: None,
            complete: true,
            health: None,
            endpoint_duplicates: None,
            incomplete_reason: None,
            shard: None,
            insecure_skip_verify: false,
        }
    }

    /// Did the harness flag its own schedule lag (in any shard)? `false` when it recorded none.
    pub fn lagged(&self) -> bool {
        self.health
            .as_ref()
            .is_some_and(|h| h.shards().iter().any(|s| s.lagged))
    }
}

/// The machine a run ran on, as `host.json` holds it. Fields the platform cannot tell are `null`:
/// a missing host detail never fails a load test.
///
/// Fields are in alphabetical order, the order `summary.json` has always listed them in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRecord {
    /// CPU architecture, e.g. `x86_64`.
    pub arch: String,
    /// CPU model (brand string of the first CPU).
    pub cpu_model: Option<String>,
    /// csp-harness version.
    pub harness_version: String,
    /// Host name.
    pub hostname: Option<String>,
    /// Kernel version.
    pub kernel: Option<String>,
    /// Logical CPUs the OS reports.
    pub logical_cpus: usize,
    /// Total memory, bytes.
    pub memory_bytes: u64,
    /// OS name and version, e.g. `Linux (Debian GNU/Linux 12)`.
    pub os: Option<String>,
    /// Physical cores, if known.
    pub physical_cores: Option<usize>,
}

/// What the QUIC egress did during a `run` (its counters at the end of the drain).
///
/// Alphabetical, like every object inside `health`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EgressHealth {
    /// 429/503 answers (back-pressure) that made an alert wait and retry within its deadline.
    #[serde(default)]
    pub backpressure: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
    /// Connections lost while in use.
    pub connections_lost: u64,
    /// Connections established.
    pub connects: u64,
    /// Alerts acknowledged.
    pub delivered: u64,
    /// ACKs for alerts already delivered (never a second delivery).
    pub duplicate_acks: u64,
    /// Alerts the endpoint said it had stored before for this run (resends it recognised).
    #[serde(default)]
    pub endpoint_duplicates: u64,
    /// Alerts lost as `endpoint_unreachable` at their deadline.
    pub expired: u64,
    /// Why the endpoint path ended the run (credentials refused mid-run), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fatal: Option<String>,
    /// ALERT frames written (first sends and resends).
    pub frames_sent: u64,
    /// HTTP answers by status code (HTTP transports only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub http_status: BTreeMap<u16, u64>,
    /// Last connection or stream error seen.
    pub last_error: Option<String>,
    /// Ledger calls that failed (alert never expected, or fated elsewhere).
    pub ledger_errors: u64,
    /// Alerts left pending by the drain (endpoint up, no answer in time).
    pub pending_at_drain: u64,
    /// Alerts lost because the send queue was full.
    pub queue_overflow: u64,
    /// Alerts lost as `endpoint_rejected`.
    pub rejected: u64,
    /// Rejections by the endpoint's reason (csp-alert reason or HTTP status).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rejected_by: BTreeMap<String, u64>,
    /// ALERT frames written again after a stream or connection was lost.
    pub resent: u64,
    /// Alerts sent again after a retryable answer (5xx, back-pressure).
    #[serde(default)]
    pub retried: u64,
    /// Largest send lag, scenario ms from the hub's exit (its intended time) to the first send:
    /// the hubs' own schedule lag plus any wait for the endpoint (no connection up, flow control).
    /// The part beyond the hubs' lag is the endpoint's delay, shown in its curves, and never
    /// counted as the harness's own lag ([`Health::lagged`]).
    pub send_lag_max_ms: u64,
    /// 99th percentile of the send lag (see `send_lag_max_ms`), scenario ms.
    pub send_lag_p99_ms: u64,
    /// First sends per real second, between the first and the last send.
    pub send_rate_per_s: f64,
    /// Streams that ended with an error while their connection stayed up.
    pub stream_errors: u64,
    /// Alerts handed to the egress.
    pub submitted: u64,
    /// Alerts submitted after the drain began (left pending).
    pub submitted_after_drain: u64,
    /// The transport used (`csp-alert/2 over QUIC`, `HTTP/2`, ...).
    #[serde(default)]
    pub transport: String,
    /// Alerts lost as `endpoint_unreachable` by the drain (no connection up at its end).
    pub unreachable_at_drain: u64,
    /// ACKs or REJECTs for alerts not in flight on that stream; ignored.
    pub unsolicited_replies: u64,
}

/// Share of the alerts handed to the endpoint path beyond which a run is *endpoint-starved*: it
/// then measures the endpoint's failure more than the network, and every report says so.
pub const ENDPOINT_STARVED_SHARE: f64 = 0.5;

/// What the endpoint path (the egress and the endpoint) did with the alerts handed to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointPathLoss {
    /// Alerts handed to the egress.
    pub handed: u64,
    /// Lost as `endpoint_unreachable` (at their deadline or by the drain).
    pub unreachable: u64,
    /// Lost as `endpoint_rejected`.
    pub rejected: u64,
    /// Still unacknowledged when the drain ended (`not_delivered_by_end`).
    pub not_delivered_by_end: u64,
    /// Lost because the send queue towards the endpoint was full (`send_queue_overflow`).
    pub send_queue_overflow: u64,
}

impl EndpointPathLoss {
    /// Every alert the endpoint path lost.
    pub fn lost(&self) -> u64 {
        self.unreachable + self.rejected + self.not_delivered_by_end + self.send_queue_overflow
    }

    /// Lost / handed (0 when nothing was handed over).
    pub fn share(&self) -> f64 {
        frac(self.lost(), self.handed)
    }

    /// Did the endpoint path lose more than [`ENDPOINT_STARVED_SHARE`] of what it was handed?
    pub fn starved(&self) -> bool {
        self.handed > 0 && self.share() > ENDPOINT_STARVED_SHARE
    }

    /// The causes with their counts, largest first, e.g. `endpoint_rejected 1946`.
    pub fn causes(&self) -> Vec<(LossCause, u64)> {
        let mut v: Vec<(LossCause, u64)> = [
            (LossCause::EndpointUnreachable, self.unreachable),
            (LossCause::EndpointRejected, self.rejected),
            (LossCause::NotDeliveredByEnd, self.not_delivered_by_end),
            (LossCause::SendQueueOverflow, self.send_queue_overflow),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
        v.sort_by_key(|c| std::cmp::Reverse(c.1));
        v
    }

    fn add(mut self, o: EndpointPathLoss) -> Self {
        self.handed += o.handed;
        self.unreachable += o.unreachable;
        self.rejected += o.rejected;
        self.not_delivered_by_end += o.not_delivered_by_end;
        self.send_queue_overflow += o.send_queue_overflow;
        self
    }
}

impl EgressHealth {
    /// What the endpoint path lost of what the egress was handed.
    pub fn endpoint_path_loss(&self) -> EndpointPathLoss {
        EndpointPathLoss {
            handed: self.submitted,
            unreachable: self.expired + self.unreachable_at_drain,
            rejected: self.rejected,
            not_delivered_by_end: self.pending_at_drain,
            send_queue_overflow: self.queue_overflow,
        }
    }
}

/// The harness's own health during one run: how far it fell behind its schedule, which distorts
/// the curves (such a run exits 3 and never passes), and on `run` what the egress did.
///
/// Two delays are kept apart: the *harness's schedule lag* (`p99_lag_ms`, `max_lag_ms`: hub tasks
/// running late against their intended scenario times, the harness's own failure, judged by
/// `lagged`) and the egress's *send lag* (`egress.send_lag_*`, from the hub's intended exit to the
/// first send), whose excess over the schedule lag is time alerts waited for a dead or slow
/// endpoint: what the run measures, not a fault of the harness. What the run cost
/// the machine is in `run.json` ([`crate::Resources`]): it differs between two runs of one seed.
///
/// Alphabetical, the order `summary.json` has always listed health fields in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// The egress's counters (`run` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<EgressHealth>,
    /// The p99 lag beyond which the run is flagged as lagged (`run` only), scenario ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_limit_ms: Option<u64>,
    /// Did the harness fall behind its schedule far enough to distort the curves? Judged on the
    /// hubs' schedule lag (`p99_lag_ms` against `lag_limit_ms`) only, never on the endpoint's wait.
    pub lagged: bool,
    /// Largest schedule lag of the hubs, scenario ms.
    pub max_lag_ms: u64,
    /// 99.9th percentile of the hubs' schedule lag, scenario ms.
    pub p999_lag_ms: u64,
    /// 99th percentile of the hubs' schedule lag, scenario ms.
    pub p99_lag_ms: u64,
    /// The same lateness in real time (`run` only): what a machine that cannot keep up adds,
    /// independent of the time scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_lag_ms: Option<RealLag>,
}

/// Hand-over lateness behind the intended times, real milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RealLag {
    /// Largest.
    pub max: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Did the hand-over thread get real-time scheduling (SCHED_FIFO; needs root or
    /// CAP_SYS_NICE)? Without it a busy machine delays hand-overs more.
    #[serde(default)]
    pub realtime_scheduling: bool,
}

/// The health of a run, or of each shard after a [`crate::merge`] (written as a JSON array):
/// merged shards keep their own figures because a p99 lag cannot be combined into another p99.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthRecord {
    /// One run.
    Run(Box<Health>),
    /// One per merged shard, in merge order.
    Shards(Vec<Health>),
}

impl HealthRecord {
    /// The runs' health records: one, or one per shard.
    pub fn shards(&self) -> &[Health] {
        match self {
            HealthRecord::Run(h) => std::slice::from_ref(h),
            HealthRecord::Shards(v) => v,
        }
    }
}

impl Serialize for HealthRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            HealthRecord::Run(h) => h.serialize(s),
            HealthRecord::Shards(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for HealthRecord {
    // Not `#[serde(untagged)]`: its error ("did not match any variant") would hide which field is
    // wrong. Reading the shape first lets the inner error name the field.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let v = serde_json::Value::deserialize(d)?;
        if v.is_array() {
            serde_json::from_value(v)
                .map(HealthRecord::Shards)
                .map_err(|e| D::Error::custom(format!("health (per shard): {e}")))
        } else {
            serde_json::from_value(v)
                .map(|h| HealthRecord::Run(Box::new(h)))
                .map_err(|e| D::Error::custom(format!("health: {e}")))
        }
    }
}

/// Latency percentiles of the *delivered* alerts (ms from the alert's base time).
///
/// These ignore lost alerts; the delivery curve and "time to X%" do not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Delivered alerts counted.
    pub count: u64,
    /// Median, ms (HDR, 3 significant digits).
    pub p50: Option<u64>,
    /// 95th percentile, ms (HDR).
    pub p95: Option<u64>,
    /// 99th percentile, ms (HDR).
    pub p99: Option<u64>,
    /// Largest, ms: exact from a ledger, to HDR precision after a merge.
    pub max: Option<u64>,
}

impl LatencyStats {
    /// Percentiles read from an HDR histogram of latencies in ms.
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return LatencyStats::default();
        }
        LatencyStats {
            count: h.len(),
            p50: Some(h.value_at_quantile(0.50)),
            p95: Some(h.value_at_quantile(0.95)),
            p99: Some(h.value_at_quantile(0.99)),
            max: Some(h.max()),
        }
    }
}

/// One alert kind's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindSummary {
    /// Alerts that should exist.
    pub expected: u64,
    /// Alerts the endpoint acknowledged.
    pub delivered: u64,
    /// Alerts lost (any cause).
    pub lost: u64,
    /// Alerts without a fate (only when the ledger was not finished).
    #[serde(default)]
    pub pending: u64,
    /// delivered / expected (0 when nothing is expected).
    pub delivered_fraction: f64,
    /// 1 - delivered / expected (0 when nothing is expected).
    pub loss_rate: f64,
    /// "Time to X% of expected delivered", seconds; `null` when never reached. Keys are
    /// [`pct_key`] of each of [`LEVELS`]: `"50"`, `"80"`, `"95"`, `"99"`, `"99.5"`.
    pub time_to_pct_s: BTreeMap<String, Option<f64>>,
    /// Lost alerts per cause (causes without loss are absent).
    pub loss_by_cause: BTreeMap<LossCause, u64>,
    /// Latency percentiles of the delivered alerts.
    pub latency_ms: LatencyStats,
    /// With summary alerts (a hypothetical option): how far the endpoint knew of the alerts
    /// summaries covered. Absent when no alert was covered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covered_by_summary: Option<CoveredFigures>,
}

impl KindSummary {
    /// The figures of a kind from its curve (counts and time to X%), its losses and its latency
    /// percentiles.
    pub(crate) fn from_curve(
        curve: &DeliveryCurve,
        loss_by_cause: BTreeMap<LossCause, u64>,
        latency_ms: LatencyStats,
    ) -> Self {
        let (expected, delivered) = (curve.expected(), curve.delivered());
        let lost: u64 = loss_by_cause.values().sum();
        KindSummary {
            expected,
            delivered,
            lost,
            pending: expected.saturating_sub(delivered + lost),
            delivered_fraction: frac(delivered, expected),
            loss_rate: if expected == 0 {
                0.0
            } else {
                1.0 - frac(delivered, expected)
            },
            time_to_pct_s: LEVELS
                .iter()
                .map(|&p| {
                    (
                        pct_key(p),
                        curve.time_to_pct(p).map(|ms| ms as f64 / 1000.0),
                    )
                })
                .collect(),
            loss_by_cause,
            latency_ms,
            covered_by_summary: None,
        }
    }

    /// "Time to `pct`% delivered" in seconds as recorded (`None` if never reached, or if `pct` is
    /// not one of [`LEVELS`]).
    pub fn time_to(&self, pct: f64) -> Option<f64> {
        self.time_to_pct_s.get(&pct_key(pct)).copied().flatten()
    }
}

/// POA and PRA figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alerts {
    /// Power Outage Alerts (AD1), from the power cut.
    pub poa: KindSummary,
    /// Power Restoration Alerts (8F35/8F36), from the restoration.
    pub pra: KindSummary,
}

impl Alerts {
    /// The figures of one kind.
    pub fn kind(&self, kind: AlertKind) -> &KindSummary {
        match kind {
            AlertKind::Poa => &self.poa,
            AlertKind::Pra => &self.pra,
        }
    }
}

/// Everything `summary.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Format version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// The run's metadata (flattened into the top level of the JSON).
    #[serde(flatten)]
    pub meta: RunMeta,
    /// Per-kind figures.
    pub alerts: Alerts,
    /// Acknowledgements the endpoint sent twice for the same alert.
    pub duplicates: u64,
    /// PRAs delivered before their premises' POA.
    pub out_of_order: u64,
    /// POAs acknowledged that were never expected (outage under 3 minutes): false positives.
    pub false_positives: u64,
    /// PRAs acknowledged that were never expected.
    #[serde(default)]
    pub unexpected_pra: u64,
    /// Where the times come from: absent (exact, from every latency) unless they had to be read
    /// from HDR histograms, e.g. after merging shards without their `alerts.csv`.
    #[serde(default, skip_serializing_if = "Precision::is_exact")]
    pub time_precision: Precision,
    /// A storm's outages, each with its own figures (absent for a run of one outage, whose
    /// figures are the run's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outages: Vec<OutageSummary>,
    /// With several seeds (`--seeds`): every seed's figures and their median and min–max
    /// ([`crate::SeedSet`]); everything else in this file is the first seed's run. Absent for one
    /// seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<crate::SeedSet>,
}

impl Summary {
    /// What the endpoint path lost, over every shard that went through one (`None` for runs
    /// without an egress: `simulate`, or folders that recorded no health).
    pub fn endpoint_path_loss(&self) -> Option<EndpointPathLoss> {
        self.meta
            .health
            .as_ref()?
            .shards()
            .iter()
            .filter_map(|h| h.egress.as_ref())
            .map(EgressHealth::endpoint_path_loss)
            .reduce(EndpointPathLoss::add)
    }

    /// The figures of one kind.
    pub fn kind(&self, kind: AlertKind) -> &KindSummary {
        match kind {
            AlertKind::Poa => &self.alerts.poa,
            AlertKind::Pra => &self.alerts.pra,
        }
    }

    /// The figures of one kind, mutable.
    pub fn kind_mut(&mut self, kind: AlertKind) -> &mut KindSummary {
        match kind {
            AlertKind::Poa => &mut self.alerts.poa,
            AlertKind::Pra => &mut self.alerts.pra,
        }
    }
}

/// Summarises a finished ledger: counts, loss by cause, time to X% (exact, from every latency),
/// HDR percentiles, anomalies.
pub fn summarize(meta: RunMeta, ledger: &Ledger) -> Summary {
    summarize_storm(meta, ledger, &[])
}

/// [`summarize`], plus each outage's figures when the run has more than one (`outages` in premises
/// order, as the model laid them out), and the figures of alerts summary alerts covered.
pub fn summarize_storm(meta: RunMeta, ledger: &Ledger, outages: &[OutageMeta]) -> Summary {
    let any_covered = AlertKind::ALL.iter().any(|&k| {
        ledger
            .lost_by_cause(k)
            .contains_key(&LossCause::CoveredBySummary)
    });
    let storm = outages.len() > 1;
    let (tallies, covered) = if storm || any_covered {
        storm::tally(ledger.records(), if storm { outages } else { &[] })
    } else {
        Default::default()
    };
    let mut s = summarize_run(meta, ledger);
    for k in AlertKind::ALL {
        let lat = ledger.delivered_latencies(k);
        s.kind_mut(k).covered_by_summary =
            CoveredFigures::new(&lat, &covered[k], ledger.expected(k));
    }
    if storm {
        s.outages = storm::outage_summaries(&tallies, outages);
    }
    s
}

fn summarize_run(meta: RunMeta, ledger: &Ledger) -> Summary {
    let kind = |k: AlertKind| {
        let lat = ledger.delivered_latencies(k);
        let curve = DeliveryCurve::from_sorted(&lat, ledger.expected(k));
        let latency = LatencyStats {
            // The exact largest latency where we have it (the histogram rounds up a bucket).
            max: lat.last().copied(),
            ..LatencyStats::from_histogram(&histogram_of(&lat))
        };
        KindSummary::from_curve(&curve, ledger.lost_by_cause(k), latency)
    };
    let anomalies = ledger.anomalies();
    Summary {
        schema_version: SCHEMA_VERSION,
        meta,
        alerts: Alerts {
            poa: kind(AlertKind::Poa),
            pra: kind(AlertKind::Pra),
        },
        duplicates: anomalies.duplicates,
        out_of_order: ledger.out_of_order(),
        false_positives: anomalies.false_positives,
        unexpected_pra: anomalies.unexpected_pra,
        time_precision: Precision::Exact,
        outages: Vec::new(),
        seeds: None,
    }
}

/// A new, empty latency histogram (ms, 1 ms to 24 h, 3 significant digits).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_MS, 3)
        .expect("constant histogram bounds are valid (1 ms .. 24 h, 3 digits)")
}

/// The HDR histogram of latencies in ms (clamped to [`MAX_LATENCY_MS`]).
pub fn histogram_of(latencies: &[u64]) -> Histogram<u64> {
    let mut h = new_histogram();
    for &v in latencies {
        h.saturating_record(v.min(MAX_LATENCY_MS));
    }
    h
}

/// The JSON key of a level: `50`, `99.5`.
pub fn pct_key(pct: f64) -> String {
    let s = format!("{pct:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub(crate) fn frac(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::{AlertCode, AlertId};

    /// A region by name, as a profile names it (so the tests do not depend on how `Region` is
    /// built).
    fn north() -> Region {
        serde_json::from_str("\"north\"").unwrap()
    }

    #[test]
    fn keys_read_well() {
        assert_eq!(pct_key(50.0), "50");
        assert_eq!(pct_key(99.5), "99.5");
    }

    fn ten_poas() -> Ledger {
        let mut l = Ledger::new(10);
        for h in 0..10 {
            l.expect(AlertId::new(h, AlertKind::Poa), AlertCode::Ad1, 0)
                .unwrap();
        }
        for h in 0..8 {
            l.deliver(AlertId::new(h, AlertKind::Poa), u64::from(h + 1) * 1000)
                .unwrap();
        }
        l.lose(AlertId::new(8, AlertKind::Poa), LossCause::Collision, 5)
            .unwrap();
        l.finish(20_000);
        l
    }

    #[test]
    fn summary_counts_against_expected() {
        let l = ten_poas();
        let s = summarize(RunMeta::new("t", north(), "current", 1, 10), &l);
        let poa = &s.alerts.poa;
        assert_eq!((poa.expected, poa.delivered, poa.lost), (10, 8, 2));
        assert_eq!(poa.time_to(50.0), Some(5.0));
        assert_eq!(poa.time_to(80.0), Some(8.0));
        assert_eq!(poa.time_to(95.0), None);
        assert_eq!(poa.loss_by_cause[&LossCause::Collision], 1);
        assert_eq!(poa.loss_by_cause[&LossCause::NotDeliveredByEnd], 1);
        assert!((poa.loss_rate - 0.2).abs() < 1e-12);
        assert_eq!(poa.latency_ms.max, Some(8000));
        assert_eq!(s.alerts.pra.expected, 0);
        assert_eq!(s.time_precision, Precision::Exact);
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("time_precision"), "exact is the default");
        let back: Summary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn health_round_trips_as_object_or_per_shard_array() {
        let mut meta = RunMeta::new("t", north(), "current", 1, 10);
        let h = Health {
            lagged: true,
            max_lag_ms: 7,
            ..Health::default()
        };
        meta.health = Some(HealthRecord::Run(Box::new(h.clone())));
        assert!(meta.lagged());
        let json = serde_json::to_value(&meta).unwrap();
        assert!(json["health"].is_object());
        assert_eq!(serde_json::from_value::<RunMeta>(json).unwrap(), meta);

        meta.health = Some(HealthRecord::Shards(vec![Health::default(), h]));
        let json = serde_json::to_value(&meta).unwrap();
        assert!(json["health"].is_array());
        assert_eq!(serde_json::from_value::<RunMeta>(json).unwrap(), meta);
        assert!(meta.lagged());
    }

    #[test]
    fn endpoint_path_loss_adds_over_shards_and_flags_starvation() {
        let mut meta = RunMeta::new("t", north(), "current", 1, 10);
        let s = |meta: RunMeta| summarize(meta, &ten_poas());
        assert_eq!(
            s(meta.clone()).endpoint_path_loss(),
            None,
            "no egress, no statement"
        );
        let egress = |submitted, expired, rejected, pending| Health {
            egress: Some(EgressHealth {
                submitted,
                expired,
                unreachable_at_drain: 1,
                rejected,
                pending_at_drain: pending,
                ..EgressHealth::default()
            }),
            ..Health::default()
        };
        meta.health = Some(HealthRecord::Run(Box::new(egress(100, 10, 20, 19))));
        let one = s(meta.clone()).endpoint_path_loss().unwrap();
        assert_eq!((one.handed, one.lost()), (100, 50));
        assert!(!one.starved(), "exactly half is not more than half");
        assert_eq!(
            one.causes(),
            [
                (LossCause::EndpointRejected, 20),
                (LossCause::NotDeliveredByEnd, 19),
                (LossCause::EndpointUnreachable, 11)
            ]
        );
        meta.health = Some(HealthRecord::Shards(vec![
            egress(100, 10, 20, 19),
            egress(100, 0, 0, 1),
        ]));
        let two = s(meta.clone()).endpoint_path_loss().unwrap();
        assert_eq!((two.handed, two.lost()), (200, 52));
        meta.health = Some(HealthRecord::Run(Box::new(egress(10, 5, 1, 0))));
        assert!(s(meta).endpoint_path_loss().unwrap().starved());
        assert!(
            !EndpointPathLoss::default().starved(),
            "nothing handed, nothing starved"
        );
    }

    #[test]
    fn a_missing_or_renamed_field_is_named() {
        let l = ten_poas();
        let mut s = summarize(RunMeta::new("t", north(), "current", 1, 10), &l);
        s.meta.health = Some(HealthRecord::Run(Box::default()));
        let mut json = serde_json::to_value(&s).unwrap();
        let health = json["health"].as_object_mut().unwrap();
        let v = health.remove("p99_lag_ms").unwrap();
        health.insert("lag_p99".into(), v);
        let e = serde_json::from_value::<Summary>(json).unwrap_err();
        assert!(e.to_string().contains("p99_lag_ms"), "{e}");

        let mut json = serde_json::to_value(&s).unwrap();
        json["alerts"]["poa"]
            .as_object_mut()
            .unwrap()
            .remove("lost");
        let e = serde_json::from_value::<Summary>(json).unwrap_err();
        assert!(e.to_string().contains("lost"), "{e}");
    }
}
