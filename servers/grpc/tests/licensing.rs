//! `bazaar.v1.LicensingService` over a real loopback connection.

mod common;

use bazaar_core::auth::Role;
use bazaar_grpc::pb;
use chrono::Duration;
use common::{World, authed, bad_fields, expect_status, monthly, usd};
use tonic::{Code, Request};

fn validate(key: &str, fingerprint: Option<&str>) -> Request<pb::ValidateLicenseRequest> {
    Request::new(pb::ValidateLicenseRequest { key: key.into(), fingerprint: fingerprint.map(Into::into) })
}

#[tokio::test]
async fn validate_needs_only_the_key_and_walks_the_codes() {
    let w = World::start().await;
    let vendor = w.user(Role::Vendor).await;
    let buyer = w.user(Role::Customer).await;
    let product = w.approved_product(&vendor, "Sales agent", usd(1999)).await;
    let (order, licenses) = w.buy(&buyer, &[&product]).await;
    let license = &licenses[0];
    let mut client = w.licensing();

    // Node-locked (5 activations by default) and nothing activated yet.
    let r = client.validate_license(validate(&license.key, None)).await.unwrap().into_inner();
    assert_eq!((r.valid, r.code()), (false, pb::ValidationCode::ActivationRequired));
    let got = r.license.expect("the key names a license");
    assert_eq!(
        (got.id.as_str(), got.order_id.as_str()),
        (license.id.to_string().as_str(), order.id.to_string().as_str())
    );
    assert_eq!(got.status(), pb::LicenseStatus::Active);
    assert_eq!(got.kind(), pb::LicenseKind::Perpetual);

    let activated = client
        .activate_license(authed(
            pb::ActivateLicenseRequest { license_id: license.id.to_string(), fingerprint: "laptop-1".into() },
            &buyer.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(activated.outcome(), pb::ActivationOutcome::Activated);

    let r = client.validate_license(validate(&license.key, Some("laptop-1"))).await.unwrap().into_inner();
    assert_eq!((r.valid, r.code()), (true, pb::ValidationCode::Valid));
    let r = client.validate_license(validate(&license.key, Some("desktop"))).await.unwrap().into_inner();
    assert_eq!(r.code(), pb::ValidationCode::FingerprintMismatch);

    // Keys that do not verify are NOT_FOUND codes, never errors, and carry no license.
    for bad in ["", "key/abc.def", &license.key.replace("key/", "key/X")] {
        let r = client.validate_license(validate(bad, None)).await.unwrap().into_inner();
        assert_eq!((r.valid, r.code(), r.license), (false, pb::ValidationCode::NotFound, None), "{bad:?}");
    }

    // A malformed fingerprint is the caller's mistake.
    let s = expect_status(
        client.validate_license(validate(&license.key, Some("has space"))).await,
        Code::InvalidArgument,
        "VALIDATION",
    );
    assert_eq!(bad_fields(&s), ["fingerprint"]);

    // Revoked by an admin: the code says so and the license shows it.
    let admin = w.user(Role::Admin).await;
    w.market.licenses.revoke(&admin.actor, license.id, "abuse").await.unwrap();
    let r = client.validate_license(validate(&license.key, Some("laptop-1"))).await.unwrap().into_inner();
    assert_eq!((r.valid, r.code()), (false, pb::ValidationCode::Revoked));
    let got = r.license.unwrap();
    assert_eq!(got.status(), pb::LicenseStatus::Revoked);
    assert!(got.revoked_at.is_some());
}

#[tokio::test]
async fn subscription_licenses_expire_with_their_term() {
    let w = World::start().await;
    let vendor = w.user(Role::Vendor).await;
    let buyer = w.user(Role::Customer).await;
    let product = w.approved_product(&vendor, "Monthly workflow", monthly(500)).await;
    let (_, licenses) = w.buy(&buyer, &[&product]).await;
    let mut client = w.licensing();
    let r = client.validate_license(validate(&licenses[0].key, None)).await.unwrap().into_inner();
    let got = r.license.unwrap();
    assert_eq!(got.kind(), pb::LicenseKind::Subscription);
    let renews_at = got.renews_at.expect("subscriptions renew");
    assert_eq!(got.expires_at, Some(renews_at), "the term is the expiry");
    assert_eq!(renews_at.seconds, licenses[0].kind.ends_at().unwrap().timestamp());

    w.clock.advance(Duration::days(32));
    let r = client.validate_license(validate(&licenses[0].key, None)).await.unwrap().into_inner();
    assert_eq!(r.code(), pb::ValidationCode::Expired);
    assert_eq!(r.license.unwrap().status(), pb::LicenseStatus::Expired);
}

#[tokio::test]
async fn activations_are_idempotent_limited_and_for_the_holder_only() {
    let w = World::start().await;
    let vendor = w.user(Role::Vendor).await;
    let buyer = w.user(Role::Customer).await;
    let stranger = w.user(Role::Customer).await;
    let product = w.approved_product(&vendor, "Agent", usd(1000)).await;
    let (_, licenses) = w.buy(&buyer, &[&product]).await;
    let id = licenses[0].id.to_string();
    let mut client = w.licensing();
    let activate = |fingerprint: &str, token: &str| {
        authed(pb::ActivateLicenseRequest { license_id: id.clone(), fingerprint: fingerprint.into() }, token)
    };

    let first = client.activate_license(activate("m-0", &buyer.token)).await.unwrap().into_inner();
    assert_eq!(first.outcome(), pb::ActivationOutcome::Activated);
    let again = client.activate_license(activate("m-0", &buyer.token)).await.unwrap().into_inner();
    assert_eq!(again.outcome(), pb::ActivationOutcome::AlreadyActive);
    let license = again.license.unwrap();
    assert_eq!(license.activations.len(), 1);
    assert_eq!(license.activations[0].fingerprint, "m-0");
    assert_eq!(license.activations[0].activated_at.unwrap().seconds, w.market.clock.now().timestamp());

    for n in 1..5 {
        client.activate_license(activate(&format!("m-{n}"), &buyer.token)).await.unwrap();
    }
    // The sixth machine: every slot is taken, a state the caller must change first.
    let s = expect_status(
        client.activate_license(activate("m-5", &buyer.token)).await,
        Code::FailedPrecondition,
        "TOO_MANY_ACTIVATIONS",
    );
    assert!(s.message().contains("too_many_activations"), "{}", s.message());

    expect_status(client.activate_license(activate("m-9", &stranger.token)).await, Code::PermissionDenied, "FORBIDDEN");
    expect_status(
        client
            .activate_license(Request::new(pb::ActivateLicenseRequest {
                license_id: id.clone(),
                fingerprint: "x".into(),
            }))
            .await,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
    let s =
        expect_status(client.activate_license(activate("", &buyer.token)).await, Code::InvalidArgument, "VALIDATION");
    assert_eq!(bad_fields(&s), ["fingerprint"]);
    let unknown = authed(
        pb::ActivateLicenseRequest { license_id: uuid::Uuid::now_v7().to_string(), fingerprint: "m".into() },
        &buyer.token,
    );
    let s = expect_status(client.activate_license(unknown).await, Code::NotFound, "NOT_FOUND");
    assert_eq!(s.message(), "license not found");
    let garbled =
        authed(pb::ActivateLicenseRequest { license_id: "lic-1".into(), fingerprint: "m".into() }, &buyer.token);
    let s = expect_status(client.activate_license(garbled).await, Code::InvalidArgument, "VALIDATION");
    assert_eq!(bad_fields(&s), ["license_id"]);

    // A suspended license refuses activation with its own denial.
    let admin = w.user(Role::Admin).await;
    w.market.licenses.suspend(&admin.actor, licenses[0].id, "review").await.unwrap();
    expect_status(
        client.activate_license(activate("m-0", &buyer.token)).await,
        Code::PermissionDenied,
        "LICENSE_SUSPENDED",
    );
}

#[tokio::test]
async fn deactivation_frees_a_slot() {
    let w = World::start().await;
    let vendor = w.user(Role::Vendor).await;
    let buyer = w.user(Role::Customer).await;
    let stranger = w.user(Role::Customer).await;
    let product = w.approved_product(&vendor, "Agent", usd(1000)).await;
    let (_, licenses) = w.buy(&buyer, &[&product]).await;
    let id = licenses[0].id.to_string();
    let mut client = w.licensing();
    let request = |fingerprint: &str, token: &str| {
        authed(pb::DeactivateLicenseRequest { license_id: id.clone(), fingerprint: fingerprint.into() }, token)
    };
    client
        .activate_license(authed(
            pb::ActivateLicenseRequest { license_id: id.clone(), fingerprint: "laptop".into() },
            &buyer.token,
        ))
        .await
        .unwrap();

    expect_status(
        client.deactivate_license(request("laptop", &stranger.token)).await,
        Code::PermissionDenied,
        "FORBIDDEN",
    );
    let freed = client.deactivate_license(request("laptop", &buyer.token)).await.unwrap().into_inner();
    assert!(freed.license.unwrap().activations.is_empty());
    let r = client.validate_license(validate(&licenses[0].key, Some("laptop"))).await.unwrap().into_inner();
    assert_eq!(r.code(), pb::ValidationCode::ActivationRequired);
    // Nothing to free any more.
    expect_status(client.deactivate_license(request("laptop", &buyer.token)).await, Code::NotFound, "NOT_FOUND");
    expect_status(
        client
            .deactivate_license(Request::new(pb::DeactivateLicenseRequest {
                license_id: id.clone(),
                fingerprint: "laptop".into(),
            }))
            .await,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
}

#[tokio::test]
async fn get_license_is_for_the_holder_and_admins() {
    let w = World::start().await;
    let vendor = w.user(Role::Vendor).await;
    let buyer = w.user(Role::Customer).await;
    let stranger = w.user(Role::Customer).await;
    let admin = w.user(Role::Admin).await;
    let product = w.approved_product(&vendor, "Agent", usd(1000)).await;
    let (_, licenses) = w.buy(&buyer, &[&product]).await;
    let core = &licenses[0];
    let mut client = w.licensing();
    let get = |token: &str| authed(pb::GetLicenseRequest { license_id: core.id.to_string() }, token);

    let got = client.get_license(get(&buyer.token)).await.unwrap().into_inner().license.unwrap();
    assert_eq!(got.key, core.key);
    assert_eq!(
        (got.buyer_id.clone(), got.product_id.clone()),
        (buyer.actor.user_id.to_string(), product.id.to_string())
    );
    assert_eq!(got.status(), pb::LicenseStatus::Active);
    let permissions = got.permissions.unwrap();
    assert!(permissions.download && permissions.commercial_use && !permissions.redistribution);
    let limits = got.limits.unwrap();
    assert_eq!((limits.max_downloads, limits.max_activations, limits.expires_at), (Some(20), Some(5), None));
    assert_eq!((got.downloads_used, got.version), (0, 1));
    assert_eq!(got.created_at.unwrap().seconds, core.created_at.timestamp());
    assert_eq!(got.expires_at, None, "perpetual");

    assert_eq!(client.get_license(get(&admin.token)).await.unwrap().into_inner().license.unwrap().id, got.id);
    expect_status(client.get_license(get(&stranger.token)).await, Code::PermissionDenied, "FORBIDDEN");
    expect_status(
        client.get_license(Request::new(pb::GetLicenseRequest { license_id: core.id.to_string() })).await,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
    expect_status(
        client
            .get_license(authed(pb::GetLicenseRequest { license_id: uuid::Uuid::now_v7().to_string() }, &buyer.token))
            .await,
        Code::NotFound,
        "NOT_FOUND",
    );
}
