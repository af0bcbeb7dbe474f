//! The sandbox payment provider: a deterministic, in-process stand-in for
//! Stripe, the embedded default and the provider of every test.
//!
//! Test cards (Stripe's names): `pm_card_visa` succeeds, `pm_card_declined`
//! is declined with `card_declined`, `pm_card_3ds` requires action (finish
//! it with [`SandboxProvider::complete_action`]); any other method is a
//! validation error. References count up within a sandbox and carry an
//! instance tag, the amount and the currency
//! (`pi_sandbox_<tag>_000001_1999_USD`), so they never collide across
//! processes or restarts. Idempotency keys are honoured per operation: a repeated
//! key returns the first result without charging again, and a repeated key
//! with different parameters is [`Error::IdempotencyMismatch`].
//!
//! The sandbox has no storage of its own. A sandbox that did not create an
//! intent — after a restart, or on another replica — adopts it from its
//! reference: for `confirm` and `retrieve` as awaiting a payment method, for
//! `refund` as captured. That is safe because the platform's own records
//! decide what may happen: the payment service never confirms an intent it
//! stored as succeeded, nor refunds one it did not.
//!
//! [`PaymentProvider::cancel`] cancels an intent that is not paid (again:
//! the canceled view), as Stripe does.
//!
//! Every state change also queues a webhook signed with the sandbox's
//! secret; [`SandboxProvider::take_webhooks`] hands them to a test, which
//! can deliver them (or replay, reorder or tamper with them).
//!
//! Memory is bounded ([`SandboxBounds`]): past its limits the sandbox
//! forgets its oldest intents (adopted again from their references, as
//! above), its oldest idempotency keys (as Stripe forgets keys after a day)
//! and its oldest queued webhooks, so a long-running embedded marketplace,
//! or a client declining cards in a loop, cannot grow it without end.

use crate::error::ConflictReason;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use parking_lot::Mutex;

use super::IntentStatus;
use super::provider::{PaymentProvider, ProviderIntent, ProviderRefund, WebhookEvent, WebhookKind};
use super::webhook;
use crate::clock::{Clock, Timestamp};
use crate::error::{Error, Result};
use crate::ids::OrderId;
use crate::money::Money;

/// The sandbox's provider name.
pub const SANDBOX: &str = "sandbox";

/// A succeeding test card.
pub const PM_CARD_VISA: &str = "pm_card_visa";
/// A declined test card (`card_declined`).
pub const PM_CARD_DECLINED: &str = "pm_card_declined";
/// A test card that requires 3-D Secure.
pub const PM_CARD_3DS: &str = "pm_card_3ds";

/// A webhook the sandbox would have sent: the signature header and raw body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedWebhook {
    /// The `t=…,v1=…` signature header.
    pub signature: String,
    /// The raw JSON body.
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
struct SandboxIntent {
    amount: Money,
    status: IntentStatus,
    decline_code: Option<String>,
    refunded: i64,
}

impl SandboxIntent {
    fn view(&self, provider_ref: &str) -> ProviderIntent {
        ProviderIntent {
            provider_ref: provider_ref.to_owned(),
            status: self.status,
            amount: self.amount.minor(),
            currency: self.amount.currency().code().to_owned(),
            decline_code: self.decline_code.clone(),
        }
    }
}

/// How much the sandbox keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxBounds {
    /// Intents remembered (default 100,000); older ones are adopted again
    /// from their references when used.
    pub intents: usize,
    /// Idempotency keys remembered (default 100,000).
    pub keys: usize,
    /// Webhooks queued for [`SandboxProvider::take_webhooks`] (default
    /// 10,000); the oldest go first.
    pub webhooks: usize,
}

impl Default for SandboxBounds {
    fn default() -> Self {
        Self { intents: 100_000, keys: 100_000, webhooks: 10_000 }
    }
}

/// A map that forgets its oldest entries past `cap`.
#[derive(Debug)]
struct Fifo<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    cap: usize,
}

impl<K: Hash + Eq + Clone, V> Fifo<K, V> {
    fn new(cap: usize) -> Self {
        Self { map: HashMap::new(), order: VecDeque::new(), cap: cap.max(1) }
    }

    fn insert(&mut self, key: K, value: V) {
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
            while self.order.len() > self.cap {
                if let Some(oldest) = self.order.pop_front() {
                    self.map.remove(&oldest);
                }
            }
        }
    }
}

#[derive(Debug)]
struct State {
    /// Distinguishes this sandbox's references and event ids from those of
    /// other processes and earlier runs.
    tag: String,
    counter: u64,
    intents: Fifo<String, SandboxIntent>,
    /// (operation, key) → (fingerprint of the parameters, result).
    keyed: Fifo<(&'static str, String), (String, Keyed)>,
    captures: u64,
    webhooks: VecDeque<SignedWebhook>,
    webhook_cap: usize,
}

#[derive(Debug, Clone)]
enum Keyed {
    Intent(ProviderIntent),
    Refund(ProviderRefund),
}

impl State {
    fn new(bounds: SandboxBounds) -> Self {
        let tag = uuid::Uuid::now_v7().simple().to_string();
        Self {
            // The random tail of a v7 UUID: unique per process without a clock prefix.
            tag: tag[tag.len() - 10..].to_owned(),
            counter: 0,
            intents: Fifo::new(bounds.intents),
            keyed: Fifo::new(bounds.keys),
            captures: 0,
            webhooks: VecDeque::new(),
            webhook_cap: bounds.webhooks.max(1),
        }
    }

    /// The intent behind `provider_ref`, adopted from the reference (with
    /// `status`) when this sandbox did not create it or has forgotten it.
    fn intent(&mut self, provider_ref: &str, status: IntentStatus) -> Result<&mut SandboxIntent> {
        if !self.intents.map.contains_key(provider_ref) {
            let amount = parse_ref(provider_ref).ok_or_else(|| Error::not_found("payment_intent"))?;
            self.intents
                .insert(provider_ref.to_owned(), SandboxIntent { amount, status, decline_code: None, refunded: 0 });
        }
        Ok(self.intents.map.get_mut(provider_ref).expect("inserted above"))
    }

    fn queue(&mut self, webhook: SignedWebhook) {
        if self.webhooks.len() == self.webhook_cap {
            self.webhooks.pop_front();
        }
        self.webhooks.push_back(webhook);
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn replay(&self, op: &'static str, key: &str, fingerprint: &str) -> Result<Option<Keyed>> {
        match self.keyed.map.get(&(op, key.to_owned())) {
            Some((fp, _)) if fp != fingerprint => Err(Error::IdempotencyMismatch),
            Some((_, result)) => Ok(Some(result.clone())),
            None => Ok(None),
        }
    }
}

/// The amount a sandbox reference (`pi_sandbox_<tag>_<n>_<minor>_<currency>`) carries.
fn parse_ref(provider_ref: &str) -> Option<Money> {
    let rest = provider_ref.strip_prefix("pi_sandbox_")?;
    let mut parts = rest.rsplitn(3, '_');
    let currency = crate::money::Currency::parse(parts.next()?).ok()?;
    let minor: i64 = parts.next()?.parse().ok()?;
    let _tag_and_counter = parts.next()?;
    (minor > 0).then(|| Money::new(minor, currency))
}

/// The sandbox provider. Cheap to share behind an `Arc`.
pub struct SandboxProvider {
    clock: Arc<dyn Clock>,
    secret: Vec<u8>,
    accepted: Vec<Vec<u8>>,
    state: Mutex<State>,
}

impl fmt::Debug for SandboxProvider {
    // Hand-written so the webhook secret never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxProvider").field("intents", &self.state.lock().intents.map.len()).finish_non_exhaustive()
    }
}

impl SandboxProvider {
    /// A sandbox signing its webhooks with `webhook_secret` at the clock's time.
    pub fn new(clock: Arc<dyn Clock>, webhook_secret: Vec<u8>) -> Self {
        Self::bounded(clock, webhook_secret, SandboxBounds::default())
    }

    /// [`new`](Self::new) keeping at most `bounds`.
    pub fn bounded(clock: Arc<dyn Clock>, webhook_secret: Vec<u8>, bounds: SandboxBounds) -> Self {
        Self {
            clock,
            accepted: vec![webhook_secret.clone()],
            secret: webhook_secret,
            state: Mutex::new(State::new(bounds)),
        }
    }

    /// Also accepts webhooks signed with `secret` (key rotation).
    pub fn accepting(mut self, secret: Vec<u8>) -> Self {
        self.accepted.push(secret);
        self
    }

    /// How many times money was captured (each success counts once).
    pub fn captures(&self) -> u64 {
        self.state.lock().captures
    }

    /// Drains the webhooks queued so far, oldest first.
    pub fn take_webhooks(&self) -> Vec<SignedWebhook> {
        std::mem::take(&mut self.state.lock().webhooks).into()
    }

    /// Signs `event` as the sandbox would send it (for tests crafting their own).
    pub fn sign_event(&self, event: &WebhookEvent, at: Timestamp) -> SignedWebhook {
        let body = serde_json::to_vec(event).expect("webhook events serialize");
        SignedWebhook { signature: webhook::sign(&self.secret, at.timestamp(), &body), body }
    }

    /// Finishes the customer action (3-D Secure) of an intent in
    /// `requires_action`: `approve` captures it, otherwise it is declined
    /// with `authentication_failed`. Queues the matching webhook.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown reference;
    /// [`Error::InvalidTransition`] unless the intent requires action.
    pub fn complete_action(&self, provider_ref: &str, approve: bool) -> Result<ProviderIntent> {
        let mut state = self.state.lock();
        let intent = state.intents.map.get_mut(provider_ref).ok_or_else(|| Error::not_found("payment_intent"))?;
        if intent.status != IntentStatus::RequiresAction {
            return Err(Error::transition("payment_intent", intent.status, "complete_action"));
        }
        if approve {
            intent.status = IntentStatus::Succeeded;
            intent.decline_code = None;
        } else {
            intent.status = IntentStatus::RequiresPaymentMethod;
            intent.decline_code = Some("authentication_failed".into());
        }
        let view = intent.view(provider_ref);
        if approve {
            state.captures += 1;
        }
        self.queue_intent_webhook(&mut state, &view);
        Ok(view)
    }

    fn queue_intent_webhook(&self, state: &mut State, view: &ProviderIntent) {
        let kind = match view.status {
            IntentStatus::Succeeded => WebhookKind::PaymentSucceeded,
            IntentStatus::RequiresPaymentMethod => WebhookKind::PaymentFailed,
            IntentStatus::RequiresAction => WebhookKind::RequiresAction,
            IntentStatus::Processing => WebhookKind::Processing,
            IntentStatus::Canceled => WebhookKind::Canceled,
            IntentStatus::RequiresConfirmation => return,
        };
        let n = state.next();
        let event = WebhookEvent {
            id: format!("evt_sandbox_{}_{n:06}", state.tag),
            kind,
            provider_ref: view.provider_ref.clone(),
            amount: view.amount,
            currency: view.currency.clone(),
            status: view.status,
            decline_code: view.decline_code.clone(),
        };
        let signed = self.sign_event(&event, self.clock.now());
        state.queue(signed);
    }
}

#[async_trait::async_trait]
impl PaymentProvider for SandboxProvider {
    fn name(&self) -> String {
        SANDBOX.to_owned()
    }

    async fn create_intent(&self, amount: Money, order_id: OrderId, idempotency_key: &str) -> Result<ProviderIntent> {
        if amount.minor() <= 0 {
            return Err(Error::invalid("amount", "must be positive"));
        }
        let fingerprint = format!("{order_id}:{}:{}", amount.minor(), amount.currency());
        let mut state = self.state.lock();
        if let Some(Keyed::Intent(done)) = state.replay("create", idempotency_key, &fingerprint)? {
            return Ok(done);
        }
        let n = state.next();
        let provider_ref = format!("pi_sandbox_{}_{n:06}_{}_{}", state.tag, amount.minor(), amount.currency().code());
        let intent =
            SandboxIntent { amount, status: IntentStatus::RequiresPaymentMethod, decline_code: None, refunded: 0 };
        let view = intent.view(&provider_ref);
        state.intents.insert(provider_ref, intent);
        state.keyed.insert(("create", idempotency_key.to_owned()), (fingerprint, Keyed::Intent(view.clone())));
        Ok(view)
    }

    async fn confirm(&self, provider_ref: &str, payment_method: &str, idempotency_key: &str) -> Result<ProviderIntent> {
        let fingerprint = format!("{provider_ref}:{payment_method}");
        let mut state = self.state.lock();
        if let Some(Keyed::Intent(done)) = state.replay("confirm", idempotency_key, &fingerprint)? {
            return Ok(done);
        }
        let outcome = match payment_method {
            PM_CARD_VISA => (IntentStatus::Succeeded, None),
            PM_CARD_DECLINED => (IntentStatus::RequiresPaymentMethod, Some("card_declined".to_owned())),
            PM_CARD_3DS => (IntentStatus::RequiresAction, None),
            _ => {
                return Err(Error::invalid("payment_method", format!("unknown payment method {payment_method:?}")));
            }
        };
        let intent = state.intent(provider_ref, IntentStatus::RequiresPaymentMethod)?;
        if intent.status.is_terminal() || intent.status == IntentStatus::Processing {
            return Err(Error::transition("payment_intent", intent.status, "confirm"));
        }
        (intent.status, intent.decline_code) = outcome;
        let view = intent.view(provider_ref);
        if view.status == IntentStatus::Succeeded {
            state.captures += 1;
        }
        state.keyed.insert(("confirm", idempotency_key.to_owned()), (fingerprint, Keyed::Intent(view.clone())));
        self.queue_intent_webhook(&mut state, &view);
        Ok(view)
    }

    async fn refund(&self, provider_ref: &str, amount: Money, idempotency_key: &str) -> Result<ProviderRefund> {
        let fingerprint = format!("{provider_ref}:{}:{}", amount.minor(), amount.currency());
        let mut state = self.state.lock();
        if let Some(Keyed::Refund(done)) = state.replay("refund", idempotency_key, &fingerprint)? {
            return Ok(done);
        }
        let intent = state.intent(provider_ref, IntentStatus::Succeeded)?;
        if intent.status != IntentStatus::Succeeded {
            return Err(Error::transition("payment_intent", intent.status, "refund"));
        }
        if amount.currency() != intent.amount.currency() || amount.minor() <= 0 {
            return Err(Error::invalid("amount", "must be positive and in the intent's currency"));
        }
        if intent.refunded + amount.minor() > intent.amount.minor() {
            return Err(Error::conflict(ConflictReason::Exceeded, "refund exceeds the captured amount"));
        }
        intent.refunded += amount.minor();
        let (total_refunded, currency) = (intent.refunded, intent.amount.currency().code().to_owned());
        let n = state.next();
        let refund = ProviderRefund {
            refund_ref: format!("re_sandbox_{}_{n:06}", state.tag),
            provider_ref: provider_ref.to_owned(),
            amount: amount.minor(),
            currency: currency.clone(),
        };
        state.keyed.insert(("refund", idempotency_key.to_owned()), (fingerprint, Keyed::Refund(refund.clone())));
        let n = state.next();
        let event = WebhookEvent {
            id: format!("evt_sandbox_{}_{n:06}", state.tag),
            kind: WebhookKind::Refunded,
            provider_ref: provider_ref.to_owned(),
            amount: total_refunded,
            currency,
            status: IntentStatus::Succeeded,
            decline_code: None,
        };
        let signed = self.sign_event(&event, self.clock.now());
        state.queue(signed);
        Ok(refund)
    }

    async fn retrieve(&self, provider_ref: &str) -> Result<ProviderIntent> {
        let mut state = self.state.lock();
        state.intent(provider_ref, IntentStatus::RequiresPaymentMethod).map(|i| i.view(provider_ref))
    }

    async fn cancel(&self, provider_ref: &str, idempotency_key: &str) -> Result<ProviderIntent> {
        let fingerprint = provider_ref.to_owned();
        let mut state = self.state.lock();
        if let Some(Keyed::Intent(done)) = state.replay("cancel", idempotency_key, &fingerprint)? {
            return Ok(done);
        }
        let intent = state.intent(provider_ref, IntentStatus::RequiresPaymentMethod)?;
        let changed = match intent.status {
            // Canceling twice (under another key) answers the same view.
            IntentStatus::Canceled => false,
            IntentStatus::Succeeded | IntentStatus::Processing => {
                return Err(Error::transition("payment_intent", intent.status, "cancel"));
            }
            IntentStatus::RequiresPaymentMethod | IntentStatus::RequiresConfirmation | IntentStatus::RequiresAction => {
                intent.status = IntentStatus::Canceled;
                true
            }
        };
        let view = intent.view(provider_ref);
        state.keyed.insert(("cancel", idempotency_key.to_owned()), (fingerprint, Keyed::Intent(view.clone())));
        if changed {
            self.queue_intent_webhook(&mut state, &view);
        }
        Ok(view)
    }

    fn verify_and_parse_webhook(
        &self,
        signature_header: &str,
        raw_body: &[u8],
        now: Timestamp,
    ) -> Result<WebhookEvent> {
        webhook::verify(signature_header, raw_body, &self.accepted, now, webhook::DEFAULT_TOLERANCE)?;
        serde_json::from_slice(raw_body).map_err(|e| Error::invalid("body", format!("not a sandbox webhook: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::money::Currency;
    use futures::executor::block_on;

    fn sandbox() -> (SandboxProvider, ManualClock) {
        let clock = ManualClock::at_epoch_secs(1_700_000_000);
        (SandboxProvider::new(Arc::new(clock.clone()), b"whsec".to_vec()), clock)
    }

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::USD)
    }

    #[test]
    fn test_cards_behave_like_stripes() {
        block_on(async {
            let (p, _) = sandbox();
            let a = p.create_intent(usd(500), OrderId::new(), "c1").await.unwrap();
            assert!(a.provider_ref.starts_with("pi_sandbox_") && a.provider_ref.ends_with("_000001_500_USD"));
            assert_eq!(a.status, IntentStatus::RequiresPaymentMethod);
            let declined = p.confirm(&a.provider_ref, PM_CARD_DECLINED, "k1").await.unwrap();
            assert_eq!(declined.status, IntentStatus::RequiresPaymentMethod);
            assert_eq!(declined.decline_code.as_deref(), Some("card_declined"));
            let action = p.confirm(&a.provider_ref, PM_CARD_3DS, "k2").await.unwrap();
            assert_eq!(action.status, IntentStatus::RequiresAction);
            let done = p.complete_action(&a.provider_ref, true).unwrap();
            assert_eq!(done.status, IntentStatus::Succeeded);
            assert_eq!(p.captures(), 1);
            let err = p.confirm(&a.provider_ref, PM_CARD_VISA, "k3").await.unwrap_err();
            assert_eq!(err.code(), "invalid_transition");
            let unknown = p.confirm(&a.provider_ref, "pm_card_amex", "k4").await.unwrap_err();
            assert!(unknown.to_string().contains("payment_method"));
        });
    }

    #[test]
    fn another_sandbox_adopts_an_intent_from_its_reference() {
        block_on(async {
            let (first, _) = sandbox();
            let (restarted, _) = sandbox();
            let paid = first.create_intent(usd(1999), OrderId::new(), "c1").await.unwrap();
            let pending = first.create_intent(usd(700), OrderId::new(), "c2").await.unwrap();
            first.confirm(&paid.provider_ref, PM_CARD_VISA, "k1").await.unwrap();
            let fresh = restarted.create_intent(usd(1999), OrderId::new(), "c1").await.unwrap();
            assert_ne!(fresh.provider_ref, paid.provider_ref, "references never repeat across sandboxes");

            // The restarted sandbox can charge the pending intent and refund the paid one.
            let charged = restarted.confirm(&pending.provider_ref, PM_CARD_VISA, "k2").await.unwrap();
            assert_eq!(
                (charged.status, charged.amount, charged.currency.as_str()),
                (IntentStatus::Succeeded, 700, "USD")
            );
            let refund = restarted.refund(&paid.provider_ref, usd(1999), "r1").await.unwrap();
            assert_eq!(refund.amount, 1999);
            let over = restarted.refund(&paid.provider_ref, usd(1), "r2").await.unwrap_err();
            assert_eq!(over.code(), "conflict", "the adopted intent still caps refunds");
            assert_eq!(
                restarted.confirm("pi_sandbox_garbage", PM_CARD_VISA, "k3").await.unwrap_err().code(),
                "not_found"
            );

            let ids = |p: &SandboxProvider| -> Vec<String> {
                p.take_webhooks().iter().map(|w| serde_json::from_slice::<WebhookEvent>(&w.body).unwrap().id).collect()
            };
            let (a, b) = (ids(&first), ids(&restarted));
            assert!(a.iter().all(|id| !b.contains(id)), "webhook event ids are unique across sandboxes: {a:?} {b:?}");
        });
    }

    #[test]
    fn idempotency_keys_never_charge_twice() {
        block_on(async {
            let (p, _) = sandbox();
            let order = OrderId::new();
            let a = p.create_intent(usd(500), order, "c1").await.unwrap();
            assert_eq!(p.create_intent(usd(500), order, "c1").await.unwrap(), a);
            assert!(matches!(p.create_intent(usd(501), order, "c1").await, Err(Error::IdempotencyMismatch)));
            let paid = p.confirm(&a.provider_ref, PM_CARD_VISA, "k").await.unwrap();
            assert_eq!(p.confirm(&a.provider_ref, PM_CARD_VISA, "k").await.unwrap(), paid);
            assert_eq!(p.captures(), 1);
            let r = p.refund(&a.provider_ref, usd(200), "r1").await.unwrap();
            assert_eq!(p.refund(&a.provider_ref, usd(200), "r1").await.unwrap(), r);
            assert_eq!(p.refund(&a.provider_ref, usd(301), "r2").await.unwrap_err().code(), "conflict");
            p.refund(&a.provider_ref, usd(300), "r2").await.unwrap();
        });
    }

    #[test]
    fn webhooks_are_signed_and_parse_back() {
        block_on(async {
            let (p, clock) = sandbox();
            let a = p.create_intent(usd(500), OrderId::new(), "c1").await.unwrap();
            p.confirm(&a.provider_ref, PM_CARD_VISA, "k").await.unwrap();
            let hooks = p.take_webhooks();
            assert_eq!(hooks.len(), 1);
            assert!(p.take_webhooks().is_empty());
            let event = p.verify_and_parse_webhook(&hooks[0].signature, &hooks[0].body, clock.now()).unwrap();
            assert_eq!(event.kind, WebhookKind::PaymentSucceeded);
            assert_eq!((event.amount, event.currency.as_str()), (500, "USD"));
            let mut tampered = hooks[0].body.clone();
            tampered[0] = b' ';
            assert_eq!(
                p.verify_and_parse_webhook(&hooks[0].signature, &tampered, clock.now()).unwrap_err().code(),
                "unauthenticated"
            );
            clock.advance(chrono::Duration::seconds(301));
            assert!(p.verify_and_parse_webhook(&hooks[0].signature, &hooks[0].body, clock.now()).is_err());
        });
    }

    #[test]
    fn cancel_is_idempotent_and_never_undoes_a_capture() {
        block_on(async {
            let (p, _) = sandbox();
            let open = p.create_intent(usd(500), OrderId::new(), "c1").await.unwrap();
            let canceled = p.cancel(&open.provider_ref, "x1").await.unwrap();
            assert_eq!(canceled.status, IntentStatus::Canceled);
            assert_eq!(p.cancel(&open.provider_ref, "x2").await.unwrap(), canceled, "a second cancel answers the same");
            assert_eq!(
                p.confirm(&open.provider_ref, PM_CARD_VISA, "k1").await.unwrap_err().code(),
                "invalid_transition"
            );
            let paid = p.create_intent(usd(500), OrderId::new(), "c2").await.unwrap();
            p.confirm(&paid.provider_ref, PM_CARD_VISA, "k2").await.unwrap();
            assert_eq!(p.cancel(&paid.provider_ref, "x3").await.unwrap_err().code(), "invalid_transition");
            assert_eq!(p.retrieve(&paid.provider_ref).await.unwrap().status, IntentStatus::Succeeded);
            let kinds: Vec<WebhookKind> = p
                .take_webhooks()
                .iter()
                .map(|w| serde_json::from_slice::<WebhookEvent>(&w.body).unwrap().kind)
                .collect();
            assert_eq!(kinds, [WebhookKind::Canceled, WebhookKind::PaymentSucceeded], "one webhook per change");
        });
    }

    #[test]
    fn a_declining_loop_stays_within_the_bounds() {
        let clock = ManualClock::at_epoch_secs(1_700_000_000);
        let bounds = SandboxBounds { intents: 3, keys: 5, webhooks: 4 };
        let p = SandboxProvider::bounded(Arc::new(clock), b"whsec".to_vec(), bounds);
        let first = block_on(p.create_intent(usd(500), OrderId::new(), "create-0")).unwrap();
        for i in 1..50 {
            let intent = block_on(p.create_intent(usd(500), OrderId::new(), &format!("create-{i}"))).unwrap();
            let key = format!("confirm-{i}");
            block_on(p.confirm(&intent.provider_ref, PM_CARD_DECLINED, &key)).unwrap();
        }
        {
            let state = p.state.lock();
            assert_eq!((state.intents.map.len(), state.intents.order.len()), (3, 3));
            assert_eq!((state.keyed.map.len(), state.keyed.order.len()), (5, 5));
            assert_eq!(state.webhooks.len(), 4);
        }
        let kept = p.take_webhooks();
        assert_eq!(kept.len(), 4, "the newest are kept");
        let last: WebhookEvent = serde_json::from_slice(&kept[3].body).unwrap();
        assert!(last.id.ends_with("_000099"), "{}", last.id);
        // A forgotten intent is adopted again from its reference.
        let paid = block_on(p.confirm(&first.provider_ref, PM_CARD_VISA, "late")).unwrap();
        assert_eq!((paid.status, paid.amount), (IntentStatus::Succeeded, 500));
    }

    #[test]
    fn a_rotated_secret_is_still_accepted() {
        let clock = ManualClock::at_epoch_secs(1_700_000_000);
        let old = SandboxProvider::new(Arc::new(clock.clone()), b"old".to_vec());
        let new = SandboxProvider::new(Arc::new(clock.clone()), b"new".to_vec()).accepting(b"old".to_vec());
        let event = WebhookEvent {
            id: "evt_1".into(),
            kind: WebhookKind::Canceled,
            provider_ref: "pi_1".into(),
            amount: 1,
            currency: "USD".into(),
            status: IntentStatus::Canceled,
            decline_code: None,
        };
        let signed = old.sign_event(&event, clock.now());
        assert_eq!(new.verify_and_parse_webhook(&signed.signature, &signed.body, clock.now()).unwrap(), event);
    }
}
