//! Rendering a notification body from its template and the causing event.
//!
//! Pure: the text depends only on the template and the event payload.
//! Bodies never contain credentials (license keys, tokens): a notification
//! may be e-mailed or logged, so it points the user at the app instead.

use super::Template;
use crate::error::{Error, Result};
use crate::events::{Event, LicenseIssued, OrderPlaced, OrderRefunded, ProductApproved, ProductRejected};

/// Renders the body of a `template` notification caused by `event`.
///
/// # Errors
/// [`Error::Validation`] when the event does not fit the template (wrong
/// type or malformed payload).
///
/// # Example
/// ```
/// use bazaar_core::clock::{Clock, ManualClock};
/// use bazaar_core::events::{Event, ProductRejected};
/// use bazaar_core::ids::{ProductId, UserId};
/// use bazaar_core::notifications::{render, Template};
///
/// let event = Event::new(
///     &ProductRejected { product_id: ProductId::new(), vendor_id: UserId::new(), reason: "no screenshots".into() },
///     ManualClock::at_epoch_secs(0).now(),
/// );
/// assert!(render(Template::ProductRejected, &event).unwrap().ends_with("no screenshots"));
/// assert!(render(Template::OrderPlaced, &event).is_err());
/// ```
pub fn render(template: Template, event: &Event) -> Result<String> {
    Ok(match template {
        Template::OrderPlaced => {
            let d: OrderPlaced = event.decode()?;
            format!(
                "Your order {} for {} has been placed. Your licenses arrive once payment completes.",
                d.order_id, d.total
            )
        }
        Template::LicenseIssued => {
            let d: LicenseIssued = event.decode()?;
            format!(
                "Your license {} for product {} (order {}) is ready. Find the key under Licenses in your account.",
                d.license_id, d.product_id, d.order_id
            )
        }
        Template::OrderRefunded => {
            let d: OrderRefunded = event.decode()?;
            format!("Order {} was refunded ({}). Its licenses have been revoked.", d.order_id, d.amount)
        }
        Template::ProductApproved => {
            let d: ProductApproved = event.decode()?;
            format!("Your product {} was approved and is now live in the catalog.", d.product_id)
        }
        Template::ProductRejected => {
            let d: ProductRejected = event.decode()?;
            if d.reason.trim().is_empty() {
                return Err(Error::invalid("data.reason", "a rejection needs a reason"));
            }
            format!("Your product {} was not approved. Reason: {}", d.product_id, d.reason.trim())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::events::EventType;
    use crate::ids::{LicenseId, OrderId, ProductId, UserId};
    use crate::money::{Currency, Money};

    fn at() -> crate::clock::Timestamp {
        ManualClock::at_epoch_secs(0).now()
    }

    #[test]
    fn order_placed_shows_the_total() {
        let e = Event::new(
            &OrderPlaced { order_id: OrderId::new(), buyer_id: UserId::new(), total: Money::new(1999, Currency::USD) },
            at(),
        );
        let body = render(Template::OrderPlaced, &e).unwrap();
        assert!(body.contains(&Money::new(1999, Currency::USD).to_string()), "{body}");
    }

    #[test]
    fn license_issued_names_the_license_but_never_a_key() {
        let d = LicenseIssued {
            license_id: LicenseId::new(),
            order_id: OrderId::new(),
            buyer_id: UserId::new(),
            product_id: ProductId::new(),
        };
        let body = render(Template::LicenseIssued, &Event::new(&d, at())).unwrap();
        assert!(body.contains(&d.license_id.to_string()));
        assert!(!body.contains("key/"));
    }

    #[test]
    fn every_template_rejects_other_event_types() {
        let e = Event::new(&ProductApproved { product_id: ProductId::new(), vendor_id: UserId::new() }, at());
        assert_eq!(e.event_type, EventType::ProductApproved);
        for t in [Template::OrderPlaced, Template::LicenseIssued, Template::OrderRefunded, Template::ProductRejected] {
            assert_eq!(render(t, &e).unwrap_err().code(), "validation");
        }
        assert!(render(Template::ProductApproved, &e).is_ok());
    }

    #[test]
    fn refunds_and_rejections_render_their_details() {
        let r =
            OrderRefunded { order_id: OrderId::new(), buyer_id: UserId::new(), amount: Money::new(500, Currency::EUR) };
        assert!(render(Template::OrderRefunded, &Event::new(&r, at())).unwrap().contains(&r.order_id.to_string()));
        let blank = ProductRejected { product_id: ProductId::new(), vendor_id: UserId::new(), reason: "  ".into() };
        assert!(render(Template::ProductRejected, &Event::new(&blank, at())).is_err());
    }
}
