//! Orchestration of `run` and `simulate`: load the profile, start (or reach) the endpoint, drive the
//! virtual hubs through the modelled network, drain the egress, close the ledger, write the results.
//!
//! Both commands end the same way ([`finish_run`]): every expected alert gets its fate, the summary and
//! the ledger are written to the results directory, and a short table is printed.
//!
//! Either can run one shard of a split run ([`shard_of`]: `--shard I/N`, or `--shards N` with the
//! index from a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`): the whole model, this shard's
//! premises' alerts only. A shard is judged on its own health; thresholds are judged on the merge.

use crate::cli::{CommonRunArgs, PayloadArg, RunArgs, SimulateArgs, TransportArg};
use crate::endpoint_url::{EndpointUrl, Scheme};
use crate::outdir::ResultsFolder;
use crate::provenance::Provenance;
use anyhow::{Context, anyhow};
use egress::http::HttpVersion;
use egress::{Egress, EgressConfig, HttpSettings, Protocol};
use ingest::{IngestConfig, IngestServer};
use ledger::{AlertKind, Ledger};
use results::{
    EgressHealth, Health, HealthRecord, LoadedRun, Mode, RealLag, RunMeta, RunRecord, Summary,
};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant as WallInstant;
use virtual_hubs::{DriveConfig, DriveReport, Profile, ScenarioClock, Shard};

/// `csp-harness simulate`: the model on virtual time with an instant-ack sink.
pub fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    // The profile first: a wrong path or a broken profile is named as such.
    let profile = load_profile(&args.common)?;
    seeds_of(&args.common)?;
    let thresholds = thresholds(&args.common)?;
    let run = simulate_profile(&args.common, profile)?;
    conclude(
        &run,
        thresholds.as_ref(),
        args.common.junit.as_deref(),
        args.common.json,
    )
}

/// Simulates one profile and writes its results directory.
pub fn simulate_one(common: &CommonRunArgs) -> anyhow::Result<LoadedRun> {
    simulate_profile(common, load_profile(common)?)
}

/// The model on virtual time cannot stop part-way (it takes seconds): a signal during it is
/// honoured once it has written its results, which are complete.
///
/// With `--seeds`, every seed is simulated on the machine's cores ([`crate::batch`]): the first
/// seed exactly as a run of that seed alone (its ledger, files and figures), the others in memory;
/// their figures go into `summary.json`'s `seeds` section and their curves into the bands.
fn simulate_profile(common: &CommonRunArgs, profile: Profile) -> anyhow::Result<LoadedRun> {
    let shard = shard_of(common)?;
    let seeds = seeds_of(common)?;
    let out = out_dir(common, &profile, shard)?;
    let prov = Provenance::start(&profile, false);
    /// The first seed keeps its ledger (its files are the folder's); the others only their run.
    enum Seeded {
        First(Box<(Ledger, DriveReport)>),
        Other(Box<LoadedRun>),
    }
    let threads = crate::batch::threads(common.jobs);
    let started = WallInstant::now();
    let path = Path::new(profile.source());
    let mut all = crate::batch::map(&seeds, threads, |i, &seed| {
        Ok(if i == 0 {
            Seeded::First(Box::new(virtual_hubs::simulate_shard(
                &profile, seed, shard,
            )?))
        } else {
            Seeded::Other(Box::new(simulate_in_memory(&profile, path, seed)?))
        })
    })?
    .into_iter();
    let Some(Seeded::First(first)) = all.next() else {
        return Err(anyhow!("the first seed's simulation is missing"));
    };
    let (ledger, report) = *first;
    let others: Vec<LoadedRun> = all
        .filter_map(|s| match s {
            Seeded::Other(r) => Some(*r),
            Seeded::First(_) => None,
        })
        .collect();
    if seeds.len() > 1 && !common.quiet {
        eprintln!(
            "{} seeds ({}) on {threads} threads in {:.1} s",
            seeds.len(),
            results::seeds::describe_seeds(&seeds),
            started.elapsed().as_secs_f64()
        );
    }
    let mut meta = meta(common, &profile, Mode::Simulate, 1.0, None, true);
    meta.seed = seeds[0];
    meta.shard = (!shard.is_whole()).then_some(shard);
    meta.health = Some(HealthRecord::Run(Box::new(health(&report, false, 0, None))));
    let mut summary = results::summarize_storm(meta, &ledger, &outage_metas(&profile));
    let summaries: Vec<&Summary> = std::iter::once(&summary)
        .chain(others.iter().map(|r| &r.summary))
        .collect();
    summary.seeds = results::SeedSet::of(&summaries);
    finish_run(&out, summary, prov.finish(), &ledger, common.quiet, others)
}

/// The seeds to simulate: `--seeds`, or `--seed` alone. Several seeds make one run of the whole
/// scenario, so they cannot be split into shards.
fn seeds_of(common: &CommonRunArgs) -> anyhow::Result<Vec<u64>> {
    let seeds = crate::cli::seed_list(common.seed, common.seeds.as_ref())?;
    if seeds.len() > 1 && !shard_of(common)?.is_whole() {
        return Err(anyhow!(
            "--seeds with a shard: a shard is one part of one seed's run; run the seeds whole \
             (without --shard/--shards), or each seed's shards with --seed"
        ));
    }
    Ok(seeds)
}

/// `--seeds` on the real-time path is refused: every seed would take the scenario's whole
/// duration against the endpoint, and the spread the seeds measure is the model's, which
/// `simulate` measures exactly in seconds.
pub fn refuse_seeds_in_real_time(seeds: Option<&crate::cli::SeedsArg>) -> anyhow::Result<()> {
    if seeds.is_some() {
        return Err(anyhow!(
            "--seeds needs virtual time: use `csp-harness simulate --seeds N` (or `compare \
             --simulate --seeds N`); in real time each seed would take the scenario's whole \
             duration, so run them one by one with --seed S and compare the folders with \
             `csp-harness report`"
        ));
    }
    Ok(())
}

/// One simulation in memory, nothing written: the run's figures (as `summary.json` would hold them)
/// and its exact latencies. What `sweep`, `sensitivity` and `--seeds` repeat many times.
pub fn simulate_in_memory(profile: &Profile, path: &Path, seed: u64) -> anyhow::Result<LoadedRun> {
    let (ledger, report) = virtual_hubs::simulate(profile, seed)?;
    let mut m = RunMeta::new(
        profile.name(),
        profile.region(),
        profile.option_label(),
        seed,
        profile.premises(),
    );
    m.profile_path = Some(path.display().to_string());
    m.changes = profile.changes();
    m.mode = Mode::Simulate;
    m.complete = true;
    m.health = Some(HealthRecord::Run(Box::new(health(&report, false, 0, None))));
    let summary = results::summarize_storm(m, &ledger, &outage_metas(profile));
    Ok(LoadedRun::from_ledger(summary, &ledger))
}

/// The profile's outages as the results record them (premises ranges, cells, cut times).
pub fn outage_metas(profile: &Profile) -> Vec<results::OutageMeta> {
    profile
        .population()
        .outages
        .into_iter()
        .map(|o| results::OutageMeta {
            name: o.name,
            first_hub: o.first_hub,
            premises: o.premises,
            cells: o.cells,
            shared_with: o.shared_with,
            cut_at_s: o.cut_us as f64 / 1e6,
        })
        .collect()
}

/// `csp-harness run`: scaled real time against a real endpoint.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    refuse_seeds_in_real_time(args.common.seeds.as_ref())?;
    // The profile first: a wrong path or a broken profile is named as such.
    let profile = load_profile(&args.common)?;
    shard_of(&args.common)?;
    let thresholds = thresholds(&args.common)?;
    let common = args.common.clone();
    if let Some(at) = args.start_at
        && let Some(sig) = wait_for_start(at)
    {
        eprintln!("{sig}: stopped before the start time; nothing was run");
        return Ok(crate::exit::code(crate::exit::INTERRUPTED));
    }
    let run = run_profile(args, profile)?;
    conclude(
        &run,
        thresholds.as_ref(),
        common.junit.as_deref(),
        common.json,
    )
}

/// Sleeps until `at` (`--start-at`); a signal ends the wait early and is returned. A start time
/// already past is said plainly: this shard's load is then offset from the others'.
fn wait_for_start(at: chrono::DateTime<chrono::Utc>) -> Option<&'static str> {
    let late = chrono::Utc::now() - at;
    if late > chrono::TimeDelta::seconds(1) {
        eprintln!(
            "warning: --start-at {at} was {:.1} s ago: this run starts now, that much later than \
             planned (the other shards of the run drive their load that much earlier)",
            late.num_milliseconds() as f64 / 1000.0
        );
        return None;
    }
    eprintln!("waiting for the start time {at}");
    while chrono::Utc::now() < at {
        if let Some(sig) = crate::interrupt::requested() {
            return Some(sig);
        }
        let left = (at - chrono::Utc::now()).to_std().unwrap_or_default();
        std::thread::sleep(left.min(std::time::Duration::from_millis(100)));
    }
    None
}

/// The share of the premises this process runs: `--shard I/N`; else `--shards N` (or
/// `CSP_SHARDS`) with the index from `JOB_COMPLETION_INDEX`; else the whole run.
pub fn shard_of(common: &CommonRunArgs) -> anyhow::Result<Shard> {
    shard_from(
        common.shard,
        common.shards,
        std::env::var("JOB_COMPLETION_INDEX").ok().as_deref(),
    )
}

fn shard_from(
    shard: Option<Shard>,
    shards: Option<u32>,
    job_index: Option<&str>,
) -> anyhow::Result<Shard> {
    match (shard, shards, job_index) {
        (Some(s), _, _) => Ok(s),
        (None, Some(n), Some(i)) => {
            let i: u32 = i.trim().parse().map_err(|_| {
                anyhow!("JOB_COMPLETION_INDEX={i:?} is not a shard index (a whole number)")
            })?;
            Shard::new(i, n).map_err(|e| anyhow!("--shards {n} with JOB_COMPLETION_INDEX={i}: {e}"))
        }
        (None, Some(n), None) => Err(anyhow!(
            "--shards {n} (or CSP_SHARDS) needs this process's index: JOB_COMPLETION_INDEX, which \
             a Kubernetes Indexed Job sets, or --shard I/{n}"
        )),
        (None, None, _) => Ok(Shard::WHOLE),
    }
}

/// The thresholds a run is checked against, read before the run so a bad file fails fast (exit 2).
/// A shard is one part of a run: its thresholds are judged on the merge.
fn thresholds(common: &CommonRunArgs) -> anyhow::Result<Option<verdict::Thresholds>> {
    if !shard_of(common)?.is_whole() {
        if common.thresholds.is_some() {
            return Err(anyhow!(
                "--thresholds with a shard: a shard holds part of the run, so thresholds are \
                 judged on the merged results (csp-harness merge SHARD... --out DIR --thresholds \
                 FILE)"
            ));
        }
        return Ok(None);
    }
    crate::check::thresholds_for(&common.profile, common.thresholds.as_deref())
}

/// The end of a finished run: `report.html` with its verdict, then [`crate::check::conclude`]
/// (verdict table, JUnit, `--json`, final warnings and the exit code: 130 interrupted, 3 lagged,
/// 1 breached, 0 pass).
pub fn conclude(
    run: &LoadedRun,
    thresholds: Option<&verdict::Thresholds>,
    junit: Option<&Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let verdicts: Vec<verdict::Verdict> =
        crate::check::run_verdict(run, thresholds, junit.is_some())
            .into_iter()
            .collect();
    if let Some(dir) = &run.dir {
        let html = reports::write_html(dir, &[run], &verdicts)
            .with_context(|| format!("cannot write the report in {}", dir.display()))?;
        crate::cli::say(&format!("report: {}\n", html.display()));
    }
    crate::check::conclude(&[run], &verdicts, junit, json)
}

/// The harness's own health for the summary: its schedule lag (and whether that lag was far enough
/// to distort the curves), and the egress's counters on the real path.
fn health(
    report: &DriveReport,
    lagged: bool,
    lag_limit_ms: u64,
    egress: Option<EgressHealth>,
) -> Health {
    Health {
        real_lag_ms: egress.is_some().then_some(RealLag {
            max: report.max_lag_real_ms,
            p99: report.p99_lag_real_ms,
            p999: report.p999_lag_real_ms,
            realtime_scheduling: report.hand_over_realtime,
        }),
        egress,
        lag_limit_ms: (lag_limit_ms > 0).then_some(lag_limit_ms),
        lagged,
        max_lag_ms: report.max_lag_ms,
        p999_lag_ms: report.p999_lag_ms,
        p99_lag_ms: report.p99_lag_ms,
    }
}

/// The egress's counters as the results record holds them.
fn egress_health(s: &egress::EgressStats) -> EgressHealth {
    EgressHealth {
        backpressure: s.backpressure,
        connect_failures: s.connect_failures,
        connections_lost: s.connections_lost,
        connects: s.connects,
        delivered: s.delivered,
        duplicate_acks: s.duplicate_acks,
        endpoint_duplicates: s.endpoint_duplicates,
        expired: s.expired,
        fatal: s.fatal.clone(),
        frames_sent: s.frames_sent,
        http_status: s.http_status.clone(),
        last_error: s.last_error.clone(),
        ledger_errors: s.ledger_errors,
        pending_at_drain: s.pending_at_drain,
        queue_overflow: s.queue_overflow,
        rejected: s.rejected,
        rejected_by: s.rejected_by.clone(),
        resent: s.resent,
        retried: s.retried,
        send_lag_max_ms: s.send_lag_max_ms,
        send_lag_p99_ms: s.send_lag_p99_ms,
        send_rate_per_s: s.send_rate_per_s,
        stream_errors: s.stream_errors,
        submitted: s.submitted,
        submitted_after_drain: s.submitted_after_drain,
        transport: s.transport.clone(),
        unreachable_at_drain: s.unreachable_at_drain,
        unsolicited_replies: s.unsolicited_replies,
    }
}

/// Runs one profile against the endpoint and writes its results directory.
pub fn run_one(args: RunArgs) -> anyhow::Result<LoadedRun> {
    let profile = load_profile(&args.common)?;
    run_profile(args, profile)
}

fn run_profile(args: RunArgs, profile: Profile) -> anyhow::Result<LoadedRun> {
    if profile.summarises() {
        return Err(anyhow!(
            "profile {} summarises alerts (the hypothetical `summarise` stage option): the \
             real-time path cannot carry summary alerts yet (csp-alert and the HTTP payloads have \
             no count field); run it with `csp-harness simulate`",
            profile.name()
        ));
    }
    if let (Some(url), None, false) = (&args.endpoint, &args.ca, args.insecure_skip_verify) {
        return Err(anyhow!(
            "--endpoint {url} needs --ca PEM: the endpoint's certificate must be verified \
             (or, for a trial only, --insecure-skip-verify)"
        ));
    }
    let metrics = args
        .metrics
        .metrics_listen
        .map(crate::metrics::bind)
        .transpose()?;
    let profile = Arc::new(profile);
    let out = out_dir(&args.common, &profile, shard_of(&args.common)?)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run_async(args, profile, out, metrics))
}

async fn run_async(
    args: RunArgs,
    profile: Arc<Profile>,
    out: ResultsFolder,
    metrics: Option<std::net::TcpListener>,
) -> anyhow::Result<LoadedRun> {
    let mut prov = Provenance::start(&profile, args.insecure_skip_verify);
    let wants_http = http_wanted(&args);
    // Bodies and headers are checked before anything starts: a bad template or a missing
    // environment variable is a usage error, not a run.
    let http_parts = if wants_http {
        Some(http_parts(&args)?)
    } else {
        None
    };
    // The endpoint: the user's, or the reference one on loopback with a pinned self-signed cert.
    let (embedded, target) = match &args.endpoint {
        Some(url) => {
            let ca = args.ca.clone().unwrap_or_default();
            let addr = url
                .resolve()
                .with_context(|| format!("endpoint {url}: cannot resolve host"))?;
            let name = args.server_name.clone().unwrap_or_else(|| url.host.clone());
            (None, (addr, name, ca, url.clone(), url.to_string()))
        }
        None => {
            let server = start_embedded(out.path(), wants_http).await?;
            let ca = server.cert_pem_path().to_path_buf();
            let (addr, url) = match server.http_addr() {
                Some(addr) => {
                    let scheme = if args.http3 { "h3" } else { "https" };
                    (addr, format!("{scheme}://{addr}/alerts"))
                }
                None => (
                    server.local_addr(),
                    format!("quic://{}", server.local_addr()),
                ),
            };
            let parsed: EndpointUrl = url
                .parse()
                .with_context(|| format!("the embedded endpoint's URL {url}"))?;
            let label = format!("{url} (embedded reference endpoint)");
            (
                Some(server),
                (addr, "localhost".to_string(), ca, parsed, label),
            )
        }
    };
    let (addr, server_name, ca_pem, url, endpoint_label) = target;

    let ledger = Arc::new(Mutex::new(Ledger::new(profile.premises())));
    let clock = ScenarioClock::start(args.time_scale);
    let epoch = std::time::SystemTime::now();
    let run_id = match args.run_id {
        Some(id) => id,
        None => new_run_id()?,
    };
    if !args.common.quiet {
        eprintln!("run id {run_id}");
    }
    prov.set_run_id(run_id.to_string());
    let counters = Arc::new(virtual_hubs::Progress::default());
    // Bound before anything started (run_profile); served from the moment there is a ledger.
    let live = match metrics {
        Some(listener) => {
            let source = Arc::new(crate::metrics::RunSource::new(
                ledger.clone(),
                counters.clone(),
                clock,
                profile.horizon_ms(),
                crate::metrics::RunIdentity {
                    profile: profile.name().to_string(),
                    region: profile.region().as_str().to_string(),
                    option: profile.option_label(),
                    mode: "run".into(),
                    run_id: run_id.to_string(),
                },
            ));
            let server = crate::metrics::serve(listener, source.clone())?;
            // Always said, even with --quiet: with port 0 it is the only way to learn the port.
            eprintln!("metrics: {}", server.url());
            Some((source, server))
        }
        None => None,
    };
    let protocol = match http_parts {
        None => Protocol::CspAlert,
        Some((format, headers)) => Protocol::Http(Box::new(HttpSettings {
            uri: url
                .http_uri()
                .with_context(|| format!("endpoint {url} is not a usable HTTP URL"))?,
            tls: url.scheme != Scheme::Http,
            version: http_version(&args, &url),
            accept: if args.accept.is_empty() {
                egress::http::DEFAULT_ACCEPT.to_vec()
            } else {
                args.accept.clone()
            },
            headers,
            format,
            epoch,
            request_timeout: std::time::Duration::from_secs(args.request_timeout_s),
        })),
    };
    let http1 = matches!(&protocol, Protocol::Http(h) if h.version == HttpVersion::Http1
        || (h.version == HttpVersion::Auto && !h.tls));
    let is_http = matches!(protocol, Protocol::Http(_));
    let defaults = EgressConfig::new(addr, server_name, ca_pem);
    let egress_cfg = EgressConfig {
        run_id,
        connections: usize::from(args.connections.unwrap_or(if http1 { 32 } else { 4 })),
        streams_per_connection: args.streams.map_or(
            if is_http {
                1
            } else {
                defaults.streams_per_connection
            },
            usize::from,
        ),
        max_in_flight_per_stream: args.in_flight.map_or(
            if is_http {
                100
            } else {
                defaults.max_in_flight_per_stream
            },
            usize::from,
        ),
        client_cert: args.client_cert.clone(),
        client_key: args.client_key.clone(),
        auth_token: match &args.token_file {
            Some(f) => Some(crate::token::read_token_file(f, "token")?),
            None => args.token.clone(),
        },
        protocol,
        ..defaults
    };
    let idle = args.idle_timeout.map_or_else(
        || egress::scaled_idle_timeout(args.time_scale, egress_cfg.alert_deadline_ms),
        std::time::Duration::from_secs_f64,
    );
    let mut egress_cfg = egress_cfg.with_idle_timeout(idle);
    if args.insecure_skip_verify {
        eprintln!(
            "WARNING: --insecure-skip-verify: the endpoint's certificate is NOT verified; \
             anyone on the path can read and alter the alerts"
        );
        egress_cfg.trust = tls::TrustSource::InsecureSkipVerify;
    }
    let egress = Egress::start(egress_cfg, clock, ledger.clone())
        .await
        .with_context(|| format!("endpoint {endpoint_label} is unreachable"))?;
    if let Some((source, _)) = &live {
        source.set_egress(egress.probe());
    }

    let progress = crate::progress::spawn_progress(
        snapshot_source(ledger.clone(), counters.clone(), clock),
        profile.horizon_ms(),
        args.common.quiet,
    );
    let shard = shard_of(&args.common)?;
    let mut cfg = DriveConfig::new(profile.clone(), args.common.seed, clock);
    cfg.progress = Some(counters);
    cfg.shard = shard;
    let mut incomplete: Option<String> = None;
    let fatal = egress.fatal_signal();
    let report = tokio::select! {
        r = virtual_hubs::drive(cfg, egress.sink(), ledger.clone()) => r?,
        sig = crate::interrupt::wait() => {
            eprintln!("{sig}: writing what was measured, marked incomplete");
            incomplete = Some(format!("the run was interrupted ({sig})"));
            DriveReport::default()
        }
        why = fatal => {
            eprintln!("error: endpoint {endpoint_label} refused this client's credentials mid-run: {why}");
            DriveReport::default()
        }
    };
    let mut drain = clock.real_duration((args.drain_s * 1000.0) as u64);
    if incomplete.is_some() {
        // Whoever stopped the run wants it to stop: a short drain, then the results.
        drain = drain.min(std::time::Duration::from_secs(5));
    }
    let egress_stats = egress.drain(drain).await;
    if let Some(why) = &egress_stats.fatal {
        incomplete = Some(format!(
            "endpoint {endpoint_label} refused this client's credentials mid-run ({why}); \
             nothing more was sent"
        ));
    }
    let complete = incomplete.is_none();
    progress.finish();
    warn_about_endpoint(&endpoint_label, &egress_stats);
    // The harness's lag is the hubs' schedule lag only. The egress's send lag (hub exit to first
    // send) adds any time alerts then waited for a dead or slow endpoint: that excess is the
    // endpoint's, reported apart and never blamed on the harness.
    let (lagged, endpoint_wait_p99) = judge_lag(
        report.p99_lag_ms,
        egress_stats.send_lag_p99_ms,
        args.max_lag_ms,
    );
    if !args.common.quiet || lagged {
        eprintln!(
            "harness schedule lag: p99 {} ms, max {} ms (limit {} ms, scenario time); egress send \
             lag (hub exit to first send, including the schedule lag): p99 {} ms, max {} ms",
            report.p99_lag_ms,
            report.max_lag_ms,
            args.max_lag_ms,
            egress_stats.send_lag_p99_ms,
            egress_stats.send_lag_max_ms
        );
    }
    if endpoint_wait_p99 > args.max_lag_ms {
        eprintln!(
            "warning: alerts waited for endpoint {endpoint_label}: the egress's p99 send lag is \
             {endpoint_wait_p99} scenario ms beyond the harness's own; the endpoint's delay (in its \
             curves), not the harness's"
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
        Mode::Run,
        args.time_scale,
        Some(endpoint_label),
        complete,
    );
    meta.endpoint_duplicates = Some(egress_stats.endpoint_duplicates);
    meta.incomplete_reason = incomplete;
    meta.shard = (!shard.is_whole()).then_some(shard);
    meta.insecure_skip_verify = args.insecure_skip_verify;
    meta.health = Some(HealthRecord::Run(Box::new(health(
        &report,
        lagged,
        args.max_lag_ms,
        Some(egress_health(&egress_stats)),
    ))));
    let summary = results::summarize_storm(meta, &ledger, &outage_metas(&profile));
    let run = finish_run(
        &out,
        summary,
        prov.finish(),
        &ledger,
        args.common.quiet,
        Vec::new(),
    )?;
    if let Some((source, server)) = live {
        source.finished(end_ms);
        hold_metrics(&server, args.metrics.metrics_hold_s).await;
        server.shutdown().await;
    }
    Ok(run)
}

/// `--metrics-hold-s`: the final values stay on `/metrics` for a scraper, until the time is up or
/// a signal asks the command to stop.
async fn hold_metrics(server: &telemetry::MetricsServer, hold_s: u64) {
    if hold_s == 0 {
        return;
    }
    eprintln!(
        "metrics: final values on {} for {hold_s} s (Ctrl-C to stop now)",
        server.url()
    );
    tokio::select! {
        _ = tokio::time::sleep(std::time::Duration::from_secs(hold_s)) => {}
        _ = crate::interrupt::wait() => {}
    }
}

/// Is the run lagged (the hubs' p99 schedule lag beyond `limit_ms`)? And how much longer, at p99,
/// alerts then waited in the egress for the endpoint (its send lag beyond the hubs' lag): the
/// endpoint's delay, which never makes the harness lagged.
fn judge_lag(hub_p99_ms: u64, send_p99_ms: u64, limit_ms: u64) -> (bool, u64) {
    (
        hub_p99_ms > limit_ms,
        send_p99_ms.saturating_sub(hub_p99_ms),
    )
}

/// Says plainly on stderr when the endpoint, not the modelled network, cost alerts.
fn warn_about_endpoint(endpoint: &str, s: &egress::EgressStats) {
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

async fn start_embedded(out: &Path, http: bool) -> anyhow::Result<IngestServer> {
    let rd = results::layout::ResultsDir::new(out);
    let mut cfg = IngestConfig::embedded(rd.endpoint_cert_pem(), rd.endpoint_ledger_csv());
    if http {
        cfg.http_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    ingest::start(cfg)
        .await
        .context("cannot start the embedded reference endpoint on loopback")
}

/// A fresh random run id: the endpoint de-duplicates by (run, alert id), so ids from two runs
/// against one long-lived endpoint never collide.
fn new_run_id() -> anyhow::Result<egress::RunId> {
    use rand::TryRngCore as _;
    let mut id = [0u8; wire::RUN_ID_LEN];
    rand::rngs::OsRng
        .try_fill_bytes(&mut id)
        .context("cannot draw a random run id from the operating system")?;
    Ok(egress::RunId(id))
}

/// Whether the run speaks HTTP: an HTTP URL, `--transport http`, or an HTTP-only flag.
fn http_wanted(args: &RunArgs) -> bool {
    match &args.endpoint {
        Some(url) => url.scheme != Scheme::Quic,
        None => args.transport == TransportArg::Http || args.http3 || args.http2 || args.http1_1,
    }
}

/// The HTTP version the flags and the URL ask for.
fn http_version(args: &RunArgs, url: &EndpointUrl) -> HttpVersion {
    if args.http3 || url.scheme == Scheme::H3 {
        HttpVersion::Http3
    } else if args.http2 {
        HttpVersion::Http2
    } else if args.http1_1 {
        HttpVersion::Http1
    } else {
        HttpVersion::Auto
    }
}

/// The body format and the extra headers, read and checked up front.
fn http_parts(
    args: &RunArgs,
) -> anyhow::Result<(
    egress::payload::Format,
    Vec<(http::HeaderName, http::HeaderValue)>,
)> {
    use egress::payload::{Format, Template, parse_header};
    let format = match (&args.payload_template, args.payload) {
        (Some(path), _) => Format::Template(Template::load(path)?),
        (None, PayloadArg::Json) => Format::Json,
        (None, PayloadArg::Duis) => Format::Duis,
    };
    let headers = args
        .headers
        .iter()
        .map(|h| parse_header(h, |k| std::env::var(k).ok()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((format, headers))
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

/// The profile (a file, or a built-in one) with any `--changes` applied on top of its own.
pub fn load_profile(common: &CommonRunArgs) -> anyhow::Result<Profile> {
    crate::profiles::load(&common.profile, &common.changes)
}

/// The run's results folder ([`crate::outdir`]): `--out`, or a new one under
/// `out/<profile>[+<changes>]/` (a shard's under `out/<profile>[+<changes>].shard-I-of-N/`, apart
/// from whole runs).
fn out_dir(
    common: &CommonRunArgs,
    profile: &Profile,
    shard: Shard,
) -> anyhow::Result<ResultsFolder> {
    let mut series = crate::outdir::series_name(profile.name(), &common.changes);
    if !shard.is_whole() {
        series.push_str(&format!(".shard-{}-of-{}", shard.index, shard.count));
    }
    ResultsFolder::create(
        common.out.as_deref(),
        &Path::new("out").join(series),
        common.force,
    )
}

fn meta(
    common: &CommonRunArgs,
    profile: &Profile,
    mode: Mode,
    time_scale: f64,
    endpoint: Option<String>,
    complete: bool,
) -> RunMeta {
    let mut m = RunMeta::new(
        profile.name(),
        profile.region(),
        profile.option_label(),
        common.seed,
        profile.premises(),
    );
    m.profile_path = Some(profile.source().to_string());
    m.changes = profile.changes();
    m.time_scale = time_scale;
    m.mode = mode;
    m.endpoint = endpoint;
    m.complete = complete;
    m
}

/// Writes the results directory (data, `run.json`, `host.json`, tables and graphs) and prints the
/// summary table; `report.html` follows in [`conclude`], once the verdict is known.
pub fn finish_run(
    folder: &ResultsFolder,
    summary: Summary,
    record: RunRecord,
    ledger: &Ledger,
    quiet: bool,
    seed_runs: Vec<LoadedRun>,
) -> anyhow::Result<LoadedRun> {
    let out = folder.path();
    let cannot = || format!("cannot write results to {}", out.display());
    results::write_data(out, &summary, ledger).with_context(cannot)?;
    let rd = results::layout::ResultsDir::new(out);
    results::write_json(&rd.run_json(), &record, "run record").with_context(cannot)?;
    results::write_json(&rd.host_json(), &record.host, "host record").with_context(cannot)?;
    let run = LoadedRun {
        dir: Some(out.to_path_buf()),
        record: Some(record),
        seed_runs,
        ..LoadedRun::from_ledger(summary, ledger)
    };
    reports::write_run_reports(out, &run).with_context(cannot)?;
    if !quiet {
        crate::cli::say(&reports::terminal_table(&run.summary));
    }
    crate::cli::say(&format!("results: {}\n", out.display()));
    folder.publish();
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::{Shard, judge_lag, shard_from};

    #[test]
    fn the_shard_comes_from_the_flag_or_the_indexed_job() {
        let s = |i, n| Shard::new(i, n).unwrap();
        assert_eq!(shard_from(None, None, None).unwrap(), Shard::WHOLE);
        assert_eq!(
            shard_from(None, None, Some("3")).unwrap(),
            Shard::WHOLE,
            "an index without a count splits nothing"
        );
        assert_eq!(shard_from(None, Some(4), Some("3")).unwrap(), s(3, 4));
        assert_eq!(
            shard_from(Some(s(1, 2)), Some(4), Some("3")).unwrap(),
            s(1, 2)
        );
        let e = shard_from(None, Some(4), None).unwrap_err().to_string();
        assert!(e.contains("JOB_COMPLETION_INDEX"), "{e}");
        let e = shard_from(None, Some(4), Some("4"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not below the shard count 4"), "{e}");
        assert!(shard_from(None, Some(4), Some("x")).is_err());
    }

    #[test]
    fn waiting_for_the_endpoint_is_not_the_harness_lagging() {
        // A dead endpoint: alerts waited 10 minutes in the egress, the hubs kept their schedule.
        assert_eq!(judge_lag(40, 600_000, 5_000), (false, 599_960));
        // The harness itself fell behind: lagged, whatever the endpoint did.
        assert_eq!(judge_lag(9_000, 9_100, 5_000), (true, 100));
        assert_eq!(judge_lag(5_000, 4_000, 5_000), (false, 0));
    }
}
