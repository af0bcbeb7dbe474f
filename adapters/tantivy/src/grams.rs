//! The character n-gram tokenizer that turns "is a substring of" into index
//! lookups.
//!
//! [`CharGrams`] emits, for every character offset `i` of the text, the grams
//! of `min..=max` characters starting there, each at **position `i`** (the
//! character offset, not the token's rank). Because a gram's position is
//! where it starts, a phrase query over grams taken at fixed offsets of a
//! search term (see [`crate::text`]) matches exactly the documents that
//! contain the term as a substring: the grams tile the term, and equal
//! positions pin them to one place in the text. Tantivy's own
//! `NgramTokenizer` puts every gram at position 0, which cannot express that.
//!
//! Grams are over Unicode scalar values (`char`s), the unit `str::contains`
//! on valid UTF-8 agrees with: a byte-substring of valid UTF-8 always starts
//! and ends on character boundaries.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Name under which the trigram tokenizer is registered.
pub(crate) const TRIGRAMS: &str = "bazaar_trigrams";
/// Name under which the 1- and 2-gram tokenizer is registered.
pub(crate) const SHORT_GRAMS: &str = "bazaar_short_grams";

/// Emits every gram of `min..=max` characters, positioned at its start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CharGrams {
    min: usize,
    max: usize,
}

impl CharGrams {
    /// Exactly three characters: the grams of [`TRIGRAMS`].
    pub(crate) const TRI: Self = Self { min: 3, max: 3 };
    /// One and two characters: the grams of [`SHORT_GRAMS`], for search
    /// terms too short to hold a trigram.
    pub(crate) const SHORT: Self = Self { min: 1, max: 2 };
}

/// The token stream of one text: character boundaries are collected once so
/// every gram is a slice between two of them.
#[derive(Debug)]
pub(crate) struct CharGramStream<'a> {
    text: &'a str,
    /// Byte offset of every character start, plus `text.len()`.
    bounds: Vec<usize>,
    grams: CharGrams,
    /// Character offset of the current gram's start.
    start: usize,
    /// Length in characters of the next gram to emit at `start`.
    len: usize,
    token: Token,
}

impl Tokenizer for CharGrams {
    type TokenStream<'a> = CharGramStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> CharGramStream<'a> {
        let bounds = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
        CharGramStream { text, bounds, grams: *self, start: 0, len: self.min, token: Token::default() }
    }
}

impl TokenStream for CharGramStream<'_> {
    fn advance(&mut self) -> bool {
        let chars = self.bounds.len() - 1;
        loop {
            if self.start + self.grams.min > chars {
                return false;
            }
            if self.len > self.grams.max || self.start + self.len > chars {
                self.start += 1;
                self.len = self.grams.min;
                continue;
            }
            let (from, to) = (self.bounds[self.start], self.bounds[self.start + self.len]);
            self.token.offset_from = from;
            self.token.offset_to = to;
            self.token.position = self.start;
            self.token.position_length = 1;
            self.token.text.clear();
            self.token.text.push_str(&self.text[from..to]);
            self.len += 1;
            return true;
        }
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grams(g: CharGrams, text: &str) -> Vec<(String, usize)> {
        let mut g = g;
        let mut stream = g.token_stream(text);
        let mut out = Vec::new();
        while let Some(t) = stream.next() {
            out.push((t.text.clone(), t.position));
        }
        out
    }

    #[test]
    fn trigrams_sit_at_their_character_offset() {
        let got = grams(CharGrams::TRI, "straße");
        let want = [("str", 0), ("tra", 1), ("raß", 2), ("aße", 3)];
        assert_eq!(got, want.map(|(t, p)| (t.to_owned(), p)));
        assert!(grams(CharGrams::TRI, "ab").is_empty());
        assert!(grams(CharGrams::TRI, "").is_empty());
    }

    #[test]
    fn short_grams_cover_one_and_two_characters() {
        let got = grams(CharGrams::SHORT, "日本語");
        let want = [("日", 0), ("日本", 0), ("本", 1), ("本語", 1), ("語", 2)];
        assert_eq!(got, want.map(|(t, p)| (t.to_owned(), p)));
        assert_eq!(grams(CharGrams::SHORT, "a"), [("a".to_owned(), 0)]);
    }
}
