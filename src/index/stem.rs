//! The English analyzer, in one pass: split on non-alphanumerics, drop tokens of 64
//! bytes or more, lowercase, stem, exactly as tantivy's `SimpleTokenizer`,
//! `RemoveLongFilter::limit(64)`, `LowerCaser` and `Stemmer` chained, but with a memo.
//! Words follow Zipf's law, so a few thousand distinct words make up most of any text,
//! and the Snowball stemmer costs far more than a hash lookup (with tantivy's chain it
//! is a large share of an index build: bench/RESULTS.md). The memo maps each word as written to its stem, so
//! a known word skips lowercasing and stemming both.
//!
//! The memo lives in the tokenizer, which tantivy clones per field per segment writer,
//! so it is never shared between threads. It is bounded: when full it is cleared.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use rustc_hash::FxHasher;
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Tokens this long (bytes) or longer are dropped, as `RemoveLongFilter::limit(64)` does.
const MAX_TOKEN_LEN: usize = 64;
/// Distinct words remembered before the memo starts over (a few MB at most).
const MEMO_WORDS: usize = 50_000;
/// Longer tokens are stemmed each time: they are rare, and would bloat the memo.
const MEMO_WORD_LEN: usize = 24;

const ASCII_GAP: u8 = 0;
const ASCII_WORD: u8 = 1;
const NON_ASCII: u8 = 2;
/// Each byte's class: an ASCII letter or digit, other ASCII, or part of a longer
/// character (decoded and asked `char::is_alphanumeric`).
static BYTE_CLASS: [u8; 256] = {
    let mut table = [NON_ASCII; 256];
    let mut b = 0;
    while b < 128 {
        table[b] = if (b as u8).is_ascii_alphanumeric() {
            ASCII_WORD
        } else {
            ASCII_GAP
        };
        b += 1;
    }
    table
};

/// A word of up to [`MEMO_WORD_LEN`] bytes, zero-padded, with its length: hashed and
/// compared as four integers rather than through `memcmp`.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Word([u64; 3], usize);

impl Word {
    /// The word at `text[from..from + len]` (`len` at most [`MEMO_WORD_LEN`]). Where
    /// the text goes on far enough, three unaligned loads, masked; copying the word
    /// into a zeroed array first cost a `memcpy` call and a stall reading it back.
    fn at(text: &[u8], from: usize, len: usize) -> Word {
        debug_assert!(len <= MEMO_WORD_LEN);
        let lane = |bytes: &[u8], i: usize| {
            let kept = len.saturating_sub(i * 8).min(8);
            let mask = if kept == 8 {
                u64::MAX
            } else {
                (1u64 << (kept * 8)) - 1
            };
            u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes")) & mask
        };
        match text.get(from..from + MEMO_WORD_LEN) {
            Some(window) => Word([lane(window, 0), lane(window, 1), lane(window, 2)], len),
            None => {
                let mut padded = [0u8; MEMO_WORD_LEN];
                padded[..len].copy_from_slice(&text[from..from + len]);
                Word([lane(&padded, 0), lane(&padded, 1), lane(&padded, 2)], len)
            }
        }
    }
}

type Memo = HashMap<Word, Box<str>, BuildHasherDefault<FxHasher>>;

/// Lowercased, stemmed English words (register it as a `TextAnalyzer`).
#[derive(Clone, Default)]
pub(crate) struct EnglishWords {
    token: Token,
    memo: Memo,
    /// Scratch for lowercasing a word the memo does not know.
    lower: String,
}

impl Tokenizer for EnglishWords {
    type TokenStream<'a> = EnglishWordStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> EnglishWordStream<'a> {
        self.token.reset();
        EnglishWordStream {
            text,
            at: 0,
            token: &mut self.token,
            memo: &mut self.memo,
            lower: &mut self.lower,
            stemmer: frostem::Stemmer::new(frostem::Algorithm::English),
        }
    }
}

pub(crate) struct EnglishWordStream<'a> {
    text: &'a str,
    /// Where the search for the next word starts (a char boundary).
    at: usize,
    token: &'a mut Token,
    memo: &'a mut Memo,
    lower: &'a mut String,
    stemmer: frostem::Stemmer,
}

impl EnglishWordStream<'_> {
    /// The next run of alphanumerics, as `SimpleTokenizer` finds it. ASCII bytes are
    /// classified as bytes; only other characters are decoded.
    fn next_word(&mut self) -> Option<(usize, usize)> {
        let from = self.skip(self.at, false);
        if from == self.text.len() {
            self.at = from;
            return None;
        }
        let to = self.skip(from, true);
        self.at = to;
        Some((from, to))
    }

    /// The first position from `at` whose character is not (`word`) or is (`!word`)
    /// alphanumeric, or the end of the text.
    fn skip(&self, mut at: usize, word: bool) -> usize {
        let bytes = self.text.as_bytes();
        let want = if word { ASCII_WORD } else { ASCII_GAP };
        while let Some(&b) = bytes.get(at) {
            let class = BYTE_CLASS[b as usize];
            if class == want {
                at += 1;
                continue;
            }
            let (alphanumeric, len) = if class != NON_ASCII {
                (class == ASCII_WORD, 1)
            } else {
                let c = self.text[at..]
                    .chars()
                    .next()
                    .expect("at is a char boundary");
                (c.is_alphanumeric(), c.len_utf8())
            };
            if alphanumeric != word {
                return at;
            }
            at += len;
        }
        at
    }

    /// `word` lowercased (as `LowerCaser` does) and stemmed.
    fn stem(&mut self, word: &str) -> String {
        self.lower.clear();
        if word.is_ascii() {
            self.lower.push_str(word);
            self.lower.make_ascii_lowercase();
        } else {
            // LowerCaser's rule: char by char (no final-sigma special case).
            self.lower.extend(word.chars().flat_map(char::to_lowercase));
        }
        self.stemmer.stem(self.lower.as_str()).into_owned()
    }
}

impl TokenStream for EnglishWordStream<'_> {
    fn advance(&mut self) -> bool {
        loop {
            // Every word takes a position, kept or not, as in tantivy's chain.
            self.token.position = self.token.position.wrapping_add(1);
            let Some((from, to)) = self.next_word() else {
                return false;
            };
            let text = self.text;
            let word = &text[from..to];
            if word.len() >= MAX_TOKEN_LEN {
                continue;
            }
            self.token.offset_from = from;
            self.token.offset_to = to;
            self.token.text.clear();
            if word.len() > MEMO_WORD_LEN {
                let stem = self.stem(word);
                self.token.text.push_str(&stem);
                return true;
            }
            let key = Word::at(text.as_bytes(), from, word.len());
            if let Some(stem) = self.memo.get(&key) {
                self.token.text.push_str(stem);
                return true;
            }
            let stem = self.stem(word);
            if self.memo.len() >= MEMO_WORDS {
                self.memo.clear();
            }
            self.token.text.push_str(&stem);
            self.memo.insert(key, stem.into_boxed_str());
            return true;
        }
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::tokenizer::{
        LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer,
    };

    fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<(String, usize, usize, usize)> {
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while let Some(t) = stream.next() {
            out.push((t.text.clone(), t.position, t.offset_from, t.offset_to));
        }
        out
    }

    #[test]
    fn a_word_has_one_key_wherever_it_stands() {
        // In the middle of a text the key is read through a window past the word; at
        // the end, from a padded copy. Both must agree, or the memo would miss.
        let text = "launches and more text after it, long enough: launches";
        let middle = Word::at(text.as_bytes(), 0, "launches".len());
        let end = Word::at(text.as_bytes(), text.len() - 8, "launches".len());
        assert!(text.len() >= MEMO_WORD_LEN && text.len() - 8 + MEMO_WORD_LEN > text.len());
        assert!(middle == end);
        assert!(
            Word::at(text.as_bytes(), 0, 7) != middle,
            "the length is part of the key"
        );
        let full = "abcdefghijklmnopqrstuvwx"; // exactly MEMO_WORD_LEN bytes
        assert!(Word::at(full.as_bytes(), 0, 24) == Word::at(format!("{full}!").as_bytes(), 0, 24));
    }

    #[test]
    fn gives_exactly_tantivys_chain_whether_remembered_or_not() {
        let long = "x".repeat(70);
        let text = format!(
            "Running runs ran; the launches launched LAUNCHING generously \
             internationalizations internationalization {long} running runs \
             Ärger ÜBER Straße İstanbul ΣΊΣΥΦΟΣ naïve café 42 v2 _under_score 日本語テキスト"
        );
        let mut chain = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(MAX_TOKEN_LEN))
            .filter(LowerCaser)
            .filter(Stemmer::default())
            .build();
        let mut ours = TextAnalyzer::from(EnglishWords::default());
        let want = tokens(&mut chain, &text);
        assert_eq!(want[0].0, "run");
        assert!(
            want.iter().all(|t| t.0 != long),
            "the long token is dropped"
        );
        // Twice: the second pass answers from the memo.
        assert_eq!(tokens(&mut ours, &text), want);
        assert_eq!(tokens(&mut ours, &text), want);
        // And a new text starts its positions again.
        assert_eq!(tokens(&mut ours, "Runs")[0], ("run".to_string(), 0, 0, 4));
    }
}
