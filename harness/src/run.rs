//! Orchestration of `run` and `simulate`: load the profile, start (or reach) the endpoint, drive the
//! virtual hubs through the modelled network, drain the egress, close the ledger, write the results.
//!
//! Both commands end the same way ([`finish_run`]): every expected alert gets its fate, the summary and
//! the ledger are written to the results directory, and a short table is printed.

use crate::cli::{CommonRunArgs, RunArgs, SimulateArgs};
use crate::egress::{Egress, EgressConfig};
use crate::ingest::{IngestConfig, IngestServer};
use anyhow::{Context, anyhow};
use ledger::{AlertKind, Ledger};
use reports::{LoadedRun, RunMeta, Summary};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant as WallInstant;
use virtual_hubs::{DriveConfig, DriveReport, Profile, ScenarioClock};

/// `csp-harness simulate`: the model on virtual time with an instant-ack sink.
pub fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let thresholds = thresholds(&args.common)?;
    let run = simulate_one(&args.common)?;
    conclude(&run, thresholds.as_ref(), args.common.junit.as_deref())
}

/// Simulates one profile and writes its results directory.
pub fn simulate_one(common: &CommonRunArgs) -> anyhow::Result<LoadedRun> {
    let profile = load_profile(common)?;
    let out = out_dir(common, &profile);
    let wall = WallInstant::now();
    let sampler = crate::host::HealthSampler::start();
    let (ledger, report) = virtual_hubs::simulate(&profile, common.seed)?;
    let mut meta = meta(common, &profile, "simulate", 1.0, None, wall, true, &report);
    add_health(&mut meta, sampler, false, 0);
    finish_run(&out, meta, &ledger, common.quiet)
}

/// `csp-harness run`: scaled real time against a real endpoint.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let thresholds = thresholds(&args.common)?;
    let junit = args.common.junit.clone();
    let run = run_one(args)?;
    conclude(&run, thresholds.as_ref(), junit.as_deref())
}

/// The thresholds a run is checked against, read before the run so a bad file fails fast (exit 2).
fn thresholds(common: &CommonRunArgs) -> anyhow::Result<Option<verdict::Thresholds>> {
    crate::check::thresholds_for(&common.profile, common.thresholds.as_deref())
}

/// The exit code of a finished run: 2 if it was interrupted (what was measured is written, marked
/// incomplete), else the thresholds' verdict (0/1), and never a pass for a run the harness itself
/// distorted by falling behind its schedule.
pub fn conclude(
    run: &LoadedRun,
    thresholds: Option<&verdict::Thresholds>,
    junit: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let lagged = run
        .summary
        .meta
        .health
        .as_ref()
        .and_then(|h| h.get("lagged"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let code = match thresholds {
        Some(t) => crate::check::verdict_for_run(&run.summary, t, junit)?,
        None => ExitCode::SUCCESS,
    };
    if !run.summary.meta.complete {
        eprintln!("error: the run was interrupted; its results are marked incomplete");
        return Ok(ExitCode::from(2));
    }
    if lagged && thresholds.is_some() {
        eprintln!("FAIL: the harness fell behind its schedule; this result cannot pass");
        return Ok(ExitCode::from(1));
    }
    Ok(code)
}

/// Adds the harness's own health to the summary: CPU and memory sampled during the run, and whether
/// it lagged behind its schedule far enough to distort the curves.
fn add_health(
    meta: &mut RunMeta,
    sampler: crate::host::HealthSampler,
    lagged: bool,
    lag_limit_ms: u64,
) {
    let mut h = match meta.health.take() {
        Some(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    h.extend(sampler.finish().to_json());
    h.insert("lagged".into(), serde_json::Value::from(lagged));
    if lag_limit_ms > 0 {
        h.insert("lag_limit_ms".into(), serde_json::Value::from(lag_limit_ms));
    }
    h.insert(
        "host".into(),
        serde_json::to_value(crate::host::host_record()).unwrap_or_default(),
    );
    meta.health = Some(serde_json::Value::Object(h));
}

/// Runs one profile against the endpoint and writes its results directory.
pub fn run_one(args: RunArgs) -> anyhow::Result<LoadedRun> {
    if let (Some(url), None, false) = (&args.endpoint, &args.ca, args.insecure_skip_verify) {
        return Err(anyhow!(
            "--endpoint {url} needs --ca PEM: the endpoint's certificate must be verified \
             (or, for a trial only, --insecure-skip-verify)"
        ));
    }
    let profile = Arc::new(load_profile(&args.common)?);
    let out = out_dir(&args.common, &profile);
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create results directory {}", out.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run_async(args, profile, out))
}

async fn run_async(
    args: RunArgs,
    profile: Arc<Profile>,
    out: PathBuf,
) -> anyhow::Result<LoadedRun> {
    let wall = WallInstant::now();
    let sampler = crate::host::HealthSampler::start();
    // The endpoint: the user's, or the reference one on loopback with a pinned self-signed cert.
    let (embedded, target) = match &args.endpoint {
        Some(url) => {
            let ca = args.ca.clone().unwrap_or_default();
            let addr = url
                .resolve()
                .with_context(|| format!("endpoint {url}: cannot resolve host"))?;
            let name = args.server_name.clone().unwrap_or_else(|| url.host.clone());
            (None, (addr, name, ca, url.to_string()))
        }
        None => {
            let server = start_embedded(&out).await?;
            let addr = server.local_addr();
            let ca = server.cert_pem_path().to_path_buf();
            let url = format!("quic://{addr} (embedded reference endpoint)");
            (Some(server), (addr, "localhost".to_string(), ca, url))
        }
    };
    let (addr, server_name, ca_pem, endpoint_label) = target;

    let ledger = Arc::new(Mutex::new(Ledger::new(profile.premises())));
    let clock = ScenarioClock::start(args.time_scale);
    let mut egress_cfg = EgressConfig {
        connections: usize::from(args.connections),
        client_cert: args.client_cert.clone(),
        client_key: args.client_key.clone(),
        auth_token: args.token.clone(),
        ..EgressConfig::new(addr, server_name, ca_pem)
    };
    if args.insecure_skip_verify {
        eprintln!(
            "WARNING: --insecure-skip-verify: the endpoint's certificate is NOT verified; \
             anyone on the path can read and alter the alerts"
        );
        egress_cfg.trust = crate::tls::TrustSource::InsecureSkipVerify;
    }
    let egress = Egress::start(egress_cfg, clock, ledger.clone())
        .await
        .with_context(|| format!("endpoint {endpoint_label} is unreachable"))?;

    let counters = Arc::new(virtual_hubs::Progress::default());
    let progress = crate::progress::spawn_progress(
        snapshot_source(ledger.clone(), counters.clone(), clock),
        profile.horizon_ms(),
        args.common.quiet,
    );
    let mut cfg = DriveConfig::new(profile.clone(), args.common.seed, clock);
    cfg.progress = Some(counters);
    let mut complete = true;
    let report = tokio::select! {
        r = virtual_hubs::drive(cfg, egress.sink(), ledger.clone()) => r?,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted: writing what was measured, marked incomplete");
            complete = false;
            DriveReport::default()
        }
    };
    let drain = clock.real_duration((args.drain_s.max(0.0) * 1000.0) as u64);
    let egress_stats = egress.drain(drain).await;
    progress.finish();
    warn_about_endpoint(&endpoint_label, &egress_stats);
    let lag_p99 = report.p99_lag_ms.max(egress_stats.send_lag_p99_ms);
    let lagged = lag_p99 > args.max_lag_ms;
    if lagged {
        eprintln!(
            "warning: the harness fell behind its schedule (p99 lag {lag_p99} scenario ms > {} ms): \
             its own delay distorts these curves; lower --time-scale or use a bigger machine",
            args.max_lag_ms
        );
    }
    let end_ms = clock.now_ms();
    {
        let mut l = lock(&ledger);
        l.finish(end_ms);
    }
    if let Some(server) = embedded {
        server.shutdown().await;
    }
    let ledger = lock(&ledger).clone();
    let mut meta = meta(
        &args.common,
        &profile,
        "run",
        args.time_scale,
        Some(endpoint_label),
        wall,
        complete,
        &report,
    );
    if let Some(serde_json::Value::Object(h)) = meta.health.as_mut() {
        h.insert(
            "egress".to_string(),
            serde_json::to_value(&egress_stats).unwrap_or_default(),
        );
        // The driver's hand-over lateness in real time too (the *_lag_ms figures are scenario ms).
        h.insert("max_lag_real_ms".into(), report.max_lag_real_ms.into());
        h.insert("p99_lag_real_ms".into(), report.p99_lag_real_ms.into());
        h.insert("p999_lag_real_ms".into(), report.p999_lag_real_ms.into());
        h.insert(
            "hand_over_realtime".into(),
            report.hand_over_realtime.into(),
        );
    }
    add_health(&mut meta, sampler, lagged, args.max_lag_ms);
    finish_run(&out, meta, &ledger, args.common.quiet)
}

/// Says plainly on stderr when the endpoint, not the modelled network, cost alerts.
fn warn_about_endpoint(endpoint: &str, s: &crate::egress::EgressStats) {
    let unreachable = s.expired + s.unreachable_at_drain;
    if s.rejected > 0 {
        eprintln!(
            "warning: endpoint {endpoint} rejected {} alerts (lost as endpoint_rejected)",
            s.rejected
        );
    }
    if unreachable > 0 {
        eprintln!(
            "warning: endpoint {endpoint} was unreachable for {unreachable} alerts (lost as endpoint_unreachable; {} connections lost, {} failed connects)",
            s.connections_lost, s.connect_failures
        );
    }
    if s.queue_overflow > 0 {
        eprintln!(
            "warning: the harness's send queue overflowed for {} alerts (lost as send_queue_overflow): the endpoint did not keep up",
            s.queue_overflow
        );
    }
    if s.pending_at_drain > 0 {
        eprintln!(
            "warning: {} alerts were still unacknowledged when the drain ended (lost as not_delivered_by_end)",
            s.pending_at_drain
        );
    }
}

async fn start_embedded(out: &Path) -> anyhow::Result<IngestServer> {
    let cfg = IngestConfig::embedded(
        out.join("endpoint-cert.pem"),
        out.join("endpoint-ledger.csv"),
    );
    crate::ingest::start(cfg)
        .await
        .context("cannot start the embedded reference endpoint on loopback")
}

fn lock(l: &Arc<Mutex<Ledger>>) -> std::sync::MutexGuard<'_, Ledger> {
    l.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the live display shows, read from the ledger and the model's counters.
fn snapshot_source(
    ledger: Arc<Mutex<Ledger>>,
    counters: Arc<virtual_hubs::Progress>,
    clock: ScenarioClock,
) -> impl Fn() -> crate::progress::ProgressSnapshot + Send + 'static {
    use std::sync::atomic::Ordering::Relaxed;
    let last = Mutex::new((WallInstant::now(), 0u64));
    move || {
        let submitted = counters.alerts_submitted.load(Relaxed);
        let rate = match last.lock() {
            Ok(mut g) => {
                let dt = g.0.elapsed().as_secs_f64();
                let r = if dt > 0.0 {
                    (submitted.saturating_sub(g.1)) as f64 / dt
                } else {
                    0.0
                };
                *g = (WallInstant::now(), submitted);
                r
            }
            Err(_) => 0.0,
        };
        let l = lock(&ledger);
        let lost = |k: AlertKind| l.lost_by_cause(k).values().sum::<u64>();
        crate::progress::ProgressSnapshot {
            scenario_ms: clock.now_ms(),
            poa_delivered: l.delivered(AlertKind::Poa),
            poa_lost: lost(AlertKind::Poa),
            poa_expected: l.expected(AlertKind::Poa),
            pra_delivered: l.delivered(AlertKind::Pra),
            pra_lost: lost(AlertKind::Pra),
            pra_expected: l.expected(AlertKind::Pra),
            sent_per_s: rate,
            lag_ms: counters.last_lag_ms.load(Relaxed),
        }
    }
}

/// The profile with any `--changes` applied on top of its own.
pub fn load_profile(common: &CommonRunArgs) -> anyhow::Result<Profile> {
    Ok(Profile::load_with_changes(
        &common.profile,
        &common.changes,
    )?)
}

fn out_dir(common: &CommonRunArgs, profile: &Profile) -> PathBuf {
    common
        .out
        .clone()
        .unwrap_or_else(|| Path::new("out").join(profile.name().replace('/', "-")))
}

#[allow(clippy::too_many_arguments)]
fn meta(
    common: &CommonRunArgs,
    profile: &Profile,
    mode: &str,
    time_scale: f64,
    endpoint: Option<String>,
    wall: WallInstant,
    complete: bool,
    report: &DriveReport,
) -> RunMeta {
    let mut m = RunMeta::new(
        profile.name(),
        profile.region(),
        profile.option_label(),
        common.seed,
        profile.premises(),
    );
    m.profile_path = Some(common.profile.display().to_string());
    m.changes = profile.changes();
    m.time_scale = time_scale;
    m.mode = mode.to_string();
    m.endpoint = endpoint;
    m.complete = complete;
    m.wall_s = wall.elapsed().as_secs_f64();
    m.health = Some(serde_json::json!({
        "max_lag_ms": report.max_lag_ms,
        "p99_lag_ms": report.p99_lag_ms,
        "p999_lag_ms": report.p999_lag_ms,
    }));
    m
}

/// Writes the results directory and prints the summary table.
fn finish_run(
    out: &Path,
    meta: RunMeta,
    ledger: &Ledger,
    quiet: bool,
) -> anyhow::Result<LoadedRun> {
    let summary: Summary = reports::summarize(meta, ledger);
    reports::write_run(out, &summary, ledger)
        .with_context(|| format!("cannot write results to {}", out.display()))?;
    let host = serde_json::to_string_pretty(&crate::host::host_record())?;
    std::fs::write(out.join("host.json"), host + "\n")
        .with_context(|| format!("cannot write {}", out.join("host.json").display()))?;
    if !quiet {
        crate::cli::say(&reports::terminal_table(&summary));
    }
    crate::cli::say(&format!("results: {}\n", out.display()));
    Ok(LoadedRun::from_ledger(summary, ledger))
}
