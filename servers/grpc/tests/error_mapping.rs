//! Every core error variant, raised by a store behind a real RPC, arrives
//! at the generated client with its status code, `ErrorInfo` reason and
//! details, and without internals.

mod common;

use bazaar_core::ConflictReason;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bazaar_core::Error;
use bazaar_core::error::{Denial, FieldError};
use bazaar_core::ids::{OrderId, ProductId, UserId};
use bazaar_core::licensing::{
    License, LicenseKind, LicenseSigner, Limits, MockLicenseRepository, NewLicense, Permissions,
};
use bazaar_grpc::pb;
use common::World;
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn every_core_error_reaches_the_client_with_its_code() {
    // The license store fails ValidateLicense's lookup with whatever error the test queued.
    let queued: Arc<Mutex<Option<Error>>> = Arc::default();
    let next = queued.clone();
    let (market, clock, keys) = common::market(move |clock| {
        let mut licenses = MockLicenseRepository::new();
        licenses
            .expect_get_by_key()
            .returning(move |_| Err(next.lock().unwrap().take().expect("the test queues an error first")));
        let mut ports = common::memory(clock);
        ports.licenses = Arc::new(licenses);
        ports
    });
    // A key signed by this marketplace, so validation reaches the store.
    let signer = LicenseSigner::from_seed(&keys.license_seed);
    let license = License::issue(
        NewLicense {
            buyer_id: UserId::new(),
            product_id: ProductId::new(),
            order_id: OrderId::new(),
            kind: LicenseKind::Perpetual,
            permissions: Permissions::default(),
            limits: Limits::default(),
        },
        &signer,
        market.clock.now(),
    );
    let w = World::serve(market, clock, keys).await;
    let mut client = w.licensing();

    let cases: Vec<(Error, Code, &str)> = vec![
        (Error::not_found("license"), Code::NotFound, "NOT_FOUND"),
        (Error::conflict(ConflictReason::Duplicate, "email already registered"), Code::AlreadyExists, "CONFLICT"),
        (Error::conflict(ConflictReason::TooManyActivations, "full"), Code::FailedPrecondition, "TOO_MANY_ACTIVATIONS"),
        (Error::VersionMismatch { expected: 4, current: 5 }, Code::FailedPrecondition, "VERSION_MISMATCH"),
        (Error::transition("license", "revoked", "suspend"), Code::FailedPrecondition, "INVALID_TRANSITION"),
        (Error::IdempotencyMismatch, Code::FailedPrecondition, "IDEMPOTENCY_MISMATCH"),
        (Error::InFlight, Code::Aborted, "CONFLICT"),
        (
            Error::Validation(vec![FieldError::new("key", "too long"), FieldError::new("fingerprint", "blank")]),
            Code::InvalidArgument,
            "VALIDATION",
        ),
        (Error::Forbidden("admins only".into()), Code::PermissionDenied, "FORBIDDEN"),
        (Error::Denied(Denial::DownloadLimitReached), Code::PermissionDenied, "DOWNLOAD_LIMIT_REACHED"),
        (Error::Unauthenticated("expired".into()), Code::Unauthenticated, "UNAUTHENTICATED"),
        (Error::RateLimited { retry_after: Duration::from_secs(3) }, Code::ResourceExhausted, "RATE_LIMITED"),
        (Error::unavailable("database", "connect to 10.1.2.3:5432 refused"), Code::Unavailable, "UNAVAILABLE"),
        (Error::internal("reading a license", "row 7 has a NULL key"), Code::Internal, "INTERNAL"),
        (Error::Integrity("provider reported 10 EUR".into()), Code::Internal, "INTEGRITY"),
    ];
    for (error, code, reason) in cases {
        let label = format!("{error:?}");
        *queued.lock().unwrap() = Some(error);
        let status = client
            .validate_license(pb::ValidateLicenseRequest { key: license.key.clone(), fingerprint: None })
            .await
            .expect_err(&label);
        assert_eq!(status.code(), code, "{label}: {status:?}");
        let info = status.get_details_error_info().unwrap_or_else(|| panic!("{label}: no ErrorInfo"));
        assert_eq!((info.reason.as_str(), info.domain.as_str()), (reason, "bazaar"), "{label}");
        match code {
            Code::InvalidArgument => {
                let bad = status.get_details_bad_request().expect("BadRequest");
                let fields: Vec<_> = bad.field_violations.iter().map(|v| v.field.as_str()).collect();
                assert_eq!(fields, ["key", "fingerprint"]);
                assert!(status.message().contains("key: too long; fingerprint: blank"), "{}", status.message());
            }
            Code::ResourceExhausted => {
                assert_eq!(status.get_details_retry_info().unwrap().retry_delay, Some(Duration::from_secs(3)));
            }
            Code::Internal => assert_eq!(status.message(), "internal error", "{label}"),
            Code::Unavailable => {
                assert_eq!(status.message(), "database unavailable");
                assert!(!format!("{status:?}").contains("10.1.2.3"), "the cause stays in the logs");
            }
            Code::FailedPrecondition if reason == "VERSION_MISMATCH" => {
                assert_eq!(info.metadata.get("current").map(String::as_str), Some("5"));
            }
            _ => assert!(!status.message().is_empty()),
        }
    }
    assert!(queued.lock().unwrap().is_none(), "every queued error was raised");
}
