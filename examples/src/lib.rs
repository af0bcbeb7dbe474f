//! Runnable examples that embed bazaar-core live beside this folder
//! (`cargo run --example purchase`). The library itself only carries the
//! repository README as its docs, so the README's embedding sample is
//! compiled and run as a doctest and cannot drift from the API.
#![doc = include_str!("../../README.md")]
