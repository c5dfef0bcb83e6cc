//! The PNG graphs: valid images of the stated size, not blank; a sample comparison of three
//! options per region (set CSP_REPORTS_SAMPLE_DIR to keep it somewhere to look at).

#![allow(clippy::unwrap_used)]

mod common;

use common::{png_stats, scratch, three_options};
use ledger::Region;
use reports::plot::{HEIGHT, WIDTH};

#[test]
fn comparison_pngs_are_valid_sized_and_not_blank() {
    let dir = match std::env::var_os("CSP_REPORTS_SAMPLE_DIR") {
        Some(d) => std::path::PathBuf::from(d),
        None => scratch("compare"),
    };
    let mut runs = three_options(Region::NORTH, 30_000, 42);
    runs.extend(three_options(Region::CENTRAL_SOUTH, 30_000, 42));
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
    assert!(md.contains("seed (DP096)"));
    assert!(md.contains("## North") && md.contains("## Central&South"));
    if std::env::var_os("CSP_REPORTS_SAMPLE_DIR").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn runs_sharing_an_option_are_told_apart() {
    let mut runs = three_options(Region::NORTH, 300, 1);
    runs.extend(three_options(Region::NORTH, 300, 2));
    let refs: Vec<&reports::LoadedRun> = runs.iter().collect();
    let labels = reports::plot::run_labels(&refs);
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
    let s = reports::summarize(
        reports::RunMeta::new("x", Region::NORTH, "custom", 1, 10),
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
