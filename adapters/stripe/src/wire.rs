//! Stripe's JSON objects, as much of each as the connector reads, and
//! their translation into the port's reports.
//!
//! Unknown fields are ignored (Stripe adds fields within an API version);
//! fields we rely on are required, so a body of another shape is an error
//! rather than a silently wrong report.

use bazaar_core::ConflictReason;
use bazaar_core::payments::{IntentStatus, ProviderIntent, ProviderRefund};
use bazaar_core::{Error, Result};
use serde::Deserialize;

/// A PaymentIntent (`"object": "payment_intent"`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PaymentIntent {
    pub(crate) id: String,
    pub(crate) amount: i64,
    pub(crate) currency: String,
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) last_payment_error: Option<ApiError>,
}

/// Stripe's error object, inside `{"error": …}` and as `last_payment_error`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ApiError {
    #[serde(rename = "type", default)]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) code: Option<String>,
    #[serde(default)]
    pub(crate) decline_code: Option<String>,
    #[serde(default)]
    pub(crate) message: Option<String>,
    #[serde(default)]
    pub(crate) param: Option<String>,
    #[serde(default)]
    pub(crate) payment_intent: Option<Box<PaymentIntent>>,
}

/// `{"error": {…}}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ErrorEnvelope {
    pub(crate) error: ApiError,
}

/// A Refund (`"object": "refund"`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Refund {
    pub(crate) id: String,
    pub(crate) amount: i64,
    pub(crate) currency: String,
    #[serde(default)]
    pub(crate) payment_intent: Option<String>,
    #[serde(default)]
    pub(crate) status: Option<String>,
}

/// A Charge (`"object": "charge"`), as `charge.refunded` carries it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Charge {
    pub(crate) amount_refunded: i64,
    pub(crate) currency: String,
    #[serde(default)]
    pub(crate) payment_intent: Option<String>,
}

/// An Event (`"object": "event"`), the body of a webhook.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Event {
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) data: EventData,
}

/// An event's `data`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct EventData {
    pub(crate) object: serde_json::Value,
}

/// Our status for Stripe's. `requires_capture` (an authorization waiting
/// for a manual capture, which this connector never asks for) reads as
/// `processing`: money is held but not captured.
///
/// # Errors
/// [`Error::Internal`] for a status Stripe does not document.
pub(crate) fn status(stripe: &str) -> Result<IntentStatus> {
    Ok(match stripe {
        "requires_payment_method" => IntentStatus::RequiresPaymentMethod,
        "requires_confirmation" => IntentStatus::RequiresConfirmation,
        "requires_action" => IntentStatus::RequiresAction,
        "processing" | "requires_capture" => IntentStatus::Processing,
        "succeeded" => IntentStatus::Succeeded,
        "canceled" => IntentStatus::Canceled,
        other => {
            return Err(Error::internal("reading a Stripe payment intent", format!("unknown status {other:?}")));
        }
    })
}

/// Decline codes a buyer may see. Stripe advises showing the fraud-related
/// ones (`fraudulent`, `lost_card`, `stolen_card`, `pickup_card`, …) as a
/// generic decline, so anything not listed here reads as `card_declined`.
const SHAREABLE_DECLINES: &[&str] = &[
    "insufficient_funds",
    "expired_card",
    "incorrect_cvc",
    "incorrect_number",
    "incorrect_zip",
    "invalid_cvc",
    "invalid_expiry_month",
    "invalid_expiry_year",
    "invalid_number",
    "card_velocity_exceeded",
    "withdrawal_count_limit_exceeded",
    "card_not_supported",
    "currency_not_supported",
    "processing_error",
    "try_again_later",
    "authentication_required",
];

/// Our decline code for a Stripe card error: the issuer's reason when a
/// buyer may see it, else Stripe's error code, else `card_declined` (what
/// the sandbox reports); a failed 3-D Secure is `authentication_failed`.
pub(crate) fn decline_code(error: &ApiError) -> String {
    if error.code.as_deref() == Some("payment_intent_authentication_failure") {
        return "authentication_failed".to_owned();
    }
    if let Some(reason) = error.decline_code.as_deref().filter(|d| SHAREABLE_DECLINES.contains(d)) {
        return reason.to_owned();
    }
    match error.code.as_deref() {
        Some(code) if SHAREABLE_DECLINES.contains(&code) => code.to_owned(),
        _ => "card_declined".to_owned(),
    }
}

impl PaymentIntent {
    /// The port's report. The currency is upper-cased (Stripe sends ISO
    /// codes in lower case); a decline code is reported while the intent
    /// waits for a new payment method after a failed attempt.
    pub(crate) fn report(&self) -> Result<ProviderIntent> {
        let status = status(&self.status)?;
        let decline_code = match status {
            IntentStatus::RequiresPaymentMethod => self.last_payment_error.as_ref().map(decline_code),
            _ => None,
        };
        Ok(ProviderIntent {
            provider_ref: self.id.clone(),
            status,
            amount: self.amount,
            currency: self.currency.to_ascii_uppercase(),
            decline_code,
        })
    }
}

impl Refund {
    /// The port's report of a refund of `provider_ref`.
    ///
    /// # Errors
    /// [`Error::Conflict`] when Stripe says the refund failed or was
    /// canceled (nothing was returned to the buyer).
    pub(crate) fn report(&self, provider_ref: &str) -> Result<ProviderRefund> {
        if let Some(status @ ("failed" | "canceled")) = self.status.as_deref() {
            return Err(Error::conflict(ConflictReason::Contended, format!("stripe refund {} {status}", self.id)));
        }
        Ok(ProviderRefund {
            refund_ref: self.id.clone(),
            provider_ref: self.payment_intent.clone().unwrap_or_else(|| provider_ref.to_owned()),
            amount: self.amount,
            currency: self.currency.to_ascii_uppercase(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn recorded_intents_parse_into_reports() {
        let created: PaymentIntent = serde_json::from_str(&fixture("payment_intent.json")).unwrap();
        let r = created.report().unwrap();
        assert_eq!(
            (r.status, r.amount, r.currency.as_str(), r.decline_code),
            (IntentStatus::RequiresPaymentMethod, 2000, "USD", None)
        );
        let action: PaymentIntent = serde_json::from_str(&fixture("payment_intent_requires_action.json")).unwrap();
        assert_eq!(action.report().unwrap().status, IntentStatus::RequiresAction);
        let paid: PaymentIntent = serde_json::from_str(&fixture("payment_intent_succeeded.json")).unwrap();
        assert_eq!(paid.report().unwrap().status, IntentStatus::Succeeded);
    }

    #[test]
    fn a_declined_confirmation_carries_the_intent_and_its_code() {
        let e: ErrorEnvelope = serde_json::from_str(&fixture("error_card_declined.json")).unwrap();
        assert_eq!((e.error.kind.as_str(), e.error.code.as_deref()), ("card_error", Some("card_declined")));
        let intent = e.error.payment_intent.expect("the error embeds the intent");
        let r = intent.report().unwrap();
        assert_eq!(r.status, IntentStatus::RequiresPaymentMethod);
        assert_eq!(r.decline_code.as_deref(), Some("card_declined"), "generic_decline reads as card_declined");
        let funds: ErrorEnvelope = serde_json::from_str(&fixture("error_insufficient_funds.json")).unwrap();
        assert_eq!(decline_code(&funds.error), "insufficient_funds");
    }

    #[test]
    fn fraud_reasons_are_not_shown_and_3ds_failures_are_named() {
        let e = |code: &str, decline: Option<&str>| ApiError {
            code: Some(code.into()),
            decline_code: decline.map(Into::into),
            ..ApiError::default()
        };
        assert_eq!(decline_code(&e("card_declined", Some("stolen_card"))), "card_declined");
        assert_eq!(decline_code(&e("card_declined", Some("fraudulent"))), "card_declined");
        assert_eq!(decline_code(&e("expired_card", None)), "expired_card");
        assert_eq!(decline_code(&e("payment_intent_authentication_failure", None)), "authentication_failed");
    }

    #[test]
    fn refunds_parse_and_failed_ones_are_conflicts() {
        let refund: Refund = serde_json::from_str(&fixture("refund.json")).unwrap();
        let r = refund.report("pi_other").unwrap();
        assert_eq!((r.amount, r.currency.as_str()), (1000, "USD"));
        assert_eq!(r.provider_ref, "pi_1GszsK2eZvKYlo2CfhZyoZLp", "the refund names its intent");
        let failed = Refund { status: Some("failed".into()), ..refund };
        assert_eq!(failed.report("pi_1").unwrap_err().code(), "conflict");
    }

    #[test]
    fn unknown_statuses_are_internal_errors() {
        assert_eq!(status("requires_capture").unwrap(), IntentStatus::Processing);
        assert_eq!(status("exploded").unwrap_err().code(), "internal");
    }
}
