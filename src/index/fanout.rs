//! Many small reads (folder stats, snippet files) done fast whether or not they are in
//! the page cache. Warm, each takes microseconds and threads would only add their start
//! cost; cold, each waits on the disk, and a virtual disk serves many waits at once far
//! better than one after another. So the items are done in order until one is slow,
//! and the rest are then spread over threads.

use std::time::{Duration, Instant};

/// An item slower than this came from the disk, not the page cache.
const SLOW: Duration = Duration::from_millis(1);
/// Reads in flight once the disk is involved.
const THREADS: usize = 8;

/// `f` over `items`, results in order.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let mut out = Vec::with_capacity(items.len());
    let mut rest = items;
    while let Some((item, tail)) = rest.split_first() {
        let started = Instant::now();
        out.push(f(item));
        rest = tail;
        if started.elapsed() >= SLOW && rest.len() > 1 {
            break;
        }
    }
    if rest.is_empty() {
        return out;
    }
    let chunk = rest.len().div_ceil(THREADS);
    std::thread::scope(|s| {
        let f = &f;
        let workers: Vec<_> = rest
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        for worker in workers {
            match worker.join() {
                Ok(results) => out.extend(results),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_their_order_fast_or_slow() {
        let items: Vec<u64> = (0..50).collect();
        assert_eq!(
            map(&items, |i| i * 2),
            items.iter().map(|i| i * 2).collect::<Vec<_>>()
        );
        // Slow items: the rest goes to threads, and the order still holds.
        let slow = map(&items, |i| {
            std::thread::sleep(Duration::from_millis(1));
            i * 3
        });
        assert_eq!(slow, items.iter().map(|i| i * 3).collect::<Vec<_>>());
    }
}
