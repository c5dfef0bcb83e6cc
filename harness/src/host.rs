//! The machine a run ran on and the harness's own load while it ran.
//!
//! A load test's numbers mean little without the machine that produced them: [`host_record`]
//! records CPU model, cores, memory, OS and hostname (written as `host.json`), and a
//! [`HealthSampler`] samples the harness process's own CPU% and resident memory once a second on a
//! background thread, so a run can say whether the harness itself was the bottleneck.
//!
//! This module only observes: it never changes the process or the run. If the platform cannot
//! tell something, the field is `null`/`"unknown"` rather than an error — a missing host detail
//! must never fail a load test.

use serde::Serialize;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
use sysinfo::{
    CpuRefreshKind, MemoryRefreshKind, ProcessRefreshKind, ProcessesToUpdate, RefreshKind, System,
};

pub use results::HostRecord;

/// Records the machine. Never fails: what the platform cannot tell is `None`.
pub fn host_record() -> HostRecord {
    let kind = RefreshKind::nothing()
        .with_cpu(CpuRefreshKind::nothing())
        .with_memory(MemoryRefreshKind::nothing().with_ram());
    let sys = System::new_with_specifics(kind).ok();
    let cpu_model = sys
        .as_ref()
        .and_then(|s| s.cpus().first())
        .map(|c| c.brand().trim().to_string())
        .filter(|b| !b.is_empty());
    let logical_cpus = sys
        .as_ref()
        .map(|s| s.cpus().len())
        .filter(|&n| n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(0);
    HostRecord {
        hostname: System::host_name().ok(),
        os: System::long_os_version().ok(),
        kernel: System::kernel_version().ok(),
        arch: System::cpu_arch(),
        cpu_model,
        logical_cpus,
        physical_cores: System::physical_core_count().ok(),
        memory_bytes: sys.as_ref().map_or(0, System::total_memory),
        harness_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// The harness's own load over a run (from [`HealthSampler::finish`]); the run copies it into
/// `summary.json`'s health.
///
/// CPU% is of one core, as `top` shows it: 200% is both cores of a 2-core machine busy.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HealthSummary {
    /// Samples taken (one a second; CPU% needs two, so it has one fewer).
    pub samples: u64,
    /// Largest CPU% of the harness process.
    pub cpu_pct_max: Option<f64>,
    /// Mean CPU% of the harness process.
    pub cpu_pct_mean: Option<f64>,
    /// Peak resident memory, bytes: the process's high-water mark (Linux `VmHWM`, so a peak
    /// between two samples is not missed), or the largest sample where the OS cannot tell.
    pub rss_max_bytes: Option<u64>,
    /// Mean resident memory, bytes.
    pub rss_mean_bytes: Option<u64>,
    /// Logical CPUs, so CPU% can be read against the machine (`cpu_pct_max / logical_cpus`).
    pub logical_cpus: usize,
}

/// Running max/mean of the samples.
#[derive(Debug, Default)]
struct Stats {
    samples: u64,
    cpu_n: u64,
    cpu_sum: f64,
    cpu_max: f64,
    rss_n: u64,
    rss_sum: u128,
    rss_max: u64,
}

impl Stats {
    fn summary(&self, logical_cpus: usize) -> HealthSummary {
        HealthSummary {
            samples: self.samples,
            cpu_pct_max: (self.cpu_n > 0).then_some(round1(self.cpu_max)),
            cpu_pct_mean: (self.cpu_n > 0).then(|| round1(self.cpu_sum / self.cpu_n as f64)),
            rss_max_bytes: (self.rss_n > 0).then_some(self.rss_max),
            rss_mean_bytes: (self.rss_n > 0)
                .then(|| (self.rss_sum / u128::from(self.rss_n)) as u64),
            logical_cpus,
        }
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Samples the harness process's CPU% and RSS on a background thread until [`finish`].
///
/// [`finish`]: HealthSampler::finish
#[derive(Debug)]
pub struct HealthSampler {
    stop: mpsc::Sender<()>,
    /// `None` when no thread could be started: then there are no samples, and no failure.
    thread: Option<JoinHandle<HealthSummary>>,
}

impl HealthSampler {
    /// Starts sampling every second.
    pub fn start() -> HealthSampler {
        HealthSampler::start_every(Duration::from_secs(1))
    }

    /// Starts sampling at the given interval (at least sysinfo's minimum CPU interval, 200 ms).
    pub fn start_every(interval: Duration) -> HealthSampler {
        let interval = interval.max(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("csp-health".into())
            .spawn(move || sample_loop(interval, &stopped))
            .ok();
        HealthSampler { stop, thread }
    }

    /// Stops sampling (takes one last sample) and returns max/mean.
    pub fn finish(self) -> HealthSummary {
        let _ = self.stop.send(());
        self.thread.and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

fn sample_loop(interval: Duration, stopped: &mpsc::Receiver<()>) -> HealthSummary {
    let logical_cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let (Ok(mut sys), Ok(pid)) = (System::new(), sysinfo::get_current_pid()) else {
        return HealthSummary {
            logical_cpus,
            ..HealthSummary::default()
        };
    };
    let what = ProcessRefreshKind::nothing().with_cpu().with_memory();
    let mut stats = Stats::default();
    // One sample; `cpu` false for the first (its CPU reading has nothing to compare with).
    let mut sample = |stats: &mut Stats, cpu: bool| {
        sys.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), true, what);
        if let Some(p) = sys.process(pid) {
            stats.samples += 1;
            stats.rss_n += 1;
            stats.rss_sum += u128::from(p.memory());
            stats.rss_max = stats.rss_max.max(p.memory());
            if cpu {
                let cpu = f64::from(p.cpu_usage());
                stats.cpu_n += 1;
                stats.cpu_sum += cpu;
                stats.cpu_max = stats.cpu_max.max(cpu);
            }
        }
    };
    let mut first = true;
    loop {
        sample(&mut stats, !first);
        first = false;
        match stopped.recv_timeout(interval) {
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            // Stop asked for (or the sampler dropped): done.
            _ => break,
        }
    }
    // A run shorter than the interval would otherwise have only the sample taken at its start;
    // its CPU reading would cover less than sysinfo's minimum interval, so memory only.
    sample(&mut stats, false);
    let mut summary = stats.summary(logical_cpus);
    if let Some(peak) = peak_rss_bytes() {
        summary.rss_max_bytes = Some(summary.rss_max_bytes.unwrap_or(0).max(peak));
    }
    summary
}

/// The process's peak resident memory so far (Linux: `VmHWM` in `/proc/self/status`), bytes.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_record_knows_the_basics() {
        let h = host_record();
        assert!(h.logical_cpus >= 1, "{h:?}");
        assert!(h.memory_bytes > 0, "{h:?}");
        assert!(!h.arch.is_empty());
        let json = serde_json::to_value(&h).unwrap();
        for k in [
            "hostname",
            "os",
            "cpu_model",
            "logical_cpus",
            "memory_bytes",
        ] {
            assert!(json.get(k).is_some(), "{k} missing in {json}");
        }
    }

    #[test]
    fn sampler_sees_its_own_work() {
        let s = HealthSampler::start_every(Duration::from_millis(200));
        // Burn CPU and hold memory for ~0.7 s so there is something to see.
        let buf = vec![1u8; 32 << 20];
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(700) {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(buf[x as usize % buf.len()] as u64);
        }
        std::hint::black_box(x);
        let h = s.finish();
        assert!(h.samples >= 3, "{h:?}");
        assert!(h.rss_max_bytes.unwrap() >= 32 << 20, "{h:?}");
        // Any share of a CPU: on a loaded CI machine a test thread may get far less than one core,
        // so a fixed percentage would test the scheduler, not the sampler.
        assert!(h.cpu_pct_max.unwrap() > 0.0, "{h:?}");
        assert!(h.cpu_pct_mean.unwrap() <= h.cpu_pct_max.unwrap());
        drop(buf);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_peak_between_samples_is_not_missed() {
        let s = HealthSampler::start_every(Duration::from_secs(60));
        // 64 MiB touched and freed long before the next sample would be taken.
        let buf = vec![1u8; 64 << 20];
        std::hint::black_box(&buf);
        drop(buf);
        let h = s.finish();
        assert!(h.rss_max_bytes.unwrap() >= 64 << 20, "{h:?}");
    }
}
