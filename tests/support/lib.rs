//! Helpers shared by the end-to-end tests in `tests/`: locating the `csp-harness` binary and the
//! repository, running the binary with a hard time limit, reading result files.

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

/// Runs `csp-harness ARGS` from the repository root, killing it after `limit`.
///
/// Panics if the limit is hit: a hang is a failure, never a pass.
pub fn run_harness<I, S>(args: I, limit: Duration) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut child = Command::new(harness_bin())
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn csp-harness");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "csp-harness hung for more than {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
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

/// Reads and parses `DIR/summary.json`.
pub fn read_summary(dir: &Path) -> serde_json::Value {
    let p = dir.join("summary.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
