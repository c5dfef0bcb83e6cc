//! The results folder: what `write_run` writes reads back with the same numbers; the `.hlog`
//! files are real HDR interval logs; curves plateau at delivered / expected; a missing or corrupt
//! file is named in the error; shards merge exactly.

#![allow(clippy::unwrap_used)]

mod common;

use common::{scratch, synthetic};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use ledger::{AlertKind, Region};
use reports::{ReportError, load_run, merge, summarize, write_run};

fn written(
    name: &str,
    region: Region,
    option: &str,
    hubs: u32,
) -> (std::path::PathBuf, ledger::Ledger) {
    let (meta, l) = synthetic(region, option, hubs, 7);
    let dir = scratch(name);
    write_run(&dir, &summarize(meta, &l), &l).unwrap();
    (dir, l)
}

#[test]
fn folder_holds_every_file_and_reads_back_the_same_numbers() {
    let (dir, l) = written("roundtrip", Region::NORTH, "current", 5_000);
    for f in [
        "summary.json",
        "alerts.csv",
        "poa.hlog",
        "pra.hlog",
        "curves.csv",
        "summary.md",
        "poa.png",
        "pra.png",
        "loss.png",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let run = load_run(&dir).unwrap();
    for kind in AlertKind::ALL {
        let k = run.summary.kind(kind);
        assert_eq!(k.expected, l.expected(kind));
        assert_eq!(k.delivered, l.delivered(kind));
        assert_eq!(k.loss_by_cause, l.lost_by_cause(kind));
        for p in reports::summary::LEVELS {
            let exact = l.time_to_pct(kind, p).map(|ms| ms as f64 / 1000.0);
            assert_eq!(k.time_to(p), exact, "{kind} {p}%");
            // The histogram's curve agrees to HDR precision (never early).
            let from_hist = run.curve(kind).time_to_pct(p);
            match (l.time_to_pct(kind, p), from_hist) {
                (Some(a), Some(b)) => assert!(b >= a && b - a <= a / 500 + 1, "{a} vs {b}"),
                (None, None) => {}
                other => panic!("{kind} {p}%: {other:?}"),
            }
        }
        // The plateau is delivered / expected, exactly.
        let c = run.curve(kind);
        assert_eq!(c.delivered(), l.delivered(kind));
        assert_eq!(
            c.plateau(),
            l.delivered(kind) as f64 / l.expected(kind) as f64
        );
    }
    assert_eq!(run.summary.duplicates, 1);
    assert_eq!(run.summary.false_positives, 3);

    // alerts.csv: one line per expected alert, plus the header.
    let csv = std::fs::read_to_string(dir.join("alerts.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "alert_id,kind,code,hub,base_ms,fate,at_ms,cause");
    assert_eq!(
        lines.len() as u64 - 1,
        l.expected(AlertKind::Poa) + l.expected(AlertKind::Pra)
    );
    assert!(lines.iter().any(|s| s.ends_with(",lost,1000,collision")));

    // curves.csv ends on the plateau.
    let curves = std::fs::read_to_string(dir.join("curves.csv")).unwrap();
    let last: Vec<f64> = curves
        .lines()
        .last()
        .unwrap()
        .split(',')
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    let plateau = |k| l.delivered(k) as f64 / l.expected(k) as f64;
    assert!((last[0] - plateau(AlertKind::Poa)).abs() < 1e-6);
    assert!((last[1] - plateau(AlertKind::Pra)).abs() < 1e-6);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hlog_files_are_hdr_interval_logs_with_the_same_percentiles() {
    let (dir, l) = written("hlog", Region::CENTRAL_SOUTH, "option-b", 4_000);
    for kind in AlertKind::ALL {
        let bytes = std::fs::read(dir.join(format!("{}.hlog", kind.as_str()))).unwrap();
        let mut total = Histogram::<u64>::new(3).unwrap();
        let mut intervals = 0;
        for e in IntervalLogIterator::new(&bytes) {
            if let LogEntry::Interval(iv) = e.unwrap() {
                use base64::Engine as _;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(iv.encoded_histogram())
                    .unwrap();
                let h: Histogram<u64> = Deserializer::new().deserialize(&mut &raw[..]).unwrap();
                total.add(&h).unwrap();
                intervals += 1;
                assert_eq!(iv.tag().map(|t| t.as_str()), Some(kind.as_str()));
            }
        }
        assert!(intervals > 1);
        let direct = reports::summary::histogram_of(&l.delivered_latencies(kind));
        assert_eq!(total.len(), direct.len());
        for q in [0.5, 0.95, 0.99, 1.0] {
            assert_eq!(
                total.value_at_quantile(q),
                direct.value_at_quantile(q),
                "{kind} {q}"
            );
        }
        let run = load_run(&dir).unwrap();
        let s = run.summary.kind(kind).latency_ms;
        assert_eq!(s.p99, Some(total.value_at_quantile(0.99)));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_or_corrupt_files_are_named() {
    let (dir, _) = written("corrupt", Region::NORTH, "option-a", 500);
    let expect_named = |e: ReportError, file: &str| {
        let msg = e.to_string();
        assert!(msg.contains(file), "{file} not named in: {msg}");
    };
    // Not a folder at all.
    expect_named(load_run(&dir.join("nope")).unwrap_err(), "nope");
    // Corrupt hlog.
    std::fs::write(
        dir.join("pra.hlog"),
        "Tag=pra,0.0,60.0,1.0,###notbase64###\n",
    )
    .unwrap();
    expect_named(load_run(&dir).unwrap_err(), "pra.hlog");
    std::fs::write(dir.join("pra.hlog"), "this is not a log\n,,,\n").unwrap();
    expect_named(load_run(&dir).unwrap_err(), "pra.hlog");
    // An hlog whose count disagrees with the summary.
    std::fs::write(dir.join("pra.hlog"), "#empty\n").unwrap();
    let e = load_run(&dir).unwrap_err();
    expect_named(e, "pra.hlog");
    // Missing hlog.
    std::fs::remove_file(dir.join("poa.hlog")).unwrap();
    let e = load_run(&dir).unwrap_err();
    assert!(matches!(e, ReportError::Missing { .. }));
    expect_named(e, "poa.hlog");
    // Corrupt and missing summary.
    std::fs::write(dir.join("summary.json"), "{\"profile\": 3").unwrap();
    expect_named(load_run(&dir).unwrap_err(), "summary.json");
    std::fs::remove_file(dir.join("summary.json")).unwrap();
    expect_named(load_run(&dir).unwrap_err(), "summary.json");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shards_merge_exactly() {
    let (a, la) = written("shard-a", Region::NORTH, "option-b", 2_000);
    let (meta, lb) = synthetic(Region::NORTH, "option-b", 3_000, 99);
    let b = scratch("shard-b");
    write_run(&b, &summarize(meta, &lb), &lb).unwrap();
    let m = merge(&[load_run(&a).unwrap(), load_run(&b).unwrap()]).unwrap();
    assert_eq!(m.summary.meta.hubs, 5_000);
    for kind in AlertKind::ALL {
        let k = m.summary.kind(kind);
        assert_eq!(k.expected, la.expected(kind) + lb.expected(kind));
        assert_eq!(k.delivered, la.delivered(kind) + lb.delivered(kind));
        assert_eq!(m.histogram(kind).len(), k.delivered);
        let mut lat = la.delivered_latencies(kind);
        lat.extend(lb.delivered_latencies(kind));
        lat.sort_unstable();
        let exact = ledger::time_to_pct(&lat, k.expected, 50.0).unwrap();
        let merged = (k.time_to(50.0).unwrap() * 1000.0) as u64;
        assert!(merged >= exact && merged - exact <= exact / 500 + 1);
    }
    let (other, _) = written("shard-c", Region::CENTRAL_SOUTH, "option-b", 100);
    assert!(merge(&[load_run(&a).unwrap(), load_run(&other).unwrap()]).is_err());
    for d in [a, b, other] {
        let _ = std::fs::remove_dir_all(d);
    }
}
