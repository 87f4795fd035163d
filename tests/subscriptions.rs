//! Subscriptions awaited from tasks: many subscribers on one runtime thread each receive every
//! change, a full subscriber gets one `Lagged` whose cursor resyncs it exactly, dropping the
//! future that holds a subscription unsubscribes it, and a dropped store ends every stream.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_util::StreamExt;
use presence_store::{
    Category, Event, ManualClock, PageQuery, Presence, PresenceStore, SetMode, Since, StoreConfig,
    SubscribeOptions, SubscriberStats,
};

fn store() -> Arc<PresenceStore<u64>> {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    Arc::new(PresenceStore::with_clock(
        StoreConfig::default().with_shards(8),
        clock,
    ))
}

/// The category the writer gives user `u` at step `i`.
fn category(u: u64, i: usize) -> Category {
    Category::ALL[(u as usize + i) % 10]
}

#[test]
fn many_async_subscribers_on_one_thread_each_receive_every_change() {
    const SUBSCRIBERS: usize = 1000;
    const CHANGES: usize = 200;
    let store = store();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let received = runtime.block_on(async {
        let tasks: Vec<_> = (0..SUBSCRIBERS)
            .map(|_| {
                let mut sub = store.subscribe(SubscribeOptions {
                    capacity: CHANGES,
                    users: None,
                });
                tokio::spawn(async move {
                    let mut seen = Vec::with_capacity(CHANGES);
                    while seen.len() < CHANGES {
                        match sub.recv_async().await {
                            Some(Event::Change { user, presence }) => {
                                seen.push((user, presence.category));
                            }
                            other => panic!("expected a change, got {other:?}"),
                        }
                    }
                    seen
                })
            })
            .collect();
        assert_eq!(store.subscriber_stats().live, SUBSCRIBERS);
        // The writer is another thread: it never waits for the subscribers.
        let writer = {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..CHANGES {
                    let u = (i % 37) as u64;
                    store.set(&u, category(u, i), SetMode::Hard).unwrap();
                }
            })
        };
        let mut received = Vec::new();
        for task in tasks {
            received.push(task.await.unwrap());
        }
        writer.join().unwrap();
        received
    });
    let expected: Vec<(u64, Category)> = (0..CHANGES)
        .map(|i| {
            let u = (i % 37) as u64;
            (u, category(u, i))
        })
        .collect();
    for seen in &received {
        assert_eq!(seen, &expected);
    }
}

#[test]
fn the_stream_yields_the_same_changes_as_recv() {
    let store = store();
    let mut stream = store.subscribe(SubscribeOptions::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for u in 0..10 {
        store.set(&u, Category::Busy, SetMode::Hard).unwrap();
    }
    let users: Vec<u64> = runtime.block_on(async {
        let mut users = Vec::new();
        while users.len() < 10 {
            if let Some(Event::Change { user, .. }) = stream.next().await {
                users.push(user);
            }
        }
        users
    });
    assert_eq!(users, (0..10).collect::<Vec<_>>());
}

#[test]
fn a_full_async_subscriber_lags_once_and_its_cursor_resyncs_it() {
    let store = store();
    let mut sub = store.subscribe(SubscribeOptions {
        capacity: 4,
        users: None,
    });
    for u in 0..50 {
        store.set(&u, category(u, 0), SetMode::Hard).unwrap();
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut view: BTreeMap<u64, Presence> = BTreeMap::new();
    let mut lags = 0;
    runtime.block_on(async {
        let mut changes = 0;
        loop {
            match sub.recv_async().await {
                Some(Event::Change { user, presence }) => {
                    changes += 1;
                    view.insert(user, presence);
                }
                Some(Event::Lagged { resume }) => {
                    lags += 1;
                    assert_eq!(changes, 4, "the lag comes after the queue is drained");
                    assert_eq!(
                        store.subscriber_stats().lagged,
                        0,
                        "read: no longer lagging"
                    );
                    let delta = store.changes_since(&Since::Cursor(resume));
                    assert!(!delta.full);
                    for (user, presence) in delta.users {
                        view.insert(user, presence);
                    }
                    break;
                }
                None => panic!("the store is alive"),
            }
        }
    });
    assert_eq!(lags, 1);
    // Live again after the lag.
    store.set(&100, Category::Away, SetMode::Hard).unwrap();
    match sub.try_recv() {
        Some(Event::Change { user, presence }) => {
            view.insert(user, presence);
        }
        other => panic!("expected a change, got {other:?}"),
    }
    let all = store.page(&PageQuery::first()).unwrap().items;
    assert_eq!(view.into_iter().collect::<Vec<_>>(), all);
}

#[test]
fn a_lagging_subscriber_is_counted_until_it_reads_the_lag() {
    let store = store();
    let sub = store.subscribe(SubscribeOptions {
        capacity: 1,
        users: None,
    });
    store.set(&1, Category::Busy, SetMode::Hard).unwrap();
    assert_eq!(
        store.subscriber_stats(),
        SubscriberStats { live: 1, lagged: 0 }
    );
    store.set(&2, Category::Busy, SetMode::Hard).unwrap();
    assert_eq!(
        store.subscriber_stats(),
        SubscriberStats { live: 1, lagged: 1 }
    );
    assert!(matches!(
        sub.try_recv(),
        Some(Event::Change { user: 1, .. })
    ));
    assert!(matches!(sub.try_recv(), Some(Event::Lagged { .. })));
    assert_eq!(
        store.subscriber_stats(),
        SubscriberStats { live: 1, lagged: 0 }
    );
}

#[test]
fn dropping_the_future_that_awaits_a_subscription_unsubscribes() {
    let store = store();
    let mut sub = store.subscribe(SubscribeOptions::default());
    assert_eq!(store.subscriber_stats().live, 1);
    {
        let waiting = pin!(async move { sub.recv_async().await });
        let mut cx = Context::from_waker(Waker::noop());
        let waiting: std::pin::Pin<&mut dyn Future<Output = _>> = waiting;
        assert!(waiting.poll(&mut cx).is_pending());
    }
    assert_eq!(store.subscriber_stats().live, 0);
    // The writers forget it at their next change; writes go on as without subscribers.
    for u in 0..100 {
        store.set(&u, Category::Busy, SetMode::Hard).unwrap();
    }
    assert_eq!(store.subscriber_stats(), SubscriberStats::default());
}

#[test]
fn a_waiting_task_is_woken_by_the_writer() {
    let store = store();
    let mut sub = store.subscribe(SubscribeOptions::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let event = runtime.block_on(async {
        let waiting = tokio::spawn(async move { sub.recv_async().await });
        tokio::task::yield_now().await; // the task now waits on an empty queue
        store.set(&9, Category::Busy, SetMode::Hard).unwrap();
        waiting.await.unwrap()
    });
    assert!(matches!(event, Some(Event::Change { user: 9, .. })));
}

#[test]
fn a_dropped_store_ends_its_streams_after_the_queued_events() {
    let store = store();
    let mut sub = store.subscribe(SubscribeOptions::default());
    store.set(&1, Category::Busy, SetMode::Hard).unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    assert!(sub.poll_recv(&mut cx).is_ready()); // the change
    assert!(sub.poll_recv(&mut cx).is_pending());
    store.set(&2, Category::Busy, SetMode::Hard).unwrap();
    drop(Arc::try_unwrap(store).unwrap());
    assert!(matches!(
        sub.poll_recv(&mut cx),
        Poll::Ready(Some(Event::Change { user: 2, .. }))
    ));
    assert_eq!(sub.poll_recv(&mut cx), Poll::Ready(None));
    assert_eq!(
        sub.recv(),
        None,
        "a thread does not block on a dropped store"
    );
}
