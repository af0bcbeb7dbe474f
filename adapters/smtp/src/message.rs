//! The e-mail of a notification: the body the core rendered from its
//! template, a subject per template, and a `Message-ID` fixed per
//! notification, so a message re-sent after an uncertain failure
//! (at-least-once delivery) carries the same id and mail clients can fold
//! the duplicates. When the send is traced, the message carries the W3C
//! `traceparent` (and `tracestate`) of its SMTP client span, so a mail
//! relay that traces can join the purchase's trace.

use bazaar_core::auth::User;
use bazaar_core::events::TraceContext;
use bazaar_core::notifications::{Notification, Template};
use bazaar_core::{Error, Result};
use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MessageBuilder};

/// The subject line of a `template` notification.
pub fn subject(template: Template) -> &'static str {
    match template {
        Template::OrderPlaced => "Your order was placed",
        Template::LicenseIssued => "Your license is ready",
        Template::OrderRefunded => "Your order was refunded",
        Template::ProductApproved => "Your product was approved",
        Template::ProductRejected => "Your product was not approved",
    }
}

/// The `Message-ID` of a notification's e-mail, in `domain` (the sender's).
pub fn message_id(notification: &Notification, domain: &str) -> String {
    format!("<{}@{domain}>", notification.id)
}

/// The header names of the W3C trace context in a message.
const TRACEPARENT: HeaderName = HeaderName::new_from_ascii_str("traceparent");
const TRACESTATE: HeaderName = HeaderName::new_from_ascii_str("tracestate");

/// The e-mail of `notification` to `user`, from `from`, carrying `trace`.
///
/// # Errors
/// [`Error::Validation`] on `email` when the user's address is not one a
/// mail server takes (permanent: the notification cannot be delivered).
pub(crate) fn build(
    notification: &Notification,
    user: &User,
    from: &Mailbox,
    trace: Option<&TraceContext>,
) -> Result<Message> {
    let address = user
        .email
        .as_str()
        .parse()
        .map_err(|_| Error::invalid("email", "the recipient's address is not deliverable by SMTP"))?;
    let to = Mailbox::new(Some(user.name.clone()), address);
    let mut builder = MessageBuilder::new();
    if let Some(trace) = trace {
        builder = builder.raw_header(HeaderValue::new(TRACEPARENT, trace.traceparent().to_owned()));
        if let Some(state) = trace.tracestate() {
            builder = builder.raw_header(HeaderValue::new(TRACESTATE, state.to_owned()));
        }
    }
    builder
        .from(from.clone())
        .to(to)
        .subject(subject(notification.template))
        .message_id(Some(message_id(notification, from.email.domain())))
        .header(ContentType::TEXT_PLAIN)
        .body(notification.body.clone())
        .map_err(|e| Error::internal("building a notification e-mail", e))
}
