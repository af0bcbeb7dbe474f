//! The `RateLimitStore` contract suite on the in-process store (the Redis
//! adapter runs the same suite).

use bazaar_core::resilience::rate_limit::InMemoryRateLimitStore;
use bazaar_core::testkit::rate_limit::rate_limit_store;

#[tokio::test]
async fn in_process_store_passes_the_rate_limit_contract() {
    rate_limit_store(&InMemoryRateLimitStore::new(), "contract").await;
}
