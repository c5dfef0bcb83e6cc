//! A run in memory without its ledger: the summary and, per kind, the delivered latencies —
//! exact where a ledger or `alerts.csv` gives them, an HDR histogram where only the `.hlog` does.
//! Enough to redraw every graph and table, and to merge shards.

use crate::curve::{DeliveryCurve, Precision};
use crate::error::ResultsError;
use crate::folder;
use crate::layout::{ResultsDir, SUMMARY_JSON};
use crate::provenance::RunRecord;
use crate::record::{self, HealthRecord, KindSummary, LatencyStats, Summary};
use crate::storm::{self, OutageMeta};
use hdrhistogram::Histogram;
use ledger::{AlertKind, Ledger, PerKind};
use std::path::{Path, PathBuf};

/// The delivered latencies of one kind, ms from the alert's base.
#[derive(Debug, Clone)]
pub enum Latencies {
    /// Every latency, ascending.
    Exact(Vec<u64>),
    /// Only their HDR histogram.
    Hdr(Histogram<u64>),
}

impl Latencies {
    /// The delivery curve against `expected` alerts.
    pub fn curve(&self, expected: u64) -> DeliveryCurve {
        match self {
            Latencies::Exact(v) => DeliveryCurve::from_sorted(v, expected),
            Latencies::Hdr(h) => DeliveryCurve::from_histogram(h, expected),
        }
    }

    /// Their HDR histogram (built for exact latencies).
    pub fn histogram(&self) -> Histogram<u64> {
        match self {
            Latencies::Exact(v) => record::histogram_of(v),
            Latencies::Hdr(h) => h.clone(),
        }
    }

    /// How many.
    pub fn len(&self) -> u64 {
        match self {
            Latencies::Exact(v) => v.len() as u64,
            Latencies::Hdr(h) => h.len(),
        }
    }

    /// None at all?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Exact or HDR.
    pub fn precision(&self) -> Precision {
        match self {
            Latencies::Exact(_) => Precision::Exact,
            Latencies::Hdr(_) => Precision::Hdr,
        }
    }
}

/// A run read back from its results folder (or merged from several, or built in memory).
#[derive(Debug, Clone)]
pub struct LoadedRun {
    /// The folder it came from (`None` for a merge or a run built in memory).
    pub dir: Option<PathBuf>,
    /// The summary.
    pub summary: Summary,
    /// Delivered POA latencies, ms from the power cut.
    pub poa: Latencies,
    /// Delivered PRA latencies, ms from the restoration.
    pub pra: Latencies,
    /// Where it comes from (`run.json`); `None` for a run built in memory, a merge, or a folder
    /// written before `run.json` existed.
    pub record: Option<RunRecord>,
    /// A storm's delivered latencies per outage, in the order of `summary.outages` (empty for a
    /// run of one outage, a merge, or a folder without `alerts.csv`).
    pub outages: Vec<PerKind<Latencies>>,
    /// Latencies (ms from the base) at which alerts were covered by an acknowledged summary
    /// alert, ascending (empty unless summaries covered some, and exact data are at hand).
    pub covered: PerKind<Vec<u64>>,
    /// With several seeds (`--seeds`): the runs of the seeds after the first, in the order of
    /// `summary.seeds`, whose curves with this run's make the bands on the graphs. Only in
    /// memory: a folder read back has its seeds' figures (`summary.seeds`) but not their curves.
    pub seed_runs: Vec<LoadedRun>,
}

/// The outages `summary` lists, as ranges of premises.
fn metas(summary: &Summary) -> Vec<OutageMeta> {
    summary.outages.iter().map(|o| o.outage.clone()).collect()
}

/// Per outage, its delivered latencies (exact).
fn outage_latencies(tallies: Vec<storm::Tally>) -> Vec<PerKind<Latencies>> {
    tallies
        .into_iter()
        .map(|t| {
            let k = t.kinds;
            PerKind::new(
                Latencies::Exact(k.poa.latencies),
                Latencies::Exact(k.pra.latencies),
            )
        })
        .collect()
}

/// Whether a summary needs the alerts split by premises (a storm, or covered alerts).
fn wants_detail(summary: &Summary) -> bool {
    !summary.outages.is_empty()
        || AlertKind::ALL
            .iter()
            .any(|&k| summary.kind(k).covered_by_summary.is_some())
}

impl LoadedRun {
    /// A run in memory from its summary and ledger (what [`crate::write_data`] writes, without
    /// the files): exact.
    pub fn from_ledger(summary: Summary, ledger: &Ledger) -> Self {
        let (outages, covered) = if wants_detail(&summary) {
            let (t, c) = storm::tally(ledger.records(), &metas(&summary));
            (outage_latencies(t), c)
        } else {
            Default::default()
        };
        LoadedRun {
            dir: None,
            poa: Latencies::Exact(ledger.delivered_latencies(AlertKind::Poa)),
            pra: Latencies::Exact(ledger.delivered_latencies(AlertKind::Pra)),
            summary,
            record: None,
            outages,
            covered,
            seed_runs: Vec::new(),
        }
    }

    /// The delivery curve of a kind of outage `i` (of `summary.outages`), if its latencies are at
    /// hand.
    pub fn outage_curve(&self, i: usize, kind: AlertKind) -> Option<DeliveryCurve> {
        let o = self.summary.outages.get(i)?;
        let l = self.outages.get(i)?;
        Some(l[kind].curve(o.alerts.kind(kind).expected))
    }

    /// The share of expected alerts of a kind delivered *or covered by an acknowledged summary*
    /// by each time: `None` unless summaries covered some (and exact data are at hand).
    pub fn delivered_or_covered_curve(&self, kind: AlertKind) -> Option<DeliveryCurve> {
        let covered = &self.covered[kind];
        if covered.is_empty() {
            return None;
        }
        let Latencies::Exact(lat) = self.latencies(kind) else {
            return None;
        };
        let mut all: Vec<u64> = lat.iter().chain(covered).copied().collect();
        all.sort_unstable();
        Some(DeliveryCurve::from_sorted(
            &all,
            self.summary.kind(kind).expected,
        ))
    }

    /// Every seed's delivery curve of a kind, this run's first (one curve without `--seeds`).
    pub fn seed_curves(&self, kind: AlertKind) -> Vec<DeliveryCurve> {
        std::iter::once(self)
            .chain(&self.seed_runs)
            .map(|r| r.curve(kind))
            .collect()
    }

    /// This run and the runs of its other seeds, in seed order (this run alone without `--seeds`).
    pub fn all_seeds(&self) -> Vec<&LoadedRun> {
        std::iter::once(self).chain(&self.seed_runs).collect()
    }

    /// The latencies of a kind.
    pub fn latencies(&self, kind: AlertKind) -> &Latencies {
        match kind {
            AlertKind::Poa => &self.poa,
            AlertKind::Pra => &self.pra,
        }
    }

    fn latencies_mut(&mut self, kind: AlertKind) -> &mut Latencies {
        match kind {
            AlertKind::Poa => &mut self.poa,
            AlertKind::Pra => &mut self.pra,
        }
    }

    /// The delivery curve of a kind (delivered / expected over time).
    pub fn curve(&self, kind: AlertKind) -> DeliveryCurve {
        self.latencies(kind).curve(self.summary.kind(kind).expected)
    }

    /// Exact only if both kinds are.
    pub fn precision(&self) -> Precision {
        if AlertKind::ALL
            .iter()
            .all(|&k| self.latencies(k).precision() == Precision::Exact)
        {
            Precision::Exact
        } else {
            Precision::Hdr
        }
    }
}

/// Reads a results folder: `summary.json` and the two `.hlog` files (which must agree with it),
/// and the exact latencies from `alerts.csv` when it is there (else the histograms stand in).
pub fn load_run(dir: &Path) -> Result<LoadedRun, ResultsError> {
    if !dir.is_dir() {
        return Err(ResultsError::Missing {
            path: dir.to_path_buf(),
        });
    }
    let rd = ResultsDir::new(dir);
    let summary: Summary = folder::read_json(&rd.summary_json(), "summary")?;
    let hlog = |kind: AlertKind| -> Result<Latencies, ResultsError> {
        let path = rd.hlog(kind);
        let h = folder::read_hlog(&path, kind)?;
        let said = summary.kind(kind).delivered;
        if h.len() != said {
            return Err(ResultsError::corrupt(
                path,
                format!(
                    "holds {} latencies but {SUMMARY_JSON} says {said} {kind} delivered",
                    h.len()
                ),
            ));
        }
        Ok(Latencies::Hdr(h))
    };
    let mut run = LoadedRun {
        dir: Some(dir.to_path_buf()),
        poa: hlog(AlertKind::Poa)?,
        pra: hlog(AlertKind::Pra)?,
        summary,
        record: None,
        outages: Vec::new(),
        covered: PerKind::default(),
        seed_runs: Vec::new(),
    };
    let run_json = rd.run_json();
    if run_json.is_file() {
        run.record = Some(folder::read_json(&run_json, "run record")?);
    }
    let csv = rd.alerts_csv();
    if csv.is_file() {
        let detail = wants_detail(&run.summary);
        let mut exact = folder::read_alerts_csv(&csv, detail)?;
        for kind in AlertKind::ALL {
            let k = run.summary.kind(kind);
            let rows = exact.expected.get(&kind).copied().unwrap_or(0);
            let lat = exact.latencies.remove(&kind).unwrap_or_default();
            if rows != k.expected || lat.len() as u64 != k.delivered {
                return Err(ResultsError::corrupt(
                    &csv,
                    format!(
                        "lists {rows} expected and {} delivered {kind} but {SUMMARY_JSON} says \
                         {} and {}",
                        lat.len(),
                        k.expected,
                        k.delivered
                    ),
                ));
            }
            *run.latencies_mut(kind) = Latencies::Exact(lat);
        }
        if detail {
            let records = std::mem::take(&mut exact.records);
            let (t, c) = storm::tally(records.into_iter(), &metas(&run.summary));
            run.outages = outage_latencies(t);
            run.covered = c;
        }
    }
    Ok(run)
}

/// Merges shards of one run (same region and option): counts add; latencies concatenate when
/// every shard has them exactly, else their histograms add (and the summary then says its times
/// are to HDR precision, ≈0.1%). Time to X% and percentiles are recomputed from the merged data
/// by the same rule as a single run's.
pub fn merge(runs: &[LoadedRun]) -> Result<LoadedRun, ResultsError> {
    let (first, rest) = runs.split_first().ok_or(ResultsError::NoRuns)?;
    if rest.is_empty() {
        return Ok(LoadedRun {
            dir: None,
            seed_runs: Vec::new(),
            ..first.clone()
        });
    }
    // A merge has no single provenance: each shard's run.json stays in its folder.
    let mut summary = first.summary.clone();
    for r in rest {
        let (a, b) = (&summary.meta, &r.summary.meta);
        if a.region != b.region || a.option_label != b.option_label {
            return Err(ResultsError::Incompatible(format!(
                "{} {} and {} {} are different scenarios",
                a.region, a.option_label, b.region, b.option_label
            )));
        }
        let s = &mut summary;
        s.meta.hubs = s.meta.hubs.saturating_add(b.hubs);
        s.meta.complete &= b.complete;
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
    summary.meta.health = Some(HealthRecord::Shards(
        runs.iter()
            .flat_map(|r| r.summary.meta.health.iter())
            .flat_map(|h| h.shards().iter().cloned())
            .collect(),
    ));
    let merged = |kind: AlertKind| -> Result<Latencies, ResultsError> {
        let all: Vec<&Latencies> = runs.iter().map(|r| r.latencies(kind)).collect();
        if all.iter().all(|l| matches!(l, Latencies::Exact(_))) {
            let mut v: Vec<u64> = all
                .iter()
                .flat_map(|l| match l {
                    Latencies::Exact(v) => v.as_slice(),
                    Latencies::Hdr(_) => &[],
                })
                .copied()
                .collect();
            v.sort_unstable();
            return Ok(Latencies::Exact(v));
        }
        let mut h = record::new_histogram();
        h.auto(true);
        for l in all {
            h.add(l.histogram())
                .map_err(|e| ResultsError::Incompatible(format!("histograms: {e:?}")))?;
        }
        Ok(Latencies::Hdr(h))
    };
    let (poa, pra) = (merged(AlertKind::Poa)?, merged(AlertKind::Pra)?);
    // A merge keeps no per-outage or covered detail: shards number their premises apart.
    summary.outages.clear();
    let mut out = LoadedRun {
        dir: None,
        summary,
        poa,
        pra,
        record: None,
        outages: Vec::new(),
        covered: PerKind::default(),
        seed_runs: Vec::new(),
    };
    for kind in AlertKind::ALL {
        let curve = out.curve(kind);
        let l = out.latencies(kind);
        let stats = match l {
            Latencies::Exact(v) => LatencyStats {
                max: v.last().copied(),
                ..LatencyStats::from_histogram(&l.histogram())
            },
            Latencies::Hdr(h) => LatencyStats::from_histogram(h),
        };
        let k = out.summary.kind_mut(kind);
        let losses = std::mem::take(&mut k.loss_by_cause);
        let pending = k.pending;
        *k = KindSummary::from_curve(&curve, losses, stats);
        // Pending is what the shards said: a merge cannot finish an unfinished shard.
        k.pending = pending;
    }
    out.summary.time_precision = out.precision();
    Ok(out)
}
