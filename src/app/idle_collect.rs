//! When a runtime worker thread goes idle, let the allocator give back what
//! that thread freed (sans-IO: the clock is an input, the collection a
//! callback).
//!
//! mimalloc frees pages and returns memory to the OS only while allocating
//! (every few thousand allocations) or when asked (`mi_collect`), and each
//! thread only for its own pages. After a burst, tokio's workers park and
//! nothing allocates: measured at 500 calls/s, 40-75 s after the last call
//! the PBX held 130-245 MiB while heaptrack counted ~5 MB live. So a worker
//! that parks collects its own heap, at most once per `EVERY`: under load a
//! worker parks thousands of times a second, at rest the runtime's timers
//! wake each one every few seconds.
use std::cell::Cell;
use std::time::{Duration, Instant};

/// How often one thread collects at most.
pub const EVERY: Duration = Duration::from_secs(1);

/// Whether a thread that last collected at `last` should collect at `now`.
pub fn due(last: Option<Instant>, now: Instant) -> bool {
    last.is_none_or(|l| now.saturating_duration_since(l) >= EVERY)
}

thread_local! {
    static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// For `tokio::runtime::Builder::on_thread_park`: runs `collect` on this
/// thread when it is due.
pub fn on_park(collect: impl FnOnce()) {
    let now = Instant::now();
    if LAST.with(|l| {
        let go = due(l.get(), now);
        if go {
            l.set(Some(now));
        }
        go
    }) {
        collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_at_first_then_at_most_once_per_interval() {
        let t0 = Instant::now();
        assert!(due(None, t0));
        assert!(!due(Some(t0), t0));
        assert!(!due(Some(t0), t0 + EVERY - Duration::from_millis(1)));
        assert!(due(Some(t0), t0 + EVERY));
        // a clock that went backwards is not a reason to collect
        assert!(!due(Some(t0 + EVERY), t0));
    }

    #[test]
    fn on_park_runs_the_collection_once_per_interval_per_thread() {
        std::thread::spawn(|| {
            let runs = Cell::new(0);
            on_park(|| runs.set(runs.get() + 1));
            on_park(|| runs.set(runs.get() + 1));
            assert_eq!(runs.get(), 1);
        })
        .join()
        .unwrap();
    }
}
