//! The SMTP sender against a real SMTP server (aiosmtpd, started by the
//! tests), and the notification-sender contract on it and on the
//! in-memory recording sender.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bazaar_core::auth::{Email, Role, User, UserRepository};
use bazaar_core::clock::{Clock, ManualClock};
use bazaar_core::events::{Event, ProductApproved, TraceContext};
use bazaar_core::ids::{ProductId, UserId};
use bazaar_core::notifications::{
    Channel, NotificationRepository, NotificationSender, NotificationService, NotificationStatus, Template, render,
};
use bazaar_core::resilience::circuit_breaker::{CircuitBreakerConfig, SlidingWindow, State};
use bazaar_core::resilience::clock::ManualClock as MonotonicManualClock;
use bazaar_core::resilience::retry::{Backoff, ManualSleeper, RetryPolicy};
use bazaar_core::testkit::notification_sender::{self as suite, SenderHarness, notification};
use bazaar_core::{Error, ErrorKind};
use bazaar_memory::{MemoryNotifications, MemoryOutbox, MemoryUsers, RecordingSender};
use bazaar_smtp::{SmtpConfig, SmtpSender, message_id, subject};
use futures::FutureExt;

fn config(port: u16) -> SmtpConfig {
    let mut config =
        SmtpConfig::from_values(&format!("smtp://127.0.0.1:{port}"), "Bazaar <noreply@bazaar.test>").unwrap();
    config.retry = RetryPolicy::new(3, Backoff::constant(Duration::from_millis(10)));
    config.command_timeout = Duration::from_secs(5);
    config
}

/// A user whose address starts with `local` (the server's rules key on it).
async fn user(users: &MemoryUsers, local: &str) -> User {
    let user = User {
        id: UserId::new(),
        email: Email::parse(&format!("{local}-{}@example.test", uuid::Uuid::now_v7().simple())).unwrap(),
        name: "Ada Lovelace".into(),
        role: Role::Customer,
        password_hash: "$argon2id$unused".into(),
        created_at: ManualClock::at_epoch_secs(0).now(),
    };
    users.insert(&user, &[]).await.unwrap();
    user
}

fn users() -> Arc<MemoryUsers> {
    Arc::new(MemoryUsers::new(MemoryOutbox::new()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recording_sender_passes_the_notification_sender_contract() {
    let sender = Arc::new(RecordingSender::new());
    let (probe, toggle) = (Arc::clone(&sender), Arc::clone(&sender));
    let accepted = move || {
        let ids = probe.sent().iter().map(|n| n.id).collect::<Vec<_>>();
        async move { ids }.boxed()
    };
    let set_refusing = move |refusing: bool| {
        toggle.fail_next(if refusing { u32::MAX } else { 0 });
        async {}.boxed()
    };
    let harness = SenderHarness {
        recipient: UserId::new(),
        channel: Channel::Email,
        accepted: &accepted,
        set_refusing: &set_refusing,
    };
    suite::notification_sender_contract(sender, &harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_passes_the_notification_sender_contract() {
    let server = common::server();
    let users = users();
    let ada = user(&users, "contract").await;
    let sender: Arc<dyn NotificationSender> = Arc::new(SmtpSender::new(config(server.port), users).unwrap());
    let address = ada.email.as_str().to_owned();
    let local = address.split('@').next().unwrap().to_owned();
    let accepted = move || {
        let ids = server.mails_to(&address).iter().filter_map(common::Mail::notification_id).collect::<Vec<_>>();
        async move { ids }.boxed()
    };
    let set_refusing = move |refusing: bool| {
        server.refuse(&local, refusing);
        async {}.boxed()
    };
    let harness =
        SenderHarness { recipient: ada.id, channel: Channel::Email, accepted: &accepted, set_refusing: &set_refusing };
    suite::notification_sender_contract(sender, &harness).await;
}

#[tokio::test]
async fn the_mail_carries_the_rendered_body_a_subject_and_a_stable_message_id() {
    let server = common::server();
    let users = users();
    let ada = user(&users, "content").await;
    let sender = SmtpSender::new(config(server.port), users).unwrap();
    let n =
        notification(ada.id, Channel::Email, Template::LicenseIssued, "Your license is ready. Find it under Licenses.");
    sender.send(&n).await.unwrap();
    sender.send(&n).await.unwrap();
    let mails = server.mails_to(ada.email.as_str());
    assert_eq!(mails.len(), 2, "each accepted send is one message");
    for mail in &mails {
        assert_eq!(mail.header("Subject").as_deref(), Some(subject(Template::LicenseIssued)));
        assert_eq!(mail.header("From").as_deref(), Some("Bazaar <noreply@bazaar.test>"));
        assert_eq!(mail.header("To"), Some(format!("\"Ada Lovelace\" <{}>", ada.email.as_str())));
        assert_eq!(mail.header("Message-ID"), Some(message_id(&n, "bazaar.test")), "the same id on every copy");
        assert_eq!(mail.notification_id(), Some(n.id));
        assert!(mail.text().contains("Your license is ready. Find it under Licenses."), "{}", mail.text());
    }
}

#[tokio::test]
async fn a_mail_sent_inside_a_trace_carries_its_context() {
    let server = common::server();
    let users = users();
    let ada = user(&users, "traced").await;
    let sender = SmtpSender::new(config(server.port), users).unwrap();
    let n = notification(ada.id, Channel::Email, Template::OrderPlaced, "Your order was placed.");
    // This process exports no traces, so the caller's context goes on unchanged.
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let context = TraceContext::parse(traceparent, Some("vendor=opaque")).unwrap();
    TraceContext::scope(context, sender.send(&n)).await.unwrap();
    sender.send(&n).await.unwrap();
    let mails = server.mails_to(ada.email.as_str());
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[0].header("traceparent").as_deref(), Some(traceparent));
    assert_eq!(mails[0].header("tracestate").as_deref(), Some("vendor=opaque"));
    assert_eq!(mails[1].header("traceparent"), None, "no trace, no header");
}

#[tokio::test]
async fn the_notification_flow_mails_the_core_rendered_template() {
    let server = common::server();
    let users = users();
    let vendor = user(&users, "vendor").await;
    let repo = Arc::new(MemoryNotifications::new());
    let wall = Arc::new(ManualClock::at_epoch_secs(1_700_000_000));
    let sender = SmtpSender::new(config(server.port), users).unwrap();
    let service = NotificationService::new(repo.clone(), Arc::new(sender), wall.clone());
    let cause = Event::new(&ProductApproved { product_id: ProductId::new(), vendor_id: vendor.id }, wall.now());
    let sent = service.notify_all(vendor.id, None, Template::ProductApproved, &cause).await.unwrap();
    let email = sent.iter().find(|n| n.channel == Channel::Email).expect("e-mail is on by default");
    assert_eq!(email.status, NotificationStatus::Sent, "sent only because the server accepted it");
    let mails = server.mails_to(vendor.email.as_str());
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].notification_id(), Some(email.id));
    let rendered = render(Template::ProductApproved, &cause).unwrap();
    assert!(mails[0].text().contains(&rendered), "{} should contain {rendered}", mails[0].text());
    assert_eq!(mails[0].header("Subject").as_deref(), Some(subject(Template::ProductApproved)));
}

#[tokio::test]
async fn a_permanent_refusal_fails_the_notification_for_the_dead_letter_path() {
    let server = common::server();
    let users = users();
    let gone = user(&users, "bounce").await;
    let clock = MonotonicManualClock::new();
    let sleeper = ManualSleeper::new(clock.clone());
    let sender = SmtpSender::new(config(server.port), users.clone())
        .unwrap()
        .with_timing(Arc::new(clock), Arc::new(sleeper.clone()));
    let n = notification(gone.id, Channel::Email, Template::OrderPlaced, "Your order was placed.");
    let err = sender.send(&n).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "a 5xx is permanent: {err}");
    assert!(err.to_string().contains("550"), "{err}");
    assert!(sleeper.slept().is_empty(), "a permanent refusal is not retried");
    assert!(server.mails_to(gone.email.as_str()).is_empty());

    // Through the core's notification flow: stored failed, attempt
    // counted, and the error's kind is the one the dispatcher parks at once.
    let repo = Arc::new(MemoryNotifications::new());
    let wall = Arc::new(ManualClock::at_epoch_secs(1_700_000_000));
    let service = NotificationService::new(repo.clone(), Arc::new(sender), wall.clone());
    let cause = Event::new(&ProductApproved { product_id: ProductId::new(), vendor_id: gone.id }, wall.now());
    let failed = service.notify_all(gone.id, None, Template::ProductApproved, &cause).await.unwrap_err();
    assert_eq!(failed.kind(), ErrorKind::Invalid);
    let stored = repo.list_for_user(gone.id, Default::default()).await.unwrap().items;
    let email = stored.iter().find(|n| n.channel == Channel::Email).expect("the e-mail notification");
    assert_eq!((email.status, email.attempts, email.sent_at), (NotificationStatus::Failed, 1, None));
    let in_app = stored.iter().find(|n| n.channel == Channel::InApp).expect("the in-app notification");
    assert_eq!(in_app.status, NotificationStatus::Sent, "other channels are unaffected");
}

#[tokio::test]
async fn deferrals_are_retried_then_unavailable() {
    let server = common::server();
    let users = users();
    let busy = user(&users, "busy").await;
    let clock = MonotonicManualClock::new();
    let sleeper = ManualSleeper::new(clock.clone());
    let sender =
        SmtpSender::new(config(server.port), users).unwrap().with_timing(Arc::new(clock), Arc::new(sleeper.clone()));
    let err = sender.send(&notification(busy.id, Channel::Email, Template::OrderPlaced, "x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let cause = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
    assert!(cause.contains("451"), "{cause}");
    assert_eq!(sleeper.slept().len(), 2, "three attempts, two waits");
}

#[tokio::test]
async fn a_dead_server_opens_the_breaker() {
    let users = users();
    let ada = user(&users, "nobody").await;
    let mut config = config(common::python::free_port());
    config.breaker = CircuitBreakerConfig::builder()
        .sliding_window(SlidingWindow::CountBased(2))
        .minimum_number_of_calls(2)
        .build()
        .unwrap();
    let clock = MonotonicManualClock::new();
    let sender = SmtpSender::new(config, users)
        .unwrap()
        .with_timing(Arc::new(clock.clone()), Arc::new(ManualSleeper::new(clock)));
    for _ in 0..2 {
        let err = sender.send(&notification(ada.id, Channel::Email, Template::OrderPlaced, "x")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    }
    assert_eq!(sender.breaker().state(), State::Open);
    let err = sender.send(&notification(ada.id, Channel::Email, Template::OrderPlaced, "x")).await.unwrap_err();
    let cause = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
    assert!(cause.contains("circuit breaker open"), "{cause}");
}

#[tokio::test]
async fn other_channels_and_unknown_users_never_reach_the_server() {
    let server = common::server();
    let users = users();
    let ada = user(&users, "channels").await;
    let others = Arc::new(RecordingSender::new());
    let sender = SmtpSender::new(config(server.port), users).unwrap().with_others(others.clone());
    sender.send(&notification(ada.id, Channel::InApp, Template::OrderPlaced, "in app")).await.unwrap();
    sender.send(&notification(ada.id, Channel::Webhook, Template::OrderPlaced, "hook")).await.unwrap();
    assert_eq!(others.sent().len(), 2);
    assert!(server.mails_to(ada.email.as_str()).is_empty());
    let stranger = notification(UserId::new(), Channel::Email, Template::OrderPlaced, "x");
    match sender.send(&stranger).await {
        Err(Error::Validation(fields)) => assert_eq!(fields[0].field, "user_id"),
        other => panic!("expected a validation error, got {other:?}"),
    }
}
