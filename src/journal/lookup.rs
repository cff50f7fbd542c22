//! Attribution looked up only once asked: for `baton search`, whose catch-up usually
//! finds nothing to index, so the state store is opened only for a file that changed.

use std::cell::OnceCell;

use super::{Attribution, History};
use crate::store::Store;
use crate::workspace::{RelPath, Workspace};

/// Who wrote a version, from the state store, opened at the first question.
pub(crate) struct LazyAuthors<'a> {
    ws: &'a Workspace,
    store: OnceCell<Option<Store>>,
}

impl<'a> LazyAuthors<'a> {
    pub(crate) fn new(ws: &'a Workspace) -> LazyAuthors<'a> {
        LazyAuthors {
            ws,
            store: OnceCell::new(),
        }
    }

    /// As [`History::attribution_of`] answers; `external` if the store cannot be read.
    pub(crate) fn attribution_of(&self, path: &RelPath, hash: &str) -> Attribution {
        let store = self.store.get_or_init(|| match Store::open(self.ws) {
            Ok(store) => Some(store),
            Err(e) => {
                tracing::warn!("{e:#}; files indexed now are attributed to `external`");
                None
            }
        });
        store
            .as_ref()
            .and_then(|s| s.attribution_of(path, hash).ok())
            .unwrap_or_else(Attribution::external)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Appender, Durability, Record, State, TaskId, read_all};

    fn artifact(path: &str, hash: &str, who: Attribution) -> Record {
        Record::artifact(RelPath::new(path).unwrap(), hash.into(), 1, who)
    }

    #[test]
    fn lazy_authors_answer_as_a_replay_would() {
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
        let lazy = LazyAuthors::new(&ws);
        for (path, hash) in [
            ("drafts/a.md", "h2"),
            ("drafts/a.md", "h1"), // an older version's content: not the journal's now
            ("drafts/b.md", "hb"),
            (odd, "ho"),
            ("drafts/ab.md", "hab"),
            ("drafts/none.md", "hx"),
        ] {
            let path = RelPath::new(path).unwrap();
            assert_eq!(
                lazy.attribution_of(&path, hash),
                state.attribution_of(&path, hash).unwrap(),
                "{path} {hash}"
            );
        }
    }
}
