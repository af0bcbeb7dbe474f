//! Schema-only string types: the rules a handler's core service enforces on
//! a string, written as JSON Schema so that a request the document calls
//! valid is one the service accepts, and the reverse.
//!
//! `\s` and `\S` in the patterns are Unicode white space, which is what the
//! core trims (`str::trim`) before it counts characters.

use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// A string schema with a pattern and optional length bounds.
fn string(description: &str, pattern: &str, min: Option<usize>, max: Option<usize>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .min_length(min)
        .max_length(max)
        .into()
}

/// Declares a type that only describes a string in the document.
macro_rules! string_schema {
    ($(#[$doc:meta])* $name:ident, $description:expr, pattern = $pattern:expr, min = $min:expr, max = $max:expr) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                string($description, $pattern, $min, $max)
            }
        }

        impl ToSchema for $name {}
    };
}

string_schema!(
    /// A product title.
    Title,
    "3 to 120 characters once surrounding white space is trimmed",
    pattern = r"^\s*\S[\s\S]{1,118}\S\s*$",
    min = None,
    max = None
);

string_schema!(
    /// A category slug.
    CategorySlug,
    "A lowercase slug: a-z and 0-9 in parts joined by single hyphens, at most 64 characters",
    pattern = r"^[a-z0-9]+(-[a-z0-9]+)*$",
    min = Some(1),
    max = Some(64)
);

string_schema!(
    /// A product tag.
    Tag,
    "1 to 32 characters once surrounding white space is trimmed",
    pattern = r"^\s*\S([\s\S]{0,30}\S)?\s*$",
    min = None,
    max = None
);

string_schema!(
    /// A media URL.
    MediaUrl,
    "An absolute `https://` URL with a host name (letters, digits and hyphens in dot-separated labels) \
     and an optional port, of visible ASCII (percent-encode the rest), at most 2,048 characters",
    pattern = r"^https://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?([/?#][!-~]*)?$",
    min = None,
    max = Some(2048)
);

string_schema!(
    /// A rejection reason.
    Reason,
    "1 to 500 characters once surrounding white space is trimmed",
    pattern = r"^\s*\S([\s\S]{0,498}\S)?\s*$",
    min = None,
    max = None
);

string_schema!(
    /// A machine fingerprint.
    Fingerprint,
    "1 to 128 visible ASCII characters (no spaces)",
    pattern = r"^[!-~]{1,128}$",
    min = Some(1),
    max = Some(128)
);

string_schema!(
    /// A webhook endpoint's URL.
    ///
    /// The host is a name ending in a label that starts with a letter (the
    /// core also takes public IP literals and refuses `localhost` names,
    /// which a pattern cannot tell from the rest), the port 1 to 9999.
    WebhookUrl,
    "An absolute `https://` URL on a public host, of visible ASCII, with no credentials and no fragment, \
     at most 2,048 characters",
    pattern = r##"^https://([A-Za-z0-9-]{1,63}\.)*[A-Za-z][A-Za-z0-9-]{0,62}\.?(:[1-9][0-9]{0,3})?([/?][!"$-~]*)?$"##,
    min = None,
    max = Some(2048)
);

/// An array of `min` to `max` `T`, distinct when `unique`, or also `null`.
pub(crate) fn array_of<T: ToSchema>(min: Option<usize>, max: usize, unique: bool, nullable: bool) -> ArrayBuilder {
    let kind = if nullable { SchemaType::from_iter([Type::Array, Type::Null]) } else { SchemaType::new(Type::Array) };
    ArrayBuilder::new()
        .schema_type(kind)
        .items(Ref::from_schema_name(T::name()))
        .min_items(min)
        .max_items(Some(max))
        .unique_items(unique)
}

/// A product's categories: 1 to 5 distinct slugs (a repeat is refused).
pub(crate) fn categories_schema() -> ArrayBuilder {
    array_of::<CategorySlug>(Some(1), 5, true, false)
}

/// [`categories_schema`] in a patch, where `null` leaves them as they are.
pub(crate) fn nullable_categories_schema() -> ArrayBuilder {
    array_of::<CategorySlug>(Some(1), 5, true, true)
}

/// A product's tags: up to 10 sent, a repeat (ignoring case and white
/// space) kept once, so repeats are not refused and not `uniqueItems`.
pub(crate) fn tags_schema() -> ArrayBuilder {
    array_of::<Tag>(None, 10, false, false)
}

/// [`tags_schema`] in a patch, where `null` leaves them as they are.
pub(crate) fn nullable_tags_schema() -> ArrayBuilder {
    array_of::<Tag>(None, 10, false, true)
}

/// A string that is one of `values`, which the core owns.
fn one_of(description: &str, values: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values)).description(Some(description)).into()
}

/// Declares a type that only describes a string naming one of `values`,
/// which the core owns.
macro_rules! one_of_schema {
    ($(#[$doc:meta])* $name:ident, $description:expr, values = $values:expr) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                one_of($description, $values)
            }
        }

        impl ToSchema for $name {}
    };
}

one_of_schema!(
    /// An ISO 4217 code the marketplace takes.
    CurrencyCode,
    "An ISO 4217 code the marketplace takes",
    values = bazaar_core::money::Currency::codes()
);

one_of_schema!(
    /// A search order, as `sort` names it.
    SortName,
    "`relevance`, `newest`, `price_asc`, `price_desc`, `rating` or `downloads`",
    values = bazaar_core::catalog::SortOrder::ALL.map(bazaar_core::catalog::SortOrder::as_str)
);

one_of_schema!(
    /// A sales event a webhook endpoint subscribes to.
    VendorEventName,
    "`order.paid`, `license.issued` or `order.refunded`",
    values = bazaar_core::webhooks::VendorEvent::ALL.map(bazaar_core::webhooks::VendorEvent::as_str)
);

/// An endpoint's events: one or more (a name given twice counts once).
pub(crate) fn vendor_events_schema() -> ArrayBuilder {
    ArrayBuilder::new().items(Ref::from_schema_name(VendorEventName::name())).min_items(Some(1))
}

/// [`vendor_events_schema`] in a patch, where `null` leaves them as they are.
pub(crate) fn nullable_vendor_events_schema() -> ArrayBuilder {
    vendor_events_schema().schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
}
