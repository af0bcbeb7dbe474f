//! A local server that speaks Stripe's wire format (feature `fake`): wiremock
//! serving the recorded bodies in `tests/fixtures/`, with the state a real
//! Stripe test account keeps (intents, refunds, captures) and Stripe's
//! idempotency rules (a repeated key replays the first answer with
//! `Idempotent-Replayed: true`; the same key with other parameters is a 400
//! `idempotency_error`). The connector's own tests, the composition root's
//! and the end-to-end purchase run against it.
//!
//! Test payment methods are Stripe's: `pm_card_visa` succeeds,
//! `pm_card_chargeDeclined` and `pm_card_chargeDeclinedInsufficientFunds`
//! are declined (402), `pm_card_threeDSecure2Required` requires action.
//! Faults (429, 5xx storms, slow answers) are extra mocks a test mounts in
//! front of this one ([`FakeStripe::server`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bazaar_core::payments::webhook;
use parking_lot::Mutex;
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::{API_VERSION, StripeConfig};

/// The secret key the fake accepts.
pub const SECRET_KEY: &str = "sk_test_fake51MtvzyLkdIwHu7ix";
/// The webhook signing secret of the fake's events.
pub const WEBHOOK_SECRET: &str = "whsec_fake_5b1e8c0d2f";

/// Succeeds.
pub const PM_VISA: &str = "pm_card_visa";
/// Declined (`card_declined`).
pub const PM_DECLINED: &str = "pm_card_chargeDeclined";
/// Declined (`insufficient_funds`).
pub const PM_NO_FUNDS: &str = "pm_card_chargeDeclinedInsufficientFunds";
/// Requires 3-D Secure, finished by [`FakeStripe::complete_action`].
pub const PM_3DS: &str = "pm_card_threeDSecure2Required";

/// The recorded Stripe bodies, built into the crate so the fake works from
/// any test binary.
const FIXTURES: &[(&str, &str)] = &[
    ("error_api.json", include_str!("../tests/fixtures/error_api.json")),
    ("error_card_declined.json", include_str!("../tests/fixtures/error_card_declined.json")),
    ("error_idempotency.json", include_str!("../tests/fixtures/error_idempotency.json")),
    ("error_idempotency_in_flight.json", include_str!("../tests/fixtures/error_idempotency_in_flight.json")),
    ("error_insufficient_funds.json", include_str!("../tests/fixtures/error_insufficient_funds.json")),
    ("error_invalid_api_key.json", include_str!("../tests/fixtures/error_invalid_api_key.json")),
    ("error_no_such_payment_method.json", include_str!("../tests/fixtures/error_no_such_payment_method.json")),
    ("error_rate_limit.json", include_str!("../tests/fixtures/error_rate_limit.json")),
    ("error_refund_exceeds.json", include_str!("../tests/fixtures/error_refund_exceeds.json")),
    ("error_resource_missing.json", include_str!("../tests/fixtures/error_resource_missing.json")),
    ("error_unexpected_state.json", include_str!("../tests/fixtures/error_unexpected_state.json")),
    ("event_charge_refunded.json", include_str!("../tests/fixtures/event_charge_refunded.json")),
    (
        "event_payment_intent_payment_failed.json",
        include_str!("../tests/fixtures/event_payment_intent_payment_failed.json"),
    ),
    ("event_payment_intent_succeeded.json", include_str!("../tests/fixtures/event_payment_intent_succeeded.json")),
    ("payment_intent.json", include_str!("../tests/fixtures/payment_intent.json")),
    ("payment_intent_canceled.json", include_str!("../tests/fixtures/payment_intent_canceled.json")),
    ("payment_intent_requires_action.json", include_str!("../tests/fixtures/payment_intent_requires_action.json")),
    ("payment_intent_succeeded.json", include_str!("../tests/fixtures/payment_intent_succeeded.json")),
    ("refund.json", include_str!("../tests/fixtures/refund.json")),
];

/// A recorded Stripe body from `tests/fixtures/`.
///
/// # Panics
/// When there is no fixture of that name.
pub fn fixture(name: &str) -> Value {
    let (_, text) = FIXTURES.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no fixture {name}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[derive(Debug, Clone)]
struct Intent {
    amount: i64,
    currency: String,
    status: &'static str,
    order_id: String,
    payment_method: Option<String>,
    last_error: Option<Value>,
    charge: Option<String>,
    refunded: i64,
}

#[derive(Debug, Clone)]
struct Stored {
    fingerprint: String,
    status: u16,
    body: Value,
}

#[derive(Debug, Default)]
struct State {
    counter: u64,
    intents: HashMap<String, Intent>,
    keyed: HashMap<String, Stored>,
    captures: u64,
    refund_ids: Vec<String>,
    delay_next: Option<Duration>,
}

/// The fake Stripe API.
pub struct FakeStripe {
    /// The server: mount fault mocks in front of the fake with a priority below 10.
    pub server: MockServer,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for FakeStripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeStripe").field("uri", &self.server.uri()).finish_non_exhaustive()
    }
}

impl FakeStripe {
    /// Starts a fake on a free loopback port.
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        Mock::given(any()).respond_with(Api(Arc::clone(&state))).with_priority(10).mount(&server).await;
        Self { server, state }
    }

    /// Its base URL (`STRIPE_API_BASE`).
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// A connector configuration pointing here, with quick retries.
    ///
    /// # Panics
    /// Never: the fake's own keys are valid.
    pub fn config(&self) -> StripeConfig {
        use bazaar_core::resilience::retry::{Backoff, RetryPolicy};
        let mut config = StripeConfig::from_values(SECRET_KEY, WEBHOOK_SECRET, Some(&self.uri())).unwrap();
        config.retry =
            RetryPolicy::new(3, Backoff::constant(Duration::from_millis(5))).with_max_elapsed(Duration::from_secs(30));
        config
    }

    /// Money captured so far (each successful charge once).
    pub fn captures(&self) -> u64 {
        self.state.lock().captures
    }

    /// Holds back the answer to the next request for `delay` (after it was
    /// processed), as a network that loses or slows a response does.
    pub fn delay_next_answer(&self, delay: Duration) {
        self.state.lock().delay_next = Some(delay);
    }

    /// Finishes the buyer's 3-D Secure step (panics for an intent that
    /// does not await one): `approve` captures, else the
    /// intent returns to `requires_payment_method` with an authentication
    /// failure, as Stripe does.
    pub fn complete_action(&self, id: &str, approve: bool) {
        let mut state = self.state.lock();
        let charge = format!("ch_fake{:08}", state.counter);
        let intent = state.intents.get_mut(id).expect("known intent");
        assert_eq!(intent.status, "requires_action");
        if approve {
            intent.status = "succeeded";
            intent.charge = Some(charge);
            state.captures += 1;
        } else {
            intent.status = "requires_payment_method";
            intent.last_error = Some(json!({
                "code": "payment_intent_authentication_failure",
                "doc_url": "https://stripe.com/docs/error-codes/payment-intent-authentication-failure",
                "message": "We are unable to authenticate your payment method. Please choose a different payment method and try again.",
                "type": "invalid_request_error"
            }));
        }
    }

    /// Every request the server received, oldest first.
    pub async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap_or_default()
    }

    /// A webhook of `kind` about intent `id` (panics if unknown) as Stripe would send it:
    /// the recorded event with this intent (or its charge) inside, signed
    /// with [`WEBHOOK_SECRET`] at Unix time `t`.
    pub fn signed_event(&self, kind: &str, id: &str, t: i64) -> (String, Vec<u8>) {
        let state = self.state.lock();
        let intent = state.intents.get(id).expect("known intent");
        let mut event = if kind == "charge.refunded" {
            let mut event = fixture("event_charge_refunded.json");
            let charge = &mut event["data"]["object"];
            charge["id"] = json!(intent.charge.clone().expect("a captured intent"));
            charge["amount"] = json!(intent.amount);
            charge["amount_captured"] = json!(intent.amount);
            charge["amount_refunded"] = json!(intent.refunded);
            charge["refunded"] = json!(intent.refunded == intent.amount);
            charge["currency"] = json!(intent.currency);
            charge["payment_intent"] = json!(id);
            event
        } else {
            let mut event = fixture("event_payment_intent_succeeded.json");
            event["type"] = json!(kind);
            event["data"]["object"] = intent_json(id, intent);
            event
        };
        event["id"] = json!(format!("evt_fake{t}{}", id.len() + kind.len()));
        event["created"] = json!(t);
        let body = serde_json::to_vec_pretty(&event).unwrap();
        (webhook::sign(WEBHOOK_SECRET.as_bytes(), t, &body), body)
    }
}

fn intent_json(id: &str, intent: &Intent) -> Value {
    let mut pi = fixture("payment_intent.json");
    pi["id"] = json!(id);
    pi["client_secret"] = json!(format!("{id}_secret_fake"));
    pi["amount"] = json!(intent.amount);
    pi["currency"] = json!(intent.currency);
    pi["status"] = json!(intent.status);
    pi["metadata"] = json!({ "order_id": intent.order_id });
    pi["payment_method"] = json!(intent.payment_method);
    pi["last_payment_error"] = intent.last_error.clone().unwrap_or(Value::Null);
    pi["latest_charge"] = json!(intent.charge);
    if intent.status == "succeeded" {
        pi["amount_received"] = json!(intent.amount);
    }
    if intent.status == "requires_action" {
        pi["next_action"] = fixture("payment_intent_requires_action.json")["next_action"].clone();
    }
    if intent.status == "canceled" {
        pi["canceled_at"] = json!(1_680_801_000);
        pi["cancellation_reason"] = json!("abandoned");
    }
    pi
}

struct Api(Arc<Mutex<State>>);

type Answer = (u16, Value);

fn error(name: &str) -> Value {
    fixture(name)
}

fn missing(what: &str, id: &str, param: &str) -> Answer {
    let mut e = error("error_resource_missing.json");
    e["error"]["message"] = json!(format!("No such {what}: '{id}'"));
    e["error"]["param"] = json!(param);
    (404, e)
}

fn unexpected_state(id: &str, intent: &Intent, message: String) -> Answer {
    let mut e = error("error_unexpected_state.json");
    e["error"]["message"] = json!(message);
    e["error"]["payment_intent"] = intent_json(id, intent);
    (400, e)
}

impl State {
    fn next(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_fake{:06}Lk{}", self.counter, self.intents.len())
    }

    fn handle(&mut self, post: bool, path: &str, form: &HashMap<String, String>) -> Answer {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (post, parts.as_slice()) {
            (true, ["v1", "payment_intents"]) => self.create(form),
            (false, ["v1", "payment_intents", id]) => match self.intents.get(*id) {
                Some(intent) => (200, intent_json(id, intent)),
                None => missing("payment_intent", id, "intent"),
            },
            (true, ["v1", "payment_intents", id, "confirm"]) => self.confirm(id, form),
            (true, ["v1", "payment_intents", id, "cancel"]) => self.cancel(id),
            (true, ["v1", "refunds"]) => self.refund(form),
            _ => (
                404,
                json!({"error": {"message": format!("Unrecognized request URL ({path})."), "type": "invalid_request_error"}}),
            ),
        }
    }

    fn create(&mut self, form: &HashMap<String, String>) -> Answer {
        let amount: i64 = form.get("amount").and_then(|a| a.parse().ok()).unwrap_or(0);
        if amount < 1 {
            return (
                400,
                json!({"error": {"code": "parameter_invalid_integer", "message": "This value must be greater than or equal to 1.", "param": "amount", "type": "invalid_request_error"}}),
            );
        }
        let currency = form.get("currency").cloned().unwrap_or_default();
        assert_eq!(currency, currency.to_ascii_lowercase(), "Stripe takes lower-case currencies");
        let id = self.next("pi");
        let intent = Intent {
            amount,
            currency,
            status: "requires_payment_method",
            order_id: form.get("metadata[order_id]").cloned().unwrap_or_default(),
            payment_method: None,
            last_error: None,
            charge: None,
            refunded: 0,
        };
        let body = intent_json(&id, &intent);
        self.intents.insert(id, intent);
        (200, body)
    }

    fn confirm(&mut self, id: &str, form: &HashMap<String, String>) -> Answer {
        let Some(intent) = self.intents.get(id).cloned() else {
            return missing("payment_intent", id, "intent");
        };
        let method = form.get("payment_method").cloned().unwrap_or_default();
        if ![PM_VISA, PM_DECLINED, PM_NO_FUNDS, PM_3DS].contains(&method.as_str()) {
            let mut e = error("error_no_such_payment_method.json");
            e["error"]["message"] = json!(format!("No such PaymentMethod: '{method}'"));
            return (400, e);
        }
        if matches!(intent.status, "succeeded" | "canceled" | "processing") {
            let message =
                format!("You cannot confirm this PaymentIntent because it has a status of {}.", intent.status);
            return unexpected_state(id, &intent, message);
        }
        let charge = format!("ch_fake{:08}", self.counter + 1);
        self.counter += 1;
        let intent = self.intents.get_mut(id).expect("checked above");
        intent.payment_method = Some(format!("pm_fake_{method}"));
        match method.as_str() {
            PM_VISA => {
                intent.status = "succeeded";
                intent.last_error = None;
                intent.charge = Some(charge);
                self.captures += 1;
                let intent = self.intents[id].clone();
                (200, intent_json(id, &intent))
            }
            PM_3DS => {
                intent.status = "requires_action";
                intent.last_error = None;
                let intent = intent.clone();
                (200, intent_json(id, &intent))
            }
            _ => {
                let name =
                    if method == PM_DECLINED { "error_card_declined.json" } else { "error_insufficient_funds.json" };
                let mut e = error(name);
                e["error"]["charge"] = json!(charge);
                let mut last = e["error"].clone();
                if let Some(obj) = last.as_object_mut() {
                    obj.remove("payment_intent");
                    obj.remove("request_log_url");
                }
                intent.status = "requires_payment_method";
                intent.last_error = Some(last);
                let intent = intent.clone();
                e["error"]["payment_intent"] = intent_json(id, &intent);
                (402, e)
            }
        }
    }

    fn cancel(&mut self, id: &str) -> Answer {
        let Some(intent) = self.intents.get_mut(id) else {
            return missing("payment_intent", id, "intent");
        };
        if matches!(intent.status, "succeeded" | "canceled" | "processing") {
            let message = format!(
                "You cannot cancel this PaymentIntent because it has a status of {}. Only a PaymentIntent with one of the following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, requires_action, processing.",
                intent.status
            );
            let intent = intent.clone();
            return unexpected_state(id, &intent, message);
        }
        intent.status = "canceled";
        let intent = intent.clone();
        (200, intent_json(id, &intent))
    }

    fn refund(&mut self, form: &HashMap<String, String>) -> Answer {
        let id = form.get("payment_intent").cloned().unwrap_or_default();
        let amount: i64 = form.get("amount").and_then(|a| a.parse().ok()).unwrap_or(0);
        let refund_id = self.next("re");
        let Some(intent) = self.intents.get_mut(&id) else {
            return missing("payment_intent", &id, "payment_intent");
        };
        if intent.status != "succeeded" {
            let message = format!("This PaymentIntent ({id}) does not have a successful charge to refund.");
            let intent = intent.clone();
            return unexpected_state(&id, &intent, message);
        }
        if intent.refunded + amount > intent.amount {
            let mut e = error("error_refund_exceeds.json");
            e["error"]["message"] = json!(format!(
                "Refund amount ({amount}) is greater than unrefunded amount on charge ({})",
                intent.amount - intent.refunded
            ));
            return (400, e);
        }
        intent.refunded += amount;
        let mut refund = fixture("refund.json");
        refund["id"] = json!(refund_id);
        refund["amount"] = json!(amount);
        refund["currency"] = json!(intent.currency);
        refund["charge"] = json!(intent.charge);
        refund["payment_intent"] = json!(id);
        self.refund_ids.push(refund_id);
        (200, refund)
    }
}

impl Respond for Api {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut state = self.0.lock();
        let (status, body, replayed) = if header("authorization").as_deref() != Some(&format!("Bearer {SECRET_KEY}")) {
            (401, error("error_invalid_api_key.json"), false)
        } else if header("stripe-version").as_deref() != Some(API_VERSION) {
            (400, json!({"error": {"message": "Invalid Stripe API version", "type": "invalid_request_error"}}), false)
        } else {
            let post = request.method.as_str() == "POST";
            let form: HashMap<String, String> =
                serde_urlencoded::from_bytes::<Vec<(String, String)>>(&request.body).unwrap().into_iter().collect();
            let path = request.url.path().to_owned();
            match (post, header("idempotency-key")) {
                (true, None) => (
                    400,
                    json!({"error": {"message": "this fake requires an Idempotency-Key on every POST", "type": "invalid_request_error"}}),
                    false,
                ),
                (true, Some(key)) => {
                    let fingerprint = format!("{path}?{}", String::from_utf8_lossy(&request.body));
                    match state.keyed.get(&key) {
                        Some(stored) if stored.fingerprint == fingerprint => (stored.status, stored.body.clone(), true),
                        Some(_) => (400, error("error_idempotency.json"), false),
                        None => {
                            let (status, body) = state.handle(true, &path, &form);
                            // Stripe saves the result of every request that
                            // started executing: successes, declines and
                            // state errors, not a request for a missing object.
                            if status != 404 {
                                state.keyed.insert(key, Stored { fingerprint, status, body: body.clone() });
                            }
                            (status, body, false)
                        }
                    }
                }
                (false, _) => {
                    let (status, body) = state.handle(false, &path, &form);
                    (status, body, false)
                }
            }
        };
        state.counter += 1;
        let mut template = ResponseTemplate::new(status)
            .set_body_raw(serde_json::to_vec_pretty(&body).unwrap(), "application/json")
            .insert_header("request-id", format!("req_fake{:08}", state.counter));
        if replayed {
            template = template.insert_header("idempotent-replayed", "true");
        }
        if let Some(delay) = state.delay_next.take() {
            template = template.set_delay(delay);
        }
        template
    }
}

/// The idempotency keys of the requests to paths ending in `suffix`.
pub fn keys_of(requests: &[Request], suffix: &str) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.url.path().ends_with(suffix))
        .map(|r| r.headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned())
        .collect()
}
