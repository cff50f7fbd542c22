//! A bound on the bytes of documents waiting for tantivy's indexing threads.
//!
//! tantivy's queue holds a fixed number of documents whatever their size, and reading
//! files is faster than indexing them, so a rebuild over large files held most of them
//! in memory at once. Each document carries a [`Permit`] for its
//! bytes, taken before it is queued and given back when an indexing thread takes the
//! document up, so what waits in the queue stays under a limit.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use tantivy::TantivyDocument;
use tantivy::schema::document::Document;

/// Bytes of queued documents before the reader waits.
pub(crate) const IN_FLIGHT_BYTES: u64 = 64 * 1024 * 1024;
/// A wait that sees no document taken up for this long gives up: the indexing threads
/// are gone, and the writer's own error will say why.
const GIVE_UP_AFTER: Duration = Duration::from_secs(10);

/// The count is an atomic, so taking and giving back bytes costs no lock and no system
/// call; the lock and condition variable are used only while a reader waits. (With a
/// mutex and `notify_all` on every release, a rebuild made a futex call per document.)
#[derive(Debug)]
pub(crate) struct InFlight {
    used: AtomicU64,
    /// Readers waiting for bytes: a release wakes them only when there are some.
    waiting: AtomicUsize,
    lock: Mutex<()>,
    taken_up: Condvar,
    limit: u64,
}

/// Bytes counted as in flight until dropped.
#[derive(Debug)]
pub(crate) struct Permit {
    pool: Arc<InFlight>,
    bytes: u64,
}

impl InFlight {
    pub(crate) fn new(limit: u64) -> Arc<InFlight> {
        Arc::new(InFlight {
            used: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            lock: Mutex::new(()),
            taken_up: Condvar::new(),
            limit,
        })
    }

    /// Waits until `bytes` more fit under the limit (a document larger than the limit
    /// goes when nothing else is in flight), then counts them.
    pub(crate) fn acquire(self: &Arc<Self>, bytes: u64) -> Permit {
        if !self.try_take(bytes) {
            let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            // Announced before the check under the lock: a release either comes before
            // the check (which then sees its bytes gone) or sees a waiter and notifies,
            // which it can only do once this thread sleeps and lets go of the lock.
            self.waiting.fetch_add(1, SeqCst);
            while !self.try_take(bytes) {
                let (g, wait) = self
                    .taken_up
                    .wait_timeout(guard, GIVE_UP_AFTER)
                    .unwrap_or_else(PoisonError::into_inner);
                guard = g;
                if wait.timed_out() {
                    self.used.fetch_add(bytes, SeqCst);
                    break;
                }
            }
            self.waiting.fetch_sub(1, SeqCst);
        }
        Permit {
            pool: self.clone(),
            bytes,
        }
    }

    /// Counts `bytes` if they fit.
    fn try_take(&self, bytes: u64) -> bool {
        let mut used = self.used.load(SeqCst);
        loop {
            if used > 0 && used + bytes > self.limit {
                return false;
            }
            match self
                .used
                .compare_exchange_weak(used, used + bytes, SeqCst, SeqCst)
            {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    #[cfg(test)]
    fn in_flight(&self) -> u64 {
        self.used.load(SeqCst)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let pool = &self.pool;
        pool.used.fetch_sub(self.bytes, SeqCst);
        if pool.waiting.load(SeqCst) > 0 {
            let _guard = pool.lock.lock().unwrap_or_else(PoisonError::into_inner);
            pool.taken_up.notify_all();
        }
    }
}

/// The document baton hands tantivy: a `TantivyDocument` with the permit for its bytes,
/// given back when the indexer takes the document up.
pub(crate) struct Doc {
    doc: TantivyDocument,
    _permit: Permit,
}

impl Doc {
    pub(crate) fn new(doc: TantivyDocument, permit: Permit) -> Doc {
        Doc {
            doc,
            _permit: permit,
        }
    }
}

impl Document for Doc {
    type Value<'a>
        = <TantivyDocument as Document>::Value<'a>
    where
        Self: 'a;
    type FieldsValuesIter<'a>
        = <TantivyDocument as Document>::FieldsValuesIter<'a>
    where
        Self: 'a;

    fn iter_fields_and_values(&self) -> Self::FieldsValuesIter<'_> {
        self.doc.iter_fields_and_values()
    }

    /// The indexer calls this once per document as it starts on it: the permit ends here.
    fn into_tantivy_document(self) -> TantivyDocument {
        self.doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_waits_until_the_indexer_takes_documents_up() {
        let pool = InFlight::new(100);
        let first = pool.acquire(60);
        let second = pool.acquire(40);
        assert_eq!(pool.in_flight(), 100);
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let permit = pool.acquire(30);
                tx.send(()).unwrap();
                permit
            })
        };
        // Full: the third waits (it does not return while nothing is given back).
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        drop(first);
        rx.recv_timeout(Duration::from_secs(5))
            .expect("the waiter gets in once bytes are given back");
        let third = waiter.join().unwrap();
        assert_eq!(pool.in_flight(), 70);
        drop((second, third));
        assert_eq!(pool.in_flight(), 0);
        // Larger than the limit: goes when nothing else is in flight.
        let big = pool.acquire(500);
        assert_eq!(pool.in_flight(), 500);
        drop(big);
    }

    #[test]
    fn readers_and_indexers_at_once_never_exceed_the_limit_nor_hang() {
        let pool = InFlight::new(1_000);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Permit>(64);
        let rx = Arc::new(Mutex::new(rx));
        let indexers: Vec<_> = (0..3)
            .map(|_| {
                let (rx, pool) = (rx.clone(), pool.clone());
                std::thread::spawn(move || {
                    loop {
                        let Ok(permit) = rx.lock().unwrap().recv() else {
                            return;
                        };
                        assert!(pool.in_flight() <= 1_000);
                        drop(permit);
                    }
                })
            })
            .collect();
        let readers: Vec<_> = (0..3u64)
            .map(|r| {
                let (tx, pool) = (tx.clone(), pool.clone());
                std::thread::spawn(move || {
                    for i in 0..20_000u64 {
                        let permit = pool.acquire(1 + (i * 37 + r * 11) % 400);
                        assert!(pool.in_flight() <= 1_000);
                        tx.send(permit).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        for t in readers.into_iter().chain(indexers) {
            t.join().unwrap();
        }
        assert_eq!(pool.in_flight(), 0);
    }
}
