//! [`HttpTransport`] against a local HTTP server.

use bazaar_core::ErrorKind;
use bazaar_core::webhooks::{OutboundWebhook, WebhookTransport};
use bazaar_webhooks::{HttpTransport, PublicOnly, TransportConfig};
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn local() -> HttpTransport {
    HttpTransport::new(TransportConfig { allow_local: true, ..TransportConfig::default() }).expect("client")
}

fn webhook(url: String) -> OutboundWebhook {
    OutboundWebhook {
        url,
        headers: vec![("bazaar-signature", "t=1,v1=ab".into()), ("bazaar-event-type", "order.paid".into())],
        body: r#"{"id":"1","type":"order.paid"}"#.into(),
    }
}

#[tokio::test]
async fn posts_the_body_and_headers_and_returns_any_status() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/ok"))
        .and(header("content-type", "application/json"))
        .and(header("bazaar-event-type", "order.paid"))
        .and(body_string(r#"{"id":"1","type":"order.paid"}"#))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(path("/broken")).respond_with(ResponseTemplate::new(503)).mount(&server).await;
    let transport = local();
    assert_eq!(transport.post(&webhook(format!("{}/ok", server.uri()))).await.expect("sent"), 204);
    assert_eq!(transport.post(&webhook(format!("{}/broken", server.uri()))).await.expect("sent"), 503);
    // Checked here rather than by a matcher, which would split the value at its commas.
    let received = server.received_requests().await.expect("recorded");
    let signature = received[0].headers.get("bazaar-signature").expect("signed");
    assert_eq!(signature.to_str().expect("ascii"), "t=1,v1=ab");
}

#[tokio::test]
async fn a_redirect_is_the_answer_not_followed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/moved"))
        .respond_with(ResponseTemplate::new(307).insert_header("location", "http://169.254.169.254/latest/meta-data"))
        .mount(&server)
        .await;
    assert_eq!(local().post(&webhook(format!("{}/moved", server.uri()))).await.expect("sent"), 307);
}

#[tokio::test]
async fn no_answer_is_unavailable_and_the_error_does_not_carry_the_url() {
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let err = local()
        .post(&webhook(format!("http://127.0.0.1:{port}/hook?token=s3cret")))
        .await
        .expect_err("nothing listens");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(!err.report().contains("s3cret"), "{}", err.report());
}

#[tokio::test]
async fn slow_endpoints_time_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(5)))
        .mount(&server)
        .await;
    let transport = HttpTransport::new(TransportConfig {
        timeout: std::time::Duration::from_millis(200),
        allow_local: true,
        ..TransportConfig::default()
    })
    .expect("client");
    let err = transport.post(&webhook(server.uri())).await.expect_err("too slow");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.report().contains("timed out"), "{}", err.report());
}

#[tokio::test]
async fn names_that_resolve_to_local_addresses_are_not_reached_unless_allowed() {
    assert!(PublicOnly::lookup("localhost").await.is_err(), "localhost is loopback");
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let port = server.address().port();
    let strict = HttpTransport::new(TransportConfig::default()).expect("client");
    let err = strict.post(&webhook(format!("http://localhost:{port}/"))).await.expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.report().contains("local addresses"), "{}", err.report());
    assert_eq!(local().post(&webhook(format!("http://localhost:{port}/"))).await.expect("allowed"), 200);
    assert!(server.received_requests().await.expect("recorded").len() == 1, "only the allowed call arrived");
}

#[tokio::test]
async fn passes_the_transport_contract() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/ok")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
    Mock::given(method("POST")).and(path("/fail")).respond_with(ResponseTemplate::new(503)).mount(&server).await;
    Mock::given(method("POST"))
        .and(path("/moved"))
        .respond_with(ResponseTemplate::new(307).insert_header("location", format!("{}/ok", server.uri())))
        .mount(&server)
        .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    bazaar_core::testkit::webhooks::transport(&local(), &server.uri(), &format!("http://127.0.0.1:{port}/")).await;
    let to_ok = server.received_requests().await.expect("recorded").iter().filter(|r| r.url.path() == "/ok").count();
    assert_eq!(to_ok, 1, "the redirect was not followed to /ok");
}
