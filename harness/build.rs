//! Records the git commit the harness is built from, so every `run.json` can name it, and the
//! build date, so `csp-harness --version` says both.
//!
//! `CSP_GIT_COMMIT` set in the environment wins (for builds from a source tarball that know their
//! commit); otherwise `git rev-parse HEAD` in the source tree; otherwise nothing, and the harness
//! says "commit unknown" rather than guessing. The build date is `SOURCE_DATE_EPOCH` when set
//! (reproducible builds), otherwise today (UTC) when this script last ran: on every change to the
//! harness's own sources or its commit.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=CSP_GIT_COMMIT");
    let commit = std::env::var("CSP_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "HEAD"]));
    if let Some(c) = &commit {
        println!("cargo:rustc-env=CSP_GIT_COMMIT={c}");
    }
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=src");
    let date = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .unwrap_or_else(chrono::Utc::now)
        .format("%Y-%m-%d");
    let commit = commit.as_deref().map_or("commit unknown".to_string(), |c| {
        format!("commit {}", c.get(..12).unwrap_or(c))
    });
    println!("cargo:rustc-env=CSP_BUILD_INFO={commit}, built {date}");
    // Rebuild when HEAD moves: HEAD itself (a checkout) and the branch it points at (a commit).
    // Only files that exist: cargo treats a missing one as always changed.
    let mut watch = Vec::new();
    if let Some(dir) = git(&["rev-parse", "--path-format=absolute", "--git-dir"]) {
        watch.push(format!("{dir}/HEAD"));
    }
    if let Some(common) = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]) {
        if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch.push(format!("{common}/{head_ref}"));
        }
        watch.push(format!("{common}/packed-refs"));
    }
    for path in watch {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
