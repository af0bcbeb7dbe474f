//! registry (placeholder during build).
