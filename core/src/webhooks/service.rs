//! [`WebhookService`]: vendors manage their endpoints, see their
//! deliveries and replay dead ones; the sales handler queues deliveries.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{DeliveryStatus, EndpointSecret, VendorEvent, WebhookDelivery, WebhookEndpoint, WebhookRepository};
use crate::auth::{Action, Actor, Resource, authorize};
use crate::clock::{Clock, Timestamp};
use crate::entropy::Entropy;
use crate::error::{Error, FieldError, Result};
use crate::ids::{EventId, UserId, WebhookDeliveryId, WebhookEndpointId};
use crate::page::{Page, PageRequest};

/// The longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2_048;

/// The rules endpoints are registered under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointPolicy {
    /// Whether `http://` URLs and loopback, private and link-local hosts
    /// are accepted (default false: only `https://` to public hosts, so a
    /// vendor cannot aim the marketplace at its own network). Turn it on for
    /// a local setup where the receiver runs next to the marketplace.
    pub allow_local: bool,
    /// How long a rotated-out secret keeps signing (default 24 h).
    pub secret_grace: chrono::Duration,
    /// Endpoints per vendor (default 10).
    pub max_endpoints: usize,
}

impl Default for EndpointPolicy {
    fn default() -> Self {
        Self { allow_local: false, secret_grace: chrono::Duration::hours(24), max_endpoints: 10 }
    }
}

/// An endpoint to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    /// Where deliveries go.
    pub url: String,
    /// Event names (`order.paid`, `license.issued`, `order.refunded`).
    pub events: Vec<String>,
}

/// A change to an endpoint; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointChange {
    /// A new URL.
    pub url: Option<String>,
    /// A new set of event names.
    pub events: Option<Vec<String>>,
}

/// A delivery to queue, before it has an id: what the sales handler asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Sale {
    /// The vendor it concerns.
    pub vendor_id: UserId,
    /// What happened.
    pub event_type: VendorEvent,
    /// The domain event it comes from.
    pub event_id: EventId,
    /// When that happened.
    pub occurred_at: Timestamp,
    /// The event's `data`.
    pub data: serde_json::Value,
    /// The trace context to send along.
    pub traceparent: Option<String>,
}

/// Vendor webhooks: endpoints, secrets, deliveries and replays.
pub struct WebhookService {
    repo: Arc<dyn WebhookRepository>,
    entropy: Arc<dyn Entropy>,
    clock: Arc<dyn Clock>,
    policy: EndpointPolicy,
}

impl fmt::Debug for WebhookService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookService").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl WebhookService {
    /// A service over `repo`, drawing secrets from `entropy`.
    pub fn new(
        repo: Arc<dyn WebhookRepository>,
        entropy: Arc<dyn Entropy>,
        clock: Arc<dyn Clock>,
        policy: EndpointPolicy,
    ) -> Self {
        Self { repo, entropy, clock, policy }
    }

    /// The rules endpoints are registered under.
    pub fn policy(&self) -> EndpointPolicy {
        self.policy
    }

    /// Registers an endpoint for `actor` (a vendor or admin) with a fresh
    /// signing secret, which the answer carries.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for a customer; [`Error::Validation`] naming
    /// `url` and `events` when they break the policy; [`Error::Conflict`]
    /// (`Exceeded`) when the vendor has [`EndpointPolicy::max_endpoints`].
    pub async fn register(&self, actor: &Actor, new: NewEndpoint) -> Result<WebhookEndpoint> {
        authorize(actor, Action::ManageWebhooks, &Resource::User { user_id: actor.user_id })?;
        let (url, events) = collect(check_url(&new.url, self.policy), check_events(&new.events))?;
        if self.repo.list_endpoints(actor.user_id).await?.len() >= self.policy.max_endpoints {
            return Err(Error::conflict(
                crate::ConflictReason::Exceeded,
                format!("a vendor may register at most {} webhook endpoints", self.policy.max_endpoints),
            ));
        }
        let now = self.clock.now();
        let endpoint = WebhookEndpoint {
            id: WebhookEndpointId::new(),
            vendor_id: actor.user_id,
            url,
            events,
            secrets: vec![self.new_secret()],
            created_at: now,
            updated_at: now,
        };
        self.repo.insert_endpoint(&endpoint).await?;
        Ok(endpoint)
    }

    /// `actor`'s endpoints, oldest first.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for a customer.
    pub async fn list(&self, actor: &Actor) -> Result<Vec<WebhookEndpoint>> {
        authorize(actor, Action::ManageWebhooks, &Resource::User { user_id: actor.user_id })?;
        self.repo.list_endpoints(actor.user_id).await
    }

    /// One of `actor`'s endpoints.
    ///
    /// # Errors
    /// [`Error::NotFound`] when it is unknown or someone else's.
    pub async fn get(&self, actor: &Actor, id: WebhookEndpointId) -> Result<WebhookEndpoint> {
        authorize(actor, Action::ManageWebhooks, &Resource::User { user_id: actor.user_id })?;
        match self.repo.get_endpoint(id).await? {
            Some(endpoint) if endpoint.vendor_id == actor.user_id => Ok(endpoint),
            // Someone else's endpoint is not even confirmed to exist.
            _ => Err(Error::not_found("webhook endpoint")),
        }
    }

    /// Changes the URL or events of one of `actor`'s endpoints.
    ///
    /// # Errors
    /// As [`get`](Self::get), and [`Error::Validation`] as
    /// [`register`](Self::register).
    pub async fn update(
        &self,
        actor: &Actor,
        id: WebhookEndpointId,
        change: EndpointChange,
    ) -> Result<WebhookEndpoint> {
        let mut endpoint = self.get(actor, id).await?;
        let url = change.url.as_deref().map(|url| check_url(url, self.policy)).transpose();
        let events = change.events.as_deref().map(check_events).transpose();
        let (url, events) = collect(url, events)?;
        endpoint.url = url.unwrap_or(endpoint.url);
        endpoint.events = events.unwrap_or(endpoint.events);
        endpoint.updated_at = self.clock.now();
        self.repo.update_endpoint(&endpoint).await?;
        Ok(endpoint)
    }

    /// Gives one of `actor`'s endpoints a new current secret. The old one
    /// keeps signing, next to the new one, for
    /// [`EndpointPolicy::secret_grace`]; secrets past their time are dropped.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub async fn rotate_secret(&self, actor: &Actor, id: WebhookEndpointId) -> Result<WebhookEndpoint> {
        let mut endpoint = self.get(actor, id).await?;
        let now = self.clock.now();
        let retire_at = now + self.policy.secret_grace;
        let mut secrets = vec![self.new_secret()];
        secrets.extend(endpoint.secrets.into_iter().filter(|s| s.is_live(now)).map(|s| EndpointSecret {
            expires_at: Some(s.expires_at.map_or(retire_at, |at| at.min(retire_at))),
            value: s.value,
        }));
        endpoint.secrets = secrets;
        endpoint.updated_at = now;
        self.repo.update_endpoint(&endpoint).await?;
        Ok(endpoint)
    }

    /// Deletes one of `actor`'s endpoints with its queued deliveries.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub async fn delete(&self, actor: &Actor, id: WebhookEndpointId) -> Result<()> {
        self.get(actor, id).await?;
        self.repo.delete_endpoint(id).await?;
        Ok(())
    }

    /// The deliveries of one of `actor`'s endpoints, newest first.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub async fn deliveries(
        &self,
        actor: &Actor,
        id: WebhookEndpointId,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<WebhookDelivery>> {
        self.get(actor, id).await?;
        self.repo.list_deliveries(id, status, page).await
    }

    /// Queues the dead deliveries of one of `actor`'s endpoints again (only
    /// `delivery` when given); returns how many.
    ///
    /// # Errors
    /// As [`get`](Self::get); [`Error::Validation`] on `delivery_id` when
    /// `delivery` is not a delivery of this endpoint;
    /// [`Error::InvalidTransition`] when it is not dead.
    pub async fn replay(
        &self,
        actor: &Actor,
        id: WebhookEndpointId,
        delivery: Option<WebhookDeliveryId>,
    ) -> Result<u64> {
        self.get(actor, id).await?;
        if let Some(delivery) = delivery {
            match self.repo.get_delivery(delivery).await? {
                Some(d) if d.endpoint_id == id && d.status == DeliveryStatus::Dead => {}
                Some(d) if d.endpoint_id == id => {
                    return Err(Error::transition("webhook delivery", d.status.as_str(), "replay"));
                }
                // The endpoint is the resource addressed; an id in the
                // body that names none of its deliveries is bad input.
                _ => return Err(Error::invalid("delivery_id", "names no delivery of this endpoint")),
            }
        }
        self.repo.replay(id, delivery, self.clock.now()).await
    }

    /// Queues one delivery per endpoint of each sale's vendor that wants
    /// its event; returns how many were new. Sales already queued (a
    /// redelivered domain event) queue nothing.
    ///
    /// # Errors
    /// What the store returns.
    pub async fn queue(&self, sales: &[Sale]) -> Result<u64> {
        let now = self.clock.now();
        let mut endpoints: std::collections::HashMap<UserId, Vec<WebhookEndpoint>> = std::collections::HashMap::new();
        let mut deliveries = Vec::new();
        for sale in sales {
            if let std::collections::hash_map::Entry::Vacant(slot) = endpoints.entry(sale.vendor_id) {
                slot.insert(self.repo.list_endpoints(sale.vendor_id).await?);
            }
            for endpoint in endpoints[&sale.vendor_id].iter().filter(|e| e.wants(sale.event_type)) {
                let id = WebhookDeliveryId::new();
                let body = serde_json::json!({
                    "id": id,
                    "type": sale.event_type,
                    "created_at": sale.occurred_at,
                    "data": sale.data,
                });
                deliveries.push(WebhookDelivery {
                    id,
                    endpoint_id: endpoint.id,
                    vendor_id: sale.vendor_id,
                    event_id: sale.event_id,
                    event_type: sale.event_type,
                    body: body.to_string(),
                    traceparent: sale.traceparent.clone(),
                    status: DeliveryStatus::Pending,
                    attempts: 0,
                    next_attempt_at: now,
                    last_error: None,
                    created_at: now,
                    delivered_at: None,
                });
            }
        }
        if deliveries.is_empty() {
            return Ok(0);
        }
        self.repo.enqueue(&deliveries).await
    }

    fn new_secret(&self) -> EndpointSecret {
        EndpointSecret { value: format!("whsec_{}", URL_SAFE_NO_PAD.encode(self.entropy.bytes32())), expires_at: None }
    }
}

/// Both checks' values, or every field error of both.
fn collect<A, B>(a: Result<A>, b: Result<B>) -> Result<(A, B)> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => {
            let mut fields: Vec<FieldError> = Vec::new();
            for err in [a.err(), b.err()].into_iter().flatten() {
                match err {
                    Error::Validation(f) => fields.extend(f),
                    other => return Err(other),
                }
            }
            Err(Error::Validation(fields))
        }
    }
}

/// `events` as a set in [`VendorEvent::ALL`] order.
///
/// # Errors
/// [`Error::Validation`] on `events` when empty or naming an unknown event.
pub fn check_events(events: &[String]) -> Result<Vec<VendorEvent>> {
    if events.is_empty() {
        return Err(Error::invalid("events", "name at least one event"));
    }
    let mut parsed = events.iter().map(|e| VendorEvent::parse(e)).collect::<Result<Vec<_>>>()?;
    parsed.sort_unstable();
    parsed.dedup();
    Ok(parsed)
}

/// `url` checked against `policy`, in its normalized form.
///
/// Only the literal host is judged: a public name that resolves to a
/// private address passes here, so a transport that must not reach the
/// local network checks the resolved address too.
///
/// # Errors
/// [`Error::Validation`] on `url`: not an absolute URL, longer than
/// [`MAX_URL_LEN`], with credentials or a fragment, not `https` (unless the
/// policy allows local endpoints), or aimed at a loopback, private,
/// link-local or unspecified host (same).
pub fn check_url(url: &str, policy: EndpointPolicy) -> Result<String> {
    let bad = |why: &str| Error::invalid("url", why.to_string());
    if url.len() > MAX_URL_LEN {
        return Err(bad(&format!("must be at most {MAX_URL_LEN} characters")));
    }
    let parsed = url::Url::parse(url).map_err(|e| bad(&format!("is not an absolute URL ({e})")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if policy.allow_local => {}
        _ => return Err(bad("must be an https:// URL")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    if parsed.fragment().is_some() {
        return Err(bad("must not have a fragment"));
    }
    let local = match parsed.host() {
        None => return Err(bad("must name a host")),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.');
            if !is_host_name(name, policy.allow_local) {
                return Err(bad("must name a host of letters, digits and hyphens in dot-separated labels"));
            }
            name == "localhost" || name.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => is_local(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_local(IpAddr::V6(ip)),
    };
    if local && !policy.allow_local {
        return Err(bad("must not point at a loopback, private or link-local address"));
    }
    Ok(parsed.into())
}

/// Whether `name` (as the URL parser leaves it: lower case, international
/// names in punycode) can be looked up in DNS: labels of 1 to 63 letters,
/// digits and hyphens, the last starting with a letter. The URL standard
/// lets through names such as `a*b.example`, which no resolver answers.
/// Local networks also take `_` (Docker Compose service names have it).
fn is_host_name(name: &str, allow_underscore: bool) -> bool {
    let byte = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || (allow_underscore && b == b'_');
    let label = |l: &str| (1..=63).contains(&l.len()) && l.bytes().all(byte);
    name.split('.').all(label)
        && name.rsplit('.').next().is_some_and(|top| top.starts_with(|c: char| c.is_ascii_alphabetic()))
}

/// Whether `ip` is inside the machine or its private network.
pub fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_local_v4(ip),
        IpAddr::V6(ip) => {
            if let Some(v4) = ip.to_ipv4_mapped() {
                return is_local_v4(v4);
            }
            let first = ip.segments()[0];
            ip.is_loopback()
                || ip.is_unspecified()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || ip == Ipv6Addr::LOCALHOST
        }
    }
}

fn is_local_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT 100.64/10
        || a == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> EndpointPolicy {
        EndpointPolicy::default()
    }

    fn local() -> EndpointPolicy {
        EndpointPolicy { allow_local: true, ..EndpointPolicy::default() }
    }

    #[test]
    fn public_https_urls_pass_and_are_normalized() {
        assert_eq!(
            check_url("https://hooks.example.com/n8n?x=1", strict()).unwrap(),
            "https://hooks.example.com/n8n?x=1"
        );
        assert_eq!(check_url("HTTPS://Hooks.Example.com", strict()).unwrap(), "https://hooks.example.com/");
    }

    #[test]
    fn local_and_plain_urls_are_refused_unless_allowed() {
        for url in [
            "http://hooks.example.com/",
            "https://localhost/x",
            "https://api.localhost./x",
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://192.168.0.1/",
            "https://172.16.5.5/",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:10.0.0.1]/",
        ] {
            let err = check_url(url, strict()).unwrap_err();
            assert_eq!(err.code(), "validation", "{url}");
        }
        assert!(check_url("http://127.0.0.1:9000/hook", local()).is_ok());
        assert!(check_url("https://[::1]/", local()).is_ok());
    }

    #[test]
    fn malformed_urls_are_refused_even_when_local_is_allowed() {
        for url in [
            "",
            "hooks.example.com",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#frag",
            "file:///etc/passwd",
            "https://hooks*.example.com/",
            "https://hooks..example.com/",
            "https://hooks.example.1com/",
        ] {
            assert!(check_url(url, local()).is_err(), "{url}");
        }
        let label = "a".repeat(64);
        assert!(check_url(&format!("https://{label}.example.com/"), local()).is_err(), "a label is at most 63");
        assert!(check_url(&format!("https://{}.example.com/", &label[1..]), strict()).is_ok());
        assert!(check_url("https://bücher.example/", strict()).is_ok(), "international names, as punycode");
        assert!(check_url("http://n8n_worker:5678/hook", local()).is_ok(), "a Compose service name");
        assert!(check_url("https://n8n_worker.example.com/", strict()).is_err());
        let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(check_url(&long, local()).is_err());
    }

    #[test]
    fn events_are_a_non_empty_set_of_known_names() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_events(&names(&["order.refunded", "order.paid", "order.paid"])).unwrap(),
            vec![VendorEvent::OrderPaid, VendorEvent::OrderRefunded]
        );
        assert!(check_events(&[]).is_err());
        assert!(check_events(&names(&["order.paid", "order.placed"])).is_err());
    }

    #[test]
    fn bad_url_and_bad_events_are_reported_together() {
        let err = collect(check_url("nope", strict()), check_events(&[])).unwrap_err();
        let Error::Validation(fields) = err else { panic!("validation") };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["url", "events"]);
    }
}
