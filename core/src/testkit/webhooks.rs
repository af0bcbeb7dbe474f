//! Contract suite for [`WebhookRepository`]: every adapter runs these.
//!
//! Each function takes a fresh, empty repository; the concurrency suite
//! also takes a `spawn` function that runs a future as a task on a
//! multi-threaded runtime (e.g. `&|f| { tokio::spawn(f); }`).

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration};

use super::notifications::Spawn;
use crate::clock::Timestamp;
use crate::error::ErrorKind;
use crate::ids::{EventId, UserId, WebhookDeliveryId, WebhookEndpointId};
use crate::page::PageRequest;
use crate::webhooks::{
    DeliveryStatus, DeliveryUpdate, EndpointSecret, VendorEvent, WebhookDelivery, WebhookEndpoint, WebhookRepository,
};

fn t0() -> Timestamp {
    DateTime::from_timestamp(1_700_000_000, 0).expect("in range")
}

fn page(page: u32, limit: u32) -> PageRequest {
    PageRequest::new(page, limit).expect("valid page")
}

/// An endpoint of `vendor` with two secrets, one being rotated out.
pub fn endpoint(vendor: UserId) -> WebhookEndpoint {
    WebhookEndpoint {
        id: WebhookEndpointId::new(),
        vendor_id: vendor,
        url: "https://hooks.example.com/bazaar?token=abc".into(),
        events: vec![VendorEvent::OrderPaid, VendorEvent::LicenseIssued],
        secrets: vec![
            EndpointSecret { value: "whsec_new".into(), expires_at: None },
            EndpointSecret { value: "whsec_old".into(), expires_at: Some(t0() + Duration::hours(24)) },
        ],
        created_at: t0(),
        updated_at: t0(),
    }
}

/// A pending delivery to `endpoint`, due at `due`.
pub fn delivery(endpoint: &WebhookEndpoint, due: Timestamp) -> WebhookDelivery {
    let id = WebhookDeliveryId::new();
    WebhookDelivery {
        id,
        endpoint_id: endpoint.id,
        vendor_id: endpoint.vendor_id,
        event_id: EventId::new(),
        event_type: VendorEvent::OrderPaid,
        body: format!(r#"{{"id":"{id}","type":"order.paid","data":{{"n":"é"}}}}"#),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: due,
        last_error: None,
        created_at: t0(),
        delivered_at: None,
    }
}

fn outcome(d: &WebhookDelivery, status: DeliveryStatus, next: Timestamp) -> DeliveryUpdate {
    DeliveryUpdate {
        id: d.id,
        status,
        attempts: d.attempts + 1,
        next_attempt_at: next,
        last_error: (status != DeliveryStatus::Delivered).then(|| "the endpoint answered HTTP 503".to_string()),
        delivered_at: (status == DeliveryStatus::Delivered).then_some(next),
    }
}

/// Endpoints: insert, get, list per vendor oldest first, update, delete
/// (with their deliveries), and the errors of unknown and duplicate ids.
pub async fn endpoints(repo: &dyn WebhookRepository) {
    let vendor = UserId::new();
    let first = endpoint(vendor);
    let second = WebhookEndpoint { url: "https://other.example.com/".into(), ..endpoint(vendor) };
    let stranger = endpoint(UserId::new());
    for e in [&first, &second, &stranger] {
        repo.insert_endpoint(e).await.expect("insert");
    }
    assert_eq!(repo.get_endpoint(first.id).await.expect("get"), Some(first.clone()), "every field round-trips");
    assert_eq!(repo.get_endpoint(WebhookEndpointId::new()).await.expect("get"), None);
    let err = repo.insert_endpoint(&first).await.expect_err("a duplicate id");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(
        repo.list_endpoints(vendor).await.expect("list"),
        vec![first.clone(), second.clone()],
        "oldest first, only the vendor's"
    );

    let changed = WebhookEndpoint {
        url: "https://moved.example.com/".into(),
        events: vec![VendorEvent::OrderRefunded],
        secrets: vec![EndpointSecret { value: "whsec_third".into(), expires_at: None }],
        updated_at: t0() + Duration::seconds(5),
        ..first.clone()
    };
    repo.update_endpoint(&changed).await.expect("update");
    assert_eq!(repo.get_endpoint(first.id).await.expect("get"), Some(changed.clone()));
    let err = repo.update_endpoint(&endpoint(vendor)).await.expect_err("unknown id");
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let queued = delivery(&first, t0());
    let kept = delivery(&second, t0());
    assert_eq!(repo.enqueue(&[queued.clone(), kept.clone()]).await.expect("enqueue"), 2);
    assert!(repo.delete_endpoint(first.id).await.expect("delete"));
    assert!(!repo.delete_endpoint(first.id).await.expect("delete again"), "a second delete finds nothing");
    assert_eq!(repo.get_endpoint(first.id).await.expect("get"), None);
    assert_eq!(repo.get_delivery(queued.id).await.expect("get"), None, "its deliveries go with it");
    assert_eq!(repo.get_delivery(kept.id).await.expect("get"), Some(kept), "others' stay");
}

/// The queue: one delivery per endpoint, event and type; claims in id order
/// under a lease; outcomes stored; replays of dead deliveries.
pub async fn queue(repo: &dyn WebhookRepository) {
    let now = t0();
    let lease = now + Duration::seconds(300);
    let a = endpoint(UserId::new());
    let b = endpoint(UserId::new());
    repo.insert_endpoint(&a).await.expect("insert");
    repo.insert_endpoint(&b).await.expect("insert");
    let a1 = delivery(&a, now);
    let a2 = delivery(&a, now);
    let b1 = WebhookDelivery { traceparent: None, ..delivery(&b, now) };
    assert_eq!(repo.enqueue(&[a1.clone(), a2.clone(), b1.clone()]).await.expect("enqueue"), 3);
    assert_eq!(repo.get_delivery(a1.id).await.expect("get"), Some(a1.clone()), "every field round-trips");
    let twin = WebhookDelivery { id: WebhookDeliveryId::new(), ..a1.clone() };
    let license = WebhookDelivery { event_type: VendorEvent::LicenseIssued, ..delivery(&a, now) };
    let license = WebhookDelivery { event_id: a1.event_id, ..license };
    assert_eq!(
        repo.enqueue(&[twin.clone(), license.clone()]).await.expect("enqueue"),
        1,
        "the same endpoint, event and type again queues nothing; another type of the same event does"
    );
    assert_eq!(repo.get_delivery(twin.id).await.expect("get"), None);
    let orphan = delivery(&endpoint(UserId::new()), now);
    assert_eq!(repo.enqueue(std::slice::from_ref(&orphan)).await.expect("enqueue"), 0, "no endpoint, no delivery");
    assert_eq!(repo.get_delivery(orphan.id).await.expect("get"), None);

    let early = repo.claim_due(now - Duration::seconds(1), 10, lease).await.expect("claim");
    assert!(early.is_empty(), "nothing is due before its time");
    let claimed = repo.claim_due(now, 2, lease).await.expect("claim");
    let ids: Vec<_> = claimed.iter().map(|d| d.id).collect();
    assert_eq!(ids, vec![a1.id, a2.id], "oldest first, at most the limit");
    assert!(claimed.iter().all(|d| d.next_attempt_at == lease), "claimed deliveries carry the lease");
    let rest = repo.claim_due(now, 10, lease).await.expect("claim");
    let ids: Vec<_> = rest.iter().map(|d| d.id).collect();
    assert_eq!(ids, vec![b1.id], "a leased delivery holds back the later ones of its endpoint, not others'");
    assert!(repo.claim_due(now + Duration::seconds(299), 10, lease).await.expect("claim").is_empty());

    // a1 delivered, a2 failed with backoff, b1 dead.
    let retry_at = now + Duration::seconds(10);
    repo.record(&[
        outcome(&a1, DeliveryStatus::Delivered, now),
        outcome(&a2, DeliveryStatus::Pending, retry_at),
        outcome(&b1, DeliveryStatus::Dead, now),
        outcome(&delivery(&a, now), DeliveryStatus::Delivered, now),
    ])
    .await
    .expect("record ignores unknown ids");
    let stored = repo.get_delivery(a2.id).await.expect("get").expect("stored");
    assert_eq!(
        (stored.status, stored.attempts, stored.next_attempt_at, stored.last_error.as_deref()),
        (DeliveryStatus::Pending, 1, retry_at, Some("the endpoint answered HTTP 503"))
    );
    let done = repo.get_delivery(a1.id).await.expect("get").expect("stored");
    assert_eq!((done.status, done.delivered_at), (DeliveryStatus::Delivered, Some(now)));
    assert!(
        repo.claim_due(now + Duration::seconds(5), 10, lease).await.expect("claim").is_empty(),
        "the license delivery waits behind the failed a2"
    );
    let ids: Vec<_> = repo.claim_due(retry_at, 10, lease).await.expect("claim").iter().map(|d| d.id).collect();
    assert_eq!(ids, vec![a2.id, license.id], "once a2 is due both go, in order");

    // Replay: only dead ones, only the endpoint's, only the one named.
    let b2 = delivery(&b, now);
    repo.enqueue(std::slice::from_ref(&b2)).await.expect("enqueue");
    repo.record(&[outcome(&b2, DeliveryStatus::Dead, now)]).await.expect("record");
    let later = now + Duration::seconds(60);
    assert_eq!(repo.replay(a.id, None, later).await.expect("replay"), 0, "a has no dead deliveries");
    assert_eq!(repo.replay(b.id, Some(b2.id), later).await.expect("replay"), 1);
    let replayed = repo.get_delivery(b2.id).await.expect("get").expect("stored");
    assert_eq!((replayed.status, replayed.attempts, replayed.next_attempt_at), (DeliveryStatus::Pending, 0, later));
    assert_eq!(repo.get_delivery(b1.id).await.expect("get").expect("stored").status, DeliveryStatus::Dead);
    assert_eq!(repo.replay(b.id, None, later).await.expect("replay"), 1, "the rest of b's dead ones");
    let ids: Vec<_> =
        repo.claim_due(later, 10, later + Duration::seconds(1)).await.expect("claim").iter().map(|d| d.id).collect();
    assert!(ids.contains(&b1.id) && ids.contains(&b2.id), "replayed deliveries are due again: {ids:?}");
}

/// Listing an endpoint's deliveries: newest first, by status, paged.
pub async fn list_deliveries(repo: &dyn WebhookRepository) {
    let e = endpoint(UserId::new());
    let other = endpoint(UserId::new());
    repo.insert_endpoint(&e).await.expect("insert");
    repo.insert_endpoint(&other).await.expect("insert");
    let all: Vec<_> = (0..5).map(|_| delivery(&e, t0())).collect();
    repo.enqueue(&all).await.expect("enqueue");
    repo.enqueue(&[delivery(&other, t0())]).await.expect("enqueue");
    repo.record(&[outcome(&all[1], DeliveryStatus::Dead, t0()), outcome(&all[3], DeliveryStatus::Dead, t0())])
        .await
        .expect("record");
    let first = repo.list_deliveries(e.id, None, page(1, 2)).await.expect("list");
    assert_eq!(first.total, 5);
    assert_eq!(first.items.iter().map(|d| d.id).collect::<Vec<_>>(), vec![all[4].id, all[3].id], "newest first");
    let third = repo.list_deliveries(e.id, None, page(3, 2)).await.expect("list");
    assert_eq!(third.items.iter().map(|d| d.id).collect::<Vec<_>>(), vec![all[0].id]);
    let dead = repo.list_deliveries(e.id, Some(DeliveryStatus::Dead), page(1, 10)).await.expect("list");
    assert_eq!(dead.total, 2);
    assert_eq!(dead.items.iter().map(|d| d.id).collect::<Vec<_>>(), vec![all[3].id, all[1].id]);
    let none = repo.list_deliveries(e.id, Some(DeliveryStatus::Delivered), page(1, 10)).await.expect("list");
    assert_eq!((none.total, none.items.len()), (0, 0));
}

/// Concurrent claimers over several endpoints: every delivery is handed
/// out exactly once per lease, and each endpoint's deliveries are
/// delivered in queue order when every claimer records what it took.
pub async fn concurrent_claims(repo: Arc<dyn WebhookRepository>, spawn: Spawn<'_>) {
    const ENDPOINTS: usize = 4;
    const PER_ENDPOINT: usize = 12;
    const CLAIMERS: usize = 6;
    let now = t0();
    let mut queued = Vec::new();
    let endpoints: Vec<_> = (0..ENDPOINTS).map(|_| endpoint(UserId::new())).collect();
    for e in &endpoints {
        repo.insert_endpoint(e).await.expect("insert");
    }
    for _ in 0..PER_ENDPOINT {
        for e in &endpoints {
            queued.push(delivery(e, now));
        }
    }
    repo.enqueue(&queued).await.expect("enqueue");

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..CLAIMERS {
        let repo = repo.clone();
        let tx = tx.clone();
        spawn(Box::pin(async move {
            // Each claimer loops, delivering what it takes, until a claim
            // comes back empty twice.
            let mut empty = 0;
            while empty < 2 {
                let claimed = repo.claim_due(now, 5, now + Duration::seconds(300)).await.expect("claim");
                if claimed.is_empty() {
                    empty += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                empty = 0;
                let updates: Vec<_> = claimed.iter().map(|d| outcome(d, DeliveryStatus::Delivered, now)).collect();
                // What was taken is reported before it is recorded, so the
                // order seen is the order of claims.
                tx.send(claimed.iter().map(|d| (d.endpoint_id, d.id)).collect::<Vec<_>>()).expect("send");
                repo.record(&updates).await.expect("record");
            }
        }));
    }
    drop(tx);
    let mut seen = HashSet::new();
    let mut order: std::collections::HashMap<WebhookEndpointId, Vec<WebhookDeliveryId>> = Default::default();
    while let Some(batch) = rx.recv().await {
        for (endpoint, id) in batch {
            assert!(seen.insert(id), "{id} was handed out twice");
            order.entry(endpoint).or_default().push(id);
        }
    }
    assert_eq!(seen.len(), queued.len(), "every delivery was handed out");
    for e in &endpoints {
        let got = &order[&e.id];
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(got, &sorted, "endpoint {} received its deliveries out of order", e.id);
    }
    for d in &queued {
        let stored = repo.get_delivery(d.id).await.expect("get").expect("stored");
        assert_eq!((stored.status, stored.attempts), (DeliveryStatus::Delivered, 1));
    }
}

/// Contract suite for a [`WebhookTransport`](crate::webhooks::WebhookTransport),
/// against a receiver the adapter's test starts, which must answer `POST
/// {base}/ok` with 204 (checking nothing), `POST {base}/fail` with 503 and
/// `POST {base}/moved` with 307 to `{base}/ok`; `closed` is a URL nothing
/// listens on.
pub async fn transport(transport: &dyn crate::webhooks::WebhookTransport, base: &str, closed: &str) {
    use crate::webhooks::OutboundWebhook;
    let request = |path: &str| OutboundWebhook {
        url: format!("{base}{path}"),
        headers: vec![("bazaar-signature", "t=1,v1=00".into()), ("bazaar-event-type", "order.paid".into())],
        body: r#"{"id":"1","type":"order.paid","data":{}}"#.into(),
    };
    assert_eq!(transport.post(&request("/ok")).await.expect("answered"), 204, "a 2xx comes back as it is");
    assert_eq!(transport.post(&request("/fail")).await.expect("answered"), 503, "so does a 5xx: the caller judges");
    assert_eq!(transport.post(&request("/moved")).await.expect("answered"), 307, "redirects are not followed");
    let unreachable = OutboundWebhook { url: closed.to_owned(), ..request("") };
    let err = transport.post(&unreachable).await.expect_err("nothing listens there");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}
