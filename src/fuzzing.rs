//! Fuzzing on the stable toolchain (issue 13): a seeded mutation loop per target, over
//! the seeds in `fuzz/seeds/<target>/`. Each input runs under `catch_unwind`; one that
//! panics, or breaks a target's invariant, is written to `fuzz/crashes/` and fails the
//! test. CI runs each target for a moment; a long run:
//!
//! ```text
//! BATON_FUZZ_SECS=1800 cargo test --release --lib fuzzing -- --test-threads 1
//! ```
//!
//! `BATON_FUZZ_SEED` picks the mutation sequence (default: from the clock, printed).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// xorshift64*: small, fast and reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Tokens that mean something to one parser or another.
const TOKENS: &[&[u8]] = &[
    b"+++",
    b"\n",
    b"\r\n",
    b"..",
    b"/",
    b"\0",
    b"[agents.",
    b"[workspace]",
    b"=",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"\"\"",
    b"'",
    b"#",
    b"\\u0000",
    b"\xff",
    b"\xe2\x80\xae",
    b"on = [\"briefs/**\"]",
    b"run = []",
    b"seq",
    b"\"kind\":",
    b":-1",
    b"99999999999999999999",
    b"1e400",
    b"\x1b[31m",
    b"~",
    b".swp",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(4) {
        let len = input.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(len + 1);
                input.insert(i, rng.next() as u8);
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below((len - i).min(64)) + 1;
                input.drain(i..i + n);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below((len - i).min(64)) + 1;
                let copy = input[i..i + n].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, copy);
            }
            4 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                let at = rng.below(len + 1);
                input.splice(at..at, token.iter().copied());
            }
            5 if !seeds.is_empty() => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let i = rng.below(other.len());
                    let n = rng.below(other.len() - i) + 1;
                    let at = rng.below(len + 1);
                    input.splice(at..at, other[i..i + n].iter().copied());
                }
            }
            _ if len > 0 => input.truncate(rng.below(len)),
            _ => input.push(rng.next() as u8),
        }
    }
    input.truncate(1 << 16);
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = fuzz_dir().join("seeds").join(target);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the seeds of {target} in {}: {e}", dir.display()))
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds for {target}");
    seeds
}

/// Runs `check` on mutations of `target`'s seeds for `BATON_FUZZ_SECS` (default 2 s).
/// `check` panics on a broken invariant; a panic of any kind is a finding.
fn run(target: &str, check: impl Fn(&[u8])) {
    let secs: u64 = std::env::var("BATON_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let seed: u64 = std::env::var("BATON_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        | 1;
    eprintln!("fuzzing {target} for {secs} s, BATON_FUZZ_SEED={seed}");
    let seeds = seeds(target);
    let mut rng = Rng(seed);
    let end = Instant::now() + Duration::from_secs(secs);
    let mut runs = 0u64;
    // Quiet panics: each is caught and reported here.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut found = None;
    while Instant::now() < end {
        let mut input = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &mut input, &seeds);
        runs += 1;
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| check(&input))) {
            let message = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            found = Some((input, message));
            break;
        }
    }
    std::panic::set_hook(hook);
    eprintln!("{target}: {runs} inputs");
    if let Some((input, message)) = found {
        let dir = fuzz_dir().join("crashes");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!(
            "{target}-{}",
            &blake3::hash(&input).to_hex().as_str()[..16]
        ));
        let _ = std::fs::write(&path, &input);
        panic!(
            "{target}: an input fails ({message}); kept in {}",
            path.display()
        );
    }
}

#[test]
fn fuzzing_the_config_parser() {
    run("config", |input| {
        let text = String::from_utf8_lossy(input);
        if let Err(e) = crate::config::Config::parse(&text, Path::new("/nonexistent")) {
            let shown = e.to_string();
            assert!(e.line >= 1 && e.column >= 1, "{shown}");
        }
    });
}

#[test]
fn fuzzing_the_front_matter_parser() {
    run("frontmatter", |input| {
        let _ = crate::frontmatter::from_head(input);
        if let Ok(text) = std::str::from_utf8(input) {
            if let Ok((_, body)) = crate::frontmatter::parse(text) {
                assert!(text.ends_with(body), "the body is the text's tail");
            }
            let _ = crate::frontmatter::with_keys(text, &[("to", "writer")]);
        }
    });
}

#[test]
fn fuzzing_the_path_normaliser() {
    run("path", |input| {
        let text = String::from_utf8_lossy(input);
        if let Ok(p) = crate::workspace::RelPath::new(&text) {
            let s = p.as_str();
            assert!(!s.starts_with('/') && !s.is_empty(), "{s:?}");
            assert!(
                s.split('/').all(|part| !matches!(part, "" | "." | "..")),
                "{s:?}"
            );
            assert!(!s.chars().any(|c| c.is_control() || c == '\\'), "{s:?}");
            assert_eq!(crate::workspace::RelPath::new(s).unwrap().as_str(), s);
        }
    });
}

#[test]
fn fuzzing_the_journal_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = crate::workspace::Workspace::at(tmp.path().to_path_buf());
    std::fs::create_dir_all(ws.journal_dir()).unwrap();
    let journal = crate::journal::journal_path(&ws);
    run("journal", |input| {
        std::fs::write(&journal, input).unwrap();
        // Every reader reads the same entries, whatever the bytes.
        let all = crate::journal::read_all(&ws).unwrap();
        let (tailed, _) = crate::journal::Tail::open(&ws)
            .unwrap()
            .unwrap()
            .read_new()
            .unwrap();
        let seqs = |entries: &[crate::journal::Entry]| -> Vec<u64> {
            entries.iter().map(|e| e.seq).collect()
        };
        assert_eq!(seqs(&all), seqs(&tailed));
        let backwards =
            crate::journal::segments::ReverseLines::new(&ws.journal_dir(), input.len() as u64)
                .unwrap()
                .count();
        assert!(backwards >= all.len());
        let _ = crate::journal::State::replay(&all);
    });
}
