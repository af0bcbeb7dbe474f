//! Runnable examples live beside this folder (`cargo run --example purchase`); this library is empty so the package has a target.
