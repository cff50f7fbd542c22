//! Crash points for tests: with `BATON_FAILPOINT=NAME` in its environment, a debug build
//! aborts at the point of that name, as a `kill -9` would stop it there. Release builds
//! have none.

use std::sync::OnceLock;

/// Aborts the process if the failpoint `name` is armed.
pub(crate) fn hit(name: &str) {
    if !cfg!(debug_assertions) {
        return;
    }
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("BATON_FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        eprintln!("baton: failpoint {name}: aborting");
        std::process::abort();
    }
}
