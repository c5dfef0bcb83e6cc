//! Many independent simulations (a sweep, a sensitivity study, several seeds) on the machine's
//! cores: each job is deterministic on its own, and results come back in the order given, so the
//! number of threads never changes an output.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Threads to use: `jobs` if given, else the machine's cores (at least 1).
pub fn threads(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// `f` over `items` on `threads` threads; results in the order of `items`. On an error, items not
/// yet started are skipped and the first error in item order is returned.
pub fn map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(usize, &T) -> anyhow::Result<R> + Sync,
) -> anyhow::Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let out: Mutex<Vec<Option<anyhow::Result<R>>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.min(items.len()).max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() || failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let r = f(i, &items[i]);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    if let Ok(mut o) = out.lock() {
                        o[i] = Some(r);
                    }
                }
            });
        }
    });
    let out = out
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a simulation thread panicked"))?;
    // An error, not the jobs it made the others skip, is what the caller must see.
    let mut res = Vec::with_capacity(out.len());
    let mut skipped = false;
    for r in out {
        match r {
            Some(Ok(v)) => res.push(v),
            Some(Err(e)) => return Err(e),
            None => skipped = true,
        }
    }
    if skipped {
        return Err(anyhow::anyhow!("a simulation was not run"));
    }
    Ok(res)
}

/// The end of a study (`sweep`, `sensitivity`): publishes its folder, names the files written, and
/// unless `quiet` says how many simulations ran on how many threads in how long.
pub fn finish_study(
    folder: &crate::outdir::ResultsFolder,
    written: Vec<std::path::PathBuf>,
    quiet: bool,
    (total, threads, started): (usize, usize, std::time::Instant),
) {
    folder.publish();
    for w in written {
        crate::cli::say(&format!("wrote {}\n", w.display()));
    }
    if !quiet {
        eprintln!(
            "{total} simulations on {threads} threads in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order_and_the_first_error_wins() {
        let items: Vec<u32> = (0..50).collect();
        let out = map(&items, 3, |_, x| Ok(x * 2)).unwrap_or_default();
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        let e = map(&items, 2, |_, x| {
            if *x == 7 {
                Err(anyhow::anyhow!("seven"))
            } else {
                Ok(*x)
            }
        });
        assert!(e.is_err_and(|e| e.to_string().contains("seven")));
    }
}
