//! What `csp-harness` writes beside the data: for one run ([`write_run_reports`]) its tables and
//! graphs in its results folder; for several ([`write_comparison`], what `compare` and `report`
//! write) per region every registered graph, plus one `summary.md` and one `curves.csv` for all
//! runs. Every graph is written twice, as PNG (for viewing) and SVG (for documents).

use crate::error::ReportError;
use crate::graphs;
use crate::render;
use crate::runs::{self, RunGroup};
use crate::tables;
use ledger::{AlertKind, Ledger};
use results::layout::{CURVES_CSV, SUMMARY_MD};
use results::{DeliveryCurve, LoadedRun, Summary};
use std::path::{Path, PathBuf};

/// Writes a run's tables and graphs into its results folder: `summary.md` and every registered
/// graph as PNG and SVG. Returns the paths written.
pub fn write_run_reports(dir: &Path, run: &LoadedRun) -> Result<Vec<PathBuf>, ReportError> {
    let refs = [run];
    let md = dir.join(SUMMARY_MD);
    write_text(&md, &tables::summary_markdown(&refs))?;
    let mut written = vec![md];
    for g in runs::by_region(&refs) {
        written.extend(write_figures(&g, "", dir)?);
    }
    Ok(written)
}

/// A whole results folder from a finished ledger, without provenance (no `run.json`): the data
/// files ([`results::write_data`]), the tables and graphs, and `report.html`. For tools and
/// tests; the harness writes `run.json` and the verdict too.
pub fn write_run(dir: &Path, summary: &Summary, ledger: &Ledger) -> Result<(), ReportError> {
    results::write_data(dir, summary, ledger)?;
    let run = LoadedRun::from_ledger(summary.clone(), ledger);
    write_run_reports(dir, &run)?;
    crate::html::write_html(dir, &[&run], &[])?;
    Ok(())
}

fn write_figures(g: &RunGroup, prefix: &str, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    for fig in graphs::figures(g, prefix) {
        written.extend(write_figure(&fig, dir)?);
    }
    Ok(written)
}

/// Writes a figure as `<name>.png` and `<name>.svg` into `dir`; returns both paths.
pub(crate) fn write_figure(
    fig: &crate::figure::Figure,
    dir: &Path,
) -> Result<[PathBuf; 2], ReportError> {
    let png = dir.join(format!("{}.png", fig.name));
    render::png(fig, &png)?;
    let svg = dir.join(format!("{}.svg", fig.name));
    write_text(&svg, &render::svg(fig)?)?;
    Ok([png, svg])
}

/// Writes `<region>-<graph>.png` for every region present and every registered graph,
/// `summary.md` and `curves.csv` into `out_dir` (created if needed); returns the paths written.
pub fn write_comparison(runs: &[LoadedRun], out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    if runs.is_empty() {
        return Err(ReportError::NoRuns);
    }
    std::fs::create_dir_all(out_dir).map_err(|e| ReportError::io(out_dir, e))?;
    let refs: Vec<&LoadedRun> = runs.iter().collect();
    let groups = runs::by_region(&refs);
    let mut written = Vec::new();
    for g in &groups {
        written.extend(write_figures(
            g,
            &format!("{}-", g.region.as_str()),
            out_dir,
        )?);
    }
    let ordered: Vec<&LoadedRun> = groups.iter().flat_map(|g| g.runs.iter().copied()).collect();
    let md = out_dir.join(SUMMARY_MD);
    write_text(&md, &tables::summary_markdown(&ordered))?;
    written.push(md);

    let mut curves: Vec<(String, DeliveryCurve)> = Vec::new();
    for g in &groups {
        for (r, l) in g.runs.iter().zip(&g.labels) {
            for kind in AlertKind::ALL {
                curves.push((
                    format!("{}/{l}/{}", g.region.as_str(), kind.as_str()),
                    r.curve(kind),
                ));
            }
        }
    }
    let csv = out_dir.join(CURVES_CSV);
    results::write_curves_csv(&csv, &curves)?;
    written.push(csv);
    Ok(written)
}

pub(crate) fn write_text(path: &Path, text: &str) -> Result<(), ReportError> {
    std::fs::write(path, text).map_err(|e| ReportError::io(path, e))
}
