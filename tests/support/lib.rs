//! Helpers shared by the end-to-end tests in `tests/`: locating the `csp-harness` binary and the
//! repository, running the binary with a hard time limit, reading result files.

pub mod scrape;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository root (where the root Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A profile path under `profiles/`.
pub fn profile(rel: &str) -> PathBuf {
    repo_root().join("profiles").join(rel)
}

/// Path of the `csp-harness` binary of the same cargo profile as the test executable.
///
/// A test never exercises a stale binary: when the binary is missing or older than any source it is
/// built from, cargo builds it once per test process. `cargo nextest run --workspace` has built it
/// already, so there this is only a few `stat` calls.
pub fn harness_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test-exe>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile> directory")
            .to_path_buf();
        let bin = profile_dir.join(format!("csp-harness{}", std::env::consts::EXE_SUFFIX));
        let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
        let stale = match built {
            None => true,
            Some(t) => newest_source().is_some_and(|s| s > t),
        };
        if stale {
            let release = profile_dir.file_name().is_some_and(|n| n == "release");
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args([
                "build",
                "--quiet",
                "-p",
                "csp-harness",
                "--bin",
                "csp-harness",
            ]);
            if release {
                cmd.arg("--release");
            }
            let status = cmd.current_dir(repo_root()).status().expect("cargo build");
            assert!(status.success(), "building csp-harness failed");
        }
        bin
    })
    .clone()
}

/// Modification time of the newest source file the binary is built from.
fn newest_source() -> Option<std::time::SystemTime> {
    fn walk(path: &Path, newest: &mut Option<std::time::SystemTime>) {
        if path.is_dir() {
            for e in std::fs::read_dir(path).into_iter().flatten().flatten() {
                walk(&e.path(), newest);
            }
        } else if let Ok(t) = std::fs::metadata(path).and_then(|m| m.modified()) {
            *newest = Some(newest.map_or(t, |n: std::time::SystemTime| n.max(t)));
        }
    }
    let mut newest = None;
    for krate in [
        "harness",
        "virtual-hubs",
        "reports",
        "results",
        "model",
        "ledger",
        "verdict",
        "wire",
        "tls",
        "egress",
        "ingest",
    ] {
        walk(&repo_root().join(krate).join("src"), &mut newest);
        walk(&repo_root().join(krate).join("Cargo.toml"), &mut newest);
    }
    newest
}

/// A free UDP port on loopback (bound, noted, released).
pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts `csp-harness ingest` on `port` with `extra` flags; returns the child once its
/// certificate file exists (the endpoint is then listening).
pub fn start_ingest(port: u16, cert: &Path, extra: &[&str]) -> std::process::Child {
    let child = Command::new(harness_bin())
        .args([
            "ingest",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--cert-out",
        ])
        .arg(cert)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ingest");
    let start = std::time::Instant::now();
    while !cert.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "ingest did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    child
}

/// Runs `csp-harness ARGS` from the repository root, killing it after `limit`.
///
/// Panics if the limit is hit: a hang is a failure, never a pass.
pub fn run_harness<I, S>(args: I, limit: Duration) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run_harness_in(&repo_root(), &[], args, limit)
}

/// Runs `csp-harness ARGS` from `cwd` with extra environment variables, killing it after `limit`.
///
/// Panics if the limit is hit: a hang is a failure, never a pass.
pub fn run_harness_in<I, S>(cwd: &Path, env: &[(&str, &str)], args: I, limit: Duration) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let child = Command::new(harness_bin())
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn csp-harness");
    wait_with_limit(child, limit)
}

/// Sends `signal` (e.g. `TERM`, `INT`) to a process with the system's `kill`.
pub fn send_signal(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{signal} {pid} failed");
}

/// Waits for `path` to exist, for at most `limit`; panics when it does not.
pub fn wait_for_file(path: &Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < limit,
            "{} did not appear within {limit:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for a child for at most `limit`, reading its output as it comes (a full pipe never
/// stalls it); kills it and panics when it does not end: a hang is a failure, never a pass.
pub fn wait_with_limit(child: std::process::Child, limit: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("output"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            let out = rx.recv().expect("output after kill").expect("output");
            panic!(
                "csp-harness hung for more than {limit:?}\n{}",
                describe(&out)
            );
        }
    }
}

/// The process's stdout and stderr, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A fresh, empty temporary directory that is removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("csp-loadtest-")
        .tempdir()
        .expect("temp dir")
}

/// Reads `DIR/summary.json` into the typed record: a missing or renamed key fails here, loudly,
/// instead of reading as `null` and comparing nothing.
pub fn read_summary(dir: &Path) -> results::Summary {
    match results::load_run(dir) {
        Ok(run) => run.summary,
        Err(e) => panic!("{}: {e}", dir.display()),
    }
}

/// One line of a results folder's `alerts.csv`, as the test reads it.
#[derive(Debug, serde::Deserialize)]
pub struct AlertLine {
    /// The alert id.
    pub alert_id: u64,
    /// `poa` or `pra`.
    pub kind: ledger::AlertKind,
    /// `delivered`, `lost` or `pending`.
    pub fate: String,
    /// The loss cause, for lost alerts.
    pub cause: Option<ledger::LossCause>,
}

/// Reads `run.json` of a results directory as the typed record (panics, naming the file, if it is
/// missing or does not parse).
pub fn read_run_record(dir: &Path) -> results::RunRecord {
    let path = dir.join("run.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every line of `DIR/alerts.csv`.
pub fn read_alerts(dir: &Path) -> Vec<AlertLine> {
    let p = dir.join("alerts.csv");
    let mut r = csv::Reader::from_path(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    r.deserialize()
        .collect::<Result<Vec<AlertLine>, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Checks a summary against the alerts it was written with: per kind, every expected alert is
/// delivered or lost (none pending), and the counts by fate and cause equal those of
/// `alerts.csv` — written line by line from the ledger, not from the summary's own totals.
pub fn check_accounting(dir: &Path, summary: &results::Summary) {
    use std::collections::BTreeMap;
    let lines = read_alerts(dir);
    for kind in ledger::AlertKind::ALL {
        let k = summary.kind(kind);
        let mine: Vec<&AlertLine> = lines.iter().filter(|l| l.kind == kind).collect();
        assert!(k.expected > 0, "{kind}: nothing expected");
        assert_eq!(
            k.expected,
            mine.len() as u64,
            "{kind}: expected vs alerts.csv"
        );
        let delivered = mine.iter().filter(|l| l.fate == "delivered").count() as u64;
        assert_eq!(k.delivered, delivered, "{kind}: delivered vs alerts.csv");
        let mut by_cause: BTreeMap<ledger::LossCause, u64> = BTreeMap::new();
        for l in mine.iter().filter(|l| l.fate == "lost") {
            let cause = l
                .cause
                .unwrap_or_else(|| panic!("alert {} lost without a cause", l.alert_id));
            *by_cause.entry(cause).or_insert(0) += 1;
        }
        assert_eq!(
            k.loss_by_cause, by_cause,
            "{kind}: loss by cause vs alerts.csv"
        );
        assert_eq!(
            k.expected,
            k.delivered + k.lost,
            "{kind}: every alert has a fate"
        );
        assert_eq!(k.pending, 0, "{kind}: pending alerts after a finished run");
    }
}
