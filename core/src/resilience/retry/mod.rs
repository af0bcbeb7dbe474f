//! retry (placeholder during build).
