//! The order state machine: one pure [`transition`] function.
//!
//! ```text
//! pending_payment --payment_succeeded--> paid --fulfil--> fulfilled --refund--> refunded
//!       |  ^                               +-----------------refund-------------^
//!       |  +--payment_failed (stays pending_payment)
//!       +--cancel--> canceled
//! ```
//! `refunded` and `canceled` are absorbing.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed, waiting for a successful payment.
    PendingPayment,
    /// Paid; licenses are being issued.
    Paid,
    /// Every line has its license.
    Fulfilled,
    /// Money returned, licenses revoked. Absorbing.
    Refunded,
    /// Canceled by the buyer before paying. Absorbing.
    Canceled,
}

impl OrderStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [OrderStatus; 5] =
        [Self::PendingPayment, Self::Paid, Self::Fulfilled, Self::Refunded, Self::Canceled];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingPayment => "pending_payment",
            Self::Paid => "paid",
            Self::Fulfilled => "fulfilled",
            Self::Refunded => "refunded",
            Self::Canceled => "canceled",
        }
    }

    /// Whether no event can move the order out of this status.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Refunded | Self::Canceled)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happens to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderEvent {
    /// The order's payment succeeded.
    PaymentSucceeded,
    /// A payment attempt failed; the buyer may try again.
    PaymentFailed,
    /// Every line's license was issued.
    Fulfil,
    /// An admin refunded the order.
    Refund,
    /// The buyer canceled before paying.
    Cancel,
}

impl OrderEvent {
    /// Every event.
    pub const ALL: [OrderEvent; 5] =
        [Self::PaymentSucceeded, Self::PaymentFailed, Self::Fulfil, Self::Refund, Self::Cancel];

    /// The snake_case action name used in [`Error::InvalidTransition`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaymentSucceeded => "mark_paid",
            Self::PaymentFailed => "fail_payment",
            Self::Fulfil => "fulfil",
            Self::Refund => "refund",
            Self::Cancel => "cancel",
        }
    }
}

impl fmt::Display for OrderEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status `event` moves an order in `status` to.
///
/// # Errors
/// [`Error::InvalidTransition`] (entity `order`) for every pair not in the
/// diagram above.
///
/// # Example
/// ```
/// use bazaar_core::orders::{transition, OrderEvent, OrderStatus};
/// assert_eq!(transition(OrderStatus::Paid, OrderEvent::Fulfil).unwrap(), OrderStatus::Fulfilled);
/// assert!(transition(OrderStatus::Canceled, OrderEvent::PaymentSucceeded).is_err());
/// ```
pub fn transition(status: OrderStatus, event: OrderEvent) -> Result<OrderStatus> {
    use OrderEvent as E;
    use OrderStatus as S;
    match (status, event) {
        (S::PendingPayment, E::PaymentSucceeded) => Ok(S::Paid),
        (S::PendingPayment, E::PaymentFailed) => Ok(S::PendingPayment),
        (S::PendingPayment, E::Cancel) => Ok(S::Canceled),
        (S::Paid, E::Fulfil) => Ok(S::Fulfilled),
        (S::Paid | S::Fulfilled, E::Refund) => Ok(S::Refunded),
        (from, event) => Err(Error::transition("order", from, event)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LISTED: [(OrderStatus, OrderEvent, OrderStatus); 6] = [
        (OrderStatus::PendingPayment, OrderEvent::PaymentSucceeded, OrderStatus::Paid),
        (OrderStatus::PendingPayment, OrderEvent::PaymentFailed, OrderStatus::PendingPayment),
        (OrderStatus::PendingPayment, OrderEvent::Cancel, OrderStatus::Canceled),
        (OrderStatus::Paid, OrderEvent::Fulfil, OrderStatus::Fulfilled),
        (OrderStatus::Paid, OrderEvent::Refund, OrderStatus::Refunded),
        (OrderStatus::Fulfilled, OrderEvent::Refund, OrderStatus::Refunded),
    ];

    fn status() -> impl Strategy<Value = OrderStatus> {
        proptest::sample::select(OrderStatus::ALL.to_vec())
    }

    fn event() -> impl Strategy<Value = OrderEvent> {
        proptest::sample::select(OrderEvent::ALL.to_vec())
    }

    #[test]
    fn the_happy_path_and_the_error_shape() {
        let mut s = OrderStatus::PendingPayment;
        for e in [OrderEvent::PaymentFailed, OrderEvent::PaymentSucceeded, OrderEvent::Fulfil, OrderEvent::Refund] {
            s = transition(s, e).unwrap();
        }
        assert_eq!(s, OrderStatus::Refunded);
        let err = transition(OrderStatus::PendingPayment, OrderEvent::Refund).unwrap_err();
        assert_eq!(err.code(), "invalid_transition");
        assert_eq!(err.to_string(), "cannot refund a order that is pending_payment");
    }

    #[test]
    fn statuses_serialize_snake_case() {
        for s in OrderStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
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
        fn absorbing_states_are_never_left(events in proptest::collection::vec(event(), 0..40)) {
            let mut s = OrderStatus::PendingPayment;
            let mut absorbed: Option<OrderStatus> = None;
            for e in events {
                if let Ok(next) = transition(s, e) {
                    if let Some(a) = absorbed {
                        prop_assert_eq!(next, a, "left an absorbing state");
                    }
                    s = next;
                }
                if s.is_terminal() {
                    absorbed = Some(s);
                }
            }
        }

        #[test]
        fn terminal_statuses_accept_no_event(s in status(), e in event()) {
            if s.is_terminal() {
                prop_assert!(transition(s, e).is_err());
            }
        }
    }
}
