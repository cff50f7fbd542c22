//! Reading and appending the journal file.
//!
//! Any baton process may append (the daemon, `drop`, `retry`, …). Appends happen under
//! the journal file's exclusive `flock`, so records never interleave and `seq` only
//! grows; the appender learns the last `seq` from the bytes other processes added since
//! its last append. A torn last line (a writer that crashed mid-line) is ignored on read
//! and cut off by the next appender, which holds the lock and so knows nobody is writing.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{Entry, Record, now_rfc3339};
use crate::workspace::Workspace;

const JOURNAL_FILE: &str = "journal.jsonl";

pub(crate) fn journal_path(ws: &Workspace) -> PathBuf {
    ws.journal_dir().join(JOURNAL_FILE)
}

/// Whether an append returns only once its records are on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Written; on disk with the next fsync, or the kernel's writeback.
    Buffered,
    /// Written and fsynced before the append returns.
    Synced,
}

/// Reads whole entries appended to the journal since the last read.
pub(crate) struct Tail {
    file: File,
    path: PathBuf,
    /// Bytes read so far, all whole lines.
    offset: u64,
}

impl Tail {
    /// Reads from the start of the journal (`None` if there is no journal yet).
    pub(crate) fn open(ws: &Workspace) -> Result<Option<Tail>> {
        let path = journal_path(ws);
        match File::open(&path) {
            Ok(file) => Ok(Some(Tail {
                file,
                path,
                offset: 0,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("opening the journal {}", path.display())),
        }
    }

    /// Reads from journal offset `offset`, which must be where an entry ends (a store's
    /// stamp).
    pub(crate) fn open_at(ws: &Workspace, offset: u64) -> Result<Option<Tail>> {
        Ok(Tail::open(ws)?.map(|mut tail| {
            tail.offset = offset;
            tail
        }))
    }

    /// New whole entries, and the length of a partial last line (a write in progress,
    /// or a torn one), which is left unread.
    pub(crate) fn read_new(&mut self) -> Result<(Vec<Entry>, u64)> {
        let len = self.file.metadata()?.len();
        if len < self.offset {
            self.offset = 0; // cut off by a repairing appender: read again from the start
        }
        if len == self.offset {
            return Ok((Vec::new(), 0));
        }
        let mut bytes = Vec::with_capacity((len - self.offset) as usize);
        let mut reader = &self.file;
        reader.seek(SeekFrom::Start(self.offset))?;
        reader.take(len - self.offset).read_to_end(&mut bytes)?;
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.offset += whole as u64;
        Ok((
            parse_lines(&bytes[..whole], &self.path),
            (bytes.len() - whole) as u64,
        ))
    }
}

/// Appends records under the journal's exclusive lock.
pub(crate) struct Appender {
    file: File,
    tail: Tail,
    next_seq: u64,
    /// Rung after each append; `None` for the daemon's own appender.
    doorbell: Option<PathBuf>,
}

impl Appender {
    pub(crate) fn open(ws: &Workspace) -> Result<Appender> {
        std::fs::create_dir_all(ws.journal_dir())
            .with_context(|| format!("creating {}", ws.journal_dir().display()))?;
        let path = journal_path(ws);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .with_context(|| format!("opening the journal {}", path.display()))?;
        let tail = Tail {
            file: file.try_clone()?,
            path,
            offset: 0,
        };
        Ok(Appender {
            file,
            tail,
            next_seq: 1,
            doorbell: Some(ws.doorbell_dir().join("ring")),
        })
    }

    /// An appender for a command that only appends (`drop`, `write`): it starts at the
    /// journal's end, learning the last `seq` from the last readable line, instead of
    /// reading every entry first, so its cost does not grow with the journal.
    pub(crate) fn open_at_end(ws: &Workspace) -> Result<Appender> {
        let mut appender = Appender::open(ws)?;
        let (end, last_seq) = last_entry(&appender.tail.file, &appender.tail.path)
            .with_context(|| format!("reading the journal {}", appender.tail.path.display()))?;
        appender.tail.offset = end;
        appender.next_seq = last_seq + 1;
        Ok(appender)
    }

    /// An appender that goes on from journal offset `offset`, where the entry `last_seq`
    /// ends (the state store's stamp): it reads only what was appended after it.
    pub(crate) fn open_at(ws: &Workspace, offset: u64, last_seq: u64) -> Result<Appender> {
        let mut appender = Appender::open(ws)?;
        appender.tail.offset = offset;
        appender.next_seq = last_seq + 1;
        Ok(appender)
    }

    /// The journal offset up to which this appender has read or written.
    pub(crate) fn offset(&self) -> u64 {
        self.tail.offset
    }

    /// An appender that does not ring the doorbell: the daemon's own.
    pub(crate) fn quiet(mut self) -> Appender {
        self.doorbell = None;
        self
    }

    /// Appends `records`, returning them as written and, first, any entries other
    /// processes appended since this appender last looked.
    pub(crate) fn append(
        &mut self,
        records: Vec<Record>,
        durability: Durability,
    ) -> Result<(Vec<Entry>, Vec<Entry>)> {
        fs4::FileExt::lock(&self.file)
            .with_context(|| format!("locking the journal {}", self.tail.path.display()))?;
        let result = self.append_locked(records, durability);
        let _ = fs4::FileExt::unlock(&self.file);
        if let (Ok(_), Some(doorbell)) = (&result, &self.doorbell) {
            // Closing a file opened for writing is the event the daemon waits for.
            if let Some(dir) = doorbell.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(doorbell);
        }
        result
    }

    fn append_locked(
        &mut self,
        records: Vec<Record>,
        durability: Durability,
    ) -> Result<(Vec<Entry>, Vec<Entry>)> {
        let foreign = self.poll()?;
        if self.tail.file.metadata()?.len() > self.tail.offset {
            // A partial line while we hold the lock: its writer crashed mid-line.
            tracing::warn!(journal = %self.tail.path.display(), "cutting off a torn last line");
            self.file.set_len(self.tail.offset)?;
        }
        let ts = now_rfc3339();
        let mut buf = Vec::with_capacity(records.len() * 160);
        let mut written = Vec::with_capacity(records.len());
        for record in records {
            let entry = Entry {
                seq: self.next_seq,
                ts: ts.clone(),
                record,
            };
            serde_json::to_writer(&mut buf, &entry)?;
            buf.push(b'\n');
            self.next_seq += 1;
            written.push(entry);
        }
        self.file
            .write_all(&buf)
            .with_context(|| format!("appending to the journal {}", self.tail.path.display()))?;
        if durability == Durability::Synced {
            self.file.sync_data().context("syncing the journal")?;
        }
        self.tail.offset += buf.len() as u64;
        Ok((written, foreign))
    }

    /// Entries other processes appended since the last look, without taking the lock.
    pub(crate) fn poll(&mut self) -> Result<Vec<Entry>> {
        let (entries, _) = self.tail.read_new()?;
        if let Some(last) = entries.last() {
            self.next_seq = self.next_seq.max(last.seq + 1);
        }
        Ok(entries)
    }
}

/// Where the journal's last whole line ends, and the `seq` of its last readable entry
/// (0 if none), reading backwards from the end a block at a time.
fn last_entry(file: &File, path: &Path) -> Result<(u64, u64)> {
    use std::os::unix::fs::FileExt;
    const BLOCK: u64 = 64 * 1024;
    let len = file.metadata()?.len();
    // `tail` holds the file's bytes from `from` to its end.
    let (mut from, mut tail) = (len, Vec::new());
    let mut end = None;
    loop {
        let start = from.saturating_sub(BLOCK);
        let mut block = vec![0; (from - start) as usize];
        file.read_exact_at(&mut block, start)?;
        block.extend_from_slice(&tail);
        (from, tail) = (start, block);
        if let Some(last_newline) = tail.iter().rposition(|&b| b == b'\n') {
            let whole = &tail[..=last_newline];
            let end = *end.get_or_insert(from + whole.len() as u64);
            // Lines known to be whole: all of them from the file's start, else those
            // after the first newline in what has been read.
            let first = match (from, whole.iter().position(|&b| b == b'\n')) {
                (0, _) => 0,
                (_, Some(i)) => i + 1,
                (_, None) => whole.len(),
            };
            let lines = whole[first..].split(|&b| b == b'\n').rev();
            for line in lines.filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
                match serde_json::from_slice::<Entry>(line) {
                    Ok(entry) => return Ok((end, entry.seq)),
                    Err(e) => {
                        tracing::warn!(journal = %path.display(), "skipping an unreadable journal line: {e}")
                    }
                }
            }
        }
        if from == 0 {
            return Ok((end.unwrap_or(0), 0));
        }
    }
}

fn parse_lines(bytes: &[u8], path: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Entry>(line) {
            Ok(entry) => out.push(entry),
            Err(e) => {
                tracing::warn!(journal = %path.display(), line = i + 1, "skipping an unreadable journal line: {e}")
            }
        }
    }
    out
}

/// Reads every whole entry of the journal; a torn last line is ignored.
pub(crate) fn read_all(ws: &Workspace) -> Result<Vec<Entry>> {
    let path = journal_path(ws);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading the journal {}", path.display())),
    };
    Ok(parse_all(&bytes, &path))
}

/// Every whole entry in `bytes`, the journal at `path` as read; a torn last line is
/// ignored.
pub(crate) fn parse_all(bytes: &[u8], path: &Path) -> Vec<Entry> {
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    parse_lines(&bytes[..whole], path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Reason, TaskId};
    use crate::workspace::RelPath;

    fn queued(task: &str) -> Record {
        Record::Queued {
            task: TaskId::from(task),
            agent: "writer".into(),
            input: RelPath::new("briefs/a.md").unwrap(),
            input_hash: "h".into(),
            parent: None,
            depth: 0,
            reason: Reason::Glob,
            refs: vec![],
        }
    }

    #[test]
    fn an_appender_opened_at_the_end_goes_on_from_the_last_seq() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::at(tmp.path().to_path_buf());
        // Over several 64 KiB blocks, so the backward read crosses their boundaries.
        let many: Vec<Record> = (0..3000).map(|i| queued(&format!("t-{i}"))).collect();
        Appender::open(&ws)
            .unwrap()
            .append(many, Durability::Buffered)
            .unwrap();
        // An unreadable line, then a torn one (a writer that died mid-line).
        let mut f = OpenOptions::new()
            .append(true)
            .open(journal_path(&ws))
            .unwrap();
        f.write_all(b"{not json}\n{\"seq\":777777").unwrap();
        drop(f);

        let mut appender = Appender::open_at_end(&ws).unwrap();
        let (written, _) = appender
            .append(vec![queued("t-last")], Durability::Buffered)
            .unwrap();
        assert_eq!(written[0].seq, 3001);
        let all = read_all(&ws).unwrap();
        assert_eq!(all.len(), 3001);
        assert_eq!(all.last().unwrap().seq, 3001);
        let text = std::fs::read_to_string(journal_path(&ws)).unwrap();
        assert!(!text.contains("777777"), "the torn line is cut off");

        // An empty journal starts at 1.
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::at(tmp.path().to_path_buf());
        let mut appender = Appender::open_at_end(&ws).unwrap();
        let (written, _) = appender
            .append(vec![queued("t-1")], Durability::Buffered)
            .unwrap();
        assert_eq!(written[0].seq, 1);
    }

    #[test]
    fn entries_are_one_flat_line_each() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::at(tmp.path().to_path_buf());
        Appender::open(&ws)
            .unwrap()
            .append(vec![queued("t-1")], Durability::Synced)
            .unwrap();
        let text = std::fs::read_to_string(journal_path(&ws)).unwrap();
        assert!(
            text.starts_with(r#"{"seq":1,"ts":""#)
                && text.contains(r#""kind":"task.queued","task":"t-1""#),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1);
    }
}
