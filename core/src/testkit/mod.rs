//! Contract test suites, one per port, run by every adapter crate.
