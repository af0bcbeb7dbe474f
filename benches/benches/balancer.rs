//! Load balancer pick cost: `bazaar_core`'s P2C least-request over 100
//! endpoints against `tower::balance::p2c::Balance`.
//!
//! tower's balancer has no pick call separate from `poll_ready` + `call`, so
//! the side-by-side measures one ready + call round trip through each
//! balancing *service* over 100 trivially ready services, both driven by the
//! same current-thread tokio runtime. tower tracks load with
//! `PendingRequests` (least-request, like ours). Our `Balance` boxes its
//! response future and tower's does not; that allocation is part of what is
//! measured. `bazaar/pick_only` is the bare pick + complete, for reference.

use std::convert::Infallible;
use std::hint::black_box;

use bazaar_core::resilience::balance::{Balance, Endpoint, LoadBalancer, Strategy};
use criterion::{Criterion, criterion_main};
use tower::discover::ServiceList;
use tower::load::{CompleteOnResponse, PendingRequests};
use tower::{Service, ServiceExt, service_fn};

const ENDPOINTS: usize = 100;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime")
}

fn pick_only(c: &mut Criterion) {
    let lb = LoadBalancer::builder(Strategy::LeastRequest).build();
    lb.set_endpoints((0..ENDPOINTS).map(|i| Endpoint::new(format!("ep-{i}"))));
    c.bench_function("balancer/p2c_100/bazaar/pick_only", |b| {
        b.iter(|| {
            let pick = lb.pick(None).expect("an endpoint");
            black_box(pick.id());
            pick.success();
        })
    });
}

fn round_trip(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("balancer/p2c_100/ready_call");

    let mut ours = Balance::new(LoadBalancer::builder(Strategy::LeastRequest).build());
    for i in 0..ENDPOINTS {
        ours.insert(Endpoint::new(format!("ep-{i}")), service_fn(|x: u64| async move { Ok::<_, Infallible>(x) }));
    }
    group.bench_function("bazaar", |b| {
        b.iter(|| {
            rt.block_on(async {
                let svc = ours.ready().await.expect("ready");
                black_box(svc.call(black_box(1)).await.expect("response"))
            })
        })
    });

    let services: Vec<_> = (0..ENDPOINTS)
        .map(|_| {
            PendingRequests::new(
                service_fn(|x: u64| async move { Ok::<_, Infallible>(x) }),
                CompleteOnResponse::default(),
            )
        })
        .collect();
    let mut theirs = tower::balance::p2c::Balance::new(ServiceList::new::<u64>(services));
    group.bench_function("tower", |b| {
        b.iter(|| {
            rt.block_on(async {
                let svc = theirs.ready().await.expect("ready");
                black_box(svc.call(black_box(1)).await.expect("response"))
            })
        })
    });
    group.finish();
}

mod group {
    // criterion_group! expands to an undocumented `pub fn`.
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(benches, super::pick_only, super::round_trip);
}
criterion_main!(group::benches);
