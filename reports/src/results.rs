//! The results folder of a run: what [`write_run`] writes and [`load_run`] reads back.
//!
//! | file | what |
//! |---|---|
//! | `summary.json` | [`Summary`]: counts, loss by cause, time to X%, percentiles, metadata |
//! | `alerts.csv` | the harness's own ledger, one line per expected alert |
//! | `poa.hlog`, `pra.hlog` | HDR interval logs (V2 + deflate) of delivered latencies, ms |
//! | `curves.csv` | delivered / expected per second since the base, POA and PRA |
//! | `summary.md` | the Markdown tables ([`crate::tables`]) |
//! | `poa.png`, `pra.png`, `loss.png` | the graphs ([`crate::plot`]) |
//!
//! `summary.json` and the two `.hlog` files are enough to redraw every graph and table, and they
//! merge exactly across shards ([`merge`]): counts add, histograms add. Reading never panics on a
//! bad file: every error names the file and says what is wrong with it.

use crate::curve::DeliveryCurve;
use crate::error::ReportError;
use crate::summary::{self, KindSummary, LatencyStats, Summary};
use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use ledger::{AlertKind, Fate, Ledger};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// `summary.json`.
pub const SUMMARY_JSON: &str = "summary.json";
/// `alerts.csv`.
pub const ALERTS_CSV: &str = "alerts.csv";
/// `curves.csv`.
pub const CURVES_CSV: &str = "curves.csv";
/// `summary.md`.
pub const SUMMARY_MD: &str = "summary.md";
/// `loss.png`.
pub const LOSS_PNG: &str = "loss.png";

/// Width of the intervals in the `.hlog` files: scenario seconds of delivery time.
pub const HLOG_INTERVAL_S: u64 = 60;

/// The `.hlog` file of a kind (`poa.hlog`, `pra.hlog`).
pub fn hlog_name(kind: AlertKind) -> String {
    format!("{}.hlog", kind.as_str())
}

/// The curve PNG of a kind (`poa.png`, `pra.png`).
pub fn png_name(kind: AlertKind) -> String {
    format!("{}.png", kind.as_str())
}

/// A run read back from its results folder (or merged from several): enough to redraw its curves
/// and tables without the ledger.
#[derive(Debug, Clone)]
pub struct LoadedRun {
    /// The folder it came from (`None` for a merge or a run built in memory).
    pub dir: Option<PathBuf>,
    /// The summary.
    pub summary: Summary,
    /// Delivered POA latencies, ms from the power cut.
    pub poa: Histogram<u64>,
    /// Delivered PRA latencies, ms from the restoration.
    pub pra: Histogram<u64>,
}

impl LoadedRun {
    /// A run in memory from its summary and ledger (what [`write_run`] writes, without the files).
    pub fn from_ledger(summary: Summary, ledger: &Ledger) -> Self {
        LoadedRun {
            dir: None,
            poa: summary::histogram_of(&ledger.delivered_latencies(AlertKind::Poa)),
            pra: summary::histogram_of(&ledger.delivered_latencies(AlertKind::Pra)),
            summary,
        }
    }

    /// The latency histogram of a kind.
    pub fn histogram(&self, kind: AlertKind) -> &Histogram<u64> {
        match kind {
            AlertKind::Poa => &self.poa,
            AlertKind::Pra => &self.pra,
        }
    }

    /// The delivery curve of a kind (delivered / expected over time).
    pub fn curve(&self, kind: AlertKind) -> DeliveryCurve {
        DeliveryCurve::from_histogram(self.histogram(kind), self.summary.kind(kind).expected)
    }
}

/// Writes a run's results folder (created if needed): data files, `summary.md` and the graphs.
pub fn write_run(dir: &Path, summary: &Summary, ledger: &Ledger) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(|e| ReportError::io(dir, e))?;
    write_summary_json(&dir.join(SUMMARY_JSON), summary)?;
    write_alerts_csv(&dir.join(ALERTS_CSV), ledger)?;
    for kind in AlertKind::ALL {
        write_hlog(&dir.join(hlog_name(kind)), kind, summary, ledger)?;
    }
    let curves: Vec<(String, DeliveryCurve)> = AlertKind::ALL
        .iter()
        .map(|&k| {
            (
                k.as_str().to_string(),
                DeliveryCurve::from_latencies(&ledger.delivered_latencies(k), ledger.expected(k)),
            )
        })
        .collect();
    write_curves_csv(&dir.join(CURVES_CSV), &curves)?;
    let run = LoadedRun::from_ledger(summary.clone(), ledger);
    let runs = [&run];
    write_text(
        &dir.join(SUMMARY_MD),
        &crate::tables::summary_markdown(&runs),
    )?;
    for kind in AlertKind::ALL {
        crate::plot::delivery_png(&dir.join(png_name(kind)), summary.meta.region, kind, &runs)?;
    }
    crate::plot::loss_png(&dir.join(LOSS_PNG), summary.meta.region, &runs)
}

/// Reads a results folder: `summary.json`, `poa.hlog`, `pra.hlog` (and checks they agree).
pub fn load_run(dir: &Path) -> Result<LoadedRun, ReportError> {
    if !dir.is_dir() {
        return Err(ReportError::Missing {
            path: dir.to_path_buf(),
        });
    }
    let path = dir.join(SUMMARY_JSON);
    let text = read_text(&path)?;
    let summary: Summary =
        serde_json::from_str(&text).map_err(|source| ReportError::Json { path, source })?;
    let poa = read_hlog(&dir.join(hlog_name(AlertKind::Poa)), AlertKind::Poa)?;
    let pra = read_hlog(&dir.join(hlog_name(AlertKind::Pra)), AlertKind::Pra)?;
    for (kind, h) in [(AlertKind::Poa, &poa), (AlertKind::Pra, &pra)] {
        let said = summary.kind(kind).delivered;
        if h.len() != said {
            return Err(ReportError::corrupt(
                dir.join(hlog_name(kind)),
                format!(
                    "holds {} latencies but {SUMMARY_JSON} says {said} {kind} delivered",
                    h.len()
                ),
            ));
        }
    }
    Ok(LoadedRun {
        dir: Some(dir.to_path_buf()),
        summary,
        poa,
        pra,
    })
}

/// Merges shards of one run (same region and option) exactly: counts and histograms add; time to
/// X% and percentiles are recomputed from the merged histograms (to HDR precision, ≈0.1%).
pub fn merge(runs: &[LoadedRun]) -> Result<LoadedRun, ReportError> {
    let (first, rest) = runs.split_first().ok_or(ReportError::NoRuns)?;
    let mut out = first.clone();
    out.dir = None;
    out.poa.auto(true);
    out.pra.auto(true);
    for r in rest {
        let (a, b) = (&out.summary.meta, &r.summary.meta);
        if a.region != b.region || a.option_label != b.option_label {
            return Err(ReportError::Incompatible(format!(
                "{} {} and {} {} are different scenarios",
                a.region, a.option_label, b.region, b.option_label
            )));
        }
        for (h, o) in [(&mut out.poa, &r.poa), (&mut out.pra, &r.pra)] {
            h.add(o)
                .map_err(|e| ReportError::Incompatible(format!("histograms: {e:?}")))?;
        }
        let s = &mut out.summary;
        s.meta.hubs = s.meta.hubs.saturating_add(b.hubs);
        s.meta.complete &= b.complete;
        s.meta.wall_s = s.meta.wall_s.max(b.wall_s);
        s.duplicates += r.summary.duplicates;
        s.out_of_order += r.summary.out_of_order;
        s.false_positives += r.summary.false_positives;
        s.unexpected_pra += r.summary.unexpected_pra;
        for kind in AlertKind::ALL {
            let (k, o) = (s.kind_mut(kind), r.summary.kind(kind));
            k.expected += o.expected;
            k.delivered += o.delivered;
            k.lost += o.lost;
            k.pending += o.pending;
            for (c, n) in &o.loss_by_cause {
                *k.loss_by_cause.entry(*c).or_insert(0) += n;
            }
        }
    }
    if !rest.is_empty() {
        out.summary.meta.health = Some(serde_json::Value::Array(
            runs.iter()
                .map(|r| r.summary.meta.health.clone().unwrap_or_default())
                .collect(),
        ));
        for kind in AlertKind::ALL {
            let curve = out.curve(kind);
            let stats = LatencyStats::from_histogram(out.histogram(kind));
            refresh(out.summary.kind_mut(kind), &curve, stats);
        }
    }
    Ok(out)
}

fn refresh(k: &mut KindSummary, curve: &DeliveryCurve, stats: LatencyStats) {
    k.delivered_fraction = summary::frac(k.delivered, k.expected);
    k.loss_rate = if k.expected == 0 {
        0.0
    } else {
        1.0 - k.delivered_fraction
    };
    for &p in &summary::LEVELS {
        k.time_to_pct_s.insert(
            summary::pct_key(p),
            curve.time_to_pct(p).map(|ms| ms as f64 / 1000.0),
        );
    }
    k.latency_ms = stats;
}

fn write_summary_json(path: &Path, summary: &Summary) -> Result<(), ReportError> {
    let mut text = serde_json::to_string_pretty(summary).map_err(|source| ReportError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    text.push('\n');
    write_text(path, &text)
}

fn write_alerts_csv(path: &Path, ledger: &Ledger) -> Result<(), ReportError> {
    let file = std::fs::File::create(path).map_err(|e| ReportError::io(path, e))?;
    let mut w = BufWriter::new(file);
    let io = |e| ReportError::io(path, e);
    writeln!(w, "alert_id,kind,code,hub,base_ms,fate,at_ms,cause").map_err(io)?;
    for r in ledger.records() {
        let (fate, at, cause) = match r.fate {
            Fate::Delivered { at_ms } => ("delivered", at_ms.to_string(), ""),
            Fate::Lost { cause, at_ms } => ("lost", at_ms.to_string(), cause.as_str()),
            Fate::Pending => ("pending", String::new(), ""),
        };
        writeln!(
            w,
            "{},{},{},{},{},{fate},{at},{cause}",
            r.id,
            r.id.kind().as_str(),
            r.code,
            r.id.hub(),
            r.base_ms
        )
        .map_err(io)?;
    }
    w.flush().map_err(io)
}

/// One interval per [`HLOG_INTERVAL_S`] of delivery time (scenario seconds), each the histogram of
/// the latencies delivered in it; BaseTime 0 so timestamps read as scenario seconds.
fn write_hlog(
    path: &Path,
    kind: AlertKind,
    summary: &Summary,
    ledger: &Ledger,
) -> Result<(), ReportError> {
    let mut intervals: std::collections::BTreeMap<u64, Histogram<u64>> = Default::default();
    for r in ledger.records().filter(|r| r.id.kind() == kind) {
        if let (Fate::Delivered { at_ms }, Some(lat)) = (r.fate, r.latency_ms()) {
            intervals
                .entry(at_ms / (HLOG_INTERVAL_S * 1000))
                .or_insert_with(summary::new_histogram)
                .saturating_record(lat.min(summary::MAX_LATENCY_MS));
        }
    }
    let base = match kind {
        AlertKind::Poa => "the power cut",
        AlertKind::Pra => "the restoration",
    };
    let m = &summary.meta;
    let mut buf = Vec::new();
    let mut ser = V2DeflateSerializer::new();
    let corrupt = |e: String| ReportError::corrupt(path, e);
    {
        let mut writer = IntervalLogWriterBuilder::new()
            .add_comment(&format!(
                "csp-loadtest {kind} delivery latencies in ms from {base}; one interval per \
                 {HLOG_INTERVAL_S} s of scenario time (when delivered)"
            ))
            .add_comment(&format!(
                "profile {} region {} option {} seed {} premises {} time scale {} mode {}",
                m.profile,
                m.region.as_str(),
                m.option_label,
                m.seed,
                m.hubs,
                m.time_scale,
                m.mode
            ))
            .with_base_time(UNIX_EPOCH)
            .begin_log_with(&mut buf, &mut ser)
            .map_err(|e| corrupt(e.to_string()))?;
        let tag = Tag::new(kind.as_str());
        for (i, h) in &intervals {
            writer
                .write_histogram(
                    h,
                    Duration::from_secs(i * HLOG_INTERVAL_S),
                    Duration::from_secs(HLOG_INTERVAL_S),
                    tag,
                )
                .map_err(|e| corrupt(format!("serialising: {e}")))?;
        }
    }
    std::fs::write(path, buf).map_err(|e| ReportError::io(path, e))
}

/// Reads an interval log and sums its intervals into one histogram.
pub fn read_hlog(path: &Path, kind: AlertKind) -> Result<Histogram<u64>, ReportError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReportError::Missing {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(ReportError::io(path, e)),
    };
    let mut total = summary::new_histogram();
    total.auto(true);
    let mut deser = Deserializer::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let entry = entry
            .map_err(|e| ReportError::corrupt(path, format!("not an HDR interval log ({e:?})")))?;
        let LogEntry::Interval(iv) = entry else {
            continue;
        };
        let at = iv.start_timestamp().as_secs_f64();
        if let Some(tag) = iv.tag()
            && tag.as_str() != kind.as_str()
        {
            return Err(ReportError::corrupt(
                path,
                format!(
                    "interval at {at} s is tagged {:?}, expected {:?}",
                    tag.as_str(),
                    kind.as_str()
                ),
            ));
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(iv.encoded_histogram())
            .map_err(|e| {
                ReportError::corrupt(path, format!("interval at {at} s: bad base64: {e}"))
            })?;
        let h: Histogram<u64> = deser.deserialize(&mut raw.as_slice()).map_err(|e| {
            ReportError::corrupt(path, format!("interval at {at} s: bad histogram: {e}"))
        })?;
        total.add(&h).map_err(|e| {
            ReportError::corrupt(path, format!("interval at {at} s: cannot add: {e:?}"))
        })?;
    }
    Ok(total)
}

/// Writes curves sampled every second, from 0 to the last delivery + 1 s: one column per curve.
pub(crate) fn write_curves_csv(
    path: &Path,
    curves: &[(String, DeliveryCurve)],
) -> Result<(), ReportError> {
    let last_s = curves
        .iter()
        .filter_map(|(_, c)| c.last_ms())
        .max()
        .unwrap_or(0)
        .div_ceil(1000)
        + 1;
    let mut text = String::from("time_s");
    for (name, _) in curves {
        text.push(',');
        text.push_str(&csv_field(name));
    }
    text.push('\n');
    for t in 0..=last_s {
        text.push_str(&t.to_string());
        for (_, c) in curves {
            text.push_str(&format!(",{:.6}", c.fraction_at(t * 1000)));
        }
        text.push('\n');
    }
    write_text(path, &text)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub(crate) fn write_text(path: &Path, text: &str) -> Result<(), ReportError> {
    std::fs::write(path, text).map_err(|e| ReportError::io(path, e))
}

fn read_text(path: &Path) -> Result<String, ReportError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ReportError::Missing {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(ReportError::io(path, e)),
    }
}
/// The loss causes that occur in any of `runs` (either alert kind), in report order.
pub fn causes_present(runs: &[&LoadedRun]) -> Vec<ledger::LossCause> {
    ledger::LossCause::ALL
        .iter()
        .copied()
        .filter(|c| {
            runs.iter().any(|r| {
                AlertKind::ALL.iter().any(|&k| {
                    r.summary
                        .kind(k)
                        .loss_by_cause
                        .get(c)
                        .is_some_and(|n| *n > 0)
                })
            })
        })
        .collect()
}
