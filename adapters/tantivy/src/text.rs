//! The text part of a search as one tantivy query: exact substring matching
//! with the reference's relevance weights as the score.
//!
//! For one lower-cased term and one text source the query matches exactly
//! the documents whose lower-cased source contains the term:
//! - 1 or 2 characters: that gram in the source's `_short` field;
//! - 3 characters: that trigram in the `_tri` field;
//! - more: a phrase of trigrams taken at character offsets `0, 3, 6, …` and
//!   `len - 3`, each at its offset. The trigrams cover every character of
//!   the term and positions are character offsets ([`crate::grams`]), so the
//!   phrase matches where, and only where, the whole term occurs. (Taking
//!   every third trigram instead of all of them reads a third as many
//!   posting lists for the same answer.)
//!
//! Each source query scores its weight (title 3, tags 2, description 1) as a
//! constant; a term's query is the union of its three sources, whose scores
//! add up; the text query is the intersection of its terms (a repeated term
//! is a repeated clause), whose scores add up too. So a document's score is
//! exactly [`relevance`](bazaar_core::catalog::search::relevance), computed
//! by the engine, and a document matches exactly when the reference says it
//! does. Scores are small integers (at most 6 × 100 terms), exact in `f32`.

use tantivy::Term;
use tantivy::query::{AllQuery, BooleanQuery, ConstScoreQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::IndexRecordOption;

use crate::schema::{Fields, Source};

/// The query matching every document whose text contains every term
/// (already lower-cased), scored by the reference's weights; every document
/// when there are no terms.
pub(crate) fn text_query(fields: &Fields, terms: &[String]) -> Box<dyn Query> {
    if terms.is_empty() {
        return Box::new(AllQuery);
    }
    let per_term: Vec<(Occur, Box<dyn Query>)> = terms.iter().map(|t| (Occur::Must, term_query(fields, t))).collect();
    Box::new(BooleanQuery::new(per_term))
}

/// One term in any source, scoring the sum of the weights of the sources
/// that contain it.
fn term_query(fields: &Fields, term: &str) -> Box<dyn Query> {
    let sources = Source::ALL
        .into_iter()
        .map(|s| {
            let q: Box<dyn Query> = Box::new(ConstScoreQuery::new(substring(fields, s, term), f32::from(s.weight())));
            (Occur::Should, q)
        })
        .collect();
    Box::new(BooleanQuery::new(sources))
}

/// Documents whose `source` contains `term` (see the module docs).
fn substring(fields: &Fields, source: Source, term: &str) -> Box<dyn Query> {
    let f = fields.text(source);
    let bounds: Vec<usize> = term.char_indices().map(|(i, _)| i).chain([term.len()]).collect();
    let chars = bounds.len() - 1;
    if chars < 3 {
        return Box::new(TermQuery::new(Term::from_field_text(f.short, term), IndexRecordOption::Basic));
    }
    let gram = |at: usize| Term::from_field_text(f.tri, &term[bounds[at]..bounds[at + 3]]);
    if chars == 3 {
        return Box::new(TermQuery::new(gram(0), IndexRecordOption::Basic));
    }
    Box::new(PhraseQuery::new_with_offset(gram_offsets(chars).into_iter().map(|at| (at, gram(at))).collect()))
}

/// Where the trigrams of a term of `chars > 3` characters are taken: every
/// third offset, and the last trigram so the tail is covered.
fn gram_offsets(chars: usize) -> Vec<usize> {
    let last = chars - 3;
    let mut offsets: Vec<usize> = (0..last).step_by(3).collect();
    offsets.push(last);
    offsets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigram_offsets_cover_every_character() {
        assert_eq!(gram_offsets(4), [0, 1]);
        assert_eq!(gram_offsets(6), [0, 3]);
        assert_eq!(gram_offsets(7), [0, 3, 4]);
        assert_eq!(gram_offsets(9), [0, 3, 6]);
        for chars in 4..40 {
            let offsets = gram_offsets(chars);
            let covered: std::collections::BTreeSet<usize> = offsets.iter().flat_map(|&o| o..o + 3).collect();
            assert_eq!(covered, (0..chars).collect(), "{chars}");
            assert!(offsets.len() >= 2, "a phrase needs two grams");
        }
    }

    #[test]
    fn phrases_use_the_sources_trigram_field() {
        let (_, fields) = Fields::schema();
        let q = substring(&fields, Source::Tags, "straße");
        let phrase = q.downcast_ref::<PhraseQuery>().expect("a phrase");
        assert_eq!(phrase.field(), fields.text(Source::Tags).tri);
        let grams: Vec<String> = phrase.phrase_terms().iter().map(|t| t.value().as_str().unwrap().to_owned()).collect();
        assert_eq!(grams, ["str", "aße"]);
    }
}
