//! Attribution without replaying the journal first: for `baton search`, whose catch-up
//! usually finds nothing to index, so the journal is read only when asked, and a few
//! lookups search its bytes instead of replaying all of it.

use std::cell::{Cell, OnceCell};

use super::file::parse_all;
use super::{Attribution, Entry, Record, State, journal_path};
use crate::workspace::{RelPath, Workspace};

/// Lookups answered by searching the journal's bytes before it is replayed instead.
const TARGETED_LOOKUPS: usize = 16;

/// Who wrote a version, from the journal, read only once asked.
pub(crate) struct LazyAuthors<'a> {
    ws: &'a Workspace,
    bytes: OnceCell<Vec<u8>>,
    state: OnceCell<State>,
    lookups: Cell<usize>,
}

impl<'a> LazyAuthors<'a> {
    pub(crate) fn new(ws: &'a Workspace) -> LazyAuthors<'a> {
        LazyAuthors {
            ws,
            bytes: OnceCell::new(),
            state: OnceCell::new(),
            lookups: Cell::new(0),
        }
    }

    /// As [`State::attribution_of`] on the replayed journal would answer.
    pub(crate) fn attribution_of(&self, path: &RelPath, hash: &str) -> Attribution {
        self.lookups.set(self.lookups.get() + 1);
        if self.state.get().is_none() && self.lookups.get() <= TARGETED_LOOKUPS {
            return match last_artifact(self.bytes(), path) {
                Some((known, who)) if known == hash => who,
                _ => Attribution::external(),
            };
        }
        let state = self
            .state
            .get_or_init(|| State::replay(&parse_all(self.bytes(), &journal_path(self.ws))));
        state.attribution_of(path, hash)
    }

    /// The journal's bytes, read once (none if there is no journal or it is unreadable).
    fn bytes(&self) -> &[u8] {
        self.bytes.get_or_init(|| {
            let path = journal_path(self.ws);
            match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) => {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(
                            "reading the journal {}: {e}; files indexed now are attributed to `external`",
                            path.display()
                        );
                    }
                    Vec::new()
                }
            }
        })
    }
}

/// The hash and attribution of the last `artifact` record for `path` in the journal's
/// `bytes`, as a replay would leave them.
fn last_artifact(bytes: &[u8], path: &RelPath) -> Option<(String, Attribution)> {
    let Ok(quoted) = serde_json::to_string(path.as_str()) else {
        return None;
    };
    let needle = format!("\"path\":{quoted}");
    for at in memchr::memmem::rfind_iter(bytes, needle.as_bytes()) {
        let start = bytes[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let Some(len) = bytes[at..].iter().position(|&b| b == b'\n') else {
            continue; // a torn last line, which readers ignore
        };
        let Ok(entry) = serde_json::from_slice::<Entry>(&bytes[start..at + len]) else {
            continue;
        };
        if let Record::Artifact {
            path: p,
            hash,
            by,
            task,
            ..
        } = entry.record
        {
            if p == *path {
                return Some((hash, Attribution { by, task }));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Appender, Durability, TaskId, read_all};

    fn artifact(path: &str, hash: &str, who: Attribution) -> Record {
        Record::artifact(RelPath::new(path).unwrap(), hash.into(), 1, who)
    }

    #[test]
    fn lazy_authors_answer_as_a_replay_would_before_and_after_replaying() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::at(tmp.path().to_path_buf());
        let odd = "drafts/\"quoted\" é.md";
        let t = |id: &str| TaskId::from(id);
        let records = vec![
            artifact("drafts/a.md", "h1", Attribution::agent("writer", &t("t-1"))),
            artifact("drafts/b.md", "hb", Attribution::human()),
            artifact(odd, "ho", Attribution::agent("editor", &t("t-2"))),
            artifact(
                "drafts/a.md",
                "h2",
                Attribution::agent("reviewer", &t("t-3")),
            ),
            // Later, and naming the path, but not an artifact record.
            Record::Rejected {
                path: RelPath::new("drafts/a.md").unwrap(),
                hash: Some("h3".into()),
                error: "bad".into(),
            },
            artifact("drafts/ab.md", "hab", Attribution::external()),
        ];
        Appender::open(&ws)
            .unwrap()
            .append(records, Durability::Buffered)
            .unwrap();
        let state = State::replay(&read_all(&ws).unwrap());
        let asks = [
            ("drafts/a.md", "h2"),
            ("drafts/a.md", "h1"), // an older version's content: not the journal's now
            ("drafts/b.md", "hb"),
            (odd, "ho"),
            ("drafts/ab.md", "hab"),
            ("drafts/none.md", "hx"),
        ];
        let lazy = LazyAuthors::new(&ws);
        // Past TARGETED_LOOKUPS the journal is replayed: both ways must agree.
        for round in 0..4 {
            for (path, hash) in asks {
                let path = RelPath::new(path).unwrap();
                assert_eq!(
                    lazy.attribution_of(&path, hash),
                    state.attribution_of(&path, hash),
                    "{path} {hash}, round {round}"
                );
            }
        }
        assert!(lazy.state.get().is_some());
        assert_eq!(
            lazy.attribution_of(&RelPath::new("drafts/a.md").unwrap(), "h2"),
            Attribution::agent("reviewer", &t("t-3"))
        );
    }
}
