//! The schema checked in at `docs/graphql.graphql` is the schema served.
//! Regenerate it with `BLESS=1 cargo test -p bazaar-graphql --test api sdl`.

use std::path::PathBuf;

#[test]
fn checked_in_sdl_matches_the_schema() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/graphql.graphql");
    let current = bazaar_graphql::sdl();
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, &current).expect("write docs/graphql.graphql");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == current,
        "docs/graphql.graphql is out of date with the schema; regenerate it with\n  \
         BLESS=1 cargo test -p bazaar-graphql --test api sdl\nand commit the result"
    );
}
