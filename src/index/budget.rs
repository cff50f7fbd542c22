//! A bound on the bytes of documents waiting for tantivy's indexing threads.
//!
//! tantivy's queue holds 10,000 documents whatever their size, and reading files is
//! faster than indexing them: a rebuild over 1.1 GB of 7 MB text files held all of
//! them at once (1.3 GB peak RSS). Each document now carries a [`Permit`] for its
//! bytes, taken before it is queued and given back when an indexing thread takes the
//! document up, so what waits in the queue stays under a limit.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use tantivy::TantivyDocument;
use tantivy::schema::document::Document;

/// Bytes of queued documents before the reader waits.
pub const IN_FLIGHT_BYTES: u64 = 64 * 1024 * 1024;
/// A wait that sees no document taken up for this long gives up: the indexing threads
/// are gone, and the writer's own error will say why.
const GIVE_UP_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct InFlight {
    used: Mutex<u64>,
    taken_up: Condvar,
    limit: u64,
}

/// Bytes counted as in flight until dropped.
#[derive(Debug)]
pub struct Permit {
    pool: Arc<InFlight>,
    bytes: u64,
}

impl InFlight {
    pub fn new(limit: u64) -> Arc<InFlight> {
        Arc::new(InFlight {
            used: Mutex::new(0),
            taken_up: Condvar::new(),
            limit,
        })
    }

    /// Waits until `bytes` more fit under the limit (a document larger than the limit
    /// goes when nothing else is in flight), then counts them.
    pub fn acquire(self: &Arc<Self>, bytes: u64) -> Permit {
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        while *used > 0 && *used + bytes > self.limit {
            let (guard, wait) = self
                .taken_up
                .wait_timeout(used, GIVE_UP_AFTER)
                .unwrap_or_else(PoisonError::into_inner);
            used = guard;
            if wait.timed_out() {
                break;
            }
        }
        *used += bytes;
        Permit {
            pool: self.clone(),
            bytes,
        }
    }

    #[cfg(test)]
    fn in_flight(&self) -> u64 {
        *self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut used = self
            .pool
            .used
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *used = used.saturating_sub(self.bytes);
        self.pool.taken_up.notify_all();
    }
}

/// The document baton hands tantivy: a `TantivyDocument` with the permit for its bytes,
/// given back when the indexer takes the document up.
pub struct Doc {
    doc: TantivyDocument,
    _permit: Permit,
}

impl Doc {
    pub fn new(doc: TantivyDocument, permit: Permit) -> Doc {
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
}
