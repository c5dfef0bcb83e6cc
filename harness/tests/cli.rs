//! The command line's contract: usage errors and bad input exit with 2 and say what is wrong.

use std::process::Command;

fn harness() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_csp-harness"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    c
}

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = harness().args(args).output().expect("spawn csp-harness");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn help_exits_zero_and_lists_the_commands() {
    let (code, text) = run(&["--help"]);
    assert_eq!(code, Some(0), "{text}");
    for cmd in ["run", "simulate", "ingest", "profile"] {
        assert!(text.contains(cmd), "help lacks {cmd}: {text}");
    }
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let (code, text) = run(&["run", "--profile", "profiles/north/current.toml", "--bogus"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("--bogus"), "{text}");
}

#[test]
fn bad_time_scale_and_endpoint_are_refused_by_name() {
    let (code, text) = run(&[
        "run",
        "--profile",
        "profiles/north/current.toml",
        "--time-scale",
        "-3",
    ]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("time scale"), "{text}");
    let (code, text) = run(&[
        "run",
        "--profile",
        "profiles/north/current.toml",
        "--endpoint",
        "ftp://127.0.0.1:1",
        "--ca",
        "x.pem",
    ]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("unsupported scheme"), "{text}");
}

#[test]
fn missing_profile_names_the_file() {
    let (code, text) = run(&["simulate", "--profile", "profiles/no/such.toml"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("profiles/no/such.toml"), "{text}");
}

#[test]
fn endpoint_without_ca_is_refused() {
    let (code, text) = run(&[
        "run",
        "--profile",
        "profiles/north/current.toml",
        "--endpoint",
        "quic://127.0.0.1:9",
    ]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("--ca"), "{text}");
}

#[test]
fn insecure_mode_needs_an_endpoint_and_excludes_a_ca() {
    let (code, text) = run(&[
        "run",
        "--profile",
        "profiles/north/current.toml",
        "--insecure-skip-verify",
    ]);
    assert_eq!(code, Some(2), "{text}");
    let (code, text) = run(&[
        "run",
        "--profile",
        "profiles/north/current.toml",
        "--endpoint",
        "quic://127.0.0.1:9",
        "--ca",
        "x.pem",
        "--insecure-skip-verify",
    ]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("cannot be used with"), "{text}");
}

#[test]
fn bad_http_payload_and_headers_are_refused_before_the_run_by_name() {
    let dir = std::env::temp_dir().join(format!("csp-cli-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let template = dir.join("alert.json");
    std::fs::write(
        &template,
        "{\"id\": \"{{alert_id}}\",\n \"x\": \"{{nope}}\"}",
    )
    .expect("write");
    let t = template.display().to_string();
    let (code, text) = run(&[
        "run",
        "--profile",
        "profiles/test/mixed-short.toml",
        "--transport",
        "http",
        "--payload-template",
        &t,
    ]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains(&t) && text.contains("line 2") && text.contains("{{nope}}"),
        "{text}"
    );
    let (code, text) = run(&[
        "run",
        "--profile",
        "profiles/test/mixed-short.toml",
        "--transport",
        "http",
        "--header",
        "Authorization: Bearer ${CSP_TEST_SURELY_UNSET_VAR}",
    ]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("CSP_TEST_SURELY_UNSET_VAR"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
