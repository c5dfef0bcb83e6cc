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
    simulate_one(&args.common)?;
    Ok(ExitCode::SUCCESS)
}

/// Simulates one profile and writes its results directory.
pub fn simulate_one(common: &CommonRunArgs) -> anyhow::Result<LoadedRun> {
    let profile = Profile::load(&common.profile)?;
    let out = out_dir(common, &profile);
    let wall = WallInstant::now();
    let (ledger, report) = virtual_hubs::simulate(&profile, common.seed);
    let meta = meta(common, &profile, "simulate", 1.0, None, wall, true, &report);
    finish_run(&out, meta, &ledger, common.quiet)
}

/// `csp-harness run`: scaled real time against a real endpoint.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    run_one(args)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs one profile against the endpoint and writes its results directory.
pub fn run_one(args: RunArgs) -> anyhow::Result<LoadedRun> {
    if let (Some(url), None) = (&args.endpoint, &args.ca) {
        return Err(anyhow!(
            "--endpoint {url} needs --ca PEM: the endpoint's certificate must be verified"
        ));
    }
    let profile = Arc::new(Profile::load(&args.common.profile)?);
    let out = out_dir(&args.common, &profile);
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create results directory {}", out.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run_async(args, profile, out))
}

async fn run_async(args: RunArgs, profile: Arc<Profile>, out: PathBuf) -> anyhow::Result<LoadedRun> {
    let wall = WallInstant::now();
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
    let egress_cfg = EgressConfig {
        connections: usize::from(args.connections),
        ..EgressConfig::new(addr, server_name, ca_pem)
    };
    let egress = Egress::start(egress_cfg, clock, ledger.clone())
        .await
        .with_context(|| format!("endpoint {endpoint_label} is unreachable"))?;

    let progress = (!args.common.quiet).then(|| spawn_progress(ledger.clone(), clock, &profile));
    let cfg = DriveConfig::new(profile.clone(), args.common.seed, clock);
    let mut complete = true;
    let report = tokio::select! {
        r = virtual_hubs::drive(cfg, egress.sink(), ledger.clone()) => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted: writing what was measured, marked incomplete");
            complete = false;
            DriveReport::default()
        }
    };
    let drain = clock.real_duration((args.drain_s.max(0.0) * 1000.0) as u64);
    let egress_stats = egress.drain(drain).await;
    warn_about_endpoint(&endpoint_label, &egress_stats);
    if let Some(p) = progress {
        p.abort();
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
    }
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
    let cfg = IngestConfig::embedded(out.join("endpoint-cert.pem"), out.join("endpoint-ledger.csv"));
    crate::ingest::start(cfg)
        .await
        .context("cannot start the embedded reference endpoint on loopback")
}

fn lock(l: &Arc<Mutex<Ledger>>) -> std::sync::MutexGuard<'_, Ledger> {
    l.lock().unwrap_or_else(|p| p.into_inner())
}

/// Prints a progress line every few real seconds (to stderr, so stdout stays the summary).
fn spawn_progress(
    ledger: Arc<Mutex<Ledger>>,
    clock: ScenarioClock,
    profile: &Profile,
) -> tokio::task::JoinHandle<()> {
    let horizon_s = profile.horizon_ms() / 1000;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        tick.tick().await;
        loop {
            tick.tick().await;
            let line = {
                let l = lock(&ledger);
                let part = |k: AlertKind| {
                    let lost: u64 = l.lost_by_cause(k).values().sum();
                    format!("{k} {}/{} lost {lost}", l.delivered(k), l.expected(k))
                };
                format!(
                    "t={}s/{}s  {}  {}",
                    clock.now_ms() / 1000,
                    horizon_s,
                    part(AlertKind::Poa),
                    part(AlertKind::Pra)
                )
            };
            eprintln!("{line}");
        }
    })
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
fn finish_run(out: &Path, meta: RunMeta, ledger: &Ledger, quiet: bool) -> anyhow::Result<LoadedRun> {
    let summary: Summary = reports::summarize(meta, ledger);
    reports::write_run(out, &summary, ledger)
        .with_context(|| format!("cannot write results to {}", out.display()))?;
    if !quiet {
        print!("{}", reports::terminal_table(&summary));
    }
    println!("results: {}", out.display());
    Ok(LoadedRun::from_ledger(summary, ledger))
}
