//! Stripe webhook events (`"object": "event"`) read into the port's
//! [`WebhookEvent`], after the signature was verified.
//!
//! Handled types: `payment_intent.succeeded`, `.payment_failed`,
//! `.requires_action`, `.processing`, `.canceled` (the intent is
//! `data.object`) and `charge.refunded` (the charge is `data.object`; its
//! `amount_refunded` is the running total and `payment_intent` names the
//! intent). Subscribe the endpoint to these types only: any other type is
//! a validation error, which Stripe would keep redelivering.

use bazaar_core::payments::{IntentStatus, WebhookEvent, WebhookKind};
use bazaar_core::{Error, Result};

use crate::wire::{Charge, Event, PaymentIntent};

fn invalid(why: impl std::fmt::Display) -> Error {
    Error::invalid("body", format!("not a Stripe event we handle: {why}"))
}

/// The event in a verified webhook body.
///
/// # Errors
/// [`Error::Validation`] on `body` for JSON that is not a Stripe event of
/// a handled type with the object that type carries.
pub(crate) fn parse(raw_body: &[u8]) -> Result<WebhookEvent> {
    let event: Event = serde_json::from_slice(raw_body).map_err(invalid)?;
    let kind = match event.kind.as_str() {
        "payment_intent.succeeded" => WebhookKind::PaymentSucceeded,
        "payment_intent.payment_failed" => WebhookKind::PaymentFailed,
        "payment_intent.requires_action" => WebhookKind::RequiresAction,
        "payment_intent.processing" => WebhookKind::Processing,
        "payment_intent.canceled" => WebhookKind::Canceled,
        "charge.refunded" => WebhookKind::Refunded,
        other => return Err(invalid(format!("type {other:?}"))),
    };
    if kind == WebhookKind::Refunded {
        let charge: Charge = serde_json::from_value(event.data.object).map_err(invalid)?;
        let provider_ref =
            charge.payment_intent.ok_or_else(|| invalid("a refunded charge without a payment intent"))?;
        return Ok(WebhookEvent {
            id: event.id,
            kind,
            provider_ref,
            amount: charge.amount_refunded,
            currency: charge.currency.to_ascii_uppercase(),
            status: IntentStatus::Succeeded,
            decline_code: None,
        });
    }
    let intent: PaymentIntent = serde_json::from_value(event.data.object).map_err(invalid)?;
    let report = intent.report().map_err(invalid)?;
    Ok(WebhookEvent {
        id: event.id,
        kind,
        provider_ref: report.provider_ref,
        amount: report.amount,
        currency: report.currency,
        status: report.status,
        decline_code: report.decline_code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn recorded_events_parse() {
        let paid = parse(&fixture("event_payment_intent_succeeded.json")).unwrap();
        assert_eq!(paid.kind, WebhookKind::PaymentSucceeded);
        assert_eq!(
            (paid.provider_ref.as_str(), paid.amount, paid.currency.as_str()),
            ("pi_3MtwBwLkdIwHu7ix28a3tqPa", 2000, "USD")
        );
        assert_eq!(paid.status, IntentStatus::Succeeded);
        let failed = parse(&fixture("event_payment_intent_payment_failed.json")).unwrap();
        assert_eq!((failed.kind, failed.status), (WebhookKind::PaymentFailed, IntentStatus::RequiresPaymentMethod));
        assert_eq!(failed.decline_code.as_deref(), Some("card_declined"));
        let refunded = parse(&fixture("event_charge_refunded.json")).unwrap();
        assert_eq!((refunded.kind, refunded.amount), (WebhookKind::Refunded, 500), "the running refunded total");
        assert_eq!(refunded.provider_ref, "pi_3MtwBwLkdIwHu7ix28a3tqPa");
    }

    #[test]
    fn other_shapes_are_validation_errors() {
        let mut other: serde_json::Value =
            serde_json::from_slice(&fixture("event_payment_intent_succeeded.json")).unwrap();
        other["type"] = "customer.created".into();
        for body in [serde_json::to_vec(&other).unwrap(), b"{}".to_vec(), b"garbage".to_vec()] {
            assert_eq!(parse(&body).unwrap_err().code(), "validation");
        }
    }
}
