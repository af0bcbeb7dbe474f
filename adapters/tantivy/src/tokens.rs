//! The two tokenizers exact substring search rests on.
//!
//! A search term never contains whitespace (the query is split on it), so
//! a term occurs in a text exactly when it occurs inside one of the text's
//! whitespace-separated words. Hence:
//! - [`Words`] indexes each word of the (already lower-cased) text whole;
//!   the terms of 3+ characters are found by first finding the words that
//!   contain them in the segment's vocabulary ([`crate::vocab`]), then
//!   reading those words' posting lists;
//! - [`ShortGrams`] indexes every 1- and 2-character gram of each word, so a
//!   term of 1 or 2 characters (which would match a large part of any
//!   vocabulary) is one posting list.
//!
//! Words are split exactly as `str::split_whitespace` splits them, the
//! reference's own rule for terms. Tantivy drops terms longer than 65,530
//! bytes, so a word longer than [`WINDOW`] characters is indexed as
//! overlapping windows instead: a term has at most [`MAX_QUERY_CHARS`]
//! characters, and consecutive windows overlap by that many, so every
//! occurrence of a term lies wholly inside some window.

use bazaar_core::catalog::search::MAX_QUERY_CHARS;
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Name under which [`Words`] is registered.
pub(crate) const WORDS: &str = "bazaar_words";
/// Name under which [`ShortGrams`] is registered.
pub(crate) const SHORT_GRAMS: &str = "bazaar_short_grams";

/// Longest word indexed whole, in characters (at most 4 bytes each, far
/// below tantivy's term limit).
pub(crate) const WINDOW: usize = 1_000;
/// How far apart consecutive windows of a long word start.
const STRIDE: usize = WINDOW - MAX_QUERY_CHARS;

/// Emits each whitespace-separated word (windows of long ones).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Words;

/// Emits every gram of 1 and 2 characters inside each word.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ShortGrams;

/// The tokens of one text, computed up front (texts are short, and either
/// tokenizer's output is a simple function of the words).
#[derive(Debug)]
pub(crate) struct Tokens {
    tokens: std::vec::IntoIter<Token>,
    token: Token,
}

impl Tokens {
    fn new(tokens: Vec<Token>) -> Self {
        Self { tokens: tokens.into_iter(), token: Token::default() }
    }
}

fn token(text: &str, from: usize, to: usize, position: usize) -> Token {
    Token { offset_from: from, offset_to: to, position, text: text[from..to].to_owned(), position_length: 1 }
}

/// The byte ranges of the words of `text`, long words cut into windows.
fn word_ranges(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        let start = word.as_ptr() as usize - text.as_ptr() as usize;
        let bounds: Vec<usize> = word.char_indices().map(|(i, _)| start + i).chain([start + word.len()]).collect();
        let chars = bounds.len() - 1;
        if chars <= WINDOW {
            out.push((start, start + word.len()));
            continue;
        }
        let mut from = 0;
        loop {
            let to = (from + WINDOW).min(chars);
            out.push((bounds[from], bounds[to]));
            if to == chars {
                break;
            }
            from += STRIDE;
        }
    }
    out
}

impl Tokenizer for Words {
    type TokenStream<'a> = Tokens;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Tokens {
        let tokens =
            word_ranges(text).into_iter().enumerate().map(|(i, (from, to))| token(text, from, to, i)).collect();
        Tokens::new(tokens)
    }
}

impl Tokenizer for ShortGrams {
    type TokenStream<'a> = Tokens;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Tokens {
        let mut tokens = Vec::new();
        for word in text.split_whitespace() {
            let start = word.as_ptr() as usize - text.as_ptr() as usize;
            let bounds: Vec<usize> = word.char_indices().map(|(i, _)| start + i).chain([start + word.len()]).collect();
            for i in 0..bounds.len() - 1 {
                for len in 1..=2 {
                    if let Some(&to) = bounds.get(i + len) {
                        let position = tokens.len();
                        tokens.push(token(text, bounds[i], to, position));
                    }
                }
            }
        }
        Tokens::new(tokens)
    }
}

impl TokenStream for Tokens {
    fn advance(&mut self) -> bool {
        match self.tokens.next() {
            Some(t) => {
                self.token = t;
                true
            }
            None => false,
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

    fn texts(mut t: impl Tokenizer, text: &str) -> Vec<String> {
        let mut stream = t.token_stream(text);
        let mut out = Vec::new();
        while let Some(tok) = stream.next() {
            out.push(tok.text.clone());
        }
        out
    }

    #[test]
    fn words_split_like_split_whitespace() {
        let text = "gmail\u{3000}triage\n\u{a0}straße  x*y\t日本語";
        assert_eq!(texts(Words, text), text.split_whitespace().collect::<Vec<_>>());
        assert!(texts(Words, " \n ").is_empty());
    }

    #[test]
    fn short_grams_stay_inside_words() {
        assert_eq!(texts(ShortGrams, "ab c"), ["a", "ab", "b", "c"]);
        assert_eq!(texts(ShortGrams, "日本"), ["日", "日本", "本"]);
    }

    #[test]
    fn long_words_become_overlapping_windows_that_hold_every_term() {
        // Pseudo-random letters, so no stretch of the word repeats elsewhere.
        let mut seed = 1u64;
        let word: String = (0..2_500)
            .map(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                char::from(b'a' + u8::try_from((seed >> 33) % 26).unwrap())
            })
            .collect();
        let windows = texts(Words, &format!("x {word} y"));
        assert_eq!(windows.first().map(String::as_str), Some("x"));
        assert_eq!(windows.last().map(String::as_str), Some("y"));
        let windows = &windows[1..windows.len() - 1];
        assert!(windows.iter().all(|w| w.chars().count() <= WINDOW));
        let chars: Vec<char> = word.chars().collect();
        for start in (0..chars.len() - MAX_QUERY_CHARS).step_by(7) {
            let term: String = chars[start..start + MAX_QUERY_CHARS].iter().collect();
            assert!(windows.iter().any(|w| w.contains(&term)), "term at {start}");
        }
        assert!(windows.iter().any(|w| w.ends_with(&word[word.len() - 10..])), "the tail is covered");
    }

    /// The premise of the word index: lower-casing never makes whitespace,
    /// so a lower-cased term has none.
    #[test]
    fn lower_casing_never_makes_whitespace() {
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32).filter(|c| !c.is_whitespace()) {
            assert!(!c.to_lowercase().any(char::is_whitespace), "{c:?}");
        }
    }
}
