//! One segment's vocabulary of a words field, with a trigram map, so the
//! words containing a term are found without reading every word.
//!
//! Built when a segment is warmed, from the field's term dictionary: every
//! word (a term of [`crate::tokens::Words`]), where its posting list is, and
//! for each trigram the words holding it. The words containing a term of
//! three or more characters are among those holding the term's rarest
//! trigram, and each of those is checked with `str::contains`, so the answer
//! is exact.

use std::collections::HashMap;

use tantivy::postings::TermInfo;
use tantivy::termdict::TermDictionary;

/// The words of one field in one segment.
#[derive(Debug, Default)]
pub(crate) struct Vocab {
    words: Vec<Box<str>>,
    infos: Vec<TermInfo>,
    /// Trigram → ordinals of the words holding it, ascending.
    trigrams: HashMap<Box<str>, Vec<u32>>,
}

/// The trigrams of `s`, as byte ranges.
fn trigrams(s: &str) -> impl Iterator<Item = &str> {
    let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
    let n = bounds.len().saturating_sub(3);
    (0..n).map(move |i| &s[bounds[i]..bounds[i + 3]])
}

impl Vocab {
    /// Reads every word of `terms`.
    ///
    /// # Errors
    /// When the dictionary cannot be read.
    pub(crate) fn build(terms: &TermDictionary) -> std::io::Result<Self> {
        let mut vocab = Self::default();
        let mut stream = terms.stream()?;
        while stream.advance() {
            // Words come from `str`s, so they are UTF-8; a key that is not
            // could only be corruption, and matches nothing.
            let Ok(word) = std::str::from_utf8(stream.key()) else { continue };
            let ord = u32::try_from(vocab.words.len()).unwrap_or(u32::MAX);
            for gram in trigrams(word) {
                let ords = vocab.trigrams.entry(gram.into()).or_default();
                // A word repeating a trigram lists itself once.
                if ords.last() != Some(&ord) {
                    ords.push(ord);
                }
            }
            vocab.words.push(word.into());
            vocab.infos.push(stream.value().clone());
        }
        Ok(vocab)
    }

    /// Where the posting lists of the words containing `term` are; `term`
    /// has at least three characters.
    pub(crate) fn containing(&self, term: &str) -> Vec<&TermInfo> {
        let mut rarest: Option<&Vec<u32>> = None;
        for gram in trigrams(term) {
            match self.trigrams.get(gram) {
                None => return Vec::new(),
                Some(ords) if rarest.is_none_or(|r| ords.len() < r.len()) => rarest = Some(ords),
                Some(_) => {}
            }
        }
        rarest
            .into_iter()
            .flatten()
            .filter(|&&ord| self.words[ord as usize].contains(term))
            .map(|&ord| &self.infos[ord as usize])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigrams_are_per_character() {
        assert_eq!(trigrams("straße").collect::<Vec<_>>(), ["str", "tra", "raß", "aße"]);
        assert_eq!(trigrams("ab").count(), 0);
    }
}
