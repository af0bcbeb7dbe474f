//! `bazaar.v1.NotificationService` over a real loopback connection.

mod common;

use std::collections::BTreeSet;

use bazaar_core::auth::Role;
use bazaar_grpc::pb;
use common::{World, authed, bad_fields, expect_status, usd};
use tonic::{Code, Request};

#[tokio::test]
async fn notifications_by_order_are_private_to_each_recipient() {
    let w = World::start().await;
    let vendor = w.user(Role::Vendor).await;
    let buyer = w.user(Role::Customer).await;
    let stranger = w.user(Role::Customer).await;
    let admin = w.user(Role::Admin).await;
    let product = w.approved_product(&vendor, "Agent", usd(900)).await;
    let (order, _) = w.buy(&buyer, &[&product]).await;
    let mut client = w.notifications();
    let by_order = |token: &str| authed(pb::GetNotificationsRequest { order_id: order.id.to_string() }, token);

    let mine = client.get_notifications(by_order(&buyer.token)).await.unwrap().into_inner().notifications;
    // order.placed and license.issued, each on the default channels (in-app and e-mail).
    let kinds: BTreeSet<_> = mine.iter().map(|n| (n.template(), n.channel())).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            (pb::Template::OrderPlaced, pb::Channel::InApp),
            (pb::Template::OrderPlaced, pb::Channel::Email),
            (pb::Template::LicenseIssued, pb::Channel::InApp),
            (pb::Template::LicenseIssued, pb::Channel::Email),
        ])
    );
    for n in &mine {
        assert_eq!(n.user_id, buyer.actor.user_id.to_string());
        assert_eq!(n.order_id.as_deref(), Some(order.id.to_string().as_str()));
        assert_eq!((n.status(), n.attempts), (pb::NotificationStatus::Sent, 1));
        assert!(n.sent_at.is_some() && n.created_at.is_some());
        assert!(!n.body.is_empty());
    }

    let theirs = client.get_notifications(by_order(&stranger.token)).await.unwrap().into_inner().notifications;
    assert!(theirs.is_empty(), "someone else's order shows nothing of the buyer's");
    let all = client.get_notifications(by_order(&admin.token)).await.unwrap().into_inner().notifications;
    assert_eq!(all.len(), mine.len());

    expect_status(
        client.get_notifications(Request::new(pb::GetNotificationsRequest { order_id: order.id.to_string() })).await,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
    let s = expect_status(
        client
            .get_notifications(authed(pb::GetNotificationsRequest { order_id: "order-1".into() }, &buyer.token))
            .await,
        Code::InvalidArgument,
        "VALIDATION",
    );
    assert_eq!(bad_fields(&s), ["order_id"]);
}

#[tokio::test]
async fn list_notifications_pages_the_callers_own() {
    let w = World::start().await;
    let vendor = w.user(Role::Vendor).await;
    let buyer = w.user(Role::Customer).await;
    let product = w.approved_product(&vendor, "Agent", usd(900)).await;
    w.buy(&buyer, &[&product]).await;
    let mut client = w.notifications();
    let list = |page: Option<u32>, limit: Option<u32>, token: &str| {
        authed(pb::ListNotificationsRequest { page, limit }, token)
    };

    let all = client.list_notifications(list(None, None, &buyer.token)).await.unwrap().into_inner();
    assert_eq!((all.total, all.page, all.limit, all.items.len()), (4, 1, 20, 4));
    assert!(all.items.iter().all(|n| n.user_id == buyer.actor.user_id.to_string()));

    let first = client.list_notifications(list(Some(1), Some(3), &buyer.token)).await.unwrap().into_inner();
    let second = client.list_notifications(list(Some(2), Some(3), &buyer.token)).await.unwrap().into_inner();
    assert_eq!((first.items.len(), second.items.len(), second.total), (3, 1, 4));
    let ids: BTreeSet<_> = first.items.iter().chain(&second.items).map(|n| n.id.clone()).collect();
    assert_eq!(ids.len(), 4, "pages do not overlap");

    // The vendor's own: the approval, not about any order.
    let vendors = client.list_notifications(list(None, None, &vendor.token)).await.unwrap().into_inner();
    assert_eq!(vendors.total, 2);
    assert!(vendors.items.iter().all(|n| n.template() == pb::Template::ProductApproved && n.order_id.is_none()));

    let s = expect_status(
        client.list_notifications(list(Some(0), Some(0), &buyer.token)).await,
        Code::InvalidArgument,
        "VALIDATION",
    );
    assert_eq!(bad_fields(&s), ["page", "limit"]);
    expect_status(
        client.list_notifications(Request::new(pb::ListNotificationsRequest::default())).await,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
}
