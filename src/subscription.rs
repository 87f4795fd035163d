//! Push subscriptions: every visible change is offered to each subscriber by the writer that made
//! it, under the shard's lock, and no writer ever waits for a subscriber.
//!
//! A subscriber's queue starts empty and grows on demand up to its capacity; once drained it
//! gives back anything over [`IDLE_SLOTS`], so an idle subscriber costs a few hundred bytes in
//! the store whatever its capacity. A writer that finds the queue empty wakes the reader: a task
//! through an [`AtomicWaker`], a thread through a condition variable (both a single atomic load
//! when nobody waits). A subscriber whose queue is full stops receiving and, once drained,
//! yields one [`Event::Lagged`] whose cursor covers everything it missed.
//!
//! Invariant: `Subscriber::positions[s]` is at or before the first change of shard `s` that the
//! subscriber has not been sent, so a delta from it loses nothing.
//!
//! Why `atomic-waker` rather than `event-listener`: a subscription has exactly one reader task
//! (awaiting it takes `&mut`), so one waker slot is enough; registering it allocates nothing and
//! waking it with no task registered is one atomic swap, where a listener list takes a lock on
//! every notify. `futures-core` carries only the `Stream` trait, so the crate stays free of any
//! runtime.

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;
use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::{Cursor, Key, Presence};

/// Queue slots a drained subscriber keeps; a larger buffer is freed once empty.
const IDLE_SLOTS: usize = 4;

/// What a [`Subscription`] receives.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Event<K> {
    /// A user's presence changed (or the user was removed: then it shows `Offline`).
    Change {
        /// The user.
        user: K,
        /// Its presence after the change.
        presence: Presence,
    },
    /// The subscriber fell behind and changes were dropped: call
    /// [`changes_since`](crate::PresenceStore::changes_since)`(Since::Cursor(resume))` to
    /// catch up. Events keep coming after this one; some may repeat what the delta holds.
    Lagged {
        /// A cursor before every change this subscriber was not sent.
        resume: Cursor,
    },
}

/// What to subscribe to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeOptions<K> {
    /// Events the subscription holds before the subscriber lags (at least 1). Only an upper
    /// bound: the queue grows as events wait and shrinks back once they are read.
    pub capacity: usize,
    /// Only these users' changes, or every user's when `None`.
    pub users: Option<Vec<K>>,
}

impl<K> Default for SubscribeOptions<K> {
    fn default() -> Self {
        SubscribeOptions {
            capacity: 1024,
            users: None,
        }
    }
}

/// How many subscriptions a store feeds, from
/// [`PresenceStore::subscriber_stats`](crate::PresenceStore::subscriber_stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubscriberStats {
    /// Subscriptions not dropped.
    pub live: usize,
    /// Of those, the ones that fell behind and have not yet read their [`Event::Lagged`].
    pub lagged: usize,
}

/// The writers' side of a subscription, held by every shard.
#[derive(Debug)]
pub(crate) struct Subscriber<K> {
    queue: Mutex<VecDeque<Event<K>>>,
    capacity: usize,
    users: Option<HashSet<K, ahash::RandomState>>,
    /// Per shard, the sequence of the last change sent or passed over.
    positions: Box<[AtomicU64]>,
    lagged: AtomicBool,
    /// The subscription was dropped: shards forget the subscriber.
    closed: AtomicBool,
    /// The store was dropped: the subscription ends once drained.
    gone: AtomicBool,
    /// The task awaiting the subscription, if any.
    task: AtomicWaker,
    /// Threads blocked in [`Subscription::recv`].
    ready: Condvar,
    store: u64,
}

impl<K> Subscriber<K> {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    fn is_lagged(&self) -> bool {
        self.lagged.load(Ordering::Acquire)
    }

    fn wake(&self) {
        self.task.wake();
        self.ready.notify_all();
    }

    /// The store is going away: wakes the reader, which ends once it has drained the queue.
    fn store_gone(&self) {
        let queue = self.queue.lock();
        self.gone.store(true, Ordering::Release);
        drop(queue);
        self.wake();
    }
}

/// What the reader finds in the queue.
enum Taken<K> {
    Event(Event<K>),
    Empty,
    Gone,
}

impl<K: Key> Subscriber<K> {
    /// Offers one change of shard `shard` (called under that shard's lock). Never waits for
    /// the reader: a full queue makes the subscriber lag instead.
    pub(crate) fn offer(
        &self,
        shard: usize,
        seq: u64,
        user: &K,
        presence: impl FnOnce() -> Presence,
    ) {
        if self.lagged.load(Ordering::Acquire) || self.is_closed() {
            return;
        }
        if self.users.as_ref().is_none_or(|u| u.contains(user)) {
            let mut queue = self.queue.lock();
            if queue.len() >= self.capacity {
                self.lagged.store(true, Ordering::Release);
                return;
            }
            let was_empty = queue.is_empty();
            queue.push_back(Event::Change {
                user: user.clone(),
                presence: presence(),
            });
            drop(queue);
            // A reader only sleeps on an empty queue, so only the first event must wake it.
            if was_empty {
                self.wake();
            }
        }
        self.positions[shard].store(seq, Ordering::Release);
    }

    /// Starts offering shard `shard`'s changes after `seq`.
    pub(crate) fn start_at(&self, shard: usize, seq: u64) {
        self.positions[shard].store(seq, Ordering::Release);
    }

    fn cursor(&self) -> Cursor {
        Cursor {
            store: self.store,
            seqs: self
                .positions
                .iter()
                .map(|p| p.load(Ordering::Acquire))
                .collect(),
        }
    }

    /// The next event in `queue`; once it is drained after lagging, the `Lagged` event (taken
    /// under the queue's lock, so no writer pushes between the check and the cursor).
    fn take(&self, queue: &mut VecDeque<Event<K>>) -> Taken<K> {
        if let Some(event) = queue.pop_front() {
            if queue.is_empty() && queue.capacity() > IDLE_SLOTS {
                *queue = VecDeque::new();
            }
            return Taken::Event(event);
        }
        if self.is_lagged() {
            let resume = self.cursor();
            self.lagged.store(false, Ordering::Release);
            return Taken::Event(Event::Lagged { resume });
        }
        if self.gone.load(Ordering::Acquire) {
            return Taken::Gone;
        }
        Taken::Empty
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Event<K>>> {
        self.queue.lock()
    }
}

/// The subscribers a shard offers its changes to. Every subscriber is in every shard's list.
#[derive(Debug)]
pub(crate) struct Subscribers<K>(Vec<Arc<Subscriber<K>>>);

impl<K> Default for Subscribers<K> {
    fn default() -> Self {
        Subscribers(Vec::new())
    }
}

impl<K: Key> Subscribers<K> {
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds a subscriber, offered every change after `seq`, this shard's current one.
    pub(crate) fn add(&mut self, sub: Arc<Subscriber<K>>, shard: usize, seq: u64) {
        sub.start_at(shard, seq);
        self.0.push(sub);
    }

    /// Offers change `seq` of shard `shard` to every subscriber. The presence is made once, for
    /// the first subscriber that takes it, and cloned (a few words and a reference count) for
    /// the others.
    pub(crate) fn offer(&self, shard: usize, seq: u64, user: &K, presence: impl Fn() -> Presence) {
        let mut made: Option<Presence> = None;
        for sub in &self.0 {
            sub.offer(shard, seq, user, || {
                made.get_or_insert_with(&presence).clone()
            });
        }
    }

    /// Forgets the subscribers whose subscription was dropped.
    pub(crate) fn drop_closed(&mut self) {
        if self.0.iter().any(|s| s.is_closed()) {
            self.0.retain(|s| !s.is_closed());
        }
    }

    /// Live and lagged subscribers in this list.
    pub(crate) fn stats(&self) -> SubscriberStats {
        let live = self.0.iter().filter(|s| !s.is_closed());
        let (live, lagged) = live.fold((0, 0), |(n, l), s| (n + 1, l + usize::from(s.is_lagged())));
        SubscriberStats { live, lagged }
    }
}

impl<K> Drop for Subscribers<K> {
    /// The shard (so the store) is dropped: its subscriptions end once drained.
    fn drop(&mut self) {
        for sub in &self.0 {
            sub.store_gone();
        }
    }
}

/// A live stream of presence changes. Dropping it unsubscribes.
///
/// Read it from a thread ([`recv`](Self::recv), [`recv_timeout`](Self::recv_timeout),
/// [`try_recv`](Self::try_recv)) or from a task on any runtime ([`recv_async`](Self::recv_async),
/// or as a [`futures_core::Stream`]): awaiting it holds no thread. Writers never block on it: a
/// subscriber that falls `capacity` events behind receives one [`Event::Lagged`] once it has
/// drained the rest, and resyncs from its cursor.
#[derive(Debug)]
pub struct Subscription<K> {
    inner: Arc<Subscriber<K>>,
}

impl<K: Key> Subscription<K> {
    /// Wires a subscription whose positions start at `start` (the store's cursor).
    pub(crate) fn new(options: SubscribeOptions<K>, start: &Cursor) -> (Self, Arc<Subscriber<K>>) {
        let inner = Arc::new(Subscriber {
            queue: Mutex::new(VecDeque::new()),
            capacity: options.capacity.max(1),
            users: options.users.map(|u| u.into_iter().collect()),
            positions: start.seqs.iter().map(|&s| AtomicU64::new(s)).collect(),
            lagged: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            gone: AtomicBool::new(false),
            task: AtomicWaker::new(),
            ready: Condvar::new(),
            store: start.store,
        });
        (
            Subscription {
                inner: Arc::clone(&inner),
            },
            inner,
        )
    }

    /// The cursor up to which this subscriber has been sent every change (or passed over those
    /// of users it does not follow). Page the users first, then subscribe: a delta from this
    /// cursor fills the gap.
    pub fn cursor(&self) -> Cursor {
        self.inner.cursor()
    }

    /// The next event, blocking the thread until one comes. `None` once the store is gone
    /// and every event was read.
    pub fn recv(&self) -> Option<Event<K>> {
        let mut queue = self.inner.lock();
        loop {
            match self.inner.take(&mut queue) {
                Taken::Event(e) => return Some(e),
                Taken::Gone => return None,
                Taken::Empty => self.inner.ready.wait(&mut queue),
            }
        }
    }

    /// The next event if one is ready.
    pub fn try_recv(&self) -> Option<Event<K>> {
        match self.inner.take(&mut self.inner.lock()) {
            Taken::Event(e) => Some(e),
            Taken::Empty | Taken::Gone => None,
        }
    }

    /// The next event, blocking the thread at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event<K>> {
        let deadline = Instant::now() + timeout;
        let mut queue = self.inner.lock();
        loop {
            match self.inner.take(&mut queue) {
                Taken::Event(e) => return Some(e),
                Taken::Gone => return None,
                Taken::Empty => {
                    if self
                        .inner
                        .ready
                        .wait_until(&mut queue, deadline)
                        .timed_out()
                    {
                        return match self.inner.take(&mut queue) {
                            Taken::Event(e) => Some(e),
                            Taken::Empty | Taken::Gone => None,
                        };
                    }
                }
            }
        }
    }

    /// The next event, awaited without holding a thread: the writer that queues it wakes the
    /// task. `None` once the store is gone and every event was read. Cancel-safe: an event is
    /// taken only when the future completes.
    pub async fn recv_async(&mut self) -> Option<Event<K>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next event, registering `cx`'s waker when there is none.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event<K>>> {
        let poll = |inner: &Subscriber<K>| match inner.take(&mut inner.lock()) {
            Taken::Event(e) => Poll::Ready(Some(e)),
            Taken::Gone => Poll::Ready(None),
            Taken::Empty => Poll::Pending,
        };
        if let Poll::Ready(next) = poll(&self.inner) {
            return Poll::Ready(next);
        }
        // Register, then look again: an event queued in between has either found the waker
        // or is seen now.
        self.inner.task.register(cx.waker());
        poll(&self.inner)
    }
}

impl<K: Key> futures_core::Stream for Subscription<K> {
    type Item = Event<K>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event<K>>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<K> Drop for Subscription<K> {
    fn drop(&mut self) {
        self.inner.closed.store(true, Ordering::Relaxed);
    }
}
