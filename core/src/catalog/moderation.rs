//! The product moderation state machine: one pure [`transition`] function.
//!
//! ```text
//! draft --submit(owner)--> pending --approve(admin)--> approved --suspend(admin)--> suspended
//!   ^                        +--reject(admin, reason)--> rejected     <--reinstate(admin)--+
//!   +--------------edit(owner)--------------------------+
//! ```
//!
//! The complete table; every other (state, action) pair is
//! [`Error::InvalidTransition`]:
//!
//! | from      | action    | to        |
//! |-----------|-----------|-----------|
//! | draft     | submit    | pending   |
//! | draft     | edit      | draft     |
//! | pending   | approve   | approved  |
//! | pending   | reject    | rejected  |
//! | approved  | suspend   | suspended |
//! | approved  | edit      | draft     |
//! | rejected  | edit      | draft     |
//! | suspended | reinstate | approved  |
//!
//! # Editing an approved product
//! DESIGN.md lets us choose between keeping the approved version live while
//! an edit is reviewed, or returning the product to draft. **We return it to
//! draft**: an edit to an approved product unpublishes it (it stops being
//! searchable and purchasable) until it is submitted and approved again.
//! Keeping two versions live would need a second copy of every listing field
//! and would let a buyer pay for text no moderator has seen; one status per
//! product keeps the rule "what is live was approved" trivially true.
//! Vendors who want to edit without downtime should edit rarely.
//!
//! Editing is blocked while `pending` (the moderator must review a stable
//! version) and while `suspended` (a suspended listing stays frozen until an
//! admin reinstates it).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, FieldError, Result};

/// Longest accepted rejection reason, in characters.
pub const MAX_REJECTION_REASON_CHARS: usize = 500;

/// Where a product is in moderation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    /// Being written by its vendor; visible only to the vendor and admins.
    Draft,
    /// Submitted, waiting for an admin.
    Pending,
    /// Live: searchable and purchasable.
    Approved,
    /// Sent back by an admin with a reason.
    Rejected,
    /// Taken down by an admin.
    Suspended,
}

impl ProductStatus {
    /// Every status, for tests and exhaustive tables.
    pub const ALL: [ProductStatus; 5] = [Self::Draft, Self::Pending, Self::Approved, Self::Rejected, Self::Suspended];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Suspended => "suspended",
        }
    }
}

impl fmt::Display for ProductStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that moves a product through moderation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModerationAction {
    /// The vendor asks for review.
    Submit,
    /// An admin publishes the product.
    Approve,
    /// An admin sends it back.
    Reject {
        /// Why; required, at most [`MAX_REJECTION_REASON_CHARS`] characters.
        reason: String,
    },
    /// An admin takes a live product down.
    Suspend,
    /// An admin puts a suspended product back up.
    Reinstate,
    /// The vendor changes the listing.
    Edit,
}

impl ModerationAction {
    /// The snake_case name, as used in [`Error::InvalidTransition`].
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::Approve => "approve",
            Self::Reject { .. } => "reject",
            Self::Suspend => "suspend",
            Self::Reinstate => "reinstate",
            Self::Edit => "edit",
        }
    }
}

impl fmt::Display for ModerationAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status a product in `status` moves to under `action`.
///
/// The state is checked before the rejection reason, so rejecting a product
/// that is not pending is an invalid transition whatever the reason says.
///
/// # Errors
/// - [`Error::InvalidTransition`] for any pair not in the module's table.
/// - [`Error::Validation`] on `reason` when a reject's reason is blank or
///   longer than [`MAX_REJECTION_REASON_CHARS`].
pub fn transition(status: ProductStatus, action: &ModerationAction) -> Result<ProductStatus> {
    use ModerationAction as A;
    use ProductStatus as S;
    let next = match (status, action) {
        (S::Draft, A::Submit) => S::Pending,
        (S::Draft | S::Approved | S::Rejected, A::Edit) => S::Draft,
        (S::Pending, A::Approve) => S::Approved,
        (S::Pending, A::Reject { reason }) => {
            check_reason(reason)?;
            S::Rejected
        }
        (S::Approved, A::Suspend) => S::Suspended,
        (S::Suspended, A::Reinstate) => S::Approved,
        (from, action) => return Err(Error::transition("product", from, action)),
    };
    Ok(next)
}

fn check_reason(reason: &str) -> Result<()> {
    let len = reason.trim().chars().count();
    if len == 0 {
        return Err(Error::Validation(vec![FieldError::new("reason", "is required")]));
    }
    if len > MAX_REJECTION_REASON_CHARS {
        return Err(Error::Validation(vec![FieldError::new(
            "reason",
            format!("must be at most {MAX_REJECTION_REASON_CHARS} characters"),
        )]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProductStatus as S;
    use proptest::prelude::*;

    fn reject() -> ModerationAction {
        ModerationAction::Reject { reason: "screenshots missing".into() }
    }

    /// The table from the module docs, written out independently of `transition`.
    fn listed(from: ProductStatus, action: &ModerationAction) -> Option<ProductStatus> {
        let table = [
            (S::Draft, "submit", S::Pending),
            (S::Draft, "edit", S::Draft),
            (S::Pending, "approve", S::Approved),
            (S::Pending, "reject", S::Rejected),
            (S::Approved, "suspend", S::Suspended),
            (S::Approved, "edit", S::Draft),
            (S::Rejected, "edit", S::Draft),
            (S::Suspended, "reinstate", S::Approved),
        ];
        table.iter().find(|(f, a, _)| *f == from && *a == action.as_str()).map(|(_, _, to)| *to)
    }

    fn status() -> impl Strategy<Value = ProductStatus> {
        prop::sample::select(ProductStatus::ALL.to_vec())
    }

    fn action() -> impl Strategy<Value = ModerationAction> {
        prop_oneof![
            Just(ModerationAction::Submit),
            Just(ModerationAction::Approve),
            "[a-z ]{1,40}"
                .prop_filter("non-blank", |s| !s.trim().is_empty())
                .prop_map(|reason| ModerationAction::Reject { reason }),
            Just(ModerationAction::Suspend),
            Just(ModerationAction::Reinstate),
            Just(ModerationAction::Edit),
        ]
    }

    #[test]
    fn the_documented_path_works() {
        let mut s = S::Draft;
        for a in [
            ModerationAction::Submit,
            ModerationAction::Approve,
            ModerationAction::Suspend,
            ModerationAction::Reinstate,
        ] {
            s = transition(s, &a).unwrap();
        }
        assert_eq!(s, S::Approved);
        assert_eq!(transition(S::Pending, &reject()).unwrap(), S::Rejected);
        assert_eq!(transition(S::Approved, &ModerationAction::Edit).unwrap(), S::Draft);
        assert_eq!(transition(S::Rejected, &ModerationAction::Edit).unwrap(), S::Draft);
    }

    #[test]
    fn editing_is_blocked_while_pending_or_suspended() {
        for s in [S::Pending, S::Suspended] {
            let err = transition(s, &ModerationAction::Edit).unwrap_err();
            assert_eq!(err.code(), "invalid_transition");
            assert_eq!(err.to_string(), format!("cannot edit a product that is {s}"));
        }
    }

    #[test]
    fn rejection_needs_a_reason_of_sane_length() {
        for bad in ["", "   ", &"x".repeat(501)] {
            let err = transition(S::Pending, &ModerationAction::Reject { reason: bad.into() }).unwrap_err();
            assert_eq!(err.code(), "validation", "{bad:?}");
        }
        let ok = ModerationAction::Reject { reason: "é".repeat(500) };
        assert_eq!(transition(S::Pending, &ok).unwrap(), S::Rejected);
        // The state is judged first.
        let err = transition(S::Draft, &ModerationAction::Reject { reason: String::new() }).unwrap_err();
        assert_eq!(err.code(), "invalid_transition");
    }

    #[test]
    fn exhaustive_table_agrees_with_the_docs() {
        let actions = [
            ModerationAction::Submit,
            ModerationAction::Approve,
            reject(),
            ModerationAction::Suspend,
            ModerationAction::Reinstate,
            ModerationAction::Edit,
        ];
        let mut allowed = 0;
        for s in ProductStatus::ALL {
            for a in &actions {
                match (transition(s, a), listed(s, a)) {
                    (Ok(to), Some(expected)) => {
                        assert_eq!(to, expected);
                        allowed += 1;
                    }
                    (Err(e), None) => assert_eq!(e.code(), "invalid_transition", "{s} {a}"),
                    (got, want) => panic!("{s} --{a}--> got {got:?}, table says {want:?}"),
                }
            }
        }
        assert_eq!(allowed, 8);
    }

    proptest! {
        #[test]
        fn only_listed_transitions_succeed(from in status(), a in action()) {
            match listed(from, &a) {
                Some(to) => prop_assert_eq!(transition(from, &a).unwrap(), to),
                None => prop_assert_eq!(transition(from, &a).unwrap_err().code(), "invalid_transition"),
            }
        }

        #[test]
        fn forbidden_moves_never_succeed(a in action()) {
            // Nothing but approve/reject leaves pending, and nothing but
            // reinstate leaves suspended: in particular no edit.
            if !matches!(a, ModerationAction::Approve | ModerationAction::Reject { .. }) {
                prop_assert!(transition(S::Pending, &a).is_err());
            }
            if a != ModerationAction::Reinstate {
                prop_assert!(transition(S::Suspended, &a).is_err());
            }
            // Only an edit leaves rejected, and it always lands in draft.
            if let Ok(to) = transition(S::Rejected, &a) {
                prop_assert_eq!((a, to), (ModerationAction::Edit, S::Draft));
            }
        }

        #[test]
        fn random_sequences_follow_the_table(actions in prop::collection::vec(action(), 0..40)) {
            let mut s = S::Draft;
            for a in &actions {
                let before = s;
                match transition(s, a) {
                    Ok(next) => {
                        prop_assert_eq!(Some(next), listed(before, a));
                        s = next;
                    }
                    Err(_) => prop_assert_eq!(listed(before, a), None),
                }
                prop_assert!(ProductStatus::ALL.contains(&s));
            }
            // Approved is reachable only through a pending approval or a reinstatement.
            if s == S::Approved {
                prop_assert!(actions.iter().any(|a| matches!(a, ModerationAction::Approve | ModerationAction::Reinstate)));
            }
        }
    }
}
