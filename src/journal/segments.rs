//! The journal's segments: one logical stream of lines kept in files of bounded size.
//!
//! A position in the journal is one number, its *logical offset*: the bytes of every
//! line before it, across segments. Each segment is named by the logical offset it
//! starts at, so a sealed segment's length is where the next begins, and whoever holds
//! a segment knows the exact name of the one after it:
//!
//! - `journal.jsonl`: the first segment (every journal written before segments were);
//! - `journal.jsonl.0000000067108912`: the segment from that offset on;
//! - `….zst`: a sealed segment compressed with zstd.
//!
//! The names sort in journal order, so `zstdcat -f .baton/journal/journal.jsonl* | jq`
//! reads it all. A segment is sealed when the one after it exists: that file is made
//! only by an appender holding the sealed one's lock, after its last line was written
//! whole (a torn line is cut off first), so a reader that has read a segment to its end
//! without a partial line and finds the next one knows there is nothing more to read in
//! it. The daemon compresses sealed segments, all but the newest, which stays plain for
//! the readers that look back a little (`baton log -n`, an appender after a rotation).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

/// A segment is sealed once it holds this much (`[journal] segment_size`).
pub(crate) const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;

const NAME: &str = "journal.jsonl";
const COMPRESSED: &str = ".zst";

/// The zstd level sealed segments are compressed at: JSON Lines shrink about tenfold at
/// the default level, at a fraction of a second per 64 MiB.
const ZSTD_LEVEL: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    /// The logical offset of its first byte.
    pub(crate) base: u64,
    pub(crate) compressed: bool,
}

impl Segment {
    /// The segment starting at `base`, as it is written (not compressed).
    pub(crate) fn plain(base: u64) -> Segment {
        Segment {
            base,
            compressed: false,
        }
    }

    fn file_name(self) -> String {
        match (self.base, self.compressed) {
            (0, false) => NAME.to_string(),
            (base, false) => format!("{NAME}.{base:016}"),
            (base, true) => format!("{NAME}.{base:016}{COMPRESSED}"),
        }
    }

    pub(crate) fn path(self, dir: &Path) -> PathBuf {
        dir.join(self.file_name())
    }

    fn parse(name: &str) -> Option<Segment> {
        let rest = name.strip_prefix(NAME)?;
        if rest.is_empty() {
            return Some(Segment::plain(0));
        }
        let rest = rest.strip_prefix('.')?;
        let (digits, compressed) = match rest.strip_suffix(COMPRESSED) {
            Some(digits) => (digits, true),
            None => (rest, false),
        };
        if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None; // a temporary file, or not ours
        }
        Some(Segment {
            base: digits.parse().ok()?,
            compressed,
        })
    }
}

/// The journal's segments in order. Where a segment is there both plain and compressed
/// (a compression finishing), the plain file is listed.
pub(crate) fn list(dir: &Path) -> Result<Vec<Segment>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let mut segments: Vec<Segment> = entries
        .filter_map(|e| Segment::parse(e.ok()?.file_name().to_str()?))
        .collect();
    segments.sort_by_key(|s| (s.base, s.compressed));
    segments.dedup_by_key(|s| s.base);
    Ok(segments)
}

/// The segment holding logical offset `pos`: the last one starting at or before it.
pub(crate) fn containing(dir: &Path, pos: u64) -> Result<Option<Segment>> {
    let segments = list(dir)?;
    Ok(segments
        .iter()
        .rev()
        .find(|s| s.base <= pos)
        .or(segments.first())
        .copied())
}

/// Whether a segment starts at `base`: if so, the one before it is sealed.
pub(crate) fn exists(dir: &Path, base: u64) -> bool {
    [false, true].into_iter().any(|compressed| {
        Segment { base, compressed }
            .path(dir)
            .symlink_metadata()
            .is_ok()
    })
}

/// The logical offset of the journal's end (0 with no journal).
pub(crate) fn end(dir: &Path) -> Result<u64> {
    let Some(last) = list(dir)?.pop() else {
        return Ok(0);
    };
    Ok(last.base + Content::open(dir, last)?.map_or(0, |c| c.len()))
}

/// Up to `n` of the journal's first bytes, decoding only those of a compressed first
/// segment.
pub(crate) fn head(dir: &Path, n: usize) -> Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    if let Some((file, compressed, path)) = open_file(dir, 0)? {
        let read = if compressed {
            zstd::stream::read::Decoder::new(file)
                .and_then(|d| d.take(n as u64).read_to_end(&mut head))
        } else {
            file.take(n as u64).read_to_end(&mut head)
        };
        read.with_context(|| format!("reading {}", path.display()))?;
    }
    Ok(head)
}

/// The file of the segment starting at `base`: the plain one, else (compressed since)
/// the compressed one, with whether it is and its path; `None` if neither is there.
fn open_file(dir: &Path, base: u64) -> Result<Option<(File, bool, PathBuf)>> {
    for compressed in [false, true] {
        let path = Segment { base, compressed }.path(dir);
        match File::open(&path) {
            Ok(file) => return Ok(Some((file, compressed, path))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("opening the journal {}", path.display()));
            }
        }
    }
    Ok(None)
}

/// A segment's bytes: the file itself, or a compressed one's, decoded.
pub(crate) enum Content {
    Plain(File),
    Decoded(Vec<u8>),
}

impl Content {
    /// Opens `segment`, or, if it was compressed meanwhile, its compressed file.
    pub(crate) fn open(dir: &Path, segment: Segment) -> Result<Option<Content>> {
        match open_file(dir, segment.base)? {
            None => Ok(None),
            Some((file, false, _)) => Ok(Some(Content::Plain(file))),
            Some((file, true, path)) => zstd::stream::decode_all(file)
                .map(|bytes| Some(Content::Decoded(bytes)))
                .with_context(|| format!("decompressing the journal {}", path.display())),
        }
    }

    pub(crate) fn len(&self) -> u64 {
        match self {
            Content::Plain(file) => file.metadata().map_or(0, |m| m.len()),
            Content::Decoded(bytes) => bytes.len() as u64,
        }
    }

    /// Fills `buf` from offset `at` of the segment.
    pub(crate) fn read_exact_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<()> {
        match self {
            Content::Plain(file) => file.read_exact_at(buf, at),
            Content::Decoded(bytes) => {
                let at = at as usize;
                match bytes.get(at..at + buf.len()) {
                    Some(src) => {
                        buf.copy_from_slice(src);
                        Ok(())
                    }
                    None => Err(std::io::ErrorKind::UnexpectedEof.into()),
                }
            }
        }
    }

    /// The segment's bytes from `from` to `len` (its length, as just asked), by
    /// `pread`; fewer if it was cut meanwhile (a torn line removed by an appender).
    pub(crate) fn read_from(&self, from: u64, len: u64) -> std::io::Result<Vec<u8>> {
        let mut bytes = vec![0; len.saturating_sub(from) as usize];
        let mut filled = 0;
        while filled < bytes.len() {
            let n = match self {
                Content::Plain(file) => file.read_at(&mut bytes[filled..], from + filled as u64)?,
                Content::Decoded(all) => {
                    let src = all.get(from as usize + filled..).unwrap_or_default();
                    let n = src.len().min(bytes.len() - filled);
                    bytes[filled..filled + n].copy_from_slice(&src[..n]);
                    n
                }
            };
            if n == 0 {
                break;
            }
            filled += n;
        }
        bytes.truncate(filled);
        Ok(bytes)
    }
}

/// Calls `each` with every whole line from logical offset `from` up to `until` (or the
/// end), in order across segments, and the logical offset just past it. Returns the
/// offset past the last whole line read: a torn or in-progress last line is left.
pub(crate) fn for_each_line(
    dir: &Path,
    from: u64,
    until: Option<u64>,
    mut each: impl FnMut(&[u8], u64) -> Result<()>,
) -> Result<u64> {
    let Some(mut segment) = containing(dir, from)? else {
        return Ok(from);
    };
    let mut pos = from.max(segment.base);
    let until = until.unwrap_or(u64::MAX);
    let mut line = Vec::new();
    loop {
        let start = pos - segment.base;
        let Some(mut reader) = open_reader(dir, segment, start)? else {
            return Ok(pos);
        };
        loop {
            if pos >= until {
                return Ok(pos);
            }
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            if line.last() != Some(&b'\n') {
                return Ok(pos); // torn, or being written
            }
            pos += n as u64;
            each(&line, pos)?;
        }
        // Sealed segments are never empty, and the next begins where this one ends.
        if pos == segment.base || !exists(dir, pos) {
            return Ok(pos);
        }
        segment = Segment::plain(pos);
    }
}

/// A buffered reader of `segment` from its offset `start`; a compressed one is decoded
/// as it is read, not whole.
fn open_reader(dir: &Path, segment: Segment, start: u64) -> Result<Option<Box<dyn BufRead>>> {
    const BUF: usize = 1 << 20;
    let Some((mut file, compressed, path)) = open_file(dir, segment.base)? else {
        return Ok(None);
    };
    if !compressed {
        file.seek(SeekFrom::Start(start))?;
        return Ok(Some(Box::new(BufReader::with_capacity(BUF, file))));
    }
    let decoder = zstd::stream::read::Decoder::new(file)
        .with_context(|| format!("decompressing the journal {}", path.display()))?;
    let mut reader = BufReader::with_capacity(BUF, decoder);
    let skipped = std::io::copy(&mut (&mut reader).take(start), &mut std::io::sink())
        .with_context(|| format!("decompressing the journal {}", path.display()))?;
    if skipped < start {
        anyhow::bail!(
            "the journal segment {} ends before offset {start}",
            path.display()
        );
    }
    Ok(Some(Box::new(reader)))
}

/// The lines before logical offset `end`, newest first, read a block at a time from the
/// end back across segments; a line that began before the first byte read is returned
/// once its start is read.
pub(crate) struct ReverseLines {
    dir: PathBuf,
    /// The segments still to read, the one being read last.
    segments: Vec<Segment>,
    content: Option<Content>,
    /// Bytes of the segment being read before this offset are not read yet.
    from: u64,
    /// Read and not yet returned: the start of a line that began before `from`, then
    /// whole lines.
    buf: Vec<u8>,
}

impl ReverseLines {
    const BLOCK: u64 = 64 * 1024;

    pub(crate) fn new(dir: &Path, end: u64) -> Result<ReverseLines> {
        let mut segments = list(dir)?;
        segments.retain(|s| s.base < end || s.base == 0);
        let mut lines = ReverseLines {
            dir: dir.to_path_buf(),
            segments,
            content: None,
            from: 0,
            buf: Vec::new(),
        };
        lines.next_segment(Some(end))?;
        Ok(lines)
    }

    /// Moves to the segment before, read from `end` (a logical offset) or its end.
    fn next_segment(&mut self, end: Option<u64>) -> Result<bool> {
        self.content = None;
        while let Some(segment) = self.segments.pop() {
            if let Some(content) = Content::open(&self.dir, segment)? {
                let len = content.len();
                self.from = end.map_or(len, |e| e.saturating_sub(segment.base).min(len));
                self.content = Some(content);
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn next_line(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            let Some(content) = &self.content else {
                return Ok(None);
            };
            // The last line of `buf` ends at its end (a trailing newline aside).
            let body = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
            if let Some(i) = body.iter().rposition(|&b| b == b'\n') {
                let line = body[i + 1..].to_vec();
                self.buf.truncate(i + 1);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(line));
            }
            if self.from == 0 {
                // Segments begin at a line's start: what is left is a whole line.
                let line = std::mem::take(&mut self.buf);
                let line = line.strip_suffix(b"\n").unwrap_or(&line).to_vec();
                if !self.next_segment(None)? && line.iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(line));
            }
            let start = self.from.saturating_sub(Self::BLOCK);
            let mut block = vec![0; (self.from - start) as usize];
            content.read_exact_at(&mut block, start)?;
            block.extend_from_slice(&self.buf);
            self.buf = block;
            self.from = start;
        }
    }
}

impl Iterator for ReverseLines {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_line().transpose()
    }
}

/// Compresses sealed segments on a thread of its own, one pass at a time, so neither the
/// appender that sealed one nor the daemon's loop waits for it.
#[derive(Clone)]
pub(crate) struct Compressor {
    dir: PathBuf,
    /// A pass is running; `again`: another was asked for meanwhile.
    running: Arc<AtomicBool>,
    again: Arc<AtomicBool>,
}

impl Compressor {
    pub(crate) fn new(dir: PathBuf) -> Compressor {
        Compressor {
            dir,
            running: Arc::new(AtomicBool::new(false)),
            again: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Compresses whatever is sealed and still plain, soon.
    pub(crate) fn nudge(&self) {
        self.again.store(true, Ordering::SeqCst);
        if self.running.swap(true, Ordering::SeqCst) {
            return; // the running pass sees `again`
        }
        let this = self.clone();
        let spawned = std::thread::Builder::new()
            .name("baton-compress".into())
            .spawn(move || {
                loop {
                    while this.again.swap(false, Ordering::SeqCst) {
                        if let Err(e) = compress_sealed(&this.dir) {
                            tracing::warn!("compressing the journal's sealed segments: {e:#}");
                        }
                    }
                    this.running.store(false, Ordering::SeqCst);
                    // Asked again between the last pass and the flag going down?
                    if !this.again.load(Ordering::SeqCst)
                        || this.running.swap(true, Ordering::SeqCst)
                    {
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            self.running.store(false, Ordering::SeqCst);
            tracing::warn!("starting the journal's compression: {e}");
        }
    }
}

/// Compresses the sealed segments that are still plain, all but the newest sealed one.
/// Returns how many were compressed. Only the daemon calls this, so compressions never
/// race each other; readers find a segment plain or compressed, and one that holds the
/// plain file open reads it to its end.
pub(crate) fn compress_sealed(dir: &Path) -> Result<usize> {
    remove_abandoned_compressions(dir);
    let segments = list(dir)?;
    let mut done = 0;
    // The last segment is being written, the one before it stays plain.
    for pair in segments.windows(2).take(segments.len().saturating_sub(2)) {
        let (segment, next) = (pair[0], pair[1]);
        if segment.compressed {
            continue;
        }
        compress(dir, segment, next.base - segment.base)?;
        done += 1;
    }
    Ok(done)
}

/// Removes what compressions killed half-way left: compressions happen in the daemon
/// only, one at a time, so none is in progress.
fn remove_abandoned_compressions(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name
            .to_str()
            .is_some_and(|n| n.starts_with(NAME) && n.contains(".zst.tmp-"))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Compresses sealed `segment`, `len` bytes long: into a temporary file, synced and
/// renamed into place, before the plain file is removed.
fn compress(dir: &Path, segment: Segment, len: u64) -> Result<()> {
    let plain = segment.path(dir);
    let mut source = File::open(&plain).with_context(|| format!("opening {}", plain.display()))?;
    let actual = source.metadata()?.len();
    if actual != len {
        anyhow::bail!(
            "the sealed journal segment {} holds {actual} bytes, not the {len} its successor's name says; left as it is",
            plain.display()
        );
    }
    let packed = Segment {
        compressed: true,
        ..segment
    }
    .path(dir);
    let tmp = PathBuf::from(format!("{}.tmp-{}", packed.display(), std::process::id()));
    let result = (|| -> Result<()> {
        let mut out = File::create(&tmp)?;
        zstd::stream::copy_encode(&mut source, &mut out, ZSTD_LEVEL)?;
        out.sync_all()?;
        std::fs::rename(&tmp, &packed)?;
        File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("compressing {}", plain.display()));
    }
    std::fs::remove_file(&plain).with_context(|| format!("removing {}", plain.display()))?;
    tracing::info!(segment = %packed.display(), "compressed a sealed journal segment");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_in_journal_order_and_parse_back() {
        let segments = [
            Segment::plain(0),
            Segment {
                base: 0,
                compressed: true,
            },
            Segment {
                base: 4096,
                compressed: true,
            },
            Segment::plain(67_108_912),
        ];
        let names: Vec<String> = segments.iter().map(|s| s.file_name()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, names);
        for s in segments {
            assert_eq!(Segment::parse(&s.file_name()), Some(s));
        }
        assert_eq!(
            Segment::parse("journal.jsonl.0000000000004096.zst.tmp-7"),
            None
        );
        assert_eq!(Segment::parse("journal.jsonl.12"), None);
        assert_eq!(Segment::parse("lock"), None);
    }

    #[test]
    fn reverse_lines_cross_block_and_segment_boundaries() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let lines: Vec<String> = (0..20_000)
            .map(|i| format!("line {i} {}", "x".repeat(i % 50)))
            .collect();
        // Three segments, the first compressed.
        let text = lines.join("\n") + "\n";
        let cuts = [
            0,
            text.find("line 7000 ").unwrap(),
            text.find("line 15000 ").unwrap(),
        ];
        for (i, &base) in cuts.iter().enumerate() {
            let end = cuts.get(i + 1).copied().unwrap_or(text.len());
            let segment = Segment::plain(base as u64);
            std::fs::write(segment.path(dir), &text[base..end]).unwrap();
        }
        compress(dir, Segment::plain(0), cuts[1] as u64).unwrap();
        assert!(list(dir).unwrap()[0].compressed);
        assert_eq!(end(dir).unwrap(), text.len() as u64);

        let got: Vec<String> = ReverseLines::new(dir, text.len() as u64)
            .unwrap()
            .map(|l| String::from_utf8(l.unwrap()).unwrap())
            .collect();
        let mut want = lines.clone();
        want.reverse();
        assert_eq!(got, want);
        // From a line boundary in the middle of a segment.
        let mid = text.find("line 1000 ").unwrap() as u64;
        let first = ReverseLines::new(dir, mid)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(String::from_utf8(first).unwrap(), lines[999]);

        // Forwards, from the middle of the compressed segment to the middle of the last.
        let from = text.find("line 6990 ").unwrap() as u64;
        let until = text.find("line 15010 ").unwrap() as u64;
        let mut read = Vec::new();
        let stop = for_each_line(dir, from, Some(until), |line, _| {
            read.push(String::from_utf8(line.to_vec()).unwrap());
            Ok(())
        })
        .unwrap();
        assert_eq!(stop, until);
        assert_eq!(read.len(), 15010 - 6990);
        assert_eq!(read[0].trim_end(), lines[6990]);
        assert_eq!(read.last().unwrap().trim_end(), lines[15009]);
    }
}
