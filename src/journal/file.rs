//! Reading and appending the journal file.
//!
//! Any baton process may append (the daemon, `drop`, `retry`, …). Appends happen under
//! the journal file's exclusive `flock`, so records never interleave and `seq` only
//! grows; the appender learns the last `seq` from the bytes other processes added since
//! its last append. A torn last line (a writer that crashed mid-line) is ignored on read
//! and cut off by the next appender, which holds the lock and so knows nobody is writing.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use super::segments::{self, Content, DEFAULT_SEGMENT_SIZE, ReverseLines, Segment};
use super::{Entry, Record, now_rfc3339};
use crate::workspace::Workspace;

/// The journal's first segment, which is the whole journal until it grows past a
/// segment's size.
#[cfg(test)]
pub(crate) fn journal_path(ws: &Workspace) -> PathBuf {
    Segment::plain(0).path(&ws.journal_dir())
}

/// Whether an append returns only once its records are on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Written; on disk with the next fsync, or the kernel's writeback.
    Buffered,
    /// Written and fsynced before the append returns.
    Synced,
}

/// Reads whole entries appended to the journal since the last read, across segments.
pub(crate) struct Tail {
    dir: PathBuf,
    /// The segment being read, and its bytes.
    segment: Segment,
    content: Content,
    /// Bytes of the segment read so far, all whole lines.
    offset: u64,
}

impl Tail {
    /// Reads from the start of the journal (`None` if there is no journal yet).
    #[cfg(test)]
    pub(crate) fn open(ws: &Workspace) -> Result<Option<Tail>> {
        Tail::open_at(ws, 0)
    }

    /// Reads from the journal's logical offset `pos`, which must be where an entry ends
    /// (a store's stamp).
    pub(crate) fn open_at(ws: &Workspace, pos: u64) -> Result<Option<Tail>> {
        Tail::open_in(&ws.journal_dir(), pos)
    }

    fn open_in(dir: &Path, pos: u64) -> Result<Option<Tail>> {
        let Some(segment) = segments::containing(dir, pos)? else {
            return Ok(None);
        };
        let Some(content) = Content::open(dir, segment)? else {
            return Ok(None);
        };
        Ok(Some(Tail {
            dir: dir.to_path_buf(),
            segment,
            content,
            offset: pos.saturating_sub(segment.base),
        }))
    }

    /// The logical offset up to which this tail has read.
    pub(crate) fn pos(&self) -> u64 {
        self.segment.base + self.offset
    }

    /// New whole entries, and the length of a partial last line (a write in progress,
    /// or a torn one), which is left unread.
    pub(crate) fn read_new(&mut self) -> Result<(Vec<Entry>, u64)> {
        let mut entries = Vec::new();
        loop {
            let len = self.content.len();
            if len < self.offset {
                self.offset = 0; // cut off by a repairing appender: read again from the start
            }
            let bytes = self.content.read_from(self.offset, len)?;
            let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            self.offset += whole as u64;
            entries.extend(parse_lines(&bytes[..whole], &self.segment.path(&self.dir)));
            let partial = (bytes.len() - whole) as u64;
            // Read to the end with no partial line: a segment after this one means this
            // one is sealed, and reading goes on there. (Sealed ones are never empty.)
            if partial > 0 || self.offset == 0 || !segments::exists(&self.dir, self.pos()) {
                return Ok((entries, partial));
            }
            self.move_to_next()?;
        }
    }

    /// Moves to the segment starting where this one was read to.
    fn move_to_next(&mut self) -> Result<()> {
        let next = Segment::plain(self.pos());
        let content = Content::open(&self.dir, next)?.with_context(|| {
            format!(
                "the journal segment {} is gone",
                next.path(&self.dir).display()
            )
        })?;
        (self.segment, self.content, self.offset) = (next, content, 0);
        Ok(())
    }
}

/// Appends records under the journal's exclusive lock.
pub(crate) struct Appender {
    /// The segment being written, open for appending; its `flock` is the journal's lock.
    file: Arc<File>,
    /// Where that segment starts.
    file_base: u64,
    /// What has been read of the journal: up to the end of the segment being written,
    /// once the lock is held.
    tail: Tail,
    next_seq: u64,
    /// A segment holding this much is sealed, and the next append starts a new one.
    segment_size: u64,
    /// Rung after each append; `None` for the daemon's own appender.
    doorbell: Option<PathBuf>,
}

impl Appender {
    /// An appender that reads the journal from its start first.
    #[cfg(test)]
    pub(crate) fn open(ws: &Workspace) -> Result<Appender> {
        Appender::open_at(ws, 0, 0)
    }

    /// An appender for a command that only appends (`drop`, `write`): it starts at the
    /// journal's end, learning the last `seq` from the last readable line, instead of
    /// reading every entry first, so its cost does not grow with the journal.
    pub(crate) fn open_at_end(ws: &Workspace) -> Result<Appender> {
        let dir = ws.journal_dir();
        let end = segments::end(&dir)?;
        let mut appender = Appender::open_at(ws, end, 0)?;
        // The last segment's whole lines: its partial last line is not to be read.
        let whole_end = appender.tail.segment.base + whole_end(&appender.tail.content)?;
        appender.tail.offset = whole_end - appender.tail.segment.base;
        appender.next_seq = last_seq(&dir, whole_end)? + 1;
        Ok(appender)
    }

    /// Why nothing may be appended any more: the segment being written was deleted
    /// while this appender had it open.
    pub(crate) fn gone(&self) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let unlinked = self.file.metadata().is_ok_and(|m| m.nlink() == 0);
        unlinked.then(|| {
            format!(
                "the journal {} was deleted while baton was using it; nothing more is \
                 appended. Restore it from a backup (or, to start afresh, remove .baton/state.db \
                 too), then start baton again",
                self.path().display()
            )
        })
    }

    /// An appender that goes on from the journal's logical offset `pos`, where the entry
    /// `last_seq` ends (the state store's stamp): it reads only what was appended after
    /// it.
    pub(crate) fn open_at(ws: &Workspace, pos: u64, last_seq: u64) -> Result<Appender> {
        let dir = ws.journal_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let last = match segments::list(&dir)?.pop() {
            None => {
                refuse_a_lost_journal(ws)?;
                Segment::plain(0)
            }
            Some(last) if last.compressed => anyhow::bail!(
                "the journal's last segment {} is compressed: it cannot be appended to; \
                 decompress it with `zstd -d` and remove the compressed file",
                last.path(&dir).display()
            ),
            Some(last) => last,
        };
        let file = open_for_append(&last.path(&dir))?;
        let tail = Tail::open_in(&dir, pos)?.context("the journal is gone")?;
        Ok(Appender {
            file: Arc::new(file),
            file_base: last.base,
            tail,
            next_seq: last_seq + 1,
            segment_size: DEFAULT_SEGMENT_SIZE,
            doorbell: Some(ws.doorbell_dir().join("ring")),
        })
    }

    /// Seals segments once they hold `bytes` (at least one line each).
    pub(crate) fn segment_size(mut self, bytes: u64) -> Appender {
        self.segment_size = bytes.max(1);
        self
    }

    /// The journal's logical offset up to which this appender has read or written.
    pub(crate) fn offset(&self) -> u64 {
        self.tail.pos()
    }

    /// Where the segment being written starts.
    pub(crate) fn segment_base(&self) -> u64 {
        self.file_base
    }

    /// The segment being written, for an fsync after the lock is released. Segments
    /// before it were synced as they were sealed.
    pub(crate) fn file(&self) -> Arc<File> {
        self.file.clone()
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
        mut records: Vec<Record>,
        durability: Durability,
    ) -> Result<(Vec<Entry>, Vec<Entry>)> {
        let mut foreign = Vec::new();
        let result = loop {
            fs4::FileExt::lock(&*self.file)
                .with_context(|| format!("locking the journal {}", self.path().display()))?;
            let ready = self.prepare_locked(&mut foreign);
            let result = match ready {
                // Written once: the loop ends after it.
                Ok(true) => self
                    .write_locked(std::mem::take(&mut records), durability)
                    .map(Some),
                Ok(false) => Ok(None),
                Err(e) => Err(e),
            };
            let _ = fs4::FileExt::unlock(&*self.file);
            match result {
                Ok(Some(written)) => break Ok(written),
                // The segment is sealed: on to the one after it, and its lock.
                Ok(None) => {
                    self.file_base = self.tail.segment.base;
                    self.file = Arc::new(open_for_append(&self.path())?);
                }
                Err(e) => break Err(e),
            }
        };
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
        result.map(|written| (written, foreign))
    }

    /// The segment being written.
    fn path(&self) -> PathBuf {
        Segment::plain(self.file_base).path(&self.tail.dir)
    }

    /// With the segment's lock held: reads what others appended, and says whether the
    /// append goes into this segment (`false`: it is sealed, and the tail has moved on to
    /// the next).
    fn prepare_locked(&mut self, foreign: &mut Vec<Entry>) -> Result<bool> {
        if let Some(gone) = self.gone() {
            // Appending to an unlinked file would be appending to nothing: a restart
            // would find no record of it, and run everything again.
            anyhow::bail!("{gone}");
        }
        foreign.extend(self.poll()?);
        if self.tail.segment.base != self.file_base {
            return Ok(false); // sealed by another appender; the tail read on past it
        }
        if self.tail.content.len() > self.tail.offset {
            // A partial line while we hold the lock: its writer crashed mid-line.
            tracing::warn!(journal = %self.path().display(), "cutting off a torn last line");
            self.file.set_len(self.tail.offset)?;
        }
        if self.tail.offset < self.segment_size {
            return Ok(true);
        }
        // Full: seal it. Its lines are on disk before the next segment's name says it is
        // sealed, and that name is on disk before anything is written there.
        let next = Segment::plain(self.tail.pos());
        let dir = &self.tail.dir;
        self.file.sync_data().context("syncing the journal")?;
        open_for_append(&next.path(dir))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", dir.display()))?;
        tracing::info!(segment = %next.path(dir).display(), "journal segment sealed; a new one begun");
        self.tail.move_to_next()?;
        Ok(false)
    }

    fn write_locked(&mut self, records: Vec<Record>, durability: Durability) -> Result<Vec<Entry>> {
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
        (&*self.file)
            .write_all(&buf)
            .with_context(|| format!("appending to the journal {}", self.path().display()))?;
        if durability == Durability::Synced {
            self.file.sync_data().context("syncing the journal")?;
        }
        self.tail.offset += buf.len() as u64;
        Ok(written)
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

fn open_for_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("opening the journal {}", path.display()))
}

/// Where the last whole line of `content` ends.
fn whole_end(content: &Content) -> Result<u64> {
    const BLOCK: u64 = 64 * 1024;
    let mut end = content.len();
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let mut block = vec![0; (end - start) as usize];
        content.read_exact_at(&mut block, start)?;
        if let Some(i) = block.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// The `seq` of the last readable entry before logical offset `end` (0 if none),
/// reading backwards from there.
fn last_seq(dir: &Path, end: u64) -> Result<u64> {
    for line in ReverseLines::new(dir, end)? {
        let line = line?;
        match serde_json::from_slice::<Entry>(&line) {
            Ok(entry) => return Ok(entry.seq),
            Err(e) => {
                tracing::warn!(journal = %dir.display(), "skipping an unreadable journal line: {e}")
            }
        }
    }
    Ok(0)
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
    let dir = ws.journal_dir();
    let mut entries = Vec::new();
    segments::for_each_line(&dir, 0, None, |line, _| {
        entries.extend(parse_lines(line, &dir));
        Ok(())
    })?;
    Ok(entries)
}

/// A journal deleted while the state store remembers records: beginning a new one would
/// make the daemon run every brief again (and a `drop` would begin it), so every writer
/// refuses, saying what to do.
pub(crate) fn refuse_a_lost_journal(ws: &Workspace) -> Result<()> {
    match crate::store::recorded_seq(ws) {
        Some(seq) if seq > 0 => anyhow::bail!(
            "the journal in {} is gone, but the state store {} says {seq} records were \
             journalled: starting would run every brief again. Restore the journal from a \
             backup, or, to start afresh on purpose, remove the state store too",
            ws.journal_dir().display(),
            crate::store::store_path(ws).display()
        ),
        _ => Ok(()),
    }
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
            writes: vec![],
            deadline: None,
            deadline_asked: None,
            budget: None,
            budget_asked: None,
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

    fn seqs(entries: &[Entry]) -> Vec<u64> {
        entries.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn appenders_in_several_threads_seal_segments_and_seq_stays_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::at(tmp.path().to_path_buf());
        Appender::open(&ws).unwrap(); // the journal exists before anyone tails it
        let mut tail = Tail::open(&ws).unwrap().unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let ws = ws.clone();
                std::thread::spawn(move || {
                    let mut appender = Appender::open_at_end(&ws).unwrap().segment_size(700);
                    for i in 0..60 {
                        let records = vec![queued(&format!("t-{t}-{i}")); 1 + i % 3];
                        appender.append(records, Durability::Buffered).unwrap();
                    }
                })
            })
            .collect();
        let mut followed = Vec::new();
        while threads.iter().any(|t| !t.is_finished()) {
            followed.extend(tail.read_new().unwrap().0);
        }
        threads.into_iter().for_each(|t| t.join().unwrap());
        followed.extend(tail.read_new().unwrap().0);

        let all = read_all(&ws).unwrap();
        let total = 4 * (0..60).map(|i| 1 + i % 3).sum::<usize>();
        assert_eq!(seqs(&all), (1..=total as u64).collect::<Vec<_>>());
        assert_eq!(
            seqs(&followed),
            seqs(&all),
            "the tail read each entry once, in order"
        );
        let dir = ws.journal_dir();
        let list = segments::list(&dir).unwrap();
        assert!(list.len() > 10, "{list:?}");
        // Each segment ends where the next begins, on a line's end.
        for pair in list.windows(2) {
            let bytes = std::fs::read(pair[0].path(&dir)).unwrap();
            assert_eq!(bytes.len() as u64, pair[1].base - pair[0].base);
            assert_eq!(bytes.last(), Some(&b'\n'));
        }
        assert_eq!(tail.pos(), segments::end(&dir).unwrap());

        // Compressed, every reader still reads them: from the start, from the middle of
        // a compressed segment, and an appender learning the last seq.
        assert!(segments::compress_sealed(&dir).unwrap() > 5);
        assert!(segments::list(&dir).unwrap()[0].compressed);
        assert_eq!(seqs(&read_all(&ws).unwrap()), seqs(&all));
        let mut mid = 0;
        segments::for_each_line(&dir, 0, None, |_, end| {
            if mid == 0 && end > list[2].base {
                mid = end;
            }
            Ok(())
        })
        .unwrap();
        let (from_mid, _) = Tail::open_at(&ws, mid)
            .unwrap()
            .unwrap()
            .read_new()
            .unwrap();
        let skipped = all.len() - from_mid.len();
        assert_eq!(seqs(&from_mid), seqs(&all[skipped..]));
        let mut appender = Appender::open_at_end(&ws).unwrap();
        let (written, _) = appender
            .append(vec![queued("t-last")], Durability::Buffered)
            .unwrap();
        assert_eq!(written[0].seq, total as u64 + 1);
    }

    #[test]
    fn an_appender_after_a_seal_learns_the_seq_from_the_segment_before() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::at(tmp.path().to_path_buf());
        let mut appender = Appender::open(&ws).unwrap().segment_size(1);
        appender
            .append(vec![queued("t-1"), queued("t-2")], Durability::Buffered)
            .unwrap();
        // The next append seals the first segment before it writes.
        appender
            .append(vec![queued("t-3")], Durability::Buffered)
            .unwrap();
        let dir = ws.journal_dir();
        assert_eq!(segments::list(&dir).unwrap().len(), 2);
        // Sealed again as a crash right after sealing leaves it: an empty segment next.
        let end = segments::end(&dir).unwrap();
        std::fs::write(Segment::plain(end).path(&dir), b"").unwrap();
        let mut other = Appender::open_at_end(&ws).unwrap();
        let (written, foreign) = other
            .append(vec![queued("t-4")], Durability::Buffered)
            .unwrap();
        assert_eq!((written[0].seq, foreign.len()), (4, 0));
    }

    #[test]
    fn a_torn_line_in_a_full_segment_is_cut_off_not_sealed_in() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::at(tmp.path().to_path_buf());
        let mut appender = Appender::open(&ws).unwrap().segment_size(100);
        appender
            .append(vec![queued("t-1")], Durability::Buffered)
            .unwrap();
        let len = std::fs::metadata(journal_path(&ws)).unwrap().len();
        // A writer died mid-line, past the segment's size.
        let mut f = OpenOptions::new()
            .append(true)
            .open(journal_path(&ws))
            .unwrap();
        f.write_all(&[b'{'; 200]).unwrap();
        drop(f);
        let mut other = Appender::open_at_end(&ws).unwrap().segment_size(100);
        other
            .append(vec![queued("t-2")], Durability::Buffered)
            .unwrap();
        let dir = ws.journal_dir();
        let list = segments::list(&dir).unwrap();
        assert_eq!(list[1].base, len, "sealed where the last whole line ended");
        assert_eq!(seqs(&read_all(&ws).unwrap()), [1, 2]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// A journal cut at any byte (a crash mid-write, a copy taken mid-append) reads
        /// as a prefix of the whole, and replays to that prefix's state.
        #[test]
        fn a_journal_cut_at_any_byte_replays_to_a_prefix_of_the_same_state(
            records in proptest::collection::vec(crate::store::tests::record(), 1..40),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let whole = tempfile::tempdir().unwrap();
            let ws = Workspace::at(whole.path().to_path_buf());
            let mut appender = Appender::open(&ws).unwrap();
            for record in records {
                appender.append(vec![record], Durability::Buffered).unwrap();
            }
            let full = read_all(&ws).unwrap();
            let bytes = std::fs::read(journal_path(&ws)).unwrap();
            let at = cut.index(bytes.len() + 1);

            let part = tempfile::tempdir().unwrap();
            let cut_ws = Workspace::at(part.path().to_path_buf());
            std::fs::create_dir_all(cut_ws.journal_dir()).unwrap();
            std::fs::write(journal_path(&cut_ws), &bytes[..at]).unwrap();
            let read = read_all(&cut_ws).unwrap();
            proptest::prop_assert_eq!(&read[..], &full[..read.len()]);
            let whole_lines = bytes[..at].iter().filter(|&&b| b == b'\n').count();
            proptest::prop_assert_eq!(read.len(), whole_lines, "every whole line is read");
            let replayed = crate::journal::State::replay(&read);
            let expected = crate::journal::State::replay(&full[..read.len()]);
            // Every task, artifact and rejection as the prefix's own replay has it.
            crate::store::tests::history_agrees(&replayed, &expected);
        }
    }
}
