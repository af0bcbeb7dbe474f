//! Contract suite for [`UserRepository`]: unique e-mails, lookups, outbox.

use futures::future::join_all;

use crate::auth::{Email, Role, User, UserRepository};
use crate::events::{Event, UserRegistered};
use crate::ids::UserId;

fn user(email: &str) -> User {
    User {
        id: UserId::new(),
        email: Email::parse(email).expect("valid e-mail"),
        name: "Ada".into(),
        role: Role::Customer,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("in range"),
    }
}

fn registered(u: &User) -> Event {
    Event::new(&UserRegistered { user_id: u.id, role: u.role.as_str().into() }, u.created_at)
}

/// Insert, get, find by e-mail, unique e-mail (also under concurrency).
///
/// `repo` must be fresh and empty; `committed` returns every event the
/// backend has committed so far.
///
/// # Panics
/// When the backend breaks the [`UserRepository`] contract.
pub async fn users(repo: &dyn UserRepository, committed: &dyn Fn() -> Vec<Event>) {
    let ada = user("ada@example.com");
    assert_eq!(repo.get(ada.id).await.expect("get"), None, "unknown id must be None");
    let ev = registered(&ada);
    repo.insert(&ada, std::slice::from_ref(&ev)).await.expect("insert");
    let base = committed().len();
    assert!(committed().iter().any(|e| e.id == ev.id), "insert must commit its events");

    assert_eq!(repo.get(ada.id).await.expect("get"), Some(ada.clone()), "get returns what was inserted");
    let email = Email::parse("ADA@example.com ").expect("valid");
    assert_eq!(
        repo.find_by_email(&email).await.expect("find"),
        Some(ada.clone()),
        "find_by_email uses the normalised address"
    );
    let nobody = Email::parse("nobody@example.com").expect("valid");
    assert_eq!(repo.find_by_email(&nobody).await.expect("find"), None);

    let twin = User { id: UserId::new(), name: "Impostor".into(), ..ada.clone() };
    match repo.insert(&twin, &[registered(&twin)]).await {
        Err(e) => assert_eq!(e.code(), "conflict", "a taken e-mail must be Conflict, got {e:?}"),
        Ok(()) => panic!("a second user with the same e-mail was accepted"),
    }
    assert_eq!(repo.get(twin.id).await.expect("get"), None, "a refused insert must store nothing");
    assert_eq!(repo.find_by_email(&ada.email).await.expect("find"), Some(ada.clone()), "the original keeps its e-mail");
    assert_eq!(committed().len(), base, "a refused insert must append no event");

    let same_id = User { email: Email::parse("other@example.com").expect("valid"), ..ada.clone() };
    match repo.insert(&same_id, &[]).await {
        Err(e) => assert_eq!(e.code(), "conflict", "a duplicate id must be Conflict, got {e:?}"),
        Ok(()) => panic!("a second user with the same id was accepted"),
    }
    assert_eq!(repo.find_by_email(&same_id.email).await.expect("find"), None);

    // Concurrent sign-ups with one address: exactly one account.
    let racers: Vec<User> = (0..8).map(|_| user("race@example.com")).collect();
    let results = join_all(racers.iter().map(|u| repo.insert(u, &[]))).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "exactly one concurrent sign-up may win: {results:?}");
    let winner = repo.find_by_email(&racers[0].email).await.expect("find").expect("one account");
    assert!(racers.iter().any(|u| u == &winner));
}
