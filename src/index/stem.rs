//! English stemming with a memo. Words follow Zipf's law, so a few thousand distinct
//! words make up most of any text, and the Snowball stemmer costs far more than a hash
//! lookup: with tantivy's plain `Stemmer` it was about 45% of an index build.
//!
//! The memo lives in the filter, which tantivy clones per field per segment writer, so it
//! is never shared between threads. It is bounded: when full it is cleared.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use rustc_hash::FxHasher;
use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// Distinct words remembered before the memo starts over (a few MB at most).
const MEMO_WORDS: usize = 50_000;
/// Longer tokens are stemmed each time: they are rare, and would bloat the memo.
const MEMO_WORD_LEN: usize = 24;

/// A word of up to [`MEMO_WORD_LEN`] bytes, zero-padded, with its length: hashed and
/// compared as four integers rather than through `memcmp`.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Word([u64; 3], usize);

impl Word {
    fn new(word: &str) -> Word {
        let mut bytes = [0u8; MEMO_WORD_LEN];
        bytes[..word.len()].copy_from_slice(word.as_bytes());
        let lane = |i: usize| u64::from_ne_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
        Word([lane(0), lane(1), lane(2)], word.len())
    }
}

type Memo = HashMap<Word, Box<str>, BuildHasherDefault<FxHasher>>;

/// A [`TokenFilter`] stemming lowercased English words, like tantivy's `Stemmer`, but
/// remembering each word's stem.
#[derive(Clone, Default)]
pub struct CachedStemmer;

impl TokenFilter for CachedStemmer {
    type Tokenizer<T: Tokenizer> = CachedStemmerFilter<T>;

    fn transform<T: Tokenizer>(self, inner: T) -> CachedStemmerFilter<T> {
        CachedStemmerFilter {
            inner,
            memo: Memo::default(),
        }
    }
}

#[derive(Clone)]
pub struct CachedStemmerFilter<T> {
    inner: T,
    memo: Memo,
}

impl<T: Tokenizer> Tokenizer for CachedStemmerFilter<T> {
    type TokenStream<'a> = CachedStemmerStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        CachedStemmerStream {
            tail: self.inner.token_stream(text),
            memo: &mut self.memo,
            stemmer: frostem::Stemmer::new(frostem::Algorithm::English),
        }
    }
}

pub struct CachedStemmerStream<'a, S> {
    tail: S,
    memo: &'a mut Memo,
    stemmer: frostem::Stemmer,
}

impl<S: TokenStream> TokenStream for CachedStemmerStream<'_, S> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token_mut();
        if token.text.len() > MEMO_WORD_LEN {
            if let std::borrow::Cow::Owned(stem) = self.stemmer.stem(&token.text) {
                token.text = stem;
            }
            return true;
        }
        let word = Word::new(&token.text);
        if let Some(stem) = self.memo.get(&word) {
            token.text.clear();
            token.text.push_str(stem);
            return true;
        }
        let stem: Box<str> = self.stemmer.stem(&token.text).into();
        if self.memo.len() >= MEMO_WORDS {
            self.memo.clear();
        }
        self.memo.insert(word, stem.clone());
        token.text.clear();
        token.text.push_str(&stem);
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::tokenizer::{LowerCaser, SimpleTokenizer, Stemmer, TextAnalyzer};

    fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while let Some(t) = stream.next() {
            out.push(t.text.clone());
        }
        out
    }

    #[test]
    fn stems_exactly_as_tantivys_stemmer_whether_remembered_or_not() {
        let text = "Running runs ran; the launches launched LAUNCHING generously \
                    internationalizations internationalization running runs";
        let mut plain = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .filter(Stemmer::default())
            .build();
        let mut cached = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .filter(CachedStemmer)
            .build();
        let want = tokens(&mut plain, text);
        assert_eq!(want[..3], ["run", "run", "ran"]);
        // Twice: the second pass answers from the memo.
        assert_eq!(tokens(&mut cached, text), want);
        assert_eq!(tokens(&mut cached, text), want);
    }
}
