//! Comparison of several runs (typically Current / Option A / Option B of one or both regions):
//! per region a delivery graph for POA and for PRA and a loss graph, plus one `summary.md` and one
//! `curves.csv` (one column per run and kind) for all runs. This is what `csp-harness compare`
//! and `csp-harness report DIR...` write.

use crate::curve::DeliveryCurve;
use crate::error::ReportError;
use crate::plot;
use crate::results::{self, LoadedRun};
use crate::tables;
use ledger::{AlertKind, Region};
use std::path::{Path, PathBuf};

/// Report order: region, then Current, Option A, Option B, then other options by name, then seed.
pub fn sort_key(r: &LoadedRun) -> (&'static str, usize, String, u64) {
    let m = &r.summary.meta;
    (
        m.region.as_str(),
        crate::calibration::option_index(&m.option_label).unwrap_or(3),
        m.option_label.clone(),
        m.seed,
    )
}

/// The runs of one region, in the order given.
fn in_region<'a>(runs: &[&'a LoadedRun], region: Region) -> Vec<&'a LoadedRun> {
    runs.iter()
        .copied()
        .filter(|r| r.summary.meta.region == region)
        .collect()
}

/// Writes `<region>-poa.png`, `<region>-pra.png`, `<region>-loss.png` for every region present,
/// `summary.md` and `curves.csv` into `out_dir` (created if needed); returns the paths written.
pub fn write_comparison(runs: &[LoadedRun], out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    if runs.is_empty() {
        return Err(ReportError::NoRuns);
    }
    std::fs::create_dir_all(out_dir).map_err(|e| ReportError::io(out_dir, e))?;
    let mut sorted: Vec<&LoadedRun> = runs.iter().collect();
    sorted.sort_by_key(|r| sort_key(r));
    let mut written = Vec::new();
    for region in [Region::NORTH, Region::CENTRAL_SOUTH] {
        let group = in_region(&sorted, region);
        if group.is_empty() {
            continue;
        }
        for kind in AlertKind::ALL {
            let path = out_dir.join(format!("{}-{}.png", region.as_str(), kind.as_str()));
            plot::delivery_png(&path, region, kind, &group)?;
            written.push(path);
        }
        let path = out_dir.join(format!("{}-loss.png", region.as_str()));
        plot::loss_png(&path, region, &group)?;
        written.push(path);
    }
    let md = out_dir.join(results::SUMMARY_MD);
    results::write_text(&md, &tables::summary_markdown(&sorted))?;
    written.push(md);

    let mut curves: Vec<(String, DeliveryCurve)> = Vec::new();
    for region in [Region::NORTH, Region::CENTRAL_SOUTH] {
        let group = in_region(&sorted, region);
        for (r, l) in group.iter().zip(plot::run_labels(&group)) {
            for kind in AlertKind::ALL {
                curves.push((
                    format!("{}/{l}/{}", region.as_str(), kind.as_str()),
                    r.curve(kind),
                ));
            }
        }
    }
    let csv = out_dir.join(results::CURVES_CSV);
    results::write_curves_csv(&csv, &curves)?;
    written.push(csv);
    Ok(written)
}
