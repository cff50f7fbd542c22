//! The questions asked of the store: the rules' ([`History`]) and the reports'. Each is
//! an indexed lookup, so its cost follows what it returns, not the history's length.

use std::borrow::Cow;

use anyhow::Result;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::Store;
use super::apply::{decode, load};
use crate::journal::{
    ArtifactInfo, Attribution, Author, FindTaskError, History, TaskId, TaskInfo, TaskStatus,
};
use crate::workspace::RelPath;

/// One version of an artifact, as `baton versions` and `baton who` list it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct VersionRow {
    pub(crate) ts: String,
    pub(crate) hash: String,
    pub(crate) size: u64,
    pub(crate) by: Author,
    pub(crate) task: Option<TaskId>,
}

impl History for Store {
    fn task(&self, id: &TaskId) -> Result<Option<Cow<'_, TaskInfo>>> {
        Ok(load(&self.conn, id)?.map(Cow::Owned))
    }

    fn children(&self, id: &TaskId) -> Result<Vec<TaskInfo>> {
        self.tasks_where("parent = ?1 ORDER BY ord", [id.as_str()])
    }

    fn artifact(&self, path: &RelPath) -> Result<Option<ArtifactInfo>> {
        Ok(self
            .versions_of(path, Some(1))?
            .pop()
            .map(|v| ArtifactInfo {
                hash: v.hash,
                attribution: Attribution {
                    by: v.by,
                    task: v.task,
                },
            }))
    }

    fn rejection(&self, path: &RelPath, hash: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT error FROM rejected WHERE path = ?1 AND hash = ?2")?
            .query_row(params![path.as_str(), hash], |r| r.get(0))
            .optional()?)
    }
}

impl Store {
    fn tasks_where<P: rusqlite::Params>(&self, filter: &str, params: P) -> Result<Vec<TaskInfo>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT info FROM tasks WHERE {filter}"))?;
        let rows = stmt.query_map(params, |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for text in rows {
            out.push(decode(&text?)?);
        }
        Ok(out)
    }

    /// Tasks with `status`, first queued first; with `last`, only the last that many.
    pub(crate) fn tasks_with(
        &self,
        status: TaskStatus,
        last: Option<usize>,
    ) -> Result<Vec<TaskInfo>> {
        match last {
            None => self.tasks_where("status = ?1 ORDER BY ord", [status.as_str()]),
            Some(n) => {
                let mut tasks = self.tasks_where(
                    "status = ?1 ORDER BY ord DESC LIMIT ?2",
                    params![status.as_str(), n as i64],
                )?;
                tasks.reverse();
                Ok(tasks)
            }
        }
    }

    /// Every task not done or dead, first queued first: the daemon's live work.
    pub(crate) fn unfinished(&self) -> Result<Vec<TaskInfo>> {
        // Spelled out, not `NOT IN ('done', 'dead')`, so the status index serves it.
        self.tasks_where(
            "status IN ('queued', 'running', 'committing', 'failed', 'held', 'escalated') ORDER BY ord",
            [],
        )
    }

    /// Tasks cancelled while their agent ran and no daemon stopped it: a daemon stops
    /// their process groups when it starts.
    pub(crate) fn cancelled_while_running(&self) -> Result<Vec<TaskInfo>> {
        self.tasks_where("status = 'dead' AND pid IS NOT NULL ORDER BY ord", [])
    }

    /// The `seq` of the record that first queued `task`.
    pub(crate) fn first_seq(&self, task: &TaskId) -> Result<Option<u64>> {
        let ord: Option<i64> = self
            .conn
            .prepare_cached("SELECT ord FROM tasks WHERE id = ?1")?
            .query_row([task.as_str()], |r| r.get(0))
            .optional()?;
        Ok(ord.map(|o| o as u64))
    }

    /// How many tasks have `status`.
    pub(crate) fn count(&self, status: TaskStatus) -> Result<usize> {
        let n: Option<i64> = self
            .conn
            .prepare_cached("SELECT n FROM status_counts WHERE status = ?1")?
            .query_row([status.as_str()], |r| r.get(0))
            .optional()?;
        Ok(n.unwrap_or(0).max(0) as usize)
    }

    /// Done tasks that delegated and whose join is not queued yet.
    pub(crate) fn awaiting_joins(&self) -> Result<Vec<TaskInfo>> {
        self.tasks_where("awaits_join = 1 ORDER BY ord", [])
    }

    /// The tasks that read `path` as their input or wrote it, first queued first.
    pub(crate) fn tasks_touching(&self, path: &RelPath) -> Result<Vec<TaskInfo>> {
        self.tasks_where(
            "id IN (SELECT id FROM tasks WHERE input = ?1
                    UNION SELECT task FROM task_outputs WHERE path = ?1)
             ORDER BY ord",
            [path.as_str()],
        )
    }

    /// The one task whose id starts with `prefix` (DESIGN §9: any unique prefix).
    pub(crate) fn find_task(&self, prefix: &str) -> Result<TaskInfo, FindTaskError> {
        let wanted = prefix.trim();
        let lookup = || -> Result<Vec<TaskInfo>> {
            let mut found = Vec::new();
            let bare = wanted.strip_prefix("t-").unwrap_or(wanted);
            for candidate in [wanted.to_string(), format!("t-{bare}")] {
                let (low, high) = prefix_range(&candidate);
                for t in self.tasks_where(
                    "id >= ?1 AND id < ?2 ORDER BY ord LIMIT 5",
                    params![low, high],
                )? {
                    if !found.iter().any(|f: &TaskInfo| f.id == t.id) {
                        found.push(t);
                    }
                }
            }
            Ok(found)
        };
        let matches = match lookup() {
            Ok(m) => m,
            Err(e) => {
                tracing::error!("looking up a task in the state store: {e:#}");
                Vec::new()
            }
        };
        match matches.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(FindTaskError::NotFound(prefix.to_string())),
            many => Err(FindTaskError::Ambiguous {
                prefix: prefix.to_string(),
                count: many.len(),
                some: many
                    .iter()
                    .take(4)
                    .map(|t| t.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The versions of `path` the journal recorded, oldest first; with `last`, only the
    /// last that many.
    pub(crate) fn versions_of(
        &self,
        path: &RelPath,
        last: Option<usize>,
    ) -> Result<Vec<VersionRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, ts, hash, size, by, task FROM versions WHERE path = ?1
             ORDER BY seq DESC LIMIT ?2",
        )?;
        let limit = last.map_or(-1, |n| n as i64);
        let rows = stmt.query_map(params![path.as_str(), limit], |r| {
            Ok(VersionRow {
                ts: r.get(1)?,
                hash: r.get(2)?,
                size: r.get::<_, i64>(3)? as u64,
                by: Author::from(r.get::<_, String>(4)?.as_str()),
                task: r
                    .get::<_, Option<String>>(5)?
                    .map(|t| TaskId::from(t.as_str())),
            })
        })?;
        let mut out = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        out.reverse();
        Ok(out)
    }

    /// The rejections that still stand: those of the version the journal last saw at
    /// each path. A rejection of an earlier version, fixed since, is not one.
    pub(crate) fn standing_rejections(&self) -> Result<Vec<(RelPath, String, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT path, hash, error FROM rejected r
             WHERE COALESCE((SELECT hash FROM versions v WHERE v.path = r.path
                             ORDER BY seq DESC LIMIT 1), r.hash) = r.hash
             ORDER BY path",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (path, hash, error) = row?;
            if let Ok(path) = RelPath::new(&path) {
                out.push((path, hash, error));
            }
        }
        Ok(out)
    }

    /// How attempt `attempt` of `task` ended: its status and error, if it ended.
    pub(crate) fn ending(
        &self,
        task: &TaskId,
        attempt: u32,
    ) -> Result<Option<(String, Option<String>)>> {
        Ok(self
            .conn
            .prepare_cached("SELECT status, error FROM attempts WHERE task = ?1 AND attempt = ?2")?
            .query_row(params![task.as_str(), attempt], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
    }

    /// The config the daemon last said it runs: the hash of `baton.toml`, and when.
    pub(crate) fn config(&self) -> Result<Option<(String, String)>> {
        let hash: Option<String> = self.meta("config_hash")?;
        let ts: Option<String> = self.meta("config_ts")?;
        Ok(hash.zip(ts))
    }
}

/// The ids starting with `prefix` are those in `[low, high)`.
fn prefix_range(prefix: &str) -> (String, String) {
    let mut high = prefix.to_string();
    high.push(char::MAX);
    (prefix.to_string(), high)
}
