//! Payments across a restart of `bazaar serve` on the same SQLite data dir:
//! an order placed before the restart is paid after it, a new purchase
//! works, and an order paid before it can still be refunded.

use bazaar_e2e::flow::{license_for, licenses, one_time_product, order, pay};
use bazaar_e2e::{ADMIN_EMAIL, ADMIN_PASSWORD, Options, Server, str_of};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_placed_before_a_restart_can_be_paid_and_refunded_after_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), Options { demo: true, ..Options::default() }).await;
    let client = server.client();
    let (_, token) = client.register("grace@e2e.test", "correct-horse-battery").await;
    let paid = str_of(&one_time_product(&client, "sales").await["id"]);
    let unpaid = str_of(&one_time_product(&client, "finance").await["id"]);
    let (_, paid_order) = order(&client, &token, &paid, "before-1").await;
    let paid_order = str_of(&paid_order["id"]);
    pay(&client, &token, &paid_order, "pm_card_visa").await.expect(200, "pay before the restart");
    license_for(&client, &token, &paid_order).await;
    let (_, pending) = order(&client, &token, &unpaid, "before-2").await;
    let pending = str_of(&pending["id"]);
    assert_eq!(server.stop().await.code(), Some(0));

    let server = Server::start(dir.path(), Options::default()).await;
    let client = server.client();
    let token = client.login("grace@e2e.test", "correct-horse-battery").await;
    // The order placed before the restart is paid after it...
    let intent = pay(&client, &token, &pending, "pm_card_visa").await.expect(200, "pay after the restart");
    assert_eq!(intent["status"], "succeeded");
    license_for(&client, &token, &pending).await;
    // ...a new purchase works...
    let fresh = str_of(&one_time_product(&client, "devops").await["id"]);
    let (_, fresh_order) = order(&client, &token, &fresh, "after-1").await;
    let fresh_order = str_of(&fresh_order["id"]);
    pay(&client, &token, &fresh_order, "pm_card_visa").await.expect(200, "pay a new order");
    license_for(&client, &token, &fresh_order).await;
    // ...and the order paid before the restart can still be refunded.
    let admin = client.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let refund = client.post(&format!("/v1/orders/{paid_order}/refund"), Some(&admin), &json!({})).await;
    assert_eq!(refund.expect(200, "refund an order paid before the restart")["status"], "refunded");
    assert_eq!(licenses(&client, &token).await.len(), 3);
    assert_eq!(server.stop().await.code(), Some(0));
}
