//! `grpc.health.v1` following the backends, and server reflection.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bazaar_core::auth::Role;
use bazaar_core::health::Probe;
use bazaar_core::marketplace::Bus;
use bazaar_grpc::pb;
use bazaar_memory::{InProcessBus, MemoryBlobStore};
use bazaar_sqlite::SqliteStore;
use common::{World, expect_status, usd};
use futures::StreamExt;
use prost::Message;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

const BAZAAR: [&str; 4] = [
    "bazaar.v1.CatalogService",
    "bazaar.v1.LicensingService",
    "bazaar.v1.NotificationService",
    "bazaar.v1.OrderService",
];

async fn check(w: &World, service: &str) -> ServingStatus {
    let mut client = HealthClient::new(w.channel.clone());
    client.check(HealthCheckRequest { service: service.into() }).await.expect("health check").into_inner().status()
}

/// Waits (at most 10 s, so a regression fails instead of hanging) until the
/// watched status of `service` is `want`.
async fn watch_until(w: &World, service: &str, want: ServingStatus) {
    let mut client = HealthClient::new(w.channel.clone());
    let mut stream = client.watch(HealthCheckRequest { service: service.into() }).await.expect("watch").into_inner();
    let reached = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(update) = stream.next().await {
            let update: HealthCheckResponse = update.expect("watch update");
            if update.status() == want {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(reached, Ok(true), "{service:?} never became {want:?}");
}

async fn reflect(w: &World, request: MessageRequest) -> MessageResponse {
    let mut client = ServerReflectionClient::new(w.channel.clone());
    let request = ServerReflectionRequest { host: String::new(), message_request: Some(request) };
    let mut responses =
        client.server_reflection_info(futures::stream::iter([request])).await.expect("reflection").into_inner();
    let response: ServerReflectionResponse = responses.next().await.expect("one response").expect("ok response");
    response.message_response.expect("a message response")
}

#[tokio::test]
async fn reflection_lists_and_describes_every_service() {
    let w = World::start().await;
    let MessageResponse::ListServicesResponse(list) = reflect(&w, MessageRequest::ListServices(String::new())).await
    else {
        panic!("expected a service list")
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    for name in BAZAAR.iter().chain(&["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"]) {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }

    // grpcurl's `describe`: the file defining a service, and the files it imports.
    let MessageResponse::FileDescriptorResponse(files) =
        reflect(&w, MessageRequest::FileContainingSymbol("bazaar.v1.LicensingService".into())).await
    else {
        panic!("expected file descriptors")
    };
    let file = prost_types::FileDescriptorProto::decode(files.file_descriptor_proto[0].as_slice()).unwrap();
    assert_eq!(file.name(), "bazaar/v1/licensing.proto");
    let methods: Vec<_> = file.service[0].method.iter().map(|m| m.name()).collect();
    assert_eq!(methods, ["ValidateLicense", "ActivateLicense", "DeactivateLicense", "GetLicense"]);
    assert!(file.dependency.iter().any(|d| d == "google/protobuf/timestamp.proto"));
    let MessageResponse::FileDescriptorResponse(ts) =
        reflect(&w, MessageRequest::FileByFilename("google/protobuf/timestamp.proto".into())).await
    else {
        panic!("the well-known Timestamp must resolve without the proto files")
    };
    assert!(!ts.file_descriptor_proto.is_empty());

    // v1alpha, for older clients.
    let mut alpha =
        tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient::new(w.channel.clone());
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut responses = alpha.server_reflection_info(futures::stream::iter([request])).await.unwrap().into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("expected a v1alpha service list")
    };
    assert!(list.service.iter().any(|s| s.name == "bazaar.v1.OrderService"));
}

#[tokio::test]
async fn health_follows_a_probe_both_ways() {
    let up = Arc::new(AtomicBool::new(true));
    let flag = up.clone();
    let (market, clock, keys) = common::market(move |clock| {
        let mut ports = common::memory(clock);
        ports.probes.push(Probe::new("database", move || {
            let up = flag.load(Ordering::SeqCst);
            Box::pin(async move {
                if up { Ok(()) } else { Err(bazaar_core::Error::unavailable("database", "probe says down")) }
            })
        }));
        ports
    });
    let w = World::serve(market, clock, keys).await;
    for service in BAZAAR.iter().chain(&[""]) {
        assert_eq!(check(&w, service).await, ServingStatus::Serving, "{service:?}");
    }
    // Health and reflection are not backends' services: unknown to health.
    let unknown =
        HealthClient::new(w.channel.clone()).check(HealthCheckRequest { service: "nope.Service".into() }).await;
    assert_eq!(unknown.unwrap_err().code(), Code::NotFound);

    up.store(false, Ordering::SeqCst);
    watch_until(&w, "", ServingStatus::NotServing).await;
    for service in BAZAAR {
        assert_eq!(check(&w, service).await, ServingStatus::NotServing, "{service}");
    }
    up.store(true, Ordering::SeqCst);
    watch_until(&w, "bazaar.v1.LicensingService", ServingStatus::Serving).await;
    assert_eq!(check(&w, "").await, ServingStatus::Serving);
}

#[tokio::test]
async fn health_is_not_serving_when_the_database_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteStore::open(&dir.path().join("bazaar.db")).await.expect("open SQLite");
    db.migrate().await.unwrap();
    let handle = db.clone();
    let (market, clock, keys) = common::market(move |clock| {
        db.ports(Bus::new(Arc::new(InProcessBus::new(clock))), Arc::new(MemoryBlobStore::new()))
    });
    let w = World::serve(market, clock, keys).await;
    assert_eq!(check(&w, "").await, ServingStatus::Serving);

    // A real purchase on SQLite, validated over gRPC.
    let vendor = w.user(Role::Vendor).await;
    let buyer = w.user(Role::Customer).await;
    let product = w.approved_product(&vendor, "Agent", usd(700)).await;
    let (_, licenses) = w.buy(&buyer, &[&product]).await;
    let validate = || pb::ValidateLicenseRequest { key: licenses[0].key.clone(), fingerprint: None };
    let r = w.licensing().validate_license(validate()).await.unwrap().into_inner();
    assert_eq!(r.code(), pb::ValidationCode::ActivationRequired);

    handle.close().await;
    watch_until(&w, "", ServingStatus::NotServing).await;
    assert_eq!(check(&w, "bazaar.v1.OrderService").await, ServingStatus::NotServing);
    // Calls that need the database say so, without internals.
    let s = expect_status(w.licensing().validate_license(validate()).await, Code::Unavailable, "UNAVAILABLE");
    assert!(s.message().ends_with("unavailable") && !s.message().contains("closed"), "{}", s.message());
    w.shutdown().await;
}
