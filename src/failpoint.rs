//! Crash points for tests: with `BATON_FAILPOINT=NAME` (or `NAME:N`, the Nth time) in
//! its environment, a debug build aborts at the point of that name, as a `kill -9`
//! would stop it there. Release builds have none.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Aborts the process if the failpoint `name` is armed and this is its hit.
pub(crate) fn hit(name: &str) {
    if !cfg!(debug_assertions) {
        return;
    }
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    let armed = ARMED.get_or_init(|| {
        let spec = std::env::var("BATON_FAILPOINT").ok()?;
        Some(match spec.split_once(':') {
            Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1)),
            None => (spec, 1),
        })
    });
    let Some((armed, nth)) = armed else { return };
    if armed == name && HITS.fetch_add(1, Ordering::Relaxed) + 1 == *nth {
        eprintln!("baton: failpoint {name} (hit {nth}): aborting");
        std::process::abort();
    }
}
