//! The run summary: what `summary.json` holds. Counts, loss by cause, "time to X% delivered" of
//! the expected alerts (the curve definition, via [`ledger::time_to_pct`]), latency percentiles of
//! the delivered alerts (HDR histogram), the ledger's anomalies and the run's metadata.
//!
//! POA latencies run from the power cut and PRA latencies from the restoration: the ledger's
//! `base_ms` already says which, so nothing here re-derives a base time.

use hdrhistogram::Histogram;
use ledger::{AlertKind, Ledger, LossCause, Region};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The delivered levels (percent of expected) reported as "time to X%".
pub const LEVELS: [f64; 5] = [50.0, 80.0, 95.0, 99.0, 99.5];

/// The format version written into `summary.json`.
pub const SCHEMA_VERSION: u32 = 1;

/// Largest latency the histograms track (24 h in ms); longer ones are clamped to it.
pub const MAX_LATENCY_MS: u64 = 24 * 3_600_000;

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
    /// `current`, `option-a`, `option-b` or `custom` (or any other label of a change set).
    pub option_label: String,
    /// The technical changes applied (e.g. `["1", "5"]` or their names).
    #[serde(default)]
    pub changes: Vec<String>,
    /// The scenario's random seed.
    pub seed: u64,
    /// Real time divided by this is scenario time (1 = real time; `simulate` reports its own).
    pub time_scale: f64,
    /// Premises (hubs) in the scenario.
    pub hubs: u32,
    /// `run` (real endpoint, real clock) or `simulate` (virtual time).
    pub mode: String,
    /// The endpoint under test, if any.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Did the run reach its planned end (false when interrupted)?
    pub complete: bool,
    /// Wall-clock duration of the run, seconds.
    pub wall_s: f64,
    /// The harness's own health (schedule lag, CPU, memory...), as the harness reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<serde_json::Value>,
    /// The run id (32 hex digits) that scoped the alert ids at the endpoint (`run` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Alerts the endpoint acknowledged as stored before for this run (resends it recognised),
    /// as the endpoint reported them (`run` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_duplicates: Option<u64>,
    /// Why the run is incomplete, when it is (interrupted, credentials refused mid-run...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_reason: Option<String>,
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
            mode: "simulate".into(),
            endpoint: None,
            complete: true,
            wall_s: 0.0,
            health: None,
            run_id: None,
            endpoint_duplicates: None,
            incomplete_reason: None,
        }
    }

    /// The option as people write it: `Current`, `Option A`, `Option B`, or the label itself.
    pub fn option_name(&self) -> String {
        match self.option_label.as_str() {
            "current" => "Current".into(),
            "option-a" => "Option A".into(),
            "option-b" => "Option B".into(),
            other => other.to_string(),
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
    /// Median, ms.
    pub p50: Option<u64>,
    /// 95th percentile, ms.
    pub p95: Option<u64>,
    /// 99th percentile, ms.
    pub p99: Option<u64>,
    /// Largest, ms (exact from a ledger; to HDR precision after a merge).
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
    /// "Time to X% of expected delivered", seconds; `null` when never reached. Keys `"50"`,
    /// `"80"`, `"95"`, `"99"`, `"99.5"`.
    pub time_to_pct_s: BTreeMap<String, Option<f64>>,
    /// Lost alerts per cause (causes without loss are absent).
    pub loss_by_cause: BTreeMap<LossCause, u64>,
    /// Latency percentiles of the delivered alerts.
    pub latency_ms: LatencyStats,
}

impl KindSummary {
    /// Builds the figures from counts, sorted delivered latencies (for "time to X%") and the
    /// histogram of the same latencies (for the percentiles).
    fn build(
        expected: u64,
        sorted_latencies: &[u64],
        loss_by_cause: BTreeMap<LossCause, u64>,
        hist: &Histogram<u64>,
    ) -> Self {
        let delivered = sorted_latencies.len() as u64;
        let lost: u64 = loss_by_cause.values().sum();
        let time_to_pct_s = LEVELS
            .iter()
            .map(|&p| {
                let t = ledger::time_to_pct(sorted_latencies, expected, p);
                (pct_key(p), t.map(|ms| ms as f64 / 1000.0))
            })
            .collect();
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
            time_to_pct_s,
            loss_by_cause,
            latency_ms: LatencyStats {
                // The exact largest latency where we have it (the histogram rounds up a bucket).
                max: sorted_latencies.last().copied(),
                ..LatencyStats::from_histogram(hist)
            },
        }
    }

    /// "Time to `pct`% delivered" in seconds as recorded (`None` if never reached or not recorded).
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
}

impl Summary {
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

/// Summarises a ledger: counts, loss by cause, time to X% (exact, from every latency),
/// HDR percentiles, anomalies.
pub fn summarize(meta: RunMeta, ledger: &Ledger) -> Summary {
    let kind = |k: AlertKind| {
        let lat = ledger.delivered_latencies(k);
        let hist = histogram_of(&lat);
        KindSummary::build(ledger.expected(k), &lat, ledger.lost_by_cause(k), &hist)
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

    #[test]
    fn keys_read_well() {
        assert_eq!(pct_key(50.0), "50");
        assert_eq!(pct_key(99.5), "99.5");
    }

    #[test]
    fn summary_counts_against_expected() {
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
        let s = summarize(RunMeta::new("t", Region::North, "current", 1, 10), &l);
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
        let json = serde_json::to_string(&s).unwrap();
        let back: Summary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}
