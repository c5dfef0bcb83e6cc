//! Writing and reading the data files of a results folder (see [`crate::layout`]): JSON through
//! serde, CSV through the `csv` crate, HDR interval logs through `hdrhistogram`. Reading never
//! panics on a bad file: every error names the file and says what is wrong with it.

use crate::curve::DeliveryCurve;
use crate::error::ResultsError;
use crate::layout::ResultsDir;
use crate::record::{self, Summary};
use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use ledger::{AlertCode, AlertId, AlertKind, Fate, Ledger, LossCause};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// Width of the intervals in the `.hlog` files: scenario seconds of delivery time, so a reader can
/// see when in the scenario the latencies arose.
pub const HLOG_INTERVAL_S: u64 = 60;

/// Writes a run's data files into `dir` (created if needed): `summary.json`, `alerts.csv`, the
/// two `.hlog` files and `curves.csv`.
pub fn write_data(dir: &Path, summary: &Summary, ledger: &Ledger) -> Result<(), ResultsError> {
    let rd = ResultsDir::new(dir);
    std::fs::create_dir_all(dir).map_err(|e| ResultsError::io(dir, e))?;
    write_json(&rd.summary_json(), summary, "summary")?;
    write_alerts_csv(&rd.alerts_csv(), ledger)?;
    for kind in AlertKind::ALL {
        write_hlog(&rd.hlog(kind), kind, summary, ledger)?;
    }
    let curves: Vec<(String, DeliveryCurve)> = AlertKind::ALL
        .iter()
        .map(|&k| {
            let c = DeliveryCurve::from_sorted(&ledger.delivered_latencies(k), ledger.expected(k));
            (k.as_str().to_string(), c)
        })
        .collect();
    write_curves_csv(&rd.curves_csv(), &curves)
}

/// Writes a value as pretty JSON with a final newline (the form of every JSON file of a folder).
pub fn write_json<T: Serialize>(
    path: &Path,
    value: &T,
    what: &'static str,
) -> Result<(), ResultsError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|source| ResultsError::Json {
        path: path.to_path_buf(),
        what,
        source,
    })?;
    text.push('\n');
    std::fs::write(path, text).map_err(|e| ResultsError::io(path, e))
}

/// Reads a JSON file into a typed record; a missing file is [`ResultsError::Missing`].
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<T, ResultsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ResultsError::Missing {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(ResultsError::io(path, e)),
    };
    serde_json::from_str(&text).map_err(|source| ResultsError::Json {
        path: path.to_path_buf(),
        what,
        source,
    })
}

/// What became of an alert, as `alerts.csv` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FateName {
    Delivered,
    Lost,
    Pending,
}

/// One line of `alerts.csv` (the field names are its header).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AlertRow {
    alert_id: AlertId,
    kind: AlertKind,
    code: AlertCode,
    hub: u32,
    base_ms: u64,
    fate: FateName,
    at_ms: Option<u64>,
    cause: Option<LossCause>,
}

fn write_alerts_csv(path: &Path, ledger: &Ledger) -> Result<(), ResultsError> {
    let mut w = csv::Writer::from_path(path).map_err(|e| ResultsError::csv(path, e))?;
    for r in ledger.records() {
        let (fate, at_ms, cause) = match r.fate {
            Fate::Delivered { at_ms } => (FateName::Delivered, Some(at_ms), None),
            Fate::Lost { cause, at_ms } => (FateName::Lost, Some(at_ms), Some(cause)),
            Fate::Pending => (FateName::Pending, None, None),
        };
        w.serialize(AlertRow {
            alert_id: r.id,
            kind: r.id.kind(),
            code: r.code,
            hub: r.id.hub(),
            base_ms: r.base_ms,
            fate,
            at_ms,
            cause,
        })
        .map_err(|e| ResultsError::csv(path, e))?;
    }
    w.flush().map_err(|e| ResultsError::io(path, e))
}

/// From `alerts.csv`: per kind, the number of expected alerts (one line each) and the ascending
/// exact latencies of the delivered ones; with `detail`, every line as a ledger record (to split
/// a storm by outage, or to find the alerts summaries covered).
pub(crate) struct ExactLatencies {
    pub(crate) expected: BTreeMap<AlertKind, u64>,
    pub(crate) latencies: BTreeMap<AlertKind, Vec<u64>>,
    pub(crate) records: Vec<ledger::Record>,
}

pub(crate) fn read_alerts_csv(path: &Path, detail: bool) -> Result<ExactLatencies, ResultsError> {
    let mut r = csv::Reader::from_path(path).map_err(|e| ResultsError::csv(path, e))?;
    let mut out = ExactLatencies {
        expected: BTreeMap::new(),
        latencies: BTreeMap::new(),
        records: Vec::new(),
    };
    for row in r.deserialize::<AlertRow>() {
        let row = row.map_err(|e| ResultsError::csv(path, e))?;
        if row.kind != row.alert_id.kind() {
            return Err(ResultsError::corrupt(
                path,
                format!("alert {} is listed as {}", row.alert_id, row.kind.as_str()),
            ));
        }
        *out.expected.entry(row.kind).or_insert(0) += 1;
        if row.fate == FateName::Delivered {
            let at = row.at_ms.ok_or_else(|| {
                ResultsError::corrupt(
                    path,
                    format!("alert {} is delivered without a time", row.alert_id),
                )
            })?;
            out.latencies
                .entry(row.kind)
                .or_default()
                .push(at.saturating_sub(row.base_ms));
        }
        if detail {
            let at = row.at_ms.unwrap_or(0);
            let fate = match (row.fate, row.cause) {
                (FateName::Delivered, _) => Fate::Delivered { at_ms: at },
                (FateName::Lost, Some(cause)) => Fate::Lost { cause, at_ms: at },
                (FateName::Lost, None) => {
                    return Err(ResultsError::corrupt(
                        path,
                        format!("alert {} is lost without a cause", row.alert_id),
                    ));
                }
                (FateName::Pending, _) => Fate::Pending,
            };
            out.records.push(ledger::Record {
                id: row.alert_id,
                code: row.code,
                base_ms: row.base_ms,
                fate,
            });
        }
    }
    for v in out.latencies.values_mut() {
        v.sort_unstable();
    }
    Ok(out)
}

/// How many alerts of each kind an `alerts.csv` listed (expected) and how many of them were
/// delivered.
pub(crate) type CsvCounts = BTreeMap<AlertKind, (u64, u64)>;

/// Adds every line of the `alerts.csv` at `path` to `ledger`: the alert expected, then its fate.
/// `owns` says which alerts the file may list (a shard's own premises); a line outside it, outside
/// the ledger's population, or already in the ledger (listed twice, here or in another file) is an
/// error naming the file and the line's alert.
pub(crate) fn add_alerts_csv(
    path: &Path,
    ledger: &mut Ledger,
    owns: impl Fn(AlertId) -> Result<(), String>,
) -> Result<CsvCounts, ResultsError> {
    let mut r = csv::Reader::from_path(path).map_err(|e| ResultsError::csv(path, e))?;
    let mut counts = CsvCounts::new();
    for row in r.deserialize::<AlertRow>() {
        let row = row.map_err(|e| ResultsError::csv(path, e))?;
        let id = row.alert_id;
        let bad = |msg: String| ResultsError::corrupt(path, format!("alert {id}: {msg}"));
        if row.kind != id.kind() || row.hub != id.hub() {
            return Err(bad(format!(
                "listed as {} of hub {}, but its id is {} of hub {}",
                row.kind.as_str(),
                row.hub,
                id.kind().as_str(),
                id.hub()
            )));
        }
        owns(id).map_err(bad)?;
        ledger
            .expect(id, row.code, row.base_ms)
            .map_err(|e| bad(ledger_error(e, ledger.hubs())))?;
        let fate = match (row.fate, row.at_ms, row.cause) {
            (FateName::Delivered, Some(at), None) => ledger.deliver(id, at),
            (FateName::Lost, Some(at), Some(cause)) => ledger.lose(id, cause, at),
            (FateName::Pending, None, None) => Ok(()),
            _ => return Err(bad("its fate, time and cause do not go together".into())),
        };
        fate.map_err(|e| bad(ledger_error(e, ledger.hubs())))?;
        let c = counts.entry(row.kind).or_insert((0, 0));
        c.0 += 1;
        c.1 += u64::from(row.fate == FateName::Delivered);
    }
    Ok(counts)
}

fn ledger_error(e: ledger::LedgerError, hubs: u32) -> String {
    match e {
        ledger::LedgerError::Unexpected(_) => {
            format!("outside the run's {hubs} premises")
        }
        ledger::LedgerError::AlreadyFated { .. } => {
            "listed twice (in this file, or in another shard's)".into()
        }
    }
}

/// One interval per [`HLOG_INTERVAL_S`] of delivery time (scenario seconds), each the histogram of
/// the latencies delivered in it; BaseTime 0 so timestamps read as scenario seconds.
fn write_hlog(
    path: &Path,
    kind: AlertKind,
    summary: &Summary,
    ledger: &Ledger,
) -> Result<(), ResultsError> {
    let mut intervals: BTreeMap<u64, Histogram<u64>> = BTreeMap::new();
    for r in ledger.records().filter(|r| r.id.kind() == kind) {
        if let (Fate::Delivered { at_ms }, Some(lat)) = (r.fate, r.latency_ms()) {
            intervals
                .entry(at_ms / (HLOG_INTERVAL_S * 1000))
                .or_insert_with(record::new_histogram)
                .saturating_record(lat.min(record::MAX_LATENCY_MS));
        }
    }
    let base = match kind {
        AlertKind::Poa => "the power cut",
        AlertKind::Pra => "the restoration",
    };
    let m = &summary.meta;
    let mut buf = Vec::new();
    let mut ser = V2DeflateSerializer::new();
    let corrupt = |e: String| ResultsError::corrupt(path, e);
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
    std::fs::write(path, buf).map_err(|e| ResultsError::io(path, e))
}

/// Reads an interval log and sums its intervals into one histogram.
pub fn read_hlog(path: &Path, kind: AlertKind) -> Result<Histogram<u64>, ResultsError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ResultsError::Missing {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(ResultsError::io(path, e)),
    };
    let mut total = record::new_histogram();
    total.auto(true);
    let mut deser = Deserializer::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let entry = entry
            .map_err(|e| ResultsError::corrupt(path, format!("not an HDR interval log ({e:?})")))?;
        let LogEntry::Interval(iv) = entry else {
            continue;
        };
        let at = iv.start_timestamp().as_secs_f64();
        if let Some(tag) = iv.tag()
            && tag.as_str() != kind.as_str()
        {
            return Err(ResultsError::corrupt(
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
                ResultsError::corrupt(path, format!("interval at {at} s: bad base64: {e}"))
            })?;
        let h: Histogram<u64> = deser.deserialize(&mut raw.as_slice()).map_err(|e| {
            ResultsError::corrupt(path, format!("interval at {at} s: bad histogram: {e}"))
        })?;
        total.add(&h).map_err(|e| {
            ResultsError::corrupt(path, format!("interval at {at} s: cannot add: {e:?}"))
        })?;
    }
    Ok(total)
}

/// Writes curves sampled every second, from 0 to the last delivery + 1 s: a `time_s` column, then
/// one column per curve with delivered / expected to 6 decimals.
pub fn write_curves_csv(
    path: &Path,
    curves: &[(String, DeliveryCurve)],
) -> Result<(), ResultsError> {
    let last_s = curves
        .iter()
        .filter_map(|(_, c)| c.last_ms())
        .max()
        .unwrap_or(0)
        .div_ceil(1000)
        + 1;
    let mut w = csv::Writer::from_path(path).map_err(|e| ResultsError::csv(path, e))?;
    let err = |e| ResultsError::csv(path, e);
    w.write_record(std::iter::once("time_s").chain(curves.iter().map(|(n, _)| n.as_str())))
        .map_err(err)?;
    let mut row: Vec<String> = Vec::with_capacity(curves.len() + 1);
    for t in 0..=last_s {
        row.clear();
        row.push(t.to_string());
        row.extend(
            curves
                .iter()
                .map(|(_, c)| format!("{:.6}", c.fraction_at(t * 1000))),
        );
        w.write_record(&row).map_err(err)?;
    }
    w.flush().map_err(|e| ResultsError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_csv_round_trips_every_fate() {
        let mut l = Ledger::new(3);
        for h in 0..3 {
            l.expect(AlertId::new(h, AlertKind::Poa), AlertCode::Ad1, 100)
                .unwrap();
        }
        l.expect(
            AlertId::new(0, AlertKind::Pra),
            AlertCode::Restored8F36,
            5000,
        )
        .unwrap();
        l.deliver(AlertId::new(0, AlertKind::Poa), 1100).unwrap();
        l.deliver(AlertId::new(0, AlertKind::Pra), 5250).unwrap();
        l.lose(AlertId::new(1, AlertKind::Poa), LossCause::Collision, 300)
            .unwrap();
        let dir = std::env::temp_dir().join(format!("csp-results-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("alerts.csv");
        write_alerts_csv(&path, &l).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "alert_id,kind,code,hub,base_ms,fate,at_ms,cause\n\
             0,poa,AD1,0,100,delivered,1100,\n\
             1,pra,8F36,0,5000,delivered,5250,\n\
             2,poa,AD1,1,100,lost,300,collision\n\
             4,poa,AD1,2,100,pending,,\n"
        );
        let back = read_alerts_csv(&path, false).unwrap();
        assert_eq!(back.expected[&AlertKind::Poa], 3);
        assert_eq!(back.latencies[&AlertKind::Poa], vec![1000]);
        assert_eq!(back.latencies[&AlertKind::Pra], vec![250]);

        std::fs::write(&path, text.replace("1,pra,8F36", "1,poa,8F36")).unwrap();
        let e = read_alerts_csv(&path, false).err().unwrap().to_string();
        assert!(e.contains("alerts.csv") && e.contains("alert 1"), "{e}");
        std::fs::write(&path, text.replace("lost,300", "vanished,300")).unwrap();
        let e = read_alerts_csv(&path, false).err().unwrap().to_string();
        assert!(e.contains("alerts.csv") && e.contains("line: 4"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
