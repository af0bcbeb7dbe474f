//! Bazaar's benchmarks: criterion benches in `benches/` and load programs in
//! `examples/` of this package. The library itself is empty (the package
//! needs a target); there is no API to call, so this crate has no doctest.
//!
//! ```sh
//! cargo bench -p bazaar-benches            # every criterion bench
//! cargo bench -p bazaar-benches --bench retry   # one of them
//! ```
//!
//! `benches/README.md` has the numbers measured on the 2-core CI machine,
//! the side-by-side runs against peer crates, and how to reproduce them.
