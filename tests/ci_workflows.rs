//! The CI examples in `ci/` cannot rot: each parses as YAML, and every `csp-harness` command they
//! run parses with the real command line (`csp_harness::cli::command()`, clap's own parser), once
//! per value of the job's matrix. The GitHub workflow also keeps what issue 15 asks of it: the
//! permissions its JUnit reporter needs, a baseline restored and saved, summary.md in the job
//! summary, the built binary called directly; the GitLab job reports JUnit.

mod cli_lines;

use cli_lines::{harness_commands, logical_lines};
use serde_yaml_ng::Value;
use std::path::PathBuf;

fn ci_file(name: &str) -> (PathBuf, Value) {
    let path = csp_loadtest::repo_root().join("ci").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let yaml = serde_yaml_ng::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    (path, yaml)
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_mapping()?.get(Value::String(key.into()))
}

/// Checks each command with clap's parser; returns the subcommands seen.
fn check_commands(file: &str, commands: &[Vec<String>]) -> Vec<String> {
    let mut seen = Vec::new();
    for args in commands {
        let argv = std::iter::once("csp-harness".to_string()).chain(args.iter().cloned());
        if let Err(e) = csp_harness::cli::command().try_get_matches_from(argv) {
            panic!(
                "{file}: `csp-harness {}` does not parse:\n{e}",
                args.join(" ")
            );
        }
        seen.push(args[0].clone());
    }
    seen
}

#[test]
fn github_workflow_commands_exist_and_it_keeps_its_baseline() {
    let (path, yaml) = ci_file("nightly.yml");
    let file = path.display().to_string();
    let perms = get(&yaml, "permissions").expect("top-level permissions");
    assert_eq!(
        get(perms, "checks").and_then(Value::as_str),
        Some("write"),
        "mikepenz/action-junit-report needs checks: write"
    );
    let jobs = get(&yaml, "jobs")
        .and_then(Value::as_mapping)
        .expect("jobs");
    let mut subcommands = Vec::new();
    let mut uses = Vec::new();
    let mut runs = Vec::new();
    for (_, job) in jobs {
        let regions: Vec<String> = get(job, "strategy")
            .and_then(|s| get(s, "matrix"))
            .and_then(|m| get(m, "region"))
            .and_then(Value::as_sequence)
            .map(|v| {
                v.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        assert!(!regions.is_empty(), "the job runs per region");
        for step in get(job, "steps")
            .and_then(Value::as_sequence)
            .expect("steps")
        {
            if let Some(u) = get(step, "uses").and_then(Value::as_str) {
                uses.push(u.to_string());
            }
            let Some(script) = get(step, "run").and_then(Value::as_str) else {
                continue;
            };
            runs.push(script.to_string());
            for region in &regions {
                let script = script.replace("${{ matrix.region }}", region);
                for line in logical_lines(&script) {
                    assert!(
                        !line.contains("cargo run"),
                        "{file}: call the built binary, not `cargo run`: {line}"
                    );
                    subcommands.extend(check_commands(&file, &harness_commands(&line)));
                }
            }
        }
    }
    for sub in ["run", "check", "trend"] {
        assert!(
            subcommands.iter().any(|s| s == sub),
            "{file}: no `csp-harness {sub}`: {subcommands:?}"
        );
    }
    for action in [
        "actions/cache/restore@",
        "actions/cache/save@",
        "mikepenz/action-junit-report@",
    ] {
        assert!(
            uses.iter().any(|u| u.starts_with(action)),
            "{file}: no {action}: {uses:?}"
        );
    }
    assert!(
        uses.iter()
            .any(|u| u.starts_with("benchmark-action/github-action-benchmark@")),
        "{file}: the trend's JSON feeds github-action-benchmark"
    );
    assert!(
        runs.iter()
            .any(|r| r.contains("summary.md") && r.contains("$GITHUB_STEP_SUMMARY")),
        "{file}: summary.md goes to the job summary"
    );
}

#[test]
fn gitlab_job_commands_exist_and_it_reports_junit() {
    let (path, yaml) = ci_file("gitlab-ci.yml");
    let file = path.display().to_string();
    let jobs = yaml.as_mapping().expect("a mapping of jobs");
    let mut subcommands = Vec::new();
    let mut junit = false;
    for (name, job) in jobs {
        let Some(script) = get(job, "script").and_then(Value::as_sequence) else {
            continue;
        };
        let regions: Vec<String> = get(job, "parallel")
            .and_then(|p| get(p, "matrix"))
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(|m| get(m, "REGION"))
            .filter_map(Value::as_sequence)
            .flatten()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect();
        let regions = if regions.is_empty() {
            vec![String::new()]
        } else {
            regions
        };
        for line in script.iter().filter_map(Value::as_str) {
            for region in &regions {
                let line = line.replace("$REGION", region);
                subcommands.extend(check_commands(&file, &harness_commands(&line)));
            }
        }
        let reports = get(job, "artifacts").and_then(|a| get(a, "reports"));
        if reports.and_then(|r| get(r, "junit")).is_some() {
            junit = true;
            assert!(
                get(job, "artifacts")
                    .and_then(|a| get(a, "when"))
                    .and_then(Value::as_str)
                    == Some("always"),
                "{file}: {name:?} must keep its JUnit when it fails"
            );
        }
    }
    assert!(junit, "{file}: artifacts:reports:junit");
    for sub in ["run", "check", "trend"] {
        assert!(
            subcommands.iter().any(|s| s == sub),
            "{file}: no `csp-harness {sub}`: {subcommands:?}"
        );
    }
}

#[test]
fn the_command_finder_finds_commands_and_the_parser_refuses_wrong_ones() {
    let found = harness_commands(
        "x=0; ./target/release/csp-harness check --results out/t --baseline b || x=$?; echo",
    );
    assert_eq!(
        found,
        [vec!["check", "--results", "out/t", "--baseline", "b"]]
    );
    let found = harness_commands("if true; then csp-harness trend a --out o; fi");
    assert_eq!(found, [vec!["trend", "a", "--out", "o"]]);
    assert!(harness_commands("cargo build --release -p csp-harness").is_empty());
    // A flag that does not exist fails the check, so the workflow tests can fail.
    let argv = [
        "csp-harness",
        "run",
        "--profile",
        "p.toml",
        "--no-such-flag",
    ];
    assert!(
        csp_harness::cli::command()
            .try_get_matches_from(argv)
            .is_err()
    );
}
