//! Criterion benches live in `benches/`; this library is empty so the package has a target. See `benches/README.md`.
