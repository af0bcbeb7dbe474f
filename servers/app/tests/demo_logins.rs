//! The demo logins share a public password: they sign in only in a process
//! that is a demo (`serve --demo`, `seed`) or that was told they may
//! (`BAZAAR_DEMO_LOGINS`), even on a data dir seeded before.

use std::sync::Arc;

use bazaar_app::demo::{DEMO_BUYER_EMAIL, DEMO_PASSWORD, seed_demo};
use bazaar_app::{App, AppOptions, Config};
use bazaar_core::Error;
use bazaar_core::auth::{Role, Signup};
use bazaar_core::clock::{Clock, SystemClock};

async fn app(config: Config) -> App {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    App::build_with(config, AppOptions::new(clock).fast_passwords()).await.unwrap()
}

#[tokio::test]
async fn demo_logins_stop_signing_in_once_the_process_is_no_demo() {
    let dir = tempfile::tempdir().unwrap();
    let demo = app(Config { demo: true, ..Config::embedded(dir.path()) }).await;
    seed_demo(&demo.market, 1, |_| {}).await.unwrap();
    let session = demo.market.auth.login(DEMO_BUYER_EMAIL, DEMO_PASSWORD).await.unwrap();
    let refresh_token = session.refresh_token;
    demo.close().await;
    drop(demo);

    let plain = app(Config::embedded(dir.path())).await;
    let refused = plain.market.auth.login(DEMO_BUYER_EMAIL, DEMO_PASSWORD).await.unwrap_err();
    assert!(matches!(&refused, Error::Unauthenticated(m) if m == "wrong e-mail or password"), "{refused:?}");
    let refused = plain.market.auth.refresh(&refresh_token).await.unwrap_err();
    assert!(matches!(refused, Error::Unauthenticated(_)), "{refused:?}");
    // Everyone else signs in as usual.
    let signup = Signup {
        email: "ann@example.com".into(),
        password: "password123".into(),
        name: "Ann".into(),
        role: Role::Customer,
    };
    plain.market.auth.register(signup).await.unwrap();
    plain.market.auth.login("ann@example.com", "password123").await.unwrap();
    plain.close().await;
    drop(plain);

    let asked = app(Config { demo_logins: true, ..Config::embedded(dir.path()) }).await;
    asked.market.auth.login(DEMO_BUYER_EMAIL, DEMO_PASSWORD).await.unwrap();
    asked.close().await;
}
