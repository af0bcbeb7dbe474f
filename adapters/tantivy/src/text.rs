//! The text part of a search as one tantivy query: exact substring matching
//! with the reference's relevance weights as the score.
//!
//! For one lower-cased term and one text source the query matches exactly
//! the documents whose lower-cased source contains the term
//! ([`crate::tokens`] says why words suffice):
//! - 1 or 2 characters: that gram in the source's `_short` field;
//! - more: [`WordsContaining`], the documents of every word of the source's
//!   `_words` field that contains the term, per segment.
//!
//! Each source query scores its weight (title 3, tags 2, description 1) as a
//! constant; a term's query is the union of its three sources, whose scores
//! add up; the text query is the intersection of its terms (a repeated term
//! is a repeated clause), whose scores add up too. So a document's score is
//! exactly [`relevance`](bazaar_core::catalog::search::relevance), computed
//! by the engine, and a document matches exactly when the reference says it
//! does. Scores are small integers (at most 6 × 100 terms), exact in `f32`.

use std::fmt;
use std::sync::Arc;

use tantivy::query::{
    AllQuery, BitSetDocSet, BooleanQuery, ConstScoreQuery, ConstScorer, EmptyScorer, EnableScoring, Explanation, Occur,
    Query, Scorer, TermQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{BitSet, DocId, DocSet, Score, SegmentReader, TERMINATED, TantivyError, Term};

use crate::schema::{Fields, Source};
use crate::table::Tables;

/// The query matching every document whose text contains every term
/// (already lower-cased), scored by the reference's weights; every document
/// when there are no terms.
pub(crate) fn text_query(fields: &Fields, tables: &Arc<Tables>, terms: &[String]) -> Box<dyn Query> {
    if terms.is_empty() {
        return Box::new(AllQuery);
    }
    let per_term = terms.iter().map(|t| (Occur::Must, term_query(fields, tables, t))).collect();
    Box::new(BooleanQuery::new(per_term))
}

/// One term in any source, scoring the sum of the weights of the sources
/// that contain it.
fn term_query(fields: &Fields, tables: &Arc<Tables>, term: &str) -> Box<dyn Query> {
    let sources = Source::ALL
        .into_iter()
        .map(|s| {
            let q: Box<dyn Query> =
                Box::new(ConstScoreQuery::new(substring(fields, tables, s, term), f32::from(s.weight())));
            (Occur::Should, q)
        })
        .collect();
    Box::new(BooleanQuery::new(sources))
}

/// Documents whose `source` contains `term` (see the module docs).
fn substring(fields: &Fields, tables: &Arc<Tables>, source: Source, term: &str) -> Box<dyn Query> {
    let f = fields.text(source);
    if term.chars().nth(2).is_none() {
        return Box::new(TermQuery::new(Term::from_field_text(f.short, term), IndexRecordOption::Basic));
    }
    Box::new(WordsContaining { tables: Arc::clone(tables), source, field: f.words, term: term.to_owned() })
}

/// The documents holding, in `field`, any word that contains `term` (of
/// three or more characters): the words come from the segment's
/// vocabulary ([`crate::vocab`]), the documents from their posting lists.
/// It is its own weight: nothing is computed across segments.
#[derive(Clone)]
pub(crate) struct WordsContaining {
    tables: Arc<Tables>,
    source: Source,
    field: Field,
    term: String,
}

impl fmt::Debug for WordsContaining {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WordsContaining").field("source", &self.source).field("term", &self.term).finish()
    }
}

impl Query for WordsContaining {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for WordsContaining {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let table = self.tables.get(reader)?;
        let words = table.vocab(self.source).containing(&self.term);
        let index = reader.inverted_index(self.field)?;
        match words.as_slice() {
            [] => Ok(Box::new(EmptyScorer)),
            // One word (the common case: the term is a word, or a piece of
            // only one): its posting list as it is.
            [one] => {
                let postings = index.read_postings_from_terminfo(one, IndexRecordOption::Basic)?;
                Ok(Box::new(ConstScorer::new(postings, boost)))
            }
            many => {
                let mut docs = BitSet::with_max_value(reader.max_doc());
                for info in many {
                    let mut postings = index.read_postings_from_terminfo(info, IndexRecordOption::Basic)?;
                    let mut doc = postings.doc();
                    while doc != TERMINATED {
                        docs.insert(doc);
                        doc = postings.advance();
                    }
                }
                Ok(Box::new(ConstScorer::new(BitSetDocSet::from(docs), boost)))
            }
        }
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) == doc {
            Ok(Explanation::new("a word contains the term", 1.0))
        } else {
            Err(TantivyError::InvalidArgument(format!("document {doc} has no word containing {:?}", self.term)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_terms_use_grams_and_longer_ones_the_vocabulary() {
        let (_, fields) = Fields::schema();
        let tables = Arc::new(Tables::new(fields.clone()));
        let q = substring(&fields, &tables, Source::Tags, "日本");
        assert!(q.downcast_ref::<TermQuery>().is_some(), "two characters (six bytes) is a gram");
        let q = substring(&fields, &tables, Source::Tags, "aße");
        let words = q.downcast_ref::<WordsContaining>().expect("three characters");
        assert_eq!(words.field, fields.text(Source::Tags).words);
    }
}
