//! The index layout: which fields a product becomes, and how.
//!
//! Every product the store holds has one document, whatever its status, so
//! the index remembers each product's `version` and counters (the staleness
//! guard in [`crate::CatalogIndex::upsert_all`] needs them, also after a
//! restart). A product that is not searchable is a *stub*: its id, version,
//! counters and `searchable = 0`, with no text, categories or stored body, so
//! drafts and suspended products cost almost nothing and can never match.
//!
//! | field | kind | what for |
//! |---|---|---|
//! | `id` | bytes, indexed | delete-by-id on upsert and remove |
//! | `id_hi`, `id_lo` | u64 fast | the final tie-break (`id` desc), the guard map |
//! | `version`, `downloads`, `rating_sum`, `rating_count` | u64 fast | sorts, the guard |
//! | `searchable`, `kind` | u64 fast | visibility, the kind filter and facet |
//! | `categories` | str fast (raw) | the category filter and facet |
//! | `price` | i64 fast | price bounds and sorts (free = 0) |
//! | `created_secs`, `created_nanos` | i64 / u64 fast | `newest` and every tie-break |
//! | `{title,tags,description}_words` | whole words, doc ids only | text terms of 3+ characters |
//! | `{title,tags,description}_short` | 1- and 2-grams, doc ids only | text terms of 1–2 characters |
//! | `doc` | bytes, stored | the whole [`Product`] as JSON, returned as is |
//!
//! Text is lower-cased here with `str::to_lowercase`, exactly as the
//! reference does, so the words are the reference's haystack. Tags are
//! lower-cased one by one (as the reference does; a Greek final sigma depends
//! on its neighbours) and joined with `'\n'`, which separates them as
//! words ([`crate::tokens`]).

use bazaar_core::catalog::{Product, ProductKind};
use bazaar_core::{Error, Result};
use tantivy::TantivyDocument;
use tantivy::schema::{FAST, Field, INDEXED, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions};

use crate::tokens::{SHORT_GRAMS, WORDS};

/// A text source of the reference's haystack and its relevance weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The title; weight 3.
    Title,
    /// Any tag; weight 2.
    Tags,
    /// The description; weight 1.
    Description,
}

impl Source {
    /// Every source.
    pub(crate) const ALL: [Source; 3] = [Self::Title, Self::Tags, Self::Description];

    /// The reference's weight for a term found in this source.
    pub(crate) fn weight(self) -> u8 {
        match self {
            Self::Title => 3,
            Self::Tags => 2,
            Self::Description => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Title => "title",
            Self::Tags => "tags",
            Self::Description => "description",
        }
    }
}

/// The two fields of one text source.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TextFields {
    /// Whole words, doc ids only.
    pub(crate) words: Field,
    /// 1- and 2-grams of the words, doc ids only.
    pub(crate) short: Field,
}

/// Handles of every field of the schema.
#[derive(Debug, Clone)]
pub(crate) struct Fields {
    pub(crate) id: Field,
    pub(crate) id_hi: Field,
    pub(crate) id_lo: Field,
    pub(crate) version: Field,
    pub(crate) searchable: Field,
    pub(crate) kind: Field,
    pub(crate) categories: Field,
    pub(crate) price: Field,
    pub(crate) downloads: Field,
    pub(crate) rating_sum: Field,
    pub(crate) rating_count: Field,
    pub(crate) created_secs: Field,
    pub(crate) created_nanos: Field,
    /// Indexed by [`Source`] order.
    pub(crate) text: [TextFields; 3],
    pub(crate) doc: Field,
}

/// Fast-field column names, shared by the collector and the guard loader.
pub(crate) mod column {
    pub(crate) const ID_HI: &str = "id_hi";
    pub(crate) const ID_LO: &str = "id_lo";
    pub(crate) const VERSION: &str = "version";
    pub(crate) const SEARCHABLE: &str = "searchable";
    pub(crate) const KIND: &str = "kind";
    pub(crate) const CATEGORIES: &str = "categories";
    pub(crate) const PRICE: &str = "price";
    pub(crate) const DOWNLOADS: &str = "downloads";
    pub(crate) const RATING_SUM: &str = "rating_sum";
    pub(crate) const RATING_COUNT: &str = "rating_count";
    pub(crate) const CREATED_SECS: &str = "created_secs";
    pub(crate) const CREATED_NANOS: &str = "created_nanos";
}

impl Fields {
    /// The schema and its field handles.
    pub(crate) fn schema() -> (Schema, Self) {
        let mut b = Schema::builder();
        let text = |b: &mut tantivy::schema::SchemaBuilder, source: Source| {
            // Relevance is the reference's fixed weights, never BM25, so
            // neither frequencies nor field norms are needed.
            let options = |tokenizer: &str| {
                TextOptions::default().set_indexing_options(
                    TextFieldIndexing::default()
                        .set_tokenizer(tokenizer)
                        .set_fieldnorms(false)
                        .set_index_option(IndexRecordOption::Basic),
                )
            };
            TextFields {
                words: b.add_text_field(&format!("{}_words", source.name()), options(WORDS)),
                short: b.add_text_field(&format!("{}_short", source.name()), options(SHORT_GRAMS)),
            }
        };
        let fields = Self {
            id: b.add_bytes_field("id", INDEXED),
            id_hi: b.add_u64_field(column::ID_HI, FAST),
            id_lo: b.add_u64_field(column::ID_LO, FAST),
            version: b.add_u64_field(column::VERSION, FAST),
            searchable: b.add_u64_field(column::SEARCHABLE, FAST),
            kind: b.add_u64_field(column::KIND, FAST),
            categories: b.add_text_field(column::CATEGORIES, TextOptions::default().set_fast("raw")),
            price: b.add_i64_field(column::PRICE, FAST),
            downloads: b.add_u64_field(column::DOWNLOADS, FAST),
            rating_sum: b.add_u64_field(column::RATING_SUM, FAST),
            rating_count: b.add_u64_field(column::RATING_COUNT, FAST),
            created_secs: b.add_i64_field(column::CREATED_SECS, FAST),
            created_nanos: b.add_u64_field(column::CREATED_NANOS, FAST),
            text: Source::ALL.map(|s| text(&mut b, s)),
            doc: b.add_bytes_field("doc", STORED),
        };
        (b.build(), fields)
    }

    /// The text fields of `source`.
    pub(crate) fn text(&self, source: Source) -> TextFields {
        self.text[source as usize]
    }

    /// The document of `product`: a full one when it is searchable, a stub
    /// otherwise (see the module docs).
    ///
    /// # Errors
    /// [`Error::Internal`] when the product cannot be serialized.
    pub(crate) fn document(&self, product: &Product) -> Result<TantivyDocument> {
        let mut d = TantivyDocument::default();
        let id = uuid::Uuid::from(product.id).as_u128();
        d.add_bytes(self.id, &id.to_be_bytes());
        // Truncations are the point: the two halves of the 128-bit id.
        #[allow(clippy::cast_possible_truncation)]
        {
            d.add_u64(self.id_hi, (id >> 64) as u64);
            d.add_u64(self.id_lo, id as u64);
        }
        d.add_u64(self.version, product.version);
        d.add_u64(self.downloads, product.stats.downloads);
        d.add_u64(self.rating_sum, product.stats.rating_sum);
        d.add_u64(self.rating_count, product.stats.rating_count);
        let searchable = product.is_searchable();
        d.add_u64(self.searchable, u64::from(searchable));
        // Every numeric column gets a value in every document (stubs too), so
        // the columns stay dense and a read is one bit-unpacking, no lookup.
        d.add_u64(self.kind, kind_ordinal(product.kind));
        d.add_i64(self.price, product.pricing.sort_minor());
        d.add_i64(self.created_secs, product.created_at.timestamp());
        d.add_u64(self.created_nanos, u64::from(product.created_at.timestamp_subsec_nanos()));
        if !searchable {
            return Ok(d);
        }
        // Each distinct category once: a product counts once under each of its
        // categories (validation already forbids repeats).
        let mut seen = std::collections::HashSet::new();
        for c in product.categories.iter().filter(|c| seen.insert(c.as_str())) {
            d.add_text(self.categories, c);
        }
        let tags: Vec<String> = product.tags.iter().map(|t| t.to_lowercase()).collect();
        let texts = [product.title.to_lowercase(), tags.join("\n"), product.description.to_lowercase()];
        for (source, text) in Source::ALL.into_iter().zip(&texts) {
            let f = self.text(source);
            d.add_text(f.words, text);
            d.add_text(f.short, text);
        }
        let body = serde_json::to_vec(product).map_err(|e| Error::internal("search index: encode product", e))?;
        d.add_bytes(self.doc, &body);
        Ok(d)
    }
}

/// The kind's index in [`ProductKind::ALL`], as stored in the `kind` column.
pub(crate) fn kind_ordinal(kind: ProductKind) -> u64 {
    match kind {
        ProductKind::AiAgent => 0,
        ProductKind::N8nWorkflow => 1,
        ProductKind::AutomationAsset => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_ordinals_index_the_list_of_kinds() {
        for (i, k) in ProductKind::ALL.into_iter().enumerate() {
            assert_eq!(kind_ordinal(k), i as u64);
        }
    }

    #[test]
    fn sources_are_in_field_order() {
        let (schema, fields) = Fields::schema();
        for s in Source::ALL {
            assert_eq!(schema.get_field_name(fields.text(s).words), format!("{}_words", s.name()));
        }
    }
}
