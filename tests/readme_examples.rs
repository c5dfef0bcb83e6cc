//! README.md's command examples cannot go stale: every ```sh block runs, in order, as a bash script
//! (`set -euo pipefail`), with the `csp-harness` this build made first on PATH, from a scratch
//! folder that holds a copy of `profiles/` — so every path, flag, exit code and file the README
//! promises is exercised.
//!
//! What is not run as written, and why:
//! - lines starting with `cargo` (installing the command, running these very tests), `docker`
//!   (no Docker engine on the test machines; the Dockerfile is linted by `.ci/run`) and `kubectl`
//!   (no cluster; the manifests those lines apply are checked by `tests/k8s_manifests.rs`);
//! - the reference endpoint's ports `127.0.0.1:4433` (QUIC) and `127.0.0.1:8443` (HTTP) are
//!   replaced by free ones;
//! - in the scratch copy of `profiles/`, `north/current.toml` and `central-south/current.toml`
//!   (which Option A and B extend) are stand-ins that extend the real ones with 1,000 premises
//!   instead of 30,000, so the three real-time runs at 60x take about 50 s instead of 3 minutes,
//!   and keep up with their schedule on a loaded 2-core machine; and the nightly thresholds leave
//!   out their `harness.max_lag_ms` line, a limit on the single latest hub that one scheduling
//!   hiccup of a loaded test machine breaks (the schedule itself is still judged: a lagged run
//!   exits 3 and fails the test). Everything else is the real file.

use csp_loadtest::{harness_bin, repo_root, temp_dir, wait_with_limit};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The ```sh blocks of a Markdown text, in order.
fn sh_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l == "```sh" || l == "```bash" => current = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                current = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// A block as the test runs it, and the lines it does not run.
fn prepare(block: &str, port: u16, http_port: u16) -> (String, Vec<String>) {
    let mut script = String::from("trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n");
    let mut skipped = Vec::new();
    for line in block.replace("\\\n", " ").lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if ["cargo", "docker", "kubectl"].contains(&first) {
            skipped.push(line.trim().to_string());
            script.push_str(": skipped by the README test\n");
        } else {
            script.push_str(
                &line
                    .replace("127.0.0.1:4433", &format!("127.0.0.1:{port}"))
                    .replace("127.0.0.1:8443", &format!("127.0.0.1:{http_port}")),
            );
            script.push('\n');
        }
    }
    (script, skipped)
}

/// The scratch folder: `profiles/` copied, with the two Current profiles as small stand-ins.
fn scratch_with_profiles(dir: &Path) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for e in std::fs::read_dir(from).expect("read profiles") {
            let e = e.expect("entry");
            let target = to.join(e.file_name());
            if e.path().is_dir() {
                copy(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), &target).expect("copy");
            }
        }
    }
    let real = repo_root().join("profiles");
    copy(&real, &dir.join("profiles"));
    for region in ["north", "central-south"] {
        let base = real.join(region).join("current.toml");
        std::fs::write(
            dir.join("profiles").join(region).join("current.toml"),
            format!(
                "# README test stand-in: {} with 1,000 premises\nextends = {:?}\n\n\
                 [scenario]\npremises = 1000\ncells = 2\n",
                base.display(),
                base.display().to_string()
            ),
        )
        .expect("write stand-in");
    }
    let nightly = dir.join("profiles/ci/nightly");
    for e in std::fs::read_dir(&nightly).expect("nightly thresholds") {
        let p = e.expect("entry").path();
        let text = std::fs::read_to_string(&p).expect("read thresholds");
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("harness.max_lag_ms"))
            .collect();
        assert!(
            kept.len() < text.lines().count(),
            "{} had a max-lag line",
            p.display()
        );
        std::fs::write(&p, kept.join("\n") + "\n").expect("write thresholds");
    }
    std::fs::create_dir_all(dir.join("home")).expect("mkdir home");
}

#[test]
fn heavy_every_readme_example_runs() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let blocks = sh_blocks(&readme);
    assert!(blocks.len() >= 3, "README.md has ```sh examples");
    let dir = temp_dir();
    let work = dir.path();
    scratch_with_profiles(work);
    let bin_dir = harness_bin().parent().expect("bin dir").to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port");
    // The HTTP front takes the same port number on TCP and UDP (HTTP/3): free on both now.
    let http_port = loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("free TCP port");
        let p = tcp.local_addr().expect("addr").port();
        if p != port && std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            break p;
        }
    };
    let mut all_skipped = Vec::new();
    let mut harness_lines = 0;
    for block in &blocks {
        let (script, skipped) = prepare(block, port, http_port);
        harness_lines += script.matches("csp-harness ").count();
        all_skipped.extend(skipped);
        let child = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(work)
            .env("PATH", &path)
            .env("HOME", work.join("home"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash");
        let out = wait_with_limit(child, Duration::from_secs(180));
        assert!(
            out.status.success(),
            "README example failed ({:?}):\n{block}\n--- stdout:\n{}\n--- stderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Only installing, the tests themselves, Docker and kubectl are left out.
    for s in &all_skipped {
        assert!(
            s.starts_with("cargo install")
                || s.starts_with("cargo nextest")
                || s.starts_with("docker ")
                || s.starts_with("kubectl "),
            "a README example the test does not run: {s}"
        );
    }
    assert!(harness_lines >= 12, "{harness_lines} csp-harness commands");
    // What the examples promise is there.
    for f in [
        "out/north-current/latest/summary.json",
        "out/north-current+3,4/latest/summary.json",
        "out/central-south-option-b/latest/report.html",
        "out/compare/latest/summary.md",
        "out/nightly/north/summary.json",
        "out/nightly/north-junit.xml",
        "baseline/north/summary.json",
        "out/trend/latest/benchmark-smaller-is-better.json",
        "out/trend/latest/north-current-times.png",
        "out/my-endpoint/summary.json",
        "ingest.csv",
        "man/csp-harness.1",
        "home/.local/share/bash-completion/completions/csp-harness",
    ] {
        assert!(
            work.join(f).exists(),
            "{f} missing after the README examples"
        );
    }
    let json = std::fs::read_to_string(work.join("north-summary.json")).expect("json");
    let s: results::Summary = serde_json::from_str(&json).expect("--json prints the summary");
    assert_eq!(s.meta.profile, "north/current");
}

#[test]
fn the_block_reader_finds_sh_blocks_only() {
    let md = "text\n```sh\na \\\n  b\n```\n```toml\nx = 1\n```\n```sh\ncargo run\nc\n```\n";
    let blocks = sh_blocks(md);
    assert_eq!(blocks, ["a \\\n  b\n", "cargo run\nc\n"]);
    let (script, skipped) = prepare(&blocks[1], 1, 2);
    assert_eq!(skipped, ["cargo run"]);
    assert!(
        script.ends_with(": skipped by the README test\nc\n"),
        "{script}"
    );
}
