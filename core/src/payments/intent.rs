//! The payment intent and its state machine (Stripe's PaymentIntent).
//!
//! ```text
//! requires_payment_method --attach--> requires_confirmation
//! requires_payment_method | requires_confirmation | requires_action --confirm--> processing
//! processing --require_action--> requires_action
//! processing | requires_action --succeed--> succeeded
//! processing | requires_action --fail--> requires_payment_method
//! requires_payment_method | requires_confirmation | requires_action --cancel--> canceled
//! ```
//! `succeeded` and `canceled` are absorbing; refunds never change the
//! status, they only grow `amount_refunded` up to the captured amount.

use crate::error::ConflictReason;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::{OrderId, PaymentIntentId};
use crate::money::Money;

/// Where a payment intent is (Stripe's statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// Waiting for a payment method (also after a failed attempt).
    RequiresPaymentMethod,
    /// A method is attached; waiting for confirmation.
    RequiresConfirmation,
    /// The customer must do something (3-D Secure).
    RequiresAction,
    /// The provider is working on it.
    Processing,
    /// The money was captured. Absorbing.
    Succeeded,
    /// Abandoned. Absorbing.
    Canceled,
}

impl IntentStatus {
    /// Every status.
    pub const ALL: [IntentStatus; 6] = [
        Self::RequiresPaymentMethod,
        Self::RequiresConfirmation,
        Self::RequiresAction,
        Self::Processing,
        Self::Succeeded,
        Self::Canceled,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequiresPaymentMethod => "requires_payment_method",
            Self::RequiresConfirmation => "requires_confirmation",
            Self::RequiresAction => "requires_action",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Canceled => "canceled",
        }
    }

    /// Whether no event can move the intent out of this status.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Canceled)
    }
}

impl fmt::Display for IntentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happens to an intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntentEvent {
    /// A payment method was attached without confirming.
    Attach,
    /// The intent was confirmed with a payment method.
    Confirm,
    /// The provider asked for customer action (3-D Secure).
    RequireAction,
    /// The provider captured the money.
    Succeed,
    /// The attempt was declined or the action failed.
    Fail,
    /// The intent was canceled.
    Cancel,
}

impl IntentEvent {
    /// Every event.
    pub const ALL: [IntentEvent; 6] =
        [Self::Attach, Self::Confirm, Self::RequireAction, Self::Succeed, Self::Fail, Self::Cancel];

    /// The snake_case action name used in [`Error::InvalidTransition`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Attach => "attach",
            Self::Confirm => "confirm",
            Self::RequireAction => "require_action",
            Self::Succeed => "succeed",
            Self::Fail => "fail",
            Self::Cancel => "cancel",
        }
    }
}

impl fmt::Display for IntentEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status `event` moves an intent in `status` to.
///
/// # Errors
/// [`Error::InvalidTransition`] (entity `payment_intent`) for every pair
/// not in the diagram above.
pub fn transition(status: IntentStatus, event: IntentEvent) -> Result<IntentStatus> {
    use IntentEvent as E;
    use IntentStatus as S;
    match (status, event) {
        (S::RequiresPaymentMethod, E::Attach) => Ok(S::RequiresConfirmation),
        (S::RequiresPaymentMethod | S::RequiresConfirmation | S::RequiresAction, E::Confirm) => Ok(S::Processing),
        (S::Processing, E::RequireAction) => Ok(S::RequiresAction),
        (S::Processing | S::RequiresAction, E::Succeed) => Ok(S::Succeeded),
        (S::Processing | S::RequiresAction, E::Fail) => Ok(S::RequiresPaymentMethod),
        (S::RequiresPaymentMethod | S::RequiresConfirmation | S::RequiresAction, E::Cancel) => Ok(S::Canceled),
        (from, event) => Err(Error::transition("payment_intent", from, event)),
    }
}

/// The path from `current` to the status a provider `reported`, as a
/// sequence of [`transition`]s: a provider answers a confirm with the
/// outcome, so `requires_payment_method` + reported `succeeded` is
/// confirm-then-succeed. Returns `current` when they already agree.
///
/// # Errors
/// [`Error::InvalidTransition`] when no listed path leads there (e.g. a
/// succeeded intent reported as failed).
pub fn reconcile(current: IntentStatus, reported: IntentStatus) -> Result<IntentStatus> {
    use IntentEvent as E;
    use IntentStatus as S;
    if current == reported {
        return Ok(current);
    }
    let confirmed = |s: IntentStatus| {
        if s == S::Processing { Ok(s) } else { transition(s, E::Confirm) }
    };
    match reported {
        S::RequiresConfirmation => transition(current, E::Attach),
        S::Processing => confirmed(current),
        S::RequiresAction => transition(confirmed(current)?, E::RequireAction),
        S::Succeeded => transition(confirmed(current)?, E::Succeed),
        S::RequiresPaymentMethod => transition(confirmed(current)?, E::Fail),
        S::Canceled => transition(current, E::Cancel),
    }
}

/// How one confirmation attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Captured.
    Succeeded,
    /// Declined; see the decline code.
    Failed,
    /// Waiting for customer action.
    RequiresAction,
    /// Still being processed by the provider.
    Processing,
}

/// One confirmation attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAttempt {
    /// The payment method tried (`pm_card_visa`).
    pub payment_method: String,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// The provider's decline code, for failed attempts.
    pub decline_code: Option<String>,
    /// When.
    pub at: Timestamp,
}

/// An intent to collect one order's total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentIntent {
    /// Id.
    pub id: PaymentIntentId,
    /// The order it pays for (one intent per order).
    pub order_id: OrderId,
    /// What is to be captured.
    pub amount: Money,
    /// Where it is.
    pub status: IntentStatus,
    /// The provider's name (`sandbox`, `stripe`, `free` for zero-total orders).
    pub provider: String,
    /// The provider's id for it.
    pub provider_ref: Option<String>,
    /// Every confirmation attempt, oldest first.
    pub attempts: Vec<PaymentAttempt>,
    /// How much was refunded so far; never more than `amount`.
    pub amount_refunded: Money,
    /// Optimistic-concurrency version; the store bumps it on each update.
    pub version: u64,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl PaymentIntent {
    /// What can still be refunded.
    pub fn refundable(&self) -> Money {
        Money::new(self.amount.minor() - self.amount_refunded.minor(), self.amount.currency())
    }

    /// Records `refund` against the captured amount.
    ///
    /// # Errors
    /// [`Error::InvalidTransition`] unless the intent succeeded;
    /// [`Error::Validation`] on `amount` for a non-positive amount or
    /// another currency; [`Error::Conflict`] when the refunds would exceed
    /// what was captured.
    pub fn add_refund(&mut self, refund: Money) -> Result<()> {
        if self.status != IntentStatus::Succeeded {
            return Err(Error::transition("payment_intent", self.status, "refund"));
        }
        if refund.currency() != self.amount.currency() {
            return Err(Error::invalid("amount", format!("must be in {}", self.amount.currency())));
        }
        if refund.minor() <= 0 {
            return Err(Error::invalid("amount", "must be positive"));
        }
        let total = self.amount_refunded.checked_add(&refund)?;
        if total.minor() > self.amount.minor() {
            return Err(Error::conflict(
                ConflictReason::Exceeded,
                format!("refunding {refund} would exceed the captured amount ({} left)", self.refundable()),
            ));
        }
        self.amount_refunded = total;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::money::Currency;
    use proptest::prelude::*;

    const LISTED: &[(IntentStatus, IntentEvent, IntentStatus)] = {
        use IntentEvent as E;
        use IntentStatus as S;
        &[
            (S::RequiresPaymentMethod, E::Attach, S::RequiresConfirmation),
            (S::RequiresPaymentMethod, E::Confirm, S::Processing),
            (S::RequiresConfirmation, E::Confirm, S::Processing),
            (S::RequiresAction, E::Confirm, S::Processing),
            (S::Processing, E::RequireAction, S::RequiresAction),
            (S::Processing, E::Succeed, S::Succeeded),
            (S::RequiresAction, E::Succeed, S::Succeeded),
            (S::Processing, E::Fail, S::RequiresPaymentMethod),
            (S::RequiresAction, E::Fail, S::RequiresPaymentMethod),
            (S::RequiresPaymentMethod, E::Cancel, S::Canceled),
            (S::RequiresConfirmation, E::Cancel, S::Canceled),
            (S::RequiresAction, E::Cancel, S::Canceled),
        ]
    };

    fn status() -> impl Strategy<Value = IntentStatus> {
        proptest::sample::select(IntentStatus::ALL.to_vec())
    }

    fn event() -> impl Strategy<Value = IntentEvent> {
        proptest::sample::select(IntentEvent::ALL.to_vec())
    }

    fn intent(amount: i64) -> PaymentIntent {
        let now = ManualClock::at_epoch_secs(0).now();
        PaymentIntent {
            id: PaymentIntentId::new(),
            order_id: OrderId::new(),
            amount: Money::new(amount, Currency::USD),
            status: IntentStatus::Succeeded,
            provider: "sandbox".into(),
            provider_ref: Some("pi_1".into()),
            attempts: vec![],
            amount_refunded: Money::zero(Currency::USD),
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn a_declined_attempt_returns_to_requires_payment_method() {
        let s = transition(IntentStatus::RequiresPaymentMethod, IntentEvent::Confirm).unwrap();
        assert_eq!(transition(s, IntentEvent::Fail).unwrap(), IntentStatus::RequiresPaymentMethod);
        assert_eq!(
            reconcile(IntentStatus::RequiresPaymentMethod, IntentStatus::Succeeded).unwrap(),
            IntentStatus::Succeeded
        );
        assert!(reconcile(IntentStatus::Succeeded, IntentStatus::RequiresPaymentMethod).is_err());
        assert!(reconcile(IntentStatus::Canceled, IntentStatus::Succeeded).is_err());
    }

    #[test]
    fn refunds_never_exceed_the_captured_amount() {
        let mut i = intent(1000);
        i.add_refund(Money::new(600, Currency::USD)).unwrap();
        let err = i.add_refund(Money::new(401, Currency::USD)).unwrap_err();
        assert_eq!(err.code(), "conflict");
        i.add_refund(Money::new(400, Currency::USD)).unwrap();
        assert_eq!(i.amount_refunded.minor(), 1000);
        assert_eq!(i.add_refund(Money::new(1, Currency::EUR)).unwrap_err().code(), "validation");
        assert_eq!(i.add_refund(Money::new(0, Currency::USD)).unwrap_err().code(), "validation");
        let mut pending = intent(1000);
        pending.status = IntentStatus::RequiresPaymentMethod;
        assert_eq!(pending.add_refund(Money::new(1, Currency::USD)).unwrap_err().code(), "invalid_transition");
    }

    proptest! {
        #[test]
        fn only_listed_transitions_succeed(s in status(), e in event()) {
            let listed = LISTED.iter().find(|(from, ev, _)| *from == s && *ev == e).map(|(_, _, to)| *to);
            match transition(s, e) {
                Ok(to) => prop_assert_eq!(Some(to), listed),
                Err(err) => {
                    prop_assert!(listed.is_none());
                    prop_assert_eq!(err.code(), "invalid_transition");
                }
            }
        }

        #[test]
        fn absorbing_states_are_never_left(start in status(), events in proptest::collection::vec(event(), 0..40)) {
            let mut s = start;
            for e in events {
                let before = s;
                if let Ok(next) = transition(s, e) {
                    s = next;
                }
                if before.is_terminal() {
                    prop_assert_eq!(s, before);
                }
            }
        }

        #[test]
        fn reconcile_reaches_the_report_or_refuses(from in status(), to in status()) {
            match reconcile(from, to) {
                Ok(s) => prop_assert_eq!(s, to),
                // Stripe cannot cancel a processing intent nor go back to requires_confirmation.
                Err(_) => prop_assert!(
                    from.is_terminal()
                        || to == IntentStatus::RequiresConfirmation
                        || (from == IntentStatus::Processing && to == IntentStatus::Canceled)
                ),
            }
            if from.is_terminal() && from != to {
                prop_assert!(reconcile(from, to).is_err());
            }
        }

        #[test]
        fn refunded_total_stays_within_the_capture(amount in 0i64..10_000, refunds in proptest::collection::vec(-5i64..4_000, 0..10)) {
            let mut i = intent(amount);
            for r in refunds {
                let before = i.amount_refunded;
                if i.add_refund(Money::new(r, Currency::USD)).is_err() {
                    prop_assert_eq!(i.amount_refunded, before);
                }
                prop_assert!(i.amount_refunded.minor() <= amount);
                prop_assert!(i.amount_refunded.minor() >= 0);
            }
        }
    }
}
