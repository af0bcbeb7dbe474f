//! The README walk-through as a test: the real `bazaar serve --demo` on a
//! temporary SQLite data dir, a buyer purchasing over HTTP, the in-process
//! worker issuing and revoking the license, and a restart that keeps it all.

use bazaar_e2e::flow::{license_for, licenses, one_time_product, order, order_status, pay, post_webhook, validate};
use bazaar_e2e::{ADMIN_EMAIL, ADMIN_PASSWORD, Options, Server, eventually, sha256_hex, signed_webhook, str_of};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_from_order_to_refund_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), Options { demo: true, ..Options::default() }).await;
    assert!(server.stdout().iter().any(|l| l.contains("buyer@demo.bazaar")), "demo logins printed");
    let client = server.client();
    let (_, token) = client.register("ada@e2e.test", "correct-horse-battery").await;

    // Browse and order the same thing twice under one Idempotency-Key: one order.
    let product = one_time_product(&client, "customer-support").await;
    let product_id = str_of(&product["id"]);
    let (first_status, first) = order(&client, &token, &product_id, "checkout-1").await;
    assert_eq!(first_status, 201, "{first}");
    assert_eq!(first["status"], "pending_payment");
    assert_eq!(first["total"], product["pricing"]["price"]);
    let (again_status, again) = order(&client, &token, &product_id, "checkout-1").await;
    assert!(again_status == 200 || again_status == 201, "{again}");
    assert_eq!(again["id"], first["id"], "the same key must return the first order");
    let orders = client.get("/v1/orders", Some(&token)).await.expect(200, "list orders");
    assert_eq!(orders["total"], 1, "{orders}");
    let other = one_time_product(&client, "devops").await;
    let (mismatch, body) = order(&client, &token, &str_of(&other["id"]), "checkout-1").await;
    assert_eq!((mismatch, body["error"]["code"].as_str()), (409, Some("idempotency_mismatch")), "{body}");
    let order_id = str_of(&first["id"]);

    // A declined card leaves the order pending; it can be paid again.
    let declined = pay(&client, &token, &order_id, "pm_card_declined").await;
    assert_eq!((declined.status.as_u16(), declined.error_code()), (402, "card_declined"), "{}", declined.body);
    let pending = order_status(&client, &token, &order_id).await;
    assert_eq!(pending["status"], "pending_payment");
    assert_eq!(pending["payment"]["status"], "requires_payment_method");
    let intent = pay(&client, &token, &order_id, "pm_card_visa").await.expect(200, "pay with visa");
    assert_eq!(intent["status"], "succeeded");

    // The in-process worker fulfils the order and issues one license.
    let license = license_for(&client, &token, &order_id).await;
    let (license_id, key) = (str_of(&license["id"]), str_of(&license["key"]));
    assert_eq!(license["product_id"], product_id.as_str());
    eventually("the order to be fulfilled", || async {
        (order_status(&client, &token, &order_id).await["status"] == "fulfilled").then_some(())
    })
    .await;

    // Activate a machine, validate online, download the file through a signed URL.
    client
        .post(&format!("/v1/licenses/{license_id}/activations"), Some(&token), &json!({ "fingerprint": "laptop-1" }))
        .await
        .expect(201, "activate");
    let valid = validate(&client, &key, "laptop-1").await;
    assert_eq!((valid["valid"].as_bool(), valid["code"].as_str()), (Some(true), Some("valid")), "{valid}");
    let assets = client.get(&format!("/v1/products/{product_id}/assets"), None).await.expect(200, "assets");
    let asset = assets["items"][0].clone();
    let grant = client
        .post(&format!("/v1/licenses/{license_id}/downloads"), Some(&token), &json!({ "asset_id": asset["id"] }))
        .await;
    let grant = grant.expect(201, "download grant");
    let bytes = client.get_bytes(&str_of(&grant["url"])).await;
    assert_eq!(sha256_hex(&bytes), str_of(&asset["sha256"]), "downloaded bytes match the asset's hash");
    assert_eq!(bytes.len() as u64, asset["size"].as_u64().expect("size"));

    // A replayed (validly signed) payment webhook changes nothing, and a
    // forged one is refused.
    let event = json!({
        "id": "evt_e2e_replay_1",
        "kind": "payment_intent.succeeded",
        "provider_ref": intent["provider_ref"],
        "amount": intent["amount"]["minor"],
        "currency": intent["amount"]["currency"],
        "status": "succeeded",
    });
    let (signature, body) = signed_webhook(&server.data_dir, &event);
    for attempt in 1..=2 {
        let reply = post_webhook(&client, &signature, body.clone()).await;
        assert!(reply.status.is_success(), "webhook delivery {attempt}: {} {}", reply.status, reply.body);
    }
    let forged = post_webhook(&client, &signature.replace("v1=", "v1=00"), body.clone()).await;
    assert_eq!(forged.status.as_u16(), 400, "{}", forged.body);
    let after = order_status(&client, &token, &order_id).await;
    assert_eq!((after["status"].as_str(), after["payment"]["status"].as_str()), (Some("fulfilled"), Some("succeeded")));

    // An admin refunds: the worker revokes the license.
    let admin = client.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let refunded = client.post(&format!("/v1/orders/{order_id}/refund"), Some(&admin), &json!({})).await;
    assert_eq!(refunded.expect(200, "refund")["status"], "refunded");
    let revoked = eventually("the license to be revoked", || async {
        let reply = validate(&client, &key, "laptop-1").await;
        (reply["code"] == "revoked").then_some(reply)
    })
    .await;
    assert_eq!(revoked["valid"], false);
    let denied = client
        .post(&format!("/v1/licenses/{license_id}/downloads"), Some(&token), &json!({ "asset_id": asset["id"] }))
        .await;
    assert_eq!((denied.status.as_u16(), denied.error_code()), (403, "license_revoked"), "{}", denied.body);
    // The replays issued nothing: still one license, for this order.
    let held = licenses(&client, &token).await;
    assert_eq!(held.len(), 1, "{held:?}");

    // SIGTERM: a graceful stop with exit code 0.
    let status = server.stop().await;
    assert_eq!(status.code(), Some(0), "graceful stop");

    // Restart on the same SQLite file: everything is still there, and the
    // demo catalog is not seeded twice.
    let server = Server::start(dir.path(), Options { demo: true, ..Options::default() }).await;
    assert!(server.stdout().iter().any(|l| l.contains("already seeded")), "{:?}", server.stdout());
    let client = server.client();
    let catalog = client.get("/v1/products?limit=1", None).await.expect(200, "browse after restart");
    assert_eq!(catalog["total"], 50, "the demo catalog after a second --demo start");
    let token = client.login("ada@e2e.test", "correct-horse-battery").await;
    let orders = client.get("/v1/orders", Some(&token)).await.expect(200, "orders after restart");
    assert_eq!(orders["total"], 1, "{orders}");
    assert_eq!(orders["items"][0]["id"], order_id.as_str());
    assert_eq!(orders["items"][0]["status"], "refunded");
    let held = licenses(&client, &token).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["id"], license_id.as_str());
    assert_eq!(held[0]["status"], "revoked");
    assert_eq!(validate(&client, &key, "laptop-1").await["code"], "revoked");
    assert_eq!(server.stop().await.code(), Some(0));
}
