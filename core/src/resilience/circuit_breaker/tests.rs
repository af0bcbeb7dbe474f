//! Circuit breaker behaviour tests.
