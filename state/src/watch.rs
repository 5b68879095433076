//! Waiting for news: one shared polling loop per instance, driven by its waiters.
//!
//! HTTP functions cannot `SUBSCRIBE`; they poll the store's cheap per-channel head. With
//! WASIp3 many held requests share one instance, and instance globals are shared by them, so
//! all waiters of an instance register with one [`Watcher`] and exactly one of them — the
//! leader — polls the union of their channels; the others sleep until the leader wakes them.
//! There is no background task (a task outliving its request is not guaranteed to run on
//! every host): when the leader leaves (woken, timed out or cancelled), it hands leadership to
//! another waiter. The store therefore sees ticks, not waiters: an idle instance costs
//! `1000 / max_interval_ms` head reads per second however many requests it holds.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use futures::future::select;

use crate::channel::Channel;
use crate::config::WatchConfig;
use crate::error::StateError;
use crate::log::{Batch, Log, Subscription};
use crate::store::{Clock, WakeFn};

/// After a read that stopped at an in-flight publish, read again this soon.
const IN_FLIGHT_RETRY: Duration = Duration::from_millis(5);

/// Counters for benchmarks: how hard an instance's waiting works the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchStats {
    /// Poll ticks run by leaders.
    pub ticks: u64,
    /// Store operations those ticks issued ([`Log::head_ops`] per tick).
    pub store_ops: u64,
    /// Waiters woken because a channel of theirs moved.
    pub wakeups: u64,
    /// Reads of woken waiters answered by another waiter's read of the same tick instead of
    /// asking the store again (a publish wakes every waiter of a channel at once, and they
    /// all read the same thing).
    pub joined_reads: u64,
}

const NEWS: u8 = 1;
const LEAD: u8 = 2;

fn deadline_after<C: Clock>(clock: &C, timeout: Duration) -> u64 {
    clock
        .now_ms()
        .saturating_add(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
}

/// One registered waiter: its channels with the heads it has already seen.
struct Slot {
    channels: Vec<(Channel, u64)>,
    flags: Cell<u8>,
    /// Fires the sleeping waiter's own wake-up (see [`Clock::wake_pair`]): on WASIp3 a task
    /// may not wake another task's `Waker`, so the leader signals through a host primitive.
    wake: RefCell<Option<WakeFn>>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("channels", &self.channels)
            .field("flags", &self.flags)
            .finish_non_exhaustive()
    }
}

impl Slot {
    fn signal(&self, flag: u8) {
        self.flags.set(self.flags.get() | flag);
        let wake = self.wake.borrow_mut().take();
        if let Some(wake) = wake {
            wake();
        }
    }
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    waiters: BTreeMap<u64, Rc<Slot>>,
    leader: Option<u64>,
    last_heads: HashMap<Channel, u64>,
    interval: Duration,
    /// Reads in flight, for identical reads to join.
    reads: Vec<Rc<SharedRead>>,
    /// Ticks that saw a head move so far; names the current one.
    generation: u64,
    /// Answers read by waiters woken in the current generation, for the others it woke.
    woken_reads: Vec<(u64, Vec<Subscription>, usize, Batch)>,
}

/// A store read in flight that identical reads wait for instead of repeating it.
struct SharedRead {
    /// The tick generation when it began: only waiters woken at or before it may join.
    generation: u64,
    subscriptions: Vec<Subscription>,
    limit: usize,
    outcome: RefCell<Option<Result<Batch, StateError>>>,
    joiners: RefCell<Vec<WakeFn>>,
}

impl std::fmt::Debug for SharedRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRead")
            .field("subscriptions", &self.subscriptions)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// Ends a shared read, whether it finished or its reader was cancelled: it leaves the
/// in-flight list and its joiners wake (with no outcome they read for themselves).
struct ReadInFlight<'a> {
    watcher: &'a Watcher,
    read: Rc<SharedRead>,
}

impl Drop for ReadInFlight<'_> {
    fn drop(&mut self) {
        self.watcher
            .state
            .borrow_mut()
            .reads
            .retain(|r| !Rc::ptr_eq(r, &self.read));
        let joiners = std::mem::take(&mut *self.read.joiners.borrow_mut());
        for fire in joiners {
            fire();
        }
    }
}

/// The instance-shared watcher; keep one per instance (e.g. in a `thread_local!`/static
/// `OnceCell`) and pass it to every waiting request.
#[derive(Debug)]
pub struct Watcher {
    config: WatchConfig,
    state: RefCell<State>,
    stats: Cell<WatchStats>,
}

/// Deregisters a waiter when its wait ends or its future is dropped (client went away),
/// handing leadership on so the remaining waiters keep being polled for.
struct Registration<'a> {
    watcher: &'a Watcher,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut st = self.watcher.state.borrow_mut();
        st.waiters.remove(&self.id);
        if st.leader == Some(self.id) {
            st.leader = st.waiters.keys().next().copied();
            if let Some(next) = st.leader.and_then(|id| st.waiters.get(&id).cloned()) {
                drop(st);
                next.signal(LEAD);
            }
        }
    }
}

impl Watcher {
    /// A watcher with the given pacing ([`WatchConfig::KV`] or [`WatchConfig::REDIS`]).
    pub fn new(config: WatchConfig) -> Self {
        Self {
            config,
            state: RefCell::new(State {
                interval: config.min_interval,
                ..State::default()
            }),
            stats: Cell::new(WatchStats::default()),
        }
    }

    /// Counters since creation.
    pub fn stats(&self) -> WatchStats {
        self.stats.get()
    }

    /// Waiters currently registered.
    pub fn waiters(&self) -> usize {
        self.state.borrow().waiters.len()
    }

    /// Long-poll: returns at once if anything is newer than the subscriptions, else waits up
    /// to `timeout` for news and returns it, or an empty batch on timeout (not an error).
    ///
    /// The returned positions are always concrete, so the caller can build a cursor from
    /// them even on timeout.
    ///
    /// # Errors
    /// [`StateError::Store`] when the store fails.
    pub async fn wait<L: Log, C: Clock>(
        &self,
        log: &L,
        clock: &C,
        subscriptions: &[Subscription],
        limit: usize,
        timeout: Duration,
    ) -> Result<Batch, StateError> {
        let deadline = deadline_after(clock, timeout);
        let batch = self
            .read_joined(log, clock, subscriptions, limit, None)
            .await?;
        self.wait_past(log, clock, batch, limit, deadline).await
    }

    /// Like [`Watcher::wait`], continuing from `last`, a batch this caller has just read and
    /// delivered: no store read comes first, because the watcher compares the channels' heads
    /// against `last`'s positions anyway. A stream pump saves one read per delivery this way.
    ///
    /// # Errors
    /// [`StateError::Store`] when the store fails.
    pub async fn wait_after<L: Log, C: Clock>(
        &self,
        log: &L,
        clock: &C,
        last: &Batch,
        limit: usize,
        timeout: Duration,
    ) -> Result<Batch, StateError> {
        if last.more {
            // A backlog is waiting: read it now.
            return self
                .wait(log, clock, &last.next_subscriptions(), limit, timeout)
                .await;
        }
        let deadline = deadline_after(clock, timeout);
        let positions = Batch {
            events: Vec::new(),
            positions: last.positions.clone(),
            more: false,
        };
        self.wait_past(log, clock, positions, limit, deadline).await
    }

    /// Returns `batch` if it has events or time is up; otherwise waits for a head to move
    /// past its positions and reads again.
    async fn wait_past<L: Log, C: Clock>(
        &self,
        log: &L,
        clock: &C,
        mut batch: Batch,
        limit: usize,
        deadline: u64,
    ) -> Result<Batch, StateError> {
        loop {
            let now = clock.now_ms();
            if !batch.events.is_empty() || now >= deadline {
                return Ok(batch);
            }
            let subs = batch.next_subscriptions();
            if batch.more {
                // A publish is between its increment and its write: it lands in
                // microseconds, or a reader tombstones it after the grace period.
                clock
                    .sleep(IN_FLIGHT_RETRY.min(Duration::from_millis(deadline - now)))
                    .await;
                batch = self.read_joined(log, clock, &subs, limit, None).await?;
                continue;
            }
            let seen: Vec<(Channel, u64)> = batch
                .positions
                .iter()
                .map(|(c, p)| (c.clone(), p.seq))
                .collect();
            if !self.wait_for_change(log, clock, seen, deadline).await? {
                return Ok(Batch {
                    events: Vec::new(),
                    positions: batch.positions,
                    more: false,
                });
            }
            let generation = self.state.borrow().generation;
            batch = self
                .read_joined(log, clock, &subs, limit, Some(generation))
                .await?;
        }
    }

    /// Reads `subscriptions` for a waiter; waiters woken by the same tick share one store read.
    ///
    /// A publish wakes all waiters of a channel in the same tick, and they ask for the same
    /// positions. `woken` is the tick generation that woke the caller: it may take the answer
    /// another waiter of that tick already got, or join one such read still in flight (Redis
    /// reads suspend; KV reads complete at once, hence the answers kept per tick). Either
    /// answer was read after the heads that woke the caller, so it holds what they announced.
    /// A caller that was not woken (`None`: a new request, a retry) always asks the store
    /// itself, so it sees everything published before it asked.
    async fn read_joined<L: Log, C: Clock>(
        &self,
        log: &L,
        clock: &C,
        subscriptions: &[Subscription],
        limit: usize,
        woken: Option<u64>,
    ) -> Result<Batch, StateError> {
        let Some(generation) = woken else {
            return log.read(subscriptions, limit).await;
        };
        let cached = self
            .state
            .borrow()
            .woken_reads
            .iter()
            .find(|(g, subs, l, _)| *g == generation && *l == limit && subs == subscriptions)
            .map(|(_, _, _, batch)| batch.clone());
        if let Some(batch) = cached {
            self.count_joined();
            return Ok(batch);
        }
        let in_flight = self
            .state
            .borrow()
            .reads
            .iter()
            .find(|r| {
                r.generation >= generation && r.limit == limit && r.subscriptions == subscriptions
            })
            .cloned();
        if let Some(read) = in_flight {
            let (fire, fired) = clock.wake_pair();
            read.joiners.borrow_mut().push(fire);
            fired.await;
            let outcome = read.outcome.borrow().clone();
            if let Some(outcome) = outcome {
                self.count_joined();
                return outcome;
            }
            // The reader was cancelled before it got an answer: read ourselves.
        }
        let read = Rc::new(SharedRead {
            generation: self.state.borrow().generation,
            subscriptions: subscriptions.to_vec(),
            limit,
            outcome: RefCell::new(None),
            joiners: RefCell::new(Vec::new()),
        });
        self.state.borrow_mut().reads.push(read.clone());
        let in_flight = ReadInFlight {
            watcher: self,
            read: read.clone(),
        };
        let outcome = log.read(subscriptions, limit).await;
        *read.outcome.borrow_mut() = Some(outcome.clone());
        drop(in_flight);
        if let Ok(batch) = &outcome {
            let mut st = self.state.borrow_mut();
            // Kept for the tick the read began after, while it is still the latest; a `more`
            // answer is not kept (its reader retries in a moment).
            if st.generation == read.generation && !batch.more {
                st.woken_reads.push((
                    read.generation,
                    subscriptions.to_vec(),
                    limit,
                    batch.clone(),
                ));
            }
        }
        outcome
    }

    fn count_joined(&self) {
        let mut stats = self.stats.get();
        stats.joined_reads += 1;
        self.stats.set(stats);
    }

    /// Waits until the head of one of `seen`'s channels differs from the value given, or
    /// until `deadline_ms`; returns whether a head moved.
    ///
    /// # Errors
    /// [`StateError::Store`] when this waiter, leading, fails to read heads (leadership
    /// passes on to another waiter).
    pub async fn wait_for_change<L: Log, C: Clock>(
        &self,
        log: &L,
        clock: &C,
        seen: Vec<(Channel, u64)>,
        deadline_ms: u64,
    ) -> Result<bool, StateError> {
        let slot = Rc::new(Slot {
            channels: seen,
            flags: Cell::new(0),
            wake: RefCell::new(None),
        });
        let id = {
            let mut st = self.state.borrow_mut();
            let id = st.next_id;
            st.next_id += 1;
            st.waiters.insert(id, slot.clone());
            if st.leader.is_none() {
                st.leader = Some(id);
            }
            id
        };
        let _registration = Registration { watcher: self, id };
        loop {
            if slot.flags.get() & NEWS != 0 {
                return Ok(true);
            }
            let now = clock.now_ms();
            if now >= deadline_ms {
                return Ok(false);
            }
            let remaining = Duration::from_millis(deadline_ms - now);
            let leading = self.state.borrow().leader == Some(id);
            if leading {
                slot.flags.set(slot.flags.get() & !LEAD);
                let interval = self.state.borrow().interval;
                clock.sleep(interval.min(remaining)).await;
                self.tick(log).await?;
            } else {
                let (fire, fired) = clock.wake_pair();
                *slot.wake.borrow_mut() = Some(fire);
                // A signal may have landed between the checks above and arming the wake-up.
                if slot.flags.get() == 0 {
                    let sleep = clock.sleep(remaining);
                    futures::pin_mut!(sleep);
                    let _ = select(fired, sleep).await;
                }
                slot.wake.borrow_mut().take();
                slot.flags.set(slot.flags.get() & !LEAD);
            }
        }
    }

    /// One poll over the union of all waiters' channels; wakes the waiters whose heads moved.
    async fn tick<L: Log>(&self, log: &L) -> Result<(), StateError> {
        let union: Vec<Channel> = {
            let st = self.state.borrow();
            let mut all: Vec<Channel> = st
                .waiters
                .values()
                .flat_map(|w| w.channels.iter().map(|(c, _)| c.clone()))
                .collect();
            all.sort();
            all.dedup();
            all
        };
        if union.is_empty() {
            return Ok(());
        }
        let heads = log.heads(&union).await?;
        let mut stats = self.stats.get();
        stats.ticks += 1;
        stats.store_ops += log.head_ops(union.len());
        let mut st = self.state.borrow_mut();
        let mut moved = false;
        let mut current: HashMap<&Channel, u64> = HashMap::with_capacity(union.len());
        for (c, h) in union.iter().zip(heads) {
            // A channel seen for the first time is not activity (new waiters would otherwise
            // keep the interval at its minimum).
            if st.last_heads.get(c).is_some_and(|prev| *prev != h) {
                moved = true;
            }
            current.insert(c, h);
        }
        st.last_heads = current.iter().map(|(c, h)| ((*c).clone(), *h)).collect();

        st.interval = if moved {
            self.config.min_interval
        } else {
            (st.interval * 2).min(self.config.max_interval)
        };
        let woken: Vec<Rc<Slot>> = st
            .waiters
            .values()
            .filter(|w| {
                w.flags.get() & NEWS == 0
                    && w.channels
                        .iter()
                        .any(|(c, seen)| current.get(c).is_some_and(|h| h != seen))
            })
            .cloned()
            .collect();
        if !woken.is_empty() {
            // The answers these waiters read name this tick; older ones are not fresh enough.
            st.generation += 1;
            st.woken_reads.clear();
        }
        drop(st);
        stats.wakeups += woken.len() as u64;
        self.stats.set(stats);
        for w in woken {
            w.signal(NEWS);
        }
        Ok(())
    }
}
