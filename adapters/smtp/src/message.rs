//! The e-mail of a notification: the body the core rendered from its
//! template, a subject per template, and a `Message-ID` fixed per
//! notification, so a message re-sent after an uncertain failure
//! (at-least-once delivery) carries the same id and mail clients can fold
//! the duplicates.

use bazaar_core::auth::User;
use bazaar_core::notifications::{Notification, Template};
use bazaar_core::{Error, Result};
use lettre::Message;
use lettre::message::header::ContentType;
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

/// The e-mail of `notification` to `user`, from `from`.
///
/// # Errors
/// [`Error::Validation`] on `email` when the user's address is not one a
/// mail server takes (permanent: the notification cannot be delivered).
pub(crate) fn build(notification: &Notification, user: &User, from: &Mailbox) -> Result<Message> {
    let address = user
        .email
        .as_str()
        .parse()
        .map_err(|_| Error::invalid("email", "the recipient's address is not deliverable by SMTP"))?;
    let to = Mailbox::new(Some(user.name.clone()), address);
    MessageBuilder::new()
        .from(from.clone())
        .to(to)
        .subject(subject(notification.template))
        .message_id(Some(message_id(notification, from.email.domain())))
        .header(ContentType::TEXT_PLAIN)
        .body(notification.body.clone())
        .map_err(|e| Error::internal("building a notification e-mail", e))
}
