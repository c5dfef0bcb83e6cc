//! Issue 4 end to end: `compare --simulate` with no profile runs the seed's six and writes, per
//! region, POA/PRA/loss graphs and one summary.md with the seed's figures beside the harness's;
//! `report` on the saved results redraws the same numbers; a broken results folder is named.

use csp_loadtest::{describe, run_harness, temp_dir};
use std::time::Duration;

#[test]
fn compare_writes_every_graph_and_report_redraws_the_same_numbers() {
    let dir = temp_dir();
    let out = dir.path().join("cmp");
    let res = run_harness(
        [
            "compare".as_ref(),
            "--simulate".as_ref(),
            "--quiet".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        Duration::from_secs(300),
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    for region in ["north", "central-south"] {
        for what in ["poa", "pra", "loss"] {
            let png = out.join(format!("{region}-{what}.png"));
            let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
            assert!(
                bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
                "{} is not a PNG",
                png.display()
            );
            // IHDR width and height (big-endian) follow the signature and chunk header.
            let w = u32::from_be_bytes(bytes[16..20].try_into().expect("4 bytes"));
            let h = u32::from_be_bytes(bytes[20..24].try_into().expect("4 bytes"));
            assert_eq!((w, h), (1600, 1000), "{}", png.display());
        }
    }
    let md = std::fs::read_to_string(out.join("summary.md")).expect("summary.md");
    assert!(
        md.contains("DP096 reference"),
        "the DP096 reference figures must stand beside the harness's"
    );
    assert!(
        md.contains("virtual time"),
        "simulate runs say they ran on virtual time"
    );
    assert!(
        out.join("report.html").is_file(),
        "compare writes report.html"
    );
    for opt in ["Current", "Option A", "Option B"] {
        assert!(md.contains(opt), "{opt} missing from summary.md");
    }

    // Redraw from the saved results only (summary.json + .hlog), without running again.
    let dirs: Vec<std::path::PathBuf> = [
        "north-current",
        "north-option-a",
        "north-option-b",
        "central-south-current",
        "central-south-option-a",
        "central-south-option-b",
    ]
    .iter()
    .map(|d| out.join(d))
    .collect();
    let redrawn = dir.path().join("redrawn");
    let mut args: Vec<std::ffi::OsString> = vec!["report".into()];
    args.extend(dirs.iter().map(|d| d.clone().into_os_string()));
    args.extend([
        "--out".into(),
        redrawn.clone().into_os_string(),
        "--html".into(),
    ]);
    let res = run_harness(args, Duration::from_secs(120));
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert!(
        redrawn.join("report.html").is_file(),
        "report --html writes report.html"
    );
    let md2 = std::fs::read_to_string(redrawn.join("summary.md")).expect("redrawn summary.md");
    assert_eq!(
        md, md2,
        "report must redraw exactly the numbers compare wrote"
    );
    let csv = std::fs::read_to_string(out.join("curves.csv")).expect("curves.csv");
    let csv2 = std::fs::read_to_string(redrawn.join("curves.csv")).expect("redrawn curves.csv");
    assert_eq!(csv, csv2);
}

#[test]
fn a_missing_or_corrupt_results_folder_is_named() {
    let dir = temp_dir();
    let missing = dir.path().join("nothing-here");
    let res = run_harness(
        [
            "report".as_ref(),
            missing.as_os_str(),
            "--out".as_ref(),
            dir.path().join("o").as_os_str(),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        String::from_utf8_lossy(&res.stderr).contains("nothing-here"),
        "{}",
        describe(&res)
    );

    let corrupt = dir.path().join("corrupt");
    std::fs::create_dir_all(&corrupt).expect("mkdir");
    std::fs::write(corrupt.join("summary.json"), "{ not json").expect("write");
    let res = run_harness(
        [
            "report".as_ref(),
            corrupt.as_os_str(),
            "--out".as_ref(),
            dir.path().join("o").as_os_str(),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        String::from_utf8_lossy(&res.stderr).contains("summary.json"),
        "{}",
        describe(&res)
    );
}
