//! Tower adapter: `Balance<S, K>` routes each request to the service of the
//! endpoint the [`LoadBalancer`] picks, by id.

use std::collections::HashMap;
use std::fmt;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, poll_fn};
use tower_service::Service;

use super::{Endpoint, EndpointId, LoadBalancer};
use crate::resilience::ResilienceError;

/// Extracts a sticky routing key from a request (for ring hash / Maglev).
/// Implemented by `NoKey` and by any `Fn(&Req) -> Option<Vec<u8>>`.
///
/// # Example
/// ```
/// use bazaar_core::resilience::balance::{Balance, LoadBalancer, RequestKey, Strategy};
///
/// struct Request { user_id: u64 }
///
/// let by_user = |r: &Request| Some(r.user_id.to_be_bytes().to_vec());
/// assert_eq!(by_user.key(&Request { user_id: 7 }), Some(7u64.to_be_bytes().to_vec()));
/// let balance: Balance<(), _> = Balance::new(LoadBalancer::builder(Strategy::Maglev).build()).with_key(by_user);
/// assert!(balance.get_ref().is_empty());
/// ```
pub trait RequestKey<Req> {
    /// The key, or `None` for unkeyed routing.
    fn key(&self, req: &Req) -> Option<Vec<u8>>;
}

/// No routing key: every request is routed by the strategy alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKey;

impl<Req> RequestKey<Req> for NoKey {
    fn key(&self, _req: &Req) -> Option<Vec<u8>> {
        None
    }
}

impl<Req, F> RequestKey<Req> for F
where
    F: Fn(&Req) -> Option<Vec<u8>>,
{
    fn key(&self, req: &Req) -> Option<Vec<u8>> {
        self(req)
    }
}

/// A balancing service over per-endpoint services `S`, keyed by endpoint id.
///
/// `poll_ready` is always ready: the endpoint is unknown until the request
/// is seen, so readiness of the chosen endpoint's service is awaited inside
/// the response future (on a clone, hence `S: Clone`). No endpoint, or a
/// picked id with no service, fails the call with
/// [`ResilienceError::Rejected`]. The pick is completed with the inner
/// result (`Err` counts as a failure for outlier ejection) and its latency.
pub struct Balance<S, K = NoKey> {
    balancer: LoadBalancer,
    pub(crate) services: HashMap<EndpointId, S>,
    key: K,
}

impl<S, K> fmt::Debug for Balance<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balance").field("balancer", &self.balancer).field("endpoints", &self.services.len()).finish()
    }
}

impl<S: Clone, K: Clone> Clone for Balance<S, K> {
    fn clone(&self) -> Self {
        Self { balancer: self.balancer.clone(), services: self.services.clone(), key: self.key.clone() }
    }
}

impl<S> Balance<S, NoKey> {
    /// A balancing service with no endpoints, routing without keys.
    pub fn new(balancer: LoadBalancer) -> Self {
        Self { balancer, services: HashMap::new(), key: NoKey }
    }
}

impl<S, K> Balance<S, K> {
    /// Routes with a sticky key taken from each request.
    pub fn with_key<K2>(self, key: K2) -> Balance<S, K2> {
        Balance { balancer: self.balancer, services: self.services, key }
    }

    /// Adds (or replaces) an endpoint and its service.
    pub fn insert(&mut self, endpoint: Endpoint, service: S) {
        self.services.insert(endpoint.id.clone(), service);
        self.balancer.add(endpoint);
    }

    /// Removes an endpoint; returns its service.
    pub fn remove(&mut self, id: &EndpointId) -> Option<S> {
        self.balancer.remove(id);
        self.services.remove(id)
    }

    /// The balancer.
    pub fn balancer(&self) -> &LoadBalancer {
        &self.balancer
    }

    /// The per-endpoint services.
    pub fn get_ref(&self) -> &HashMap<EndpointId, S> {
        &self.services
    }

    /// The per-endpoint services, mutably (keep ids in step with the
    /// balancer: use `insert` / `remove` to change the set).
    pub fn get_mut(&mut self) -> &mut HashMap<EndpointId, S> {
        &mut self.services
    }

    /// The per-endpoint services.
    pub fn into_inner(self) -> HashMap<EndpointId, S> {
        self.services
    }
}

impl<S, K, Req> Service<Req> for Balance<S, K>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    S::Response: Send,
    Req: Send + 'static,
    K: RequestKey<Req>,
{
    type Response = S::Response;
    type Error = ResilienceError<S::Error>;
    type Future = BoxFuture<'static, Result<S::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let key = self.key.key(&req);
        let picked = self
            .balancer
            .pick(key.as_deref())
            .and_then(|pick| self.services.get(pick.id()).cloned().map(|svc| (pick, svc)));
        let Some((pick, mut svc)) = picked else {
            return Box::pin(std::future::ready(Err(ResilienceError::Rejected("no endpoint available"))));
        };
        Box::pin(async move {
            poll_fn(|cx| svc.poll_ready(cx)).await.map_err(ResilienceError::Inner)?;
            let result = svc.call(req).await;
            if result.is_ok() {
                pick.success()
            } else {
                pick.failure()
            }
            result.map_err(ResilienceError::Inner)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::time::Duration;

    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::resilience::balance::{OutlierConfig, Strategy};
    use crate::resilience::clock::ManualClock;
    use crate::resilience::registry::{Registration, ServiceRegistry};

    fn echo(
        name: &'static str,
    ) -> impl Service<u32, Response = String, Error = Infallible, Future: Send> + Clone + Send + 'static {
        service_fn(move |x: u32| async move { Ok::<_, Infallible>(format!("{name}:{x}")) })
    }

    #[tokio::test]
    async fn routes_by_id_and_rejects_when_empty() {
        let mut svc = Balance::new(LoadBalancer::builder(Strategy::RoundRobin).build());
        assert!(matches!(svc.ready().await.unwrap().call(1).await, Err(ResilienceError::Rejected(_))));
        svc.insert(Endpoint::new("a"), echo("a"));
        svc.insert(Endpoint::new("b"), echo("b"));
        let mut seen = Vec::new();
        for i in 0..4 {
            seen.push(svc.ready().await.unwrap().call(i).await.unwrap());
        }
        assert_eq!(seen, ["a:0", "b:1", "a:2", "b:3"]);
        assert!(svc.remove(&"a".into()).is_some());
        assert_eq!(svc.ready().await.unwrap().call(9).await.unwrap(), "b:9");
        assert_eq!(svc.get_ref().len(), 1);
        let _: &mut _ = svc.get_mut();
        assert_eq!(svc.into_inner().len(), 1);
    }

    #[tokio::test]
    async fn sticky_keys_and_failures_feed_outlier_ejection() {
        let clock = ManualClock::new();
        let lb = LoadBalancer::builder(Strategy::Maglev)
            .clock(Arc::new(clock.clone()))
            .outlier_detection(OutlierConfig::default())
            .build();
        let registry = ServiceRegistry::with_clock(Duration::from_secs(30), Arc::new(clock.clone()));
        for id in ["a", "b", "c"] {
            registry.register(Registration::new("svc", id, format!("{id}:80"))).unwrap();
        }
        let mut svc = Balance::new(lb).with_key(|x: &u32| Some(x.to_le_bytes().to_vec()));
        svc.sync_from_registry(&registry, "svc", |i| {
            let failing = i.id == "a";
            let name = i.id.clone();
            service_fn(move |x: u32| {
                let name = name.clone();
                async move { if failing { Err("boom") } else { Ok(format!("{name}:{x}")) } }
            })
        });
        assert_eq!(svc.get_ref().len(), 3);
        // Find a key routed to the failing endpoint and fail it five times.
        let key =
            (0..1000u32).find(|k| svc.balancer().pick(Some(&k.to_le_bytes())).unwrap().id().as_str() == "a").unwrap();
        for _ in 0..5 {
            assert!(matches!(svc.ready().await.unwrap().call(key).await, Err(ResilienceError::Inner("boom"))));
        }
        // Ejected: the same key now lands elsewhere and succeeds.
        assert!(svc.ready().await.unwrap().call(key).await.is_ok());
        registry.deregister("svc", "a").unwrap();
        svc.sync_from_registry(&registry, "svc", |_| unreachable!("no new instances"));
        assert_eq!(svc.get_ref().len(), 2);
    }
}
