//! Batched pulls of one consumer group: the messages a pull request brought
//! that no caller has taken yet, and the wait for a batch still arriving.
//!
//! With [`JetStreamOptions::pull_batch`](crate::JetStreamOptions::pull_batch)
//! above 1, a call of `next` that finds nothing held starts one no-wait pull
//! of up to that many messages. A task moves each message into the group's
//! queue as it arrives, and every caller, the one that started the pull
//! included, takes from the queue. Messages arrive one by one, so a caller
//! can find the queue empty while the server has already sent the rest of a
//! batch to this process: those messages are due, and no other request can
//! get them. So a caller never concludes "nothing due" while a batch of its
//! group is in flight; it waits until a message lands or the batch ends.
//!
//! The rules, all under one lock per group:
//!
//! - A held message is taken first (oldest first). One held past
//!   `fresh_for` (half the ack wait) is dropped unhandled: JetStream hands it
//!   out again after the ack wait, and handling it that late would race
//!   that redelivery.
//! - **One batch in flight per group.** While it is, callers wait for it,
//!   woken by every message it brings and by its end. Concurrent callers
//!   therefore share one request instead of making one each.
//! - **Waited for until it settles.** A batch is waited for until it ends,
//!   but not past its settle time (set by the bus). The bus asks for a
//!   no-wait batch without an expiry, which the server answers at once: the
//!   messages it has, then the end of the batch, or the end alone when it
//!   has none. Now and then it parks such a request instead (the messages
//!   it counted when the request came were taken by another request) until
//!   the next message arrives; past the settle time callers stop waiting
//!   for such a batch and the next one starts. The task keeps reading the
//!   parked request, so a message it brings late is still queued.
//! - **"Nothing due" needs a fresh answer.** A caller returns nothing only
//!   when a batch started *after* its call began has ended without filling
//!   (the server had no more to give at that moment), nothing is in flight,
//!   and the queue is empty. A batch that filled, or one that was already in
//!   flight when the call began, says nothing about the caller's moment, so
//!   the caller starts the next batch instead. A batch that failed fails the
//!   callers that were counting on it.
//!
//! Dropping the bus leaves a batch task running until its request ends;
//! messages still held then are dropped with the queue and come back after
//! the ack wait, like those of a process that dies.

use std::collections::VecDeque;
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How batches of one group are pulled and held.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batching {
    /// Messages asked for per pull request.
    pub(crate) max: usize,
    /// How long after its request a batch is waited for at most.
    pub(crate) settle: Duration,
    /// How long a batch task may run in all before it gives up on the
    /// request (its messages so far stay queued).
    pub(crate) limit: Duration,
    /// How long a message may be held before it is dropped unhandled.
    pub(crate) fresh_for: Duration,
}

/// The held messages of one consumer group and its batch in flight.
#[derive(Debug)]
pub(crate) struct Held<T> {
    state: Mutex<State<T>>,
    /// Signalled after every message queued and every batch that ends.
    changed: Notify,
}

#[derive(Debug)]
struct State<T> {
    /// Messages pulled and not handed out, oldest first, with when they
    /// were queued.
    queue: VecDeque<(Instant, T)>,
    /// How many batches were started on this group (the latest's number).
    started: u64,
    /// The batch callers wait for, if any.
    current: Option<InFlight>,
    /// The highest-numbered batch that ended, and how.
    last_end: Option<(u64, End)>,
    /// Batches that callers stopped waiting for at their settle time
    /// (counted for the tests: each one cost its callers the whole wait).
    abandoned: u64,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    number: u64,
    settle_by: Instant,
}

/// How a batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// It brought as many messages as it asked for: more may be due.
    Full,
    /// It brought fewer: the server had no more to give it.
    Drained,
    /// The request failed (the message says why).
    Failed(String),
}

/// What a caller does next, decided under the lock.
#[derive(Debug)]
enum Step<T> {
    Take(T),
    /// Wait for a change, at most until then.
    Wait(Instant),
    /// Start batch `number` and wait for it, at most until then.
    Start {
        number: u64,
        settle_by: Instant,
    },
    /// Nothing is due.
    Empty,
    Failed(String),
}

impl<T> State<T> {
    /// The oldest held message queued less than `fresh_for` ago; older ones
    /// are dropped on the way, for JetStream to redeliver.
    fn pop_fresh(&mut self, now: Instant, fresh_for: Duration) -> Option<T> {
        while let Some((queued, item)) = self.queue.pop_front() {
            if now.saturating_duration_since(queued) < fresh_for {
                return Some(item);
            }
            tracing::debug!("dropping a batched message held past half its ack wait; JetStream redelivers it");
        }
        None
    }

    /// The caller's next step. `begin` is the number of the latest batch
    /// started before the call began.
    fn step(&mut self, begin: u64, now: Instant, batching: &Batching) -> Step<T> {
        if let Some(item) = self.pop_fresh(now, batching.fresh_for) {
            return Step::Take(item);
        }
        if let Some(current) = self.current {
            if now < current.settle_by {
                return Step::Wait(current.settle_by);
            }
            tracing::debug!(
                batch = current.number,
                "a batch pull did not end within its settle time; no longer waiting for it"
            );
            self.current = None;
            self.abandoned += 1;
        }
        match &self.last_end {
            Some((number, End::Drained)) if *number > begin => return Step::Empty,
            Some((number, End::Failed(why))) if *number > begin => return Step::Failed(why.clone()),
            _ => {}
        }
        self.started += 1;
        let settle_by = now + batching.settle;
        self.current = Some(InFlight { number: self.started, settle_by });
        Step::Start { number: self.started, settle_by }
    }
}

impl<T: Send + 'static> Held<T> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                started: 0,
                current: None,
                last_end: None,
                abandoned: 0,
            }),
            changed: Notify::new(),
        })
    }

    /// The next message of the group: a held one, else one of a batch in
    /// flight or of a batch this call starts with `pull`; `Ok(None)` once a
    /// batch started after this call began has found nothing more (see the
    /// [module docs](self)). `Err` with the reason when that batch failed.
    pub(crate) async fn next<F, Fut, S, E1, E2>(
        self: &Arc<Self>,
        batching: &Batching,
        pull: F,
    ) -> Result<Option<T>, String>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<S, E1>> + Send + 'static,
        S: Stream<Item = Result<T, E2>> + Send + Unpin + 'static,
        E1: Display,
        E2: Display,
    {
        let begin = self.state.lock().started;
        loop {
            // Created before the state is read: a change made after the read
            // wakes this future even though it is polled only later.
            let changed = self.changed.notified();
            let step = self.state.lock().step(begin, Instant::now(), batching);
            let until = match step {
                Step::Take(item) => return Ok(Some(item)),
                Step::Empty => return Ok(None),
                Step::Failed(why) => return Err(why),
                Step::Wait(until) => until,
                Step::Start { number, settle_by } => {
                    self.spawn_batch(number, batching, pull());
                    settle_by
                }
            };
            // Either way the state is read again: woken by a change, or at
            // the settle time, when the batch stops being waited for.
            let _ = tokio::time::timeout_at(until, changed).await;
        }
    }

    /// Up to `max` more messages for a caller that already took one: what
    /// is held, and what the batch in flight brings until it ends (waited
    /// for at most until its settle time). Never starts a batch, so it
    /// costs no request; stale messages are dropped as in [`Self::next`].
    pub(crate) async fn take_more(self: &Arc<Self>, max: usize, fresh_for: Duration) -> Vec<T> {
        let mut taken = Vec::new();
        loop {
            let changed = self.changed.notified();
            let until = {
                let mut state = self.state.lock();
                let now = Instant::now();
                while taken.len() < max {
                    let Some(item) = state.pop_fresh(now, fresh_for) else { break };
                    taken.push(item);
                }
                match state.current {
                    Some(current) if taken.len() < max && now < current.settle_by => current.settle_by,
                    _ => return taken,
                }
            };
            let _ = tokio::time::timeout_at(until, changed).await;
        }
    }

    /// Runs batch `number`: queues each message as it arrives and records
    /// how the batch ended.
    fn spawn_batch<Fut, S, E1, E2>(self: &Arc<Self>, number: u64, batching: &Batching, request: Fut)
    where
        Fut: Future<Output = Result<S, E1>> + Send + 'static,
        S: Stream<Item = Result<T, E2>> + Send + Unpin + 'static,
        E1: Display,
        E2: Display,
    {
        let mut ending = Ending { held: self.clone(), number, end: None };
        let (max, limit) = (batching.max, batching.limit);
        tokio::spawn(async move {
            let held = ending.held.clone();
            let run = async move {
                let mut batch = request.await.map_err(|e| e.to_string())?;
                let mut received = 0;
                while let Some(item) = batch.next().await {
                    let item = item.map_err(|e| e.to_string())?;
                    received += 1;
                    held.state.lock().queue.push_back((Instant::now(), item));
                    held.changed.notify_waiters();
                }
                Ok::<_, String>(if received >= max { End::Full } else { End::Drained })
            };
            ending.ended(match tokio::time::timeout(limit, run).await {
                Ok(Ok(end)) => end,
                Ok(Err(why)) => End::Failed(why),
                Err(_) => End::Failed(format!("a pull request did not end within {limit:?}")),
            });
        });
    }

    /// How many batches were started on this group.
    #[cfg(test)]
    pub(crate) fn started(&self) -> u64 {
        self.state.lock().started
    }

    /// How many batches callers stopped waiting for at their settle time
    /// rather than at their end.
    #[cfg(test)]
    pub(crate) fn abandoned(&self) -> u64 {
        self.state.lock().abandoned
    }
}

/// Records the end of a batch when its task finishes, also when the task is
/// cancelled (runtime shutdown) or panics, so callers never wait on a batch
/// whose task is gone.
struct Ending<T> {
    held: Arc<Held<T>>,
    number: u64,
    end: Option<End>,
}

impl<T> Ending<T> {
    /// Records how the batch ended (on drop).
    fn ended(&mut self, end: End) {
        self.end = Some(end);
    }
}

impl<T> Drop for Ending<T> {
    fn drop(&mut self) {
        let end =
            self.end.take().unwrap_or_else(|| End::Failed("the pull task stopped before its request ended".into()));
        let mut state = self.held.state.lock();
        if state.current.is_some_and(|c| c.number == self.number) {
            state.current = None;
        }
        // A batch that outlived its settle time can end after a later one;
        // only the latest batch's end tells callers anything.
        if state.last_end.as_ref().is_none_or(|(n, _)| *n < self.number) {
            state.last_end = Some((self.number, end));
        }
        drop(state);
        self.held.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::stream::BoxStream;
    use tokio::sync::mpsc;

    use super::*;

    type Batch = BoxStream<'static, Result<u32, String>>;

    const BATCHING: Batching = Batching {
        max: 4,
        settle: Duration::from_millis(110),
        limit: Duration::from_secs(5),
        fresh_for: Duration::from_secs(15),
    };

    /// Pull requests whose messages the test sends by hand: each request
    /// takes the next prepared channel.
    struct Server {
        batches: std::sync::Mutex<VecDeque<mpsc::UnboundedReceiver<Result<u32, String>>>>,
        requests: AtomicUsize,
    }

    impl Server {
        fn new() -> Arc<Self> {
            Arc::new(Self { batches: std::sync::Mutex::new(VecDeque::new()), requests: AtomicUsize::new(0) })
        }

        /// Prepares the answer to the next request: send messages on it,
        /// drop it to end the batch.
        fn prepare(&self) -> mpsc::UnboundedSender<Result<u32, String>> {
            let (tx, rx) = mpsc::unbounded_channel();
            self.batches.lock().unwrap().push_back(rx);
            tx
        }

        /// Prepares an answer that is already complete.
        fn answer(&self, messages: &[u32]) {
            let tx = self.prepare();
            for m in messages {
                tx.send(Ok(*m)).unwrap();
            }
        }

        fn pull(self: &Arc<Self>) -> impl Fn() -> futures::future::Ready<Result<Batch, String>> + use<> {
            let server = self.clone();
            move || {
                server.requests.fetch_add(1, Ordering::SeqCst);
                let rx = server.batches.lock().unwrap().pop_front().expect("an unexpected pull request");
                let stream: Batch =
                    Box::pin(futures::stream::unfold(
                        rx,
                        |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
                    ));
                futures::future::ready(Ok(stream))
            }
        }

        fn requests(&self) -> usize {
            self.requests.load(Ordering::SeqCst)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_rest_of_a_batch_still_arriving_is_waited_for() {
        let (held, server) = (Held::<u32>::new(), Server::new());
        let tx = server.prepare();
        tx.send(Ok(1)).unwrap();
        let first = held.next(&BATCHING, server.pull()).await.unwrap();
        assert_eq!(first, Some(1));
        // The batch has more on the way: a second caller must not conclude
        // "nothing due" from an empty queue.
        let second = tokio::spawn({
            let (held, pull) = (held.clone(), server.pull());
            async move { held.next(&BATCHING, pull).await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(!second.is_finished(), "waits for the batch in flight");
        tx.send(Ok(2)).unwrap();
        assert_eq!(second.await.unwrap().unwrap(), Some(2), "gets the message that landed");
        assert_eq!(server.requests(), 1, "no second request while the batch was in flight");
    }

    #[tokio::test(start_paused = true)]
    async fn take_more_collects_the_batch_in_flight_until_it_ends_without_a_request() {
        let (held, server) = (Held::<u32>::new(), Server::new());
        let tx = server.prepare();
        tx.send(Ok(1)).unwrap();
        assert_eq!(held.next(&BATCHING, server.pull()).await.unwrap(), Some(1));
        let more = tokio::spawn({
            let held = held.clone();
            async move { held.take_more(8, BATCHING.fresh_for).await }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        tx.send(Ok(2)).unwrap();
        tx.send(Ok(3)).unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(!more.is_finished(), "the batch has not ended: more may come");
        drop(tx);
        assert_eq!(more.await.unwrap(), [2, 3], "what the batch brought, in order, once it ended");
        assert_eq!(server.requests(), 1, "taking more never asks the server");
        assert!(held.take_more(8, BATCHING.fresh_for).await.is_empty(), "nothing held, nothing in flight");
    }

    #[tokio::test(start_paused = true)]
    async fn take_more_stops_at_its_max_and_at_the_settle_time() {
        let (held, server) = (Held::<u32>::new(), Server::new());
        let tx = server.prepare();
        for m in 1..=4 {
            tx.send(Ok(m)).unwrap();
        }
        assert_eq!(held.next(&BATCHING, server.pull()).await.unwrap(), Some(1));
        tokio::task::yield_now().await;
        assert_eq!(held.take_more(2, BATCHING.fresh_for).await, [2, 3], "no more than asked");
        // The request stays open (a server that never ends it): the caller
        // stops waiting at the batch's settle time with what it has.
        let started = Instant::now();
        assert_eq!(held.take_more(8, BATCHING.fresh_for).await, [4]);
        assert!(started.elapsed() <= BATCHING.settle, "waited {:?}", started.elapsed());
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_due_only_after_a_batch_started_during_the_call_comes_back_short() {
        let (held, server) = (Held::<u32>::new(), Server::new());
        let tx = server.prepare();
        tx.send(Ok(1)).unwrap();
        assert_eq!(held.next(&BATCHING, server.pull()).await.unwrap(), Some(1));
        // A caller that began while batch 1 was in flight: batch 1's end
        // says nothing about its moment, so it makes batch 2.
        let late = tokio::spawn({
            let (held, pull) = (held.clone(), server.pull());
            async move { held.next(&BATCHING, pull).await }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        server.answer(&[]);
        drop(tx);
        assert_eq!(late.await.unwrap().unwrap(), None, "batch 2 found nothing");
        assert_eq!((server.requests(), held.started()), (2, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_is_followed_by_another() {
        let (held, server) = (Held::<u32>::new(), Server::new());
        server.answer(&[1, 2, 3, 4]);
        server.answer(&[5]);
        server.answer(&[]);
        let mut got = Vec::new();
        while let Some(m) = held.next(&BATCHING, server.pull()).await.unwrap() {
            got.push(m);
        }
        assert_eq!(got, [1, 2, 3, 4, 5], "every message once, in order");
        assert_eq!(held.abandoned(), 0, "every batch ended");
        // 4 (full: more may be due), then 1, then the empty answer the last
        // call needed: batch 2 came back short, but it started before that
        // call began.
        assert_eq!(server.requests(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_request_and_each_message_goes_once() {
        let (held, server) = (Held::<u32>::new(), Server::new());
        let tx = server.prepare();
        let callers: Vec<_> = (0..3)
            .map(|_| {
                let (held, pull) = (held.clone(), server.pull());
                tokio::spawn(async move { held.next(&BATCHING, pull).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(1)).await;
        for m in [10, 11, 12] {
            tx.send(Ok(m)).unwrap();
        }
        let mut got = Vec::new();
        for caller in callers {
            got.push(caller.await.unwrap().unwrap().expect("three messages for three callers"));
        }
        got.sort_unstable();
        assert_eq!(got, [10, 11, 12]);
        assert_eq!(server.requests(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_that_never_ends_is_waited_for_only_until_it_settles() {
        let (held, server) = (Held::<u32>::new(), Server::new());
        let open = server.prepare();
        server.answer(&[7]);
        let start = Instant::now();
        let got = held.next(&BATCHING, server.pull()).await.unwrap();
        assert_eq!(got, Some(7), "past the settle time the next batch is pulled");
        assert_eq!(start.elapsed(), BATCHING.settle, "the open batch was waited for until it settled");
        assert_eq!(held.abandoned(), 1);
        // A message the abandoned batch brings late is still handed out.
        open.send(Ok(8)).unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(held.next(&BATCHING, server.pull()).await.unwrap(), Some(8));
        assert_eq!(server.requests(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_batch_fails_the_callers_counting_on_it() {
        let (held, server) = (Held::<u32>::new(), Server::new());
        let tx = server.prepare();
        let waiting = tokio::spawn({
            let (held, pull) = (held.clone(), server.pull());
            async move { held.next(&BATCHING, pull).await }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        let second = tokio::spawn({
            let (held, pull) = (held.clone(), server.pull());
            async move { held.next(&BATCHING, pull).await }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        server.answer(&[4]);
        tx.send(Err("consumer deleted".into())).unwrap();
        let why = waiting.await.unwrap().unwrap_err();
        assert!(why.contains("consumer deleted"), "{why}");
        // The second caller began while the batch was in flight: its failure
        // is not an answer for it, so it pulls again.
        assert_eq!(second.await.unwrap().unwrap(), Some(4));
        assert_eq!(server.requests(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn stale_messages_are_dropped() {
        let (held, server) = (Held::<u32>::new(), Server::new());
        server.answer(&[1, 2]);
        assert_eq!(held.next(&BATCHING, server.pull()).await.unwrap(), Some(1));
        tokio::time::sleep(BATCHING.fresh_for).await;
        server.answer(&[]);
        assert_eq!(held.next(&BATCHING, server.pull()).await.unwrap(), None, "2 was held too long: dropped");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_caller_leaves_the_batch_to_the_others() {
        let (held, server) = (Held::<u32>::new(), Server::new());
        let tx = server.prepare();
        let starter = tokio::spawn({
            let (held, pull) = (held.clone(), server.pull());
            async move { held.next(&BATCHING, pull).await }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        starter.abort();
        let _ = starter.await;
        tx.send(Ok(3)).unwrap();
        drop(tx);
        assert_eq!(held.next(&BATCHING, server.pull()).await.unwrap(), Some(3), "the batch ran on without its starter");
        assert_eq!(server.requests(), 1);
    }
}
