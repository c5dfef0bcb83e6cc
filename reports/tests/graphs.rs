//! The PNG graphs: valid images of the stated size, not blank; a sample comparison of three
//! options per region (set CSP_REPORTS_SAMPLE_DIR to keep it somewhere to look at).

#![allow(clippy::unwrap_used)]

mod common;

use common::{png_stats, scratch, three_options};
use reports::layout::{HEIGHT, WIDTH};

#[test]
fn comparison_pngs_are_valid_sized_and_not_blank() {
    let dir = match std::env::var_os("CSP_REPORTS_SAMPLE_DIR") {
        Some(d) => std::path::PathBuf::from(d),
        None => scratch("compare"),
    };
    let mut runs = three_options("north", 30_000, 42);
    runs.extend(three_options("central-south", 30_000, 42));
    let t = std::time::Instant::now();
    let written = reports::write_comparison(&runs, &dir).unwrap();
    eprintln!("comparison written in {:?}", t.elapsed());
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for n in [
        "north-poa.png",
        "north-pra.png",
        "north-loss.png",
        "central-south-poa.png",
        "central-south-pra.png",
        "central-south-loss.png",
        "summary.md",
        "curves.csv",
    ] {
        assert!(names.contains(&n.to_string()), "{n} not in {names:?}");
    }
    for p in written
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
    {
        let (w, h, var) = png_stats(p);
        assert_eq!((w, h), (WIDTH, HEIGHT), "{}", p.display());
        assert!(var > 100.0, "{} looks blank (variance {var})", p.display());
    }
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(md.contains("DP096 reference"));
    assert!(md.contains("## North") && md.contains("## Central&South"));
    if std::env::var_os("CSP_REPORTS_SAMPLE_DIR").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn runs_sharing_an_option_are_told_apart() {
    let mut runs = three_options("north", 300, 1);
    runs.extend(three_options("north", 300, 2));
    let refs: Vec<&results::LoadedRun> = runs.iter().collect();
    let labels = reports::runs::run_labels(&refs);
    assert_eq!(labels[0], "Current, seed 1");
    assert_eq!(labels[3], "Current, seed 2");
    let mut uniq = labels.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), 6);
}

#[test]
fn a_single_run_with_nothing_delivered_still_draws() {
    let mut l = ledger::Ledger::new(10);
    for h in 0..10 {
        l.expect(
            ledger::AlertId::new(h, ledger::AlertKind::Poa),
            ledger::AlertCode::Ad1,
            0,
        )
        .unwrap();
    }
    l.finish(1000);
    let s = results::summarize(
        results::RunMeta::new("x", common::region("north"), "custom", 1, 10),
        &l,
    );
    let dir = scratch("empty");
    reports::write_run(&dir, &s, &l).unwrap();
    for f in ["poa.png", "pra.png", "loss.png"] {
        let (w, h, var) = png_stats(&dir.join(f));
        assert_eq!((w, h), (WIDTH, HEIGHT));
        assert!(var > 50.0, "{f}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// One region's runs as the graphs get them.
fn group_of(runs: &[results::LoadedRun]) -> Vec<reports::runs::RunGroup<'_>> {
    let refs: Vec<&results::LoadedRun> = runs.iter().collect();
    reports::runs::by_region(&refs)
}

#[test]
fn each_level_mark_is_labelled_with_the_summarys_own_time() {
    let runs = three_options("north", 30_000, 42);
    for g in group_of(&runs) {
        for kind in ledger::AlertKind::ALL {
            let fig = reports::graphs::delivery(kind, &g);
            let labels = fig.mark_labels();
            for (i, r) in g.runs.iter().enumerate() {
                let k = r.summary.kind(kind);
                let t50 = k.time_to_pct_s["50"].expect("50% reached");
                let want = reports::format::mmss(t50);
                // Identical curves carry one label, on the first of them.
                let same = |s: usize| s == i || g.runs[s].curve(kind) == r.curve(kind);
                assert!(
                    labels.iter().any(|&(s, l)| same(s) && l == want),
                    "{kind} {}: 50% at {want} (summary.json) not among the labels {labels:?}",
                    g.labels[i]
                );
                // Every label of this run is one of its summary's times.
                let times: Vec<String> = reports::graphs::MARKED_LEVELS
                    .iter()
                    .filter_map(|&p| k.time_to(p).map(reports::format::mmss))
                    .collect();
                for (s, l) in &labels {
                    if *s == i {
                        assert!(times.contains(&l.to_string()), "{l} not in {times:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn the_legend_covers_no_curve_and_no_mark_and_labels_stay_in_their_panel() {
    let mut runs = three_options("north", 30_000, 42);
    runs.extend(three_options("central-south", 30_000, 42));
    for g in group_of(&runs) {
        for kind in ledger::AlertKind::ALL {
            let fig = reports::graphs::delivery(kind, &g);
            let lay = reports::render::layout_of(&fig);
            let legend = lay.legend.rect;
            for (panel, b) in fig.panels.iter().zip(&lay.panels) {
                for (s, pts) in reports::layout::curve_pixels(panel, &b.plot) {
                    for w in pts.windows(2) {
                        assert!(
                            !legend.hits_segment(w[0], w[1]),
                            "{}: legend {legend:?} covers {}'s curve at {:?}",
                            fig.name,
                            fig.series[s].label,
                            w
                        );
                    }
                }
                for m in panel.marks() {
                    let mb = reports::layout::mark_box(panel, &b.plot, m);
                    assert!(!legend.overlaps(&mb), "{}: legend covers a mark", fig.name);
                }
            }
            for l in &lay.labels {
                let plot = lay.panels[l.panel].plot;
                assert!(
                    plot.contains_rect(&l.rect),
                    "{}: label {} at {:?} leaves its panel {plot:?}",
                    fig.name,
                    l.text,
                    l.rect
                );
            }
        }
    }
}

#[test]
fn a_lagged_or_unrecorded_run_says_so_under_every_heading() {
    let mut runs = three_options("north", 300, 1);
    runs[1].summary.meta.health = Some(results::HealthRecord::Run(Box::new(results::Health {
        lagged: true,
        max_lag_ms: 9_000,
        p99_lag_ms: 6_000,
        ..results::Health::default()
    })));
    for g in group_of(&runs) {
        for def in reports::graphs::GRAPHS {
            let Some(fig) = (def.build)(&g) else {
                continue;
            };
            let lagged: Vec<&String> = fig
                .warnings
                .iter()
                .filter(|w| w.contains("LAGGED"))
                .collect();
            assert_eq!(lagged.len(), 1, "{}: {:?}", def.name, fig.warnings);
            assert!(
                lagged[0].starts_with("Option A"),
                "names the run: {}",
                lagged[0]
            );
            // The warning is drawn: it is one of the lines the layout puts under the heading.
            let lay = reports::render::layout_of(&fig);
            assert!(
                lay.header
                    .iter()
                    .any(|(l, warn)| *warn && l.contains("LAGGED"))
            );
            // In-memory runs have no run.json: the subtitle says provenance is missing rather
            // than leaving it out silently.
            assert!(
                fig.subtitle.iter().any(|p| p.contains("not recorded")),
                "{:?}",
                fig.subtitle
            );
            assert!(
                fig.subtitle.iter().any(|p| p == "virtual time"),
                "{:?}",
                fig.subtitle
            );
        }
    }
}

/// Each option of a region run with seeds `seeds`: the first seed's run carrying the others, as
/// `simulate --seeds` builds it.
fn seeded_options(name: &str, hubs: u32, seeds: &[u64]) -> Vec<results::LoadedRun> {
    let per_seed: Vec<Vec<results::LoadedRun>> = seeds
        .iter()
        .map(|&s| three_options(name, hubs, s))
        .collect();
    (0..3)
        .map(|o| {
            let mut first = per_seed[0][o].clone();
            let others: Vec<results::LoadedRun> =
                per_seed[1..].iter().map(|runs| runs[o].clone()).collect();
            let all: Vec<&results::Summary> = std::iter::once(&first.summary)
                .chain(others.iter().map(|r| &r.summary))
                .collect();
            first.summary.seeds = results::SeedSet::of(&all);
            first.seed_runs = others;
            first
        })
        .collect()
}

#[test]
fn several_seeds_draw_the_median_curve_inside_its_band_with_ranges_on_the_marks() {
    let runs = seeded_options("north", 300, &[1, 2, 3, 4, 5]);
    for g in group_of(&runs) {
        for kind in ledger::AlertKind::ALL {
            let fig = reports::graphs::delivery(kind, &g);
            for panel in &fig.panels {
                let bands: Vec<&reports::figure::Band> = panel
                    .layers
                    .iter()
                    .filter_map(|l| match l {
                        reports::figure::Layer::Band(b) => Some(b),
                        _ => None,
                    })
                    .collect();
                assert_eq!(bands.len(), 3, "{}: one band per option", fig.name);
                // Every band comes before every curve (drawn under them).
                let first_curve = panel
                    .layers
                    .iter()
                    .position(|l| matches!(l, reports::figure::Layer::Curve(_)))
                    .unwrap();
                let last_band = panel
                    .layers
                    .iter()
                    .rposition(|l| matches!(l, reports::figure::Layer::Band(_)))
                    .unwrap();
                assert!(last_band < first_curve);
                for c in panel.curves() {
                    let band = bands.iter().find(|b| b.series == c.series).unwrap();
                    for &(x, y) in &c.points {
                        let Some(&(_, lo, hi)) = band.points.iter().find(|p| p.0 == x) else {
                            continue;
                        };
                        assert!(lo <= y && y <= hi, "{}: {y} outside {lo}..{hi}", fig.name);
                    }
                    // The seeds differ: somewhere the band has width.
                    assert!(band.points.iter().any(|&(_, lo, hi)| hi > lo + 1e-9));
                }
            }
            // Marks at the median time, labelled "median (min–max)" from summary.json.
            let labels = fig.mark_labels();
            for (i, r) in g.runs.iter().enumerate() {
                let s = r
                    .summary
                    .seeds
                    .as_ref()
                    .unwrap()
                    .kind(kind)
                    .time_to(50.0)
                    .unwrap();
                let want = reports::format::time_range(s);
                assert!(want.contains('(') && want.contains('–'), "{want}");
                let same = |j: usize| j == i || g.runs[j].seed_curves(kind) == r.seed_curves(kind);
                assert!(
                    labels.iter().any(|&(j, l)| same(j) && l == want),
                    "{want} not in {labels:?}"
                );
            }
            let legend: Vec<&str> = fig.legend.entries.iter().map(|e| e.text.as_str()).collect();
            assert!(
                legend
                    .iter()
                    .any(|t| t.contains("median of 5 seeds (1–5)")
                        && t.contains("band: their min–max")),
                "{legend:?}"
            );
            // The legend covers no curve, no mark and no band.
            let lay = reports::render::layout_of(&fig);
            let legend = lay.legend.rect;
            for (panel, b) in fig.panels.iter().zip(&lay.panels) {
                for (_, pts) in reports::layout::curve_pixels(panel, &b.plot) {
                    assert!(!pts.windows(2).any(|w| legend.hits_segment(w[0], w[1])));
                }
                for l in &panel.layers {
                    if let reports::figure::Layer::Band(band) = l {
                        for &(x, lo, hi) in &band.points {
                            let a = reports::layout::to_px(panel, &b.plot, (x, lo));
                            let z = reports::layout::to_px(panel, &b.plot, (x, hi));
                            assert!(!legend.hits_segment(a, z), "{}: legend on a band", fig.name);
                        }
                    }
                }
            }
        }
    }
    // One seed draws no band.
    let plain = three_options("north", 300, 1);
    for g in group_of(&plain) {
        let fig = reports::graphs::delivery(ledger::AlertKind::Poa, &g);
        assert!(fig.panels.iter().all(|p| {
            p.layers
                .iter()
                .all(|l| !matches!(l, reports::figure::Layer::Band(_)))
        }));
    }
}
