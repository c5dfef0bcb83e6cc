//! Issue 13 item 6: `--seeds`, through the real binary. One seed is today's run to the byte; several
//! seeds keep every seed's figures and their median and min–max in `summary.json`, the same
//! whatever `--jobs` is; thresholds are judged on the worst seed; a bad `--seeds` is refused by
//! name (exit 2), and so is `--seeds` on the real-time path.

// Test code: a failed setup should panic loudly.
#![allow(clippy::unwrap_used)]

use csp_loadtest::{describe, profile, read_summary, run_harness, temp_dir};
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

/// `simulate` of the small North test profile (2,000 premises) into `out`, with `extra`.
fn simulate(out: &Path, extra: &[&str]) -> std::process::Output {
    let p = profile("test/mixed-short.toml");
    let mut args: Vec<&OsStr> = vec![
        "simulate".as_ref(),
        "--profile".as_ref(),
        p.as_os_str(),
        "--quiet".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    run_harness(args, LIMIT)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn one_seed_is_todays_run_and_several_keep_every_seeds_figures_whatever_the_jobs() {
    let dir = temp_dir();
    let d = |n: &str| dir.path().join(n);
    for (out, extra) in [
        ("plain", &[][..]),
        ("one", &["--seeds", "1"][..]),
        ("five-1", &["--seeds", "5", "--jobs", "1"][..]),
        ("five-3", &["--seeds", "1,2,3,4,5", "--jobs", "3"][..]),
    ] {
        let res = simulate(&d(out), extra);
        assert_eq!(res.status.code(), Some(0), "{out}: {}", describe(&res));
    }
    // --seeds 1 is the run of that seed alone, to the byte.
    for f in ["summary.json", "alerts.csv", "curves.csv", "poa.hlog"] {
        assert!(
            read(&d("plain").join(f)) == read(&d("one").join(f)),
            "{f} differs with --seeds 1"
        );
    }
    assert!(read_summary(&d("one")).seeds.is_none());
    // Five seeds: the same file whatever the parallelism (and N or the list give the same seeds).
    assert!(
        read(&d("five-1").join("summary.json")) == read(&d("five-3").join("summary.json")),
        "--jobs changed summary.json"
    );
    let five = read_summary(&d("five-1"));
    let set = five.seeds.clone().expect("a seeds section");
    assert_eq!(set.list, [1, 2, 3, 4, 5]);
    assert_eq!(set.runs.len(), 5);
    // Everything outside `seeds` is the first seed's run.
    let mut first = five.clone();
    first.seeds = None;
    assert_eq!(first, read_summary(&d("plain")));
    assert_eq!(set.runs[0].alerts, five.alerts);
    // Each spread lies within its seeds' figures, and its median is one of them.
    let poa: Vec<&results::KindSummary> = set.runs.iter().map(|r| &r.alerts.poa).collect();
    let shares: Vec<f64> = poa.iter().map(|k| k.delivered_fraction).collect();
    let s = set.poa.delivered_fraction;
    let (lo, hi) = (s.min.unwrap(), s.max.unwrap());
    assert!(
        shares.iter().all(|&v| lo <= v && v <= hi),
        "{s:?} {shares:?}"
    );
    assert!(shares.contains(&s.median.unwrap()), "{s:?} {shares:?}");
    assert!(
        lo < hi,
        "2,000 North premises: the seeds differ ({shares:?})"
    );
    for p in [50.0, 80.0, 95.0] {
        let t = set.poa.time_to(p).unwrap();
        let times: Vec<f64> = poa.iter().map(|k| k.time_to(p).unwrap()).collect();
        assert!(times.contains(&t.median.unwrap()), "{p}: {t:?} {times:?}");
        assert!(t.min <= t.median && t.median <= t.max, "{p}: {t:?}");
    }
    // The tables say median (min–max).
    let md = std::fs::read_to_string(d("five-1").join("summary.md")).unwrap();
    let t50 = set.poa.time_to(50.0).unwrap();
    let fmt = |s: f64| {
        let s = s.round() as u64;
        format!("{}:{:02}", s / 60, s % 60)
    };
    let cell = format!(
        "{} ({}–{})",
        fmt(t50.median.unwrap()),
        fmt(t50.min.unwrap()),
        fmt(t50.max.unwrap())
    );
    assert!(
        md.contains(&format!("| POA | 50% | {cell} |")),
        "{cell}\n{md}"
    );
    assert!(md.contains("1–5 (5 seeds)"), "{md}");
    for png in ["poa.png", "pra.png", "loss.png"] {
        assert!(
            read(&d("five-1").join(png)).starts_with(b"\x89PNG"),
            "{png}"
        );
    }
}

#[test]
fn thresholds_are_judged_on_the_worst_seed() {
    let dir = temp_dir();
    let probe = dir.path().join("probe");
    let res = simulate(&probe, &["--seeds", "5"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let set = read_summary(&probe).seeds.expect("seeds");
    // Allow exactly the best seed's POA loss: that seed alone passes, the five do not.
    let (best, worst) = {
        let runs = &set.runs;
        let best = runs
            .iter()
            .min_by(|a, b| a.alerts.poa.loss_rate.total_cmp(&b.alerts.poa.loss_rate))
            .unwrap();
        (best.clone(), set.poa.delivered_fraction.worst_seed)
    };
    assert_ne!(best.seed, worst, "the seeds must differ for this test");
    let th = dir.path().join("t.toml");
    std::fs::write(
        &th,
        format!("poa.loss_rate = {}\n", best.alerts.poa.loss_rate),
    )
    .unwrap();
    let th_s = th.to_str().unwrap();
    let alone = simulate(
        &dir.path().join("alone"),
        &["--seed", &best.seed.to_string(), "--thresholds", th_s],
    );
    assert_eq!(alone.status.code(), Some(0), "{}", describe(&alone));
    let junit = dir.path().join("j.xml");
    let all = simulate(
        &dir.path().join("all"),
        &[
            "--seeds",
            "5",
            "--thresholds",
            th_s,
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(all.status.code(), Some(1), "{}", describe(&all));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&all.stdout),
        String::from_utf8_lossy(&all.stderr)
    );
    assert!(said.contains(&format!("worst seed {worst}")), "{said}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(&format!("seed {worst}")) && xml.contains("of 5 breach it"),
        "{xml}"
    );
}

#[test]
fn a_bad_seeds_argument_and_seeds_in_real_time_are_refused_with_exit_2() {
    let dir = temp_dir();
    let out = dir.path().join("x");
    for (extra, want) in [
        (&["--seeds", "0"][..], "0 seeds would run nothing"),
        (&["--seeds", "five"][..], "'five' is not a number of seeds"),
        (&["--seeds", "1,2,x"][..], "'x' in '1,2,x' is not a seed"),
        (&["--seeds", "3,4,3"][..], "seed 3 is listed twice"),
        (&["--seeds", "5000"][..], "at most 1000"),
        (&["--jobs", "2"][..], "--seeds"),
        (
            &["--seeds", "3", "--shard", "0/2"][..],
            "--seeds with a shard",
        ),
    ] {
        let res = simulate(&out, extra);
        assert_eq!(res.status.code(), Some(2), "{extra:?}: {}", describe(&res));
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(err.contains(want), "{extra:?}: {err}");
        assert!(
            !out.join("summary.json").exists(),
            "{extra:?} wrote results"
        );
    }
    let p = profile("test/mixed-short.toml");
    for cmd in [
        vec!["run".as_ref(), "--profile".as_ref(), p.as_os_str()],
        vec!["compare".as_ref(), "--profile".as_ref(), p.as_os_str()],
    ] {
        let mut args: Vec<&OsStr> = cmd;
        args.extend(["--seeds", "3", "--out"].map(OsStr::new));
        args.push(out.as_os_str());
        let res = run_harness(args, LIMIT);
        assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(err.contains("--seeds needs virtual time"), "{err}");
    }
}

#[test]
fn compare_with_seeds_gives_each_option_its_range() {
    let dir = temp_dir();
    let out = dir.path().join("cmp");
    let res = run_harness(
        [
            "compare".as_ref(),
            "--simulate".as_ref(),
            "--seeds".as_ref(),
            "3".as_ref(),
            "--profile".as_ref(),
            profile("north/current.toml").as_os_str(),
            "--profile".as_ref(),
            profile("north/option-b.toml").as_os_str(),
            "--quiet".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        LIMIT,
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    for sub in ["north-current", "north-option-b"] {
        let s = read_summary(&out.join(sub));
        assert_eq!(s.seeds.expect(sub).list, [1, 2, 3]);
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("1–3 (3 seeds)"), "{md}");
    assert!(md.contains("Several seeds (`--seeds`)"), "{md}");
    assert!(out.join("north-poa.png").is_file() && out.join("report.html").is_file());
}
