//! Ctrl-C and SIGTERM, one meaning for every command: the first asks the whole command to stop
//! (a run stops driving hubs, drains briefly and writes what it measured, marked incomplete;
//! `compare` runs no further profile; `ingest` closes gracefully); a second one stops the process
//! at once with exit 130, writing nothing more.
//!
//! The signals are caught on a thread of their own ([`install`]) and published on a watch
//! channel, so any runtime (each `run` builds its own) and any plain loop can ask
//! [`requested`] or wait for [`wait`]. Without [`install`] (library use, tests) nothing is
//! caught and [`wait`] never resolves.

use std::sync::OnceLock;
use tokio::sync::watch;

/// The name of the first signal received, once one has been.
type State = Option<&'static str>;

fn channel() -> &'static watch::Sender<State> {
    static CHANNEL: OnceLock<watch::Sender<State>> = OnceLock::new();
    CHANNEL.get_or_init(|| watch::channel(None).0)
}

/// Catches SIGINT and SIGTERM for the rest of the process's life. Call once, before the command
/// starts; a second call only adds another listener thread.
pub fn install() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let name = if sig == SIGTERM { "SIGTERM" } else { "Ctrl-C" };
                let first = channel().send_if_modified(|s| {
                    let first = s.is_none();
                    if first {
                        *s = Some(name);
                    }
                    first
                });
                if first {
                    eprintln!("\n{name}: stopping (again to stop at once, writing nothing more)");
                } else {
                    eprintln!("{name} again: stopping at once");
                    std::process::exit(i32::from(crate::exit::INTERRUPTED));
                }
            }
        })?;
    Ok(())
}

/// The signal that asked the command to stop, if one has.
pub fn requested() -> Option<&'static str> {
    *channel().borrow()
}

/// Resolves when a signal asks the command to stop (at once if one already has), with its name.
pub async fn wait() -> &'static str {
    let mut rx = channel().subscribe();
    match rx.wait_for(Option::is_some).await {
        Ok(s) => s.unwrap_or("signal"),
        // The sender lives in a static and is never dropped.
        Err(_) => std::future::pending().await,
    }
}
