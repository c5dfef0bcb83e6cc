//! The shards of a split run (`run --shard I/N`) merged back into the one run, exactly.
//!
//! Every shard ran the whole model and kept its own premises' alerts ([`ledger::Shard`]), so the
//! shards' `alerts.csv` files are disjoint parts of the unsplit run's ledger. [`merge_shards`]
//! rebuilds that ledger line by line and summarises it by the same rule as any run: counts, loss by
//! cause, time to X% and `out_of_order` are exactly those of the unsplit run, and the folder it
//! writes (`alerts.csv`, the `.hlog` histograms, `curves.csv`) is a normal results folder. What a
//! ledger does not hold adds up: the endpoint's duplicate and unexpected acknowledgements; each
//! shard's health stays its own (a p99 of p99s means nothing).
//!
//! A merge refuses, naming the folders: a folder that is not a shard; a shard missing from 0..N or
//! given twice; shards of another split (N), profile (name or resolved hash), seed, changes,
//! premises, mode, time scale or harness build; a shard without its `alerts.csv` or `run.json`; an
//! `alerts.csv` that lists another shard's alert or disagrees with its `summary.json`.

use crate::error::ResultsError;
use crate::folder::{self, CsvCounts};
use crate::layout::{ResultsDir, SUMMARY_JSON};
use crate::provenance::RunRecord;
use crate::record::{HealthRecord, Summary, summarize};
use ledger::{AlertKind, Ledger, Shard};
use std::path::{Path, PathBuf};

/// One shard's folder as read for a merge.
#[derive(Debug, Clone)]
pub struct ShardRun {
    /// Its folder.
    pub dir: PathBuf,
    /// Which shard it is.
    pub shard: Shard,
    /// Its `summary.json`.
    pub summary: Summary,
    /// Its `run.json`.
    pub record: RunRecord,
}

/// The run the shards make together.
#[derive(Debug, Clone)]
pub struct MergedRun {
    /// The summary of the whole run (no `shard`; health per shard).
    pub summary: Summary,
    /// The whole run's ledger.
    pub ledger: Ledger,
    /// Its provenance: the earliest start, the latest end, shard 0's command line, build,
    /// profile and machine, the merge's command line and every shard's record.
    pub record: RunRecord,
    /// The shards, in shard order.
    pub shards: Vec<ShardRun>,
}

impl MergedRun {
    /// How far apart the shards started, seconds (from their `run.json`): the endpoint saw their
    /// loads offset by that much, while each shard's figures are measured against its own clock.
    pub fn start_spread_s(&self) -> f64 {
        let starts = self.shards.iter().map(|s| s.record.started_at);
        match (starts.clone().min(), starts.max()) {
            (Some(a), Some(b)) => (b - a).num_milliseconds() as f64 / 1000.0,
            _ => 0.0,
        }
    }
}

fn refuse(msg: String) -> ResultsError {
    ResultsError::Incompatible(msg)
}

/// Reads one shard's `summary.json` and `run.json`.
fn read_shard(dir: &Path) -> Result<ShardRun, ResultsError> {
    if !dir.is_dir() {
        return Err(ResultsError::Missing {
            path: dir.to_path_buf(),
        });
    }
    let rd = ResultsDir::new(dir);
    let summary: Summary = folder::read_json(&rd.summary_json(), "summary")?;
    let shard = summary.meta.shard.ok_or_else(|| {
        refuse(format!(
            "{} is not a shard ({SUMMARY_JSON} has no `shard`): merge combines the folders of \
             `run --shard I/N` (or `simulate --shard I/N`)",
            dir.display()
        ))
    })?;
    let record: RunRecord = folder::read_json(&rd.run_json(), "run record")?;
    Ok(ShardRun {
        dir: dir.to_path_buf(),
        shard,
        summary,
        record,
    })
}

/// What must be the same in every shard of one run, as (what, value) pairs.
fn identity(s: &ShardRun) -> Vec<(&'static str, String)> {
    let m = &s.summary.meta;
    vec![
        ("shard count", s.shard.count.to_string()),
        ("profile", m.profile.clone()),
        ("resolved profile (sha256)", s.record.profile.sha256.clone()),
        ("region", m.region.as_str().to_string()),
        ("changes", format!("{:?}", m.changes)),
        ("seed", m.seed.to_string()),
        ("premises", m.hubs.to_string()),
        ("mode", m.mode.to_string()),
        ("time scale", m.time_scale.to_string()),
        ("harness build", s.record.harness.describe()),
    ]
}

/// Checks that `shards` are exactly the shards 0..N of one run and puts them in shard order.
fn check_set(mut shards: Vec<ShardRun>) -> Result<Vec<ShardRun>, ResultsError> {
    let first = shards.first().ok_or(ResultsError::NoRuns)?;
    let want = identity(first);
    for s in &shards[1..] {
        for ((what, a), (_, b)) in want.iter().zip(identity(s)) {
            if *a != b {
                return Err(refuse(format!(
                    "{} is from another run than {}: {what} {b} there, {a} here",
                    s.dir.display(),
                    first.dir.display()
                )));
            }
        }
    }
    shards.sort_by_key(|s| s.shard.index);
    for pair in shards.windows(2) {
        if pair[0].shard == pair[1].shard {
            return Err(refuse(format!(
                "shard {} is given twice: {} and {}",
                pair[0].shard,
                pair[0].dir.display(),
                pair[1].dir.display()
            )));
        }
    }
    let n = shards[0].shard.count;
    let missing: Vec<String> = (0..n)
        .filter(|i| shards.iter().all(|s| s.shard.index != *i))
        .map(|i| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        let given: Vec<String> = shards
            .iter()
            .map(|s| format!("{} {}", s.shard, s.dir.display()))
            .collect();
        return Err(refuse(format!(
            "shard {} missing (given: {}): a run is only whole with every shard",
            missing.join(", "),
            given.join(", ")
        )));
    }
    Ok(shards)
}

/// Reads the shards in `dirs` (any order) and merges them into the one run they split; `merged_by`
/// is the merge's command line, for `run.json`. See the module for what is refused.
pub fn merge_shards(dirs: &[PathBuf], merged_by: Vec<String>) -> Result<MergedRun, ResultsError> {
    let shards = check_set(
        dirs.iter()
            .map(|d| read_shard(d))
            .collect::<Result<_, _>>()?,
    )?;
    let first = &shards[0];
    let mut ledger = Ledger::new(first.summary.meta.hubs);
    for s in &shards {
        let csv = ResultsDir::new(&s.dir).alerts_csv();
        if !csv.is_file() {
            return Err(ResultsError::Missing { path: csv });
        }
        let shard = s.shard;
        let counts = folder::add_alerts_csv(&csv, &mut ledger, |id| {
            if shard.owns(id) {
                Ok(())
            } else {
                Err(format!(
                    "hub {} belongs to shard {}/{}, not to this folder's {shard}",
                    id.hub(),
                    id.hub() % shard.count,
                    shard.count
                ))
            }
        })?;
        agree(&csv, &counts, &s.summary)?;
    }
    let summary = merged_summary(&shards, &ledger);
    let record = merged_record(&shards, merged_by);
    Ok(MergedRun {
        summary,
        ledger,
        record,
        shards,
    })
}

/// A shard's `alerts.csv` must list what its `summary.json` counts.
fn agree(csv: &Path, counts: &CsvCounts, summary: &Summary) -> Result<(), ResultsError> {
    for kind in AlertKind::ALL {
        let (rows, delivered) = counts.get(&kind).copied().unwrap_or((0, 0));
        let k = summary.kind(kind);
        if (rows, delivered) != (k.expected, k.delivered) {
            return Err(ResultsError::corrupt(
                csv,
                format!(
                    "lists {rows} expected and {delivered} delivered {kind} but {SUMMARY_JSON} \
                     says {} and {}",
                    k.expected, k.delivered
                ),
            ));
        }
    }
    Ok(())
}

/// The whole run's summary: the merged ledger's figures, the anomalies the shards counted, and
/// each shard's health.
fn merged_summary(shards: &[ShardRun], ledger: &Ledger) -> Summary {
    let metas: Vec<_> = shards.iter().map(|s| &s.summary.meta).collect();
    let mut meta = metas[0].clone();
    meta.shard = None;
    meta.complete = metas.iter().all(|m| m.complete);
    let reasons: Vec<String> = shards
        .iter()
        .filter_map(|s| {
            let why = s.summary.meta.incomplete_reason.as_ref()?;
            Some(format!("shard {}: {why}", s.shard))
        })
        .collect();
    meta.incomplete_reason = (!reasons.is_empty()).then(|| reasons.join("; "));
    meta.health = Some(HealthRecord::Shards(
        metas
            .iter()
            .flat_map(|m| m.health.iter())
            .flat_map(|h| h.shards().iter().cloned())
            .collect(),
    ));
    meta.endpoint_duplicates = metas
        .iter()
        .filter_map(|m| m.endpoint_duplicates)
        .reduce(|a, b| a + b);
    let mut endpoints: Vec<String> = metas.iter().filter_map(|m| m.endpoint.clone()).collect();
    endpoints.dedup();
    meta.endpoint = (!endpoints.is_empty()).then(|| endpoints.join("; "));
    let mut summary = summarize(meta, ledger);
    // A ledger rebuilt from alerts.csv holds fates, not the acknowledgements that were refused.
    summary.duplicates = shards.iter().map(|s| s.summary.duplicates).sum();
    summary.false_positives = shards.iter().map(|s| s.summary.false_positives).sum();
    summary.unexpected_pra = shards.iter().map(|s| s.summary.unexpected_pra).sum();
    summary
}

/// The whole run's provenance (see [`MergedRun::record`]).
fn merged_record(shards: &[ShardRun], merged_by: Vec<String>) -> RunRecord {
    let records: Vec<&RunRecord> = shards.iter().map(|s| &s.record).collect();
    let started_at = records.iter().map(|r| r.started_at).min();
    let ended_at = records.iter().map(|r| r.ended_at).max();
    let mut whole = records[0].clone();
    if let (Some(a), Some(b)) = (started_at, ended_at) {
        whole.started_at = a;
        whole.ended_at = b;
        whole.wall_s = (b - a).num_milliseconds() as f64 / 1000.0;
    }
    whole.insecure = records.iter().any(|r| r.insecure);
    let ids: Vec<&Option<String>> = records.iter().map(|r| &r.run_id).collect();
    whole.run_id = if ids.iter().all(|id| *id == ids[0]) {
        ids[0].clone()
    } else {
        None
    };
    whole.merged_by = Some(merged_by);
    whole.shards = records.into_iter().cloned().collect();
    whole
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::folder::{write_data, write_json};
    use crate::layout::ALERTS_CSV;
    use crate::provenance::{HarnessBuild, ProfileRecord, Resources};
    use crate::record::{HostRecord, RunMeta};
    use ledger::{AlertCode, AlertId, LossCause, Region};

    /// A whole run of `hubs` premises: POAs of every hub, PRAs of every other; some delivered at
    /// hub-dependent latencies, some lost, one PRA before its POA.
    fn whole(hubs: u32) -> Ledger {
        let mut l = Ledger::new(hubs);
        for h in 0..hubs {
            let poa = AlertId::new(h, AlertKind::Poa);
            l.expect(poa, AlertCode::Ad1, 0).unwrap();
            match h % 7 {
                0 => l.lose(poa, LossCause::Collision, 50).unwrap(),
                _ => l.deliver(poa, u64::from(h * 37 % 1000) + 100).unwrap(),
            }
            if h % 2 == 0 {
                let pra = AlertId::new(h, AlertKind::Pra);
                l.expect(pra, AlertCode::Restored8F36, 10_000).unwrap();
                match h % 5 {
                    0 => l.lose(pra, LossCause::AttachFailure, 10_500).unwrap(),
                    _ => l.deliver(pra, 10_000 + u64::from(h % 300)).unwrap(),
                }
            }
        }
        l.finish(60_000);
        l
    }

    fn meta(hubs: u32) -> RunMeta {
        let region: Region = serde_json::from_str("\"north\"").unwrap();
        RunMeta::new("north/current", region, "current", 1, hubs)
    }

    fn record() -> RunRecord {
        serde_json::from_value(serde_json::json!({
            "schema_version": 1,
            "started_at": "2026-01-01T00:00:00Z",
            "ended_at": "2026-01-01T00:01:10Z",
            "wall_s": 70.0,
            "harness": HarnessBuild { version: "0.1.0".into(), commit: Some("abc".into()) },
            "command_line": ["csp-harness", "simulate"],
            "profile": ProfileRecord {
                name: "north/current".into(),
                path: None,
                sha256: "00".repeat(32),
                changes: Vec::new(),
            },
            "insecure": false,
            "host": HostRecord {
                arch: "x86_64".into(),
                cpu_model: None,
                harness_version: "0.1.0".into(),
                hostname: None,
                kernel: None,
                logical_cpus: 2,
                memory_bytes: 1,
                os: None,
                physical_cores: None,
            },
            "resources": Resources::default(),
        }))
        .unwrap()
    }

    /// Writes shard `i` of `n` of `whole` into `root/shard-i`.
    fn write_shard(root: &Path, whole: &Ledger, i: u32, n: u32) -> PathBuf {
        let shard = Shard::new(i, n).unwrap();
        let mut l = whole.clone();
        l.retain_hubs(|h| shard.owns_hub(h));
        let mut m = meta(whole.hubs());
        m.shard = Some(shard);
        let dir = root.join(format!("shard-{i}"));
        let mut s = summarize(m, &l);
        s.duplicates = u64::from(i);
        write_data(&dir, &s, &l).unwrap();
        let mut r = record();
        r.started_at += chrono::Duration::seconds(i64::from(i));
        r.ended_at += chrono::Duration::seconds(i64::from(i));
        write_json(&ResultsDir::new(&dir).run_json(), &r, "run record").unwrap();
        dir
    }

    fn scratch() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn four_shards_merge_into_exactly_the_whole_run() {
        let tmp = scratch();
        let w = whole(1_000);
        let dirs: Vec<PathBuf> = [2, 0, 3, 1]
            .iter()
            .map(|&i| write_shard(tmp.path(), &w, i, 4))
            .collect();
        let m = merge_shards(&dirs, vec!["csp-harness".into(), "merge".into()]).unwrap();
        let single = summarize(meta(1_000), &w);
        assert_eq!(m.summary.alerts, single.alerts, "every figure per kind");
        assert_eq!(m.summary.out_of_order, single.out_of_order);
        assert_eq!(m.summary.duplicates, 1 + 2 + 3, "anomalies add up");
        assert_eq!(m.summary.meta.shard, None);
        assert_eq!(m.summary.meta.hubs, 1_000);
        let recs: Vec<_> = m.ledger.records().collect();
        assert_eq!(recs, w.records().collect::<Vec<_>>(), "the same ledger");
        assert_eq!(m.record.shards.len(), 4);
        assert_eq!(m.record.wall_s, 73.0, "earliest start to latest end");
        assert_eq!(m.start_spread_s(), 3.0);
        let order: Vec<u32> = m.shards.iter().map(|s| s.shard.index).collect();
        assert_eq!(order, [0, 1, 2, 3]);
    }

    #[test]
    fn a_missing_duplicated_or_foreign_shard_is_refused_by_name() {
        let tmp = scratch();
        let w = whole(200);
        let d: Vec<PathBuf> = (0..3).map(|i| write_shard(tmp.path(), &w, i, 3)).collect();
        let err = |dirs: &[PathBuf]| merge_shards(dirs, Vec::new()).unwrap_err().to_string();

        let e = err(&[d[0].clone(), d[2].clone()]);
        assert!(e.contains("shard 1/3 missing"), "{e}");
        let e = err(&[d[0].clone(), d[1].clone(), d[1].clone(), d[2].clone()]);
        assert!(e.contains("shard 1/3 is given twice"), "{e}");

        // Another seed, another split, another build, another profile.
        let other = scratch();
        let foreign = write_shard(other.path(), &w, 1, 3);
        let edit = |f: &dyn Fn(&mut serde_json::Value), file: &str| {
            let path = foreign.join(file);
            let mut v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            f(&mut v);
            std::fs::write(&path, v.to_string()).unwrap();
        };
        edit(&|v| v["seed"] = 7.into(), "summary.json");
        let e = err(&[d[0].clone(), foreign.clone(), d[2].clone()]);
        assert!(e.contains("another run") && e.contains("seed 7"), "{e}");
        edit(&|v| v["seed"] = 1.into(), "summary.json");
        edit(&|v| v["harness"]["commit"] = "def".into(), "run.json");
        let e = err(&[d[0].clone(), foreign.clone(), d[2].clone()]);
        assert!(e.contains("harness build"), "{e}");
        edit(&|v| v["harness"]["commit"] = "abc".into(), "run.json");
        edit(
            &|v| v["profile"]["sha256"] = "11".repeat(32).into(),
            "run.json",
        );
        let e = err(&[d[0].clone(), foreign.clone(), d[2].clone()]);
        assert!(e.contains("resolved profile"), "{e}");
        edit(
            &|v| v["profile"]["sha256"] = "00".repeat(32).into(),
            "run.json",
        );
        edit(&|v| v["changes"] = serde_json::json!(["3"]), "summary.json");
        let e = err(&[d[0].clone(), foreign.clone(), d[2].clone()]);
        assert!(e.contains("changes"), "{e}");
        edit(&|v| v["changes"] = serde_json::json!([]), "summary.json");
        edit(
            &|v| v["shard"] = serde_json::json!({"index": 1, "count": 4}),
            "summary.json",
        );
        let e = err(&[d[0].clone(), foreign.clone(), d[2].clone()]);
        assert!(e.contains("shard count 4"), "{e}");

        // A whole run is not a shard.
        let run = tmp.path().join("whole");
        write_data(&run, &summarize(meta(200), &w), &w).unwrap();
        let e = err(&[d[0].clone(), run.clone()]);
        assert!(e.contains("is not a shard"), "{e}");

        // Without its ledger, or with another shard's alert in it.
        std::fs::rename(d[1].join(ALERTS_CSV), tmp.path().join("kept.csv")).unwrap();
        let e = err(&d);
        assert!(e.contains("alerts.csv") && e.contains("missing"), "{e}");
        let text = std::fs::read_to_string(tmp.path().join("kept.csv")).unwrap();
        let stolen = std::fs::read_to_string(d[0].join(ALERTS_CSV)).unwrap();
        let line = stolen.lines().nth(1).unwrap();
        std::fs::write(d[1].join(ALERTS_CSV), format!("{text}{line}\n")).unwrap();
        let e = err(&d);
        assert!(e.contains("belongs to shard 0/3"), "{e}");
        // A line dropped: the file no longer agrees with its summary.
        let short: Vec<&str> = text.lines().take(text.lines().count() - 1).collect();
        std::fs::write(d[1].join(ALERTS_CSV), short.join("\n") + "\n").unwrap();
        let e = err(&d);
        assert!(e.contains("summary.json says"), "{e}");
    }
}
