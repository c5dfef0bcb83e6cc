//! A run people can watch: live progress on stderr while the scenario plays.
//!
//! - On a terminal: an indicatif bar of scenario time against the horizon, with POA and PRA
//!   delivered / lost so far, the egress rate and the harness's schedule lag, redrawn 5 times a
//!   second.
//! - Not on a terminal (CI logs): one plain line every 10 seconds, and a final one.
//! - Quiet: nothing.
//!
//! The display runs on its own thread and only *reads* a [`ProgressSnapshot`] from the closure it
//! is given, so it works the same for `run` (real clock) and `simulate` (paused tokio clock) and
//! can never slow the hub tasks down beyond the cost of that closure. stdout is left to the
//! summary.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What the display shows, read from the run as often as it redraws.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProgressSnapshot {
    /// Scenario time, ms since the scenario start.
    pub scenario_ms: u64,
    /// POAs the endpoint acknowledged so far.
    pub poa_delivered: u64,
    /// POAs lost so far.
    pub poa_lost: u64,
    /// POAs expected so far (grows as outages pass 3 minutes).
    pub poa_expected: u64,
    /// PRAs acknowledged so far.
    pub pra_delivered: u64,
    /// PRAs lost so far.
    pub pra_lost: u64,
    /// PRAs expected so far.
    pub pra_expected: u64,
    /// Alerts sent to the endpoint per real second, recently.
    pub sent_per_s: f64,
    /// The harness's current schedule lag, ms (how late hub tasks run against their intended time).
    pub lag_ms: u64,
}

impl ProgressSnapshot {
    /// The counts part of a line: `POA 12034/30000 lost 210 | PRA 0/0 lost 0 | 512/s | lag 3 ms`.
    pub fn counts(&self) -> String {
        format!(
            "POA {}/{} lost {} | PRA {}/{} lost {} | {:.0}/s | lag {} ms",
            self.poa_delivered,
            self.poa_expected,
            self.poa_lost,
            self.pra_delivered,
            self.pra_expected,
            self.pra_lost,
            self.sent_per_s,
            self.lag_ms
        )
    }

    /// A full plain log line: `t=12m00s/70m  POA ... `.
    pub fn line(&self, horizon_ms: u64) -> String {
        format!(
            "t={}/{}  {}",
            verdict::duration::format_ms(self.scenario_ms - self.scenario_ms % 1000),
            verdict::duration::format_ms(horizon_ms),
            self.counts()
        )
    }
}

/// How the progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A live bar (stderr is a terminal).
    Bar,
    /// Plain lines at an interval (CI).
    Lines,
    /// Nothing.
    Quiet,
}

impl ProgressMode {
    /// Bar on a terminal, lines otherwise, nothing when quiet.
    pub fn detect(quiet: bool) -> ProgressMode {
        if quiet {
            ProgressMode::Quiet
        } else if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Lines
        }
    }
}

/// The running display; [`finish`](ProgressHandle::finish) stops it.
#[derive(Debug)]
pub struct ProgressHandle {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ProgressHandle {
    /// Stops the display, after a last update (the bar is cleared; in line mode a final line is
    /// printed). Returns once the display thread is gone, so later output is not interleaved.
    pub fn finish(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ProgressHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Interval between plain lines (CI logs).
pub const LINE_INTERVAL: Duration = Duration::from_secs(10);

/// Interval between bar redraws.
pub const BAR_INTERVAL: Duration = Duration::from_millis(200);

/// Starts the display on stderr: a bar on a terminal, lines otherwise, nothing when `quiet`.
pub fn spawn_progress(
    source: impl Fn() -> ProgressSnapshot + Send + 'static,
    horizon_ms: u64,
    quiet: bool,
) -> ProgressHandle {
    spawn_progress_with(
        source,
        horizon_ms,
        ProgressMode::detect(quiet),
        LINE_INTERVAL,
        |l| eprintln!("{l}"),
    )
}

/// [`spawn_progress`] with the mode, the line interval and where plain lines go chosen by the
/// caller (tests; a caller that logs through `tracing`).
pub fn spawn_progress_with(
    source: impl Fn() -> ProgressSnapshot + Send + 'static,
    horizon_ms: u64,
    mode: ProgressMode,
    line_interval: Duration,
    emit: impl Fn(&str) + Send + 'static,
) -> ProgressHandle {
    if mode == ProgressMode::Quiet {
        return ProgressHandle {
            stop: None,
            thread: None,
        };
    }
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("csp-progress".into())
        .spawn(move || match mode {
            ProgressMode::Bar => bar_loop(&source, horizon_ms, &stopped),
            _ => lines_loop(&source, horizon_ms, line_interval, &stopped, &emit),
        })
        .ok();
    ProgressHandle {
        stop: Some(stop),
        thread,
    }
}

fn stopped_within(stopped: &mpsc::Receiver<()>, wait: Duration) -> bool {
    !matches!(
        stopped.recv_timeout(wait),
        Err(mpsc::RecvTimeoutError::Timeout)
    )
}

fn lines_loop(
    source: &dyn Fn() -> ProgressSnapshot,
    horizon_ms: u64,
    interval: Duration,
    stopped: &mpsc::Receiver<()>,
    emit: &dyn Fn(&str),
) {
    while !stopped_within(stopped, interval) {
        emit(&source().line(horizon_ms));
    }
    emit(&format!("{} (end)", source().line(horizon_ms)));
}

fn bar_loop(source: &dyn Fn() -> ProgressSnapshot, horizon_ms: u64, stopped: &mpsc::Receiver<()>) {
    let bar = ProgressBar::with_draw_target(
        Some(horizon_ms.max(1) / 1000),
        ProgressDrawTarget::stderr_with_hz(5),
    );
    let style =
        ProgressStyle::with_template("{prefix:>15} [{bar:30.cyan/blue}] {percent:>3}%  {msg}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    let update = |bar: &ProgressBar| {
        let s = source();
        bar.set_position((s.scenario_ms / 1000).min(horizon_ms / 1000));
        bar.set_prefix(format!(
            "{}/{}",
            verdict::duration::format_ms(s.scenario_ms - s.scenario_ms % 1000),
            verdict::duration::format_ms(horizon_ms)
        ));
        bar.set_message(s.counts());
    };
    while !stopped_within(stopped, BAR_INTERVAL) {
        update(&bar);
    }
    update(&bar);
    bar.finish_and_clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    #[test]
    fn lines_mode_prints_periodically_and_at_the_end() {
        let t = Arc::new(AtomicU64::new(0));
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let (t2, l2) = (t.clone(), lines.clone());
        let h = spawn_progress_with(
            move || ProgressSnapshot {
                scenario_ms: t2.fetch_add(60_000, Ordering::SeqCst) + 60_000,
                poa_delivered: 5,
                poa_expected: 10,
                poa_lost: 1,
                sent_per_s: 12.4,
                lag_ms: 3,
                ..ProgressSnapshot::default()
            },
            70 * 60_000,
            ProgressMode::Lines,
            Duration::from_millis(50),
            move |l| l2.lock().unwrap().push(l.to_string()),
        );
        std::thread::sleep(Duration::from_millis(180));
        h.finish();
        let lines = lines.lock().unwrap();
        assert!(lines.len() >= 3, "{lines:?}");
        assert_eq!(
            lines[0],
            "t=1m/1h10m  POA 5/10 lost 1 | PRA 0/0 lost 0 | 12/s | lag 3 ms"
        );
        assert!(lines.last().unwrap().ends_with("(end)"), "{lines:?}");
    }

    #[test]
    fn quiet_shows_nothing_and_finishes_at_once() {
        let called = Arc::new(AtomicU64::new(0));
        let c2 = called.clone();
        let h = spawn_progress_with(
            move || {
                c2.fetch_add(1, Ordering::SeqCst);
                ProgressSnapshot::default()
            },
            1000,
            ProgressMode::Quiet,
            Duration::from_millis(1),
            |_| panic!("quiet must not print"),
        );
        std::thread::sleep(Duration::from_millis(20));
        h.finish();
        assert_eq!(called.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn bar_mode_runs_and_stops() {
        // Drawn to stderr (hidden when not a terminal); this checks it polls and stops cleanly.
        let called = Arc::new(AtomicU64::new(0));
        let c2 = called.clone();
        let h = spawn_progress_with(
            move || {
                c2.fetch_add(1, Ordering::SeqCst);
                ProgressSnapshot::default()
            },
            60_000,
            ProgressMode::Bar,
            LINE_INTERVAL,
            |_| {},
        );
        std::thread::sleep(Duration::from_millis(450));
        h.finish();
        assert!(called.load(Ordering::SeqCst) >= 2);
    }
}
