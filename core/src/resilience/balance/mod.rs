//! balance (placeholder during build).
