//! Records the git commit the harness is built from, so every `run.json` can name it, and the
//! build date, so `csp-harness --version` says both; and builds the repository's `profiles/` tree
//! into the binary (every file in it, so a profile added there is built in with no code change).
//!
//! `CSP_GIT_COMMIT` set in the environment wins (for builds from a source tarball that know their
//! commit); otherwise `git rev-parse HEAD` in the source tree; otherwise nothing, and the harness
//! says "commit unknown" rather than guessing. The build date is `SOURCE_DATE_EPOCH` when set
//! (reproducible builds), otherwise today (UTC) when this script last ran: on every change to the
//! harness's own sources or its commit.

use std::path::{Path, PathBuf};
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

/// Every regular file under `dir` (hidden ones left out), sorted, as (path inside `dir` with '/'
/// separators, absolute path).
fn walk(dir: &Path, inside: &str, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let rel = if inside.is_empty() {
            name
        } else {
            format!("{inside}/{name}")
        };
        let path = e.path();
        if path.is_dir() {
            walk(&path, &rel, out);
        } else if path.is_file() {
            out.push((rel, path));
        }
    }
}

/// `$OUT_DIR/builtin_profiles.rs`: `FILES`, every text file of `profiles/` by its path inside it.
fn embed_profiles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
    // A directory is scanned for changes to anything in it, new files included.
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    walk(&root, "", &mut files);
    if files.is_empty() {
        println!(
            "cargo:warning=no profiles found in {}: the binary has no built-in profiles",
            root.display()
        );
    }
    let mut code = String::from(
        "/// Every text file of the repository's `profiles/` tree at build time: (path inside it,\n\
         /// '/'-separated; contents).\npub static FILES: &[(&str, &str)] = &[\n",
    );
    for (rel, path) in files {
        if std::fs::read_to_string(&path).is_err() {
            println!("cargo:warning=profiles/{rel} is not UTF-8 text: not built in");
            continue;
        }
        let abs = path.canonicalize().unwrap_or(path);
        code.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            abs.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(e) = std::fs::write(out.join("builtin_profiles.rs"), code) {
        panic!(
            "cannot write the built-in profiles into {}: {e}",
            out.display()
        );
    }
}

fn main() {
    embed_profiles();
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
