//! Issue 15 (everyday use) and issue 10 items 8–11 (honest exit codes and messages), through the
//! real binary: a new results folder per run, `--json`, `--version`, completions and man pages,
//! `CSP_*` variables hidden in help, errors that name the right file once, numbers refused by
//! name, health checks in JUnit without thresholds, and the exit codes 0, 1, 2 and 130 with real
//! signals. (Exit 3, a lagged harness, is pinned by `e2e_run.rs`.)

use csp_loadtest::{
    describe, harness_bin, profile, read_summary, run_harness, run_harness_in, send_signal,
    temp_dir, wait_for_file, wait_with_limit,
};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const SHORT: Duration = Duration::from_secs(60);

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `simulate` of the small test profile from `cwd`, with `extra` arguments.
fn simulate_in(cwd: &Path, extra: &[&str]) -> std::process::Output {
    let p = profile("test/mixed-short.toml");
    let mut args: Vec<&std::ffi::OsStr> = vec!["simulate".as_ref(), "--profile".as_ref()];
    args.push(p.as_os_str());
    args.push("--quiet".as_ref());
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    run_harness_in(cwd, &[], args, SHORT)
}

#[test]
fn each_run_gets_a_new_folder_and_a_change_set_never_shares_one() {
    let dir = temp_dir();
    let cwd = dir.path();
    for extra in [&[][..], &[], &["--changes", "4,3"]] {
        let res = simulate_in(cwd, extra);
        assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    }
    let series = cwd.join("out/test-mixed-short");
    let mut runs: Vec<String> = std::fs::read_dir(&series)
        .expect("series folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "latest")
        .collect();
    runs.sort();
    assert_eq!(runs.len(), 2, "two runs, two folders: {runs:?}");
    for r in &runs {
        assert!(series.join(r).join("summary.json").is_file(), "{r}");
    }
    let latest = std::fs::read_link(series.join("latest")).expect("latest link");
    assert_eq!(latest, Path::new(&runs[1]), "latest is the newest run");
    let changed = cwd.join("out/test-mixed-short+3,4/latest/summary.json");
    assert!(changed.is_file(), "--changes 4,3 has a folder of its own");
    let s = read_summary(&cwd.join("out/test-mixed-short+3,4/latest"));
    assert_eq!(s.meta.changes.len(), 2, "{:?}", s.meta.changes);

    // --out: exactly there; a non-empty folder is refused unless --force.
    let out = cwd.join("mine");
    let out_s = out.to_str().expect("utf-8 path");
    let res = simulate_in(cwd, &["--out", out_s]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let res = simulate_in(cwd, &["--out", out_s]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(stderr(&res).contains("not empty"), "{}", describe(&res));
    assert!(stderr(&res).contains("--force"), "{}", describe(&res));
    let res = simulate_in(cwd, &["--out", out_s, "--force", "--seed", "2"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert_eq!(
        read_summary(&out).meta.seed,
        2,
        "--force replaced the results"
    );
}

#[test]
fn json_puts_only_the_summary_on_stdout() {
    let dir = temp_dir();
    let out = dir.path().join("r");
    let res = simulate_in(
        dir.path(),
        &["--json", "--out", out.to_str().expect("utf-8")],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let printed: results::Summary =
        serde_json::from_slice(&res.stdout).unwrap_or_else(|e| panic!("{e}\n{}", describe(&res)));
    assert_eq!(printed, read_summary(&out));
    assert!(
        stderr(&res).contains("results:"),
        "what people read moved to stderr: {}",
        describe(&res)
    );
}

#[test]
fn version_completions_and_man_page() {
    let res = run_harness(["--version"], SHORT);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let v = stdout(&res);
    assert!(v.starts_with("csp-harness 0."), "{v}");
    assert!(v.contains("commit ") && v.contains(", built 20"), "{v}");

    for shell in ["bash", "zsh", "fish"] {
        let res = run_harness(["completions", shell], SHORT);
        assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
        let script = stdout(&res);
        assert!(
            script.contains("csp-harness") && script.contains("trend"),
            "{shell}"
        );
    }
    let res = run_harness(["man"], SHORT);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let page = stdout(&res);
    assert!(page.contains(".TH csp-harness 1"), "{page}");
    let dir = temp_dir();
    let res = run_harness(
        ["man".as_ref(), "--out".as_ref(), dir.path().as_os_str()],
        SHORT,
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    for page in ["csp-harness.1", "csp-harness-run.1", "csp-harness-trend.1"] {
        assert!(dir.path().join(page).is_file(), "{page}");
    }

    // The top-level help lists every subcommand the real command line has.
    let res = run_harness(["--help"], SHORT);
    let help = stdout(&res);
    let cmd = csp_harness::cli::command();
    let subs: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
    assert!(subs.len() >= 10, "{subs:?}");
    for sub in subs {
        assert!(
            help.contains(&format!("\n  {sub} ")),
            "{sub} not in:\n{help}"
        );
    }
    assert!(
        help.contains("Exit codes:") && help.contains("130"),
        "{help}"
    );
}

#[test]
fn csp_variables_feed_the_flags_and_their_values_stay_out_of_help() {
    let dir = temp_dir();
    let env = [
        ("CSP_ENDPOINT", "quic://127.0.0.1:9"),
        ("CSP_CA", "/nonexistent/secret-ca.pem"),
        ("CSP_TOKEN", "s3cret-token"),
    ];
    let res = run_harness_in(dir.path(), &env, ["run", "--help"], SHORT);
    let help = stdout(&res);
    for (var, value) in env {
        assert!(help.contains(&format!("[env: {var}")), "{var}:\n{help}");
        assert!(!help.contains(value), "{var}'s value shown:\n{help}");
    }
    // The variables reach the run: the endpoint and CA come from them (and the CA is missing).
    let p = profile("test/mixed-short.toml");
    let res = run_harness_in(
        dir.path(),
        &env,
        ["run".as_ref(), "--profile".as_ref(), p.as_os_str()],
        SHORT,
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        stderr(&res).contains("secret-ca.pem"),
        "CSP_CA was used: {}",
        describe(&res)
    );
    assert!(!stderr(&res).contains("s3cret-token"), "{}", describe(&res));
}

#[test]
fn a_wrong_path_is_named_as_what_it_is_and_each_cause_is_said_once() {
    let dir = temp_dir();
    let res = run_harness_in(
        dir.path(),
        &[],
        ["simulate", "--profile", "/nonexistent/north.toml"],
        SHORT,
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    let err = stderr(&res);
    assert!(err.contains("/nonexistent/north.toml"), "{err}");
    assert!(!err.contains("thresholds"), "not a thresholds file: {err}");
    // Said once: neither on disk nor built in (the built-in profiles are looked up by name too).
    assert_eq!(err.matches("no such file").count(), 1, "{err}");
    assert!(err.contains("no built-in profile of that name"), "{err}");

    let p = profile("test/mixed-short.toml");
    let res = run_harness_in(
        dir.path(),
        &[],
        [
            "simulate".as_ref(),
            "--profile".as_ref(),
            p.as_os_str(),
            "--thresholds".as_ref(),
            "/nonexistent/t.toml".as_ref(),
        ],
        SHORT,
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    let err = stderr(&res);
    assert!(
        err.contains("cannot read thresholds file /nonexistent/t.toml"),
        "{err}"
    );
    assert_eq!(err.matches("no such file").count(), 1, "{err}");
    assert!(
        err.contains("no built-in thresholds file of that name"),
        "{err}"
    );
    let res = run_harness(
        ["report", "/nonexistent/results", "--out", "/nonexistent/o"],
        SHORT,
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    let err = stderr(&res);
    assert!(err.matches("(os error 2)").count() <= 1, "{err}");
}

#[test]
fn nonsense_numbers_and_empty_tokens_are_refused_by_name() {
    let p = profile("test/mixed-short.toml");
    let p = p.to_str().expect("utf-8");
    for bad in ["NaN", "-5", "inf"] {
        let res = run_harness(["run", "--profile", p, "--drain-s", bad], SHORT);
        assert_eq!(res.status.code(), Some(2), "{bad}: {}", describe(&res));
        assert!(stderr(&res).contains("--drain-s"), "{}", describe(&res));
    }
    let res = run_harness(["ingest", "--max-connections", "0"], SHORT);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        stderr(&res).contains("--max-connections"),
        "{}",
        describe(&res)
    );
    let res = run_harness(["ingest", "--auth-token", ""], SHORT);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(stderr(&res).contains("--auth-token"), "{}", describe(&res));
}

#[test]
fn special_ledger_paths_and_bad_token_files_are_refused_with_exit_2() {
    let dir = temp_dir();
    let cert = dir.path().join("cert.pem");
    let cert = cert.to_str().expect("utf-8");
    // Issue 10 item 7: /dev/zero used to abort on a 4 GiB allocation, /dev/full to read for ever.
    for dev in ["/dev/zero", "/dev/full", "/dev/null"] {
        let res = run_harness(
            [
                "ingest",
                "--listen",
                "127.0.0.1:0",
                "--cert-out",
                cert,
                "--ledger",
                dev,
            ],
            SHORT,
        );
        assert_eq!(res.status.code(), Some(2), "{dev}: {}", describe(&res));
        assert!(
            stderr(&res).contains(&format!("ledger file {dev}: not a regular file")),
            "{}",
            describe(&res)
        );
    }
    // A token file that is empty, or not a file: refused by name, the token never printed.
    let token = dir.path().join("token");
    std::fs::write(&token, "\n").expect("write");
    let token = token.to_str().expect("utf-8");
    let res = run_harness(
        [
            "ingest",
            "--listen",
            "127.0.0.1:0",
            "--cert-out",
            cert,
            "--auth-token-file",
            token,
        ],
        SHORT,
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(stderr(&res).contains("empty token"), "{}", describe(&res));
    let p = profile("test/mixed-short.toml");
    let res = run_harness(
        [
            "run",
            "--profile",
            p.to_str().expect("utf-8"),
            "--endpoint",
            "quic://127.0.0.1:9",
            "--ca",
            cert,
            "--token-file",
            dir.path().to_str().expect("utf-8"),
        ],
        SHORT,
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        stderr(&res).contains("not a regular file"),
        "{}",
        describe(&res)
    );
}

#[test]
fn thresholds_breached_exit_1_and_junit_without_thresholds_holds_the_health_checks() {
    let dir = temp_dir();
    let th = dir.path().join("strict.toml");
    std::fs::write(
        &th,
        "poa.delivered_by.4m = 0.999\npoa.time_to_99_9 = \"1m\"\n",
    )
    .expect("write");
    let junit = dir.path().join("j.xml");
    let res = simulate_in(
        dir.path(),
        &[
            "--thresholds",
            th.to_str().expect("utf-8"),
            "--junit",
            junit.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let xml = std::fs::read_to_string(&junit).expect("junit");
    for case in [
        "poa.delivered_by.4m",
        "poa.time_to_99_9",
        "run.complete",
        "harness.schedule",
    ] {
        assert!(xml.contains(&format!("name=\"{case}\"")), "{case}: {xml}");
    }

    // No thresholds: the JUnit holds the run's own health checks, which pass.
    let junit2 = dir.path().join("j2.xml");
    let res = simulate_in(dir.path(), &["--junit", junit2.to_str().expect("utf-8")]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert!(stderr(&res).contains("health checks"), "{}", describe(&res));
    let xml = std::fs::read_to_string(&junit2).expect("junit");
    assert!(
        xml.contains("tests=\"2\"") && xml.contains("failures=\"0\""),
        "{xml}"
    );
    assert!(xml.contains("name=\"run.complete\""), "{xml}");
}

/// Starts `csp-harness ARGS` from `cwd` with piped output.
fn spawn(cwd: &Path, args: &[&std::ffi::OsStr]) -> std::process::Child {
    Command::new(harness_bin())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn csp-harness")
}

#[test]
fn sigterm_stops_a_run_and_ctrl_c_stops_a_whole_comparison() {
    let dir = temp_dir();
    let p = profile("test/mixed-short.toml");
    // A 70-minute scenario at 60x: about 70 s unless stopped.
    let out = dir.path().join("run");
    let child = spawn(
        dir.path(),
        &[
            "run".as_ref(),
            "--profile".as_ref(),
            p.as_os_str(),
            "--time-scale".as_ref(),
            "60".as_ref(),
            "--quiet".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
    );
    // The embedded endpoint's certificate is written once it listens: the run is under way.
    wait_for_file(&out.join("endpoint-cert.pem"), Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1500));
    send_signal(child.id(), "TERM");
    let res = wait_with_limit(child, Duration::from_secs(30));
    assert_eq!(res.status.code(), Some(130), "{}", describe(&res));
    let s = read_summary(&out);
    assert!(!s.meta.complete, "marked incomplete");
    assert!(stderr(&res).contains("SIGTERM"), "{}", describe(&res));

    // compare: Ctrl-C during the first profile stops the second from running at all.
    let cmp = dir.path().join("cmp");
    let child = spawn(
        dir.path(),
        &[
            "compare".as_ref(),
            "--profile".as_ref(),
            p.as_os_str(),
            "--profile".as_ref(),
            profile("central-south/current.toml").as_os_str(),
            "--time-scale".as_ref(),
            "60".as_ref(),
            "--quiet".as_ref(),
            "--out".as_ref(),
            cmp.as_os_str(),
        ],
    );
    wait_for_file(
        &cmp.join("test-mixed-short/endpoint-cert.pem"),
        Duration::from_secs(30),
    );
    std::thread::sleep(Duration::from_millis(1500));
    send_signal(child.id(), "INT");
    let res = wait_with_limit(child, Duration::from_secs(30));
    assert_eq!(res.status.code(), Some(130), "{}", describe(&res));
    assert!(
        !cmp.join("central-south-current").exists(),
        "the second profile must not run: {}",
        describe(&res)
    );
    assert!(!read_summary(&cmp.join("test-mixed-short")).meta.complete);
    assert!(cmp.join("summary.md").is_file(), "what ran is still drawn");
}

#[test]
fn ingest_closes_gracefully_on_sigterm_and_its_logs_carry_no_colour() {
    let dir = temp_dir();
    for format in ["text", "json"] {
        let cert = dir.path().join(format!("{format}.pem"));
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .expect("free port");
        // --reject-all makes the endpoint log a warning (fault injection is on).
        let child = spawn(
            dir.path(),
            &[
                "ingest".as_ref(),
                "--listen".as_ref(),
                format!("127.0.0.1:{port}").as_ref(),
                "--cert-out".as_ref(),
                cert.as_os_str(),
                "--reject-all".as_ref(),
                "--log-format".as_ref(),
                format.as_ref(),
            ],
        );
        wait_for_file(&cert, Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(500));
        send_signal(child.id(), "TERM");
        let res = wait_with_limit(child, Duration::from_secs(20));
        assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
        let last = stdout(&res).lines().last().unwrap_or_default().to_string();
        let stats: serde_json::Value = serde_json::from_str(&last)
            .unwrap_or_else(|e| panic!("the final stats line: {e}\n{}", describe(&res)));
        assert!(stats.get("alerts_stored").is_some(), "{stats}");
        let err = stderr(&res);
        assert!(
            !err.contains('\u{1b}'),
            "ANSI escape in a piped log: {err:?}"
        );
        assert!(err.contains("fault injection"), "{err}");
        if format == "json" {
            let line = err
                .lines()
                .find(|l| l.contains("fault injection"))
                .expect("the warning");
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
            assert_eq!(v["level"], "WARN", "{v}");
        }
    }
}
