//! Presence feeds, subscriptions and status messages, through the public API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use presence_store::{
    Activity, Category, Error, Event, FeedId, FullReason, ManualClock, PageQuery, Presence,
    PresenceStore, SetMode, Since, StoreConfig, SubscribeOptions,
};

const T0: u64 = 1_700_000_000_000;

fn store_with(config: StoreConfig) -> (PresenceStore<u64>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0));
    (PresenceStore::with_clock(config, clock.clone()), clock)
}

fn store() -> (PresenceStore<u64>, Arc<ManualClock>) {
    store_with(StoreConfig::default().with_shards(4))
}

fn keys(items: &[(u64, Presence)]) -> Vec<u64> {
    items.iter().map(|(k, _)| *k).collect()
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}

#[test]
fn a_feed_returns_the_changes_since_its_previous_read() {
    let (s, clock) = store();
    s.heartbeat(&1, 1, Activity::Active).unwrap();
    let feed = s.create_feed().unwrap();
    let r = s.read_feed(&feed, 100).unwrap();
    assert!(r.users.is_empty() && !r.full && !r.more);
    for u in [2, 3, 1] {
        clock.advance(Duration::from_millis(1));
        s.set(&u, Category::Busy, SetMode::Hard).unwrap();
    }
    clock.advance(Duration::from_millis(1));
    s.set(&2, Category::Away, SetMode::Hard).unwrap();
    let r = s.read_feed(&feed, 100).unwrap();
    // Oldest change first, each user once with its latest state.
    assert_eq!(keys(&r.users), [3, 1, 2]);
    assert_eq!(r.users[2].1.category, Category::Away);
    assert!(s.read_feed(&feed, 100).unwrap().users.is_empty());
}

#[test]
fn a_feed_read_stops_at_max_and_the_next_resumes_exactly() {
    let (s, clock) = store_with(StoreConfig::default().with_shards(8));
    let feed = s.create_feed().unwrap();
    for u in 0..25u64 {
        clock.advance(Duration::from_millis(1));
        s.heartbeat(&u, 1, Activity::Active).unwrap();
    }
    let mut seen = Vec::new();
    loop {
        let r = s.read_feed(&feed, 10).unwrap();
        assert!(r.users.len() <= 10);
        seen.extend(keys(&r.users));
        if !r.more {
            break;
        }
    }
    assert_eq!(seen, (0..25).collect::<Vec<_>>());
}

#[test]
fn feeds_are_independent_and_deleted_feeds_are_unknown() {
    let (s, _) = store();
    let a = s.create_feed().unwrap();
    s.set(&1, Category::Busy, SetMode::Hard).unwrap();
    let b = s.create_feed().unwrap();
    s.set(&2, Category::Busy, SetMode::Hard).unwrap();
    assert_eq!(sorted(keys(&s.read_feed(&a, 10).unwrap().users)), [1, 2]);
    assert_eq!(keys(&s.read_feed(&b, 10).unwrap().users), [2]);
    s.delete_feed(&a).unwrap();
    assert!(matches!(
        s.read_feed(&a, 10),
        Err(Error::UnknownFeed { .. })
    ));
    assert!(matches!(s.delete_feed(&a), Err(Error::UnknownFeed { .. })));
}

#[test]
fn feed_ids_round_trip_garbage_does_not_parse_and_a_stranger_is_unknown() {
    let (s, _) = store();
    let feed = s.create_feed().unwrap();
    let back: FeedId = feed.to_string().parse().unwrap();
    assert_eq!(back, feed);
    for bad in [
        "",
        "xyz",
        "00000000000000000",
        "zzzzzzzzzzzzzzzz",
        "🙂🙂🙂🙂",
    ] {
        assert!(matches!(
            bad.parse::<FeedId>(),
            Err(Error::InvalidFeedId { .. })
        ));
    }
    let other: FeedId = "0123456789abcdef".parse().unwrap();
    assert!(matches!(
        s.read_feed(&other, 10),
        Err(Error::UnknownFeed { .. })
    ));
}

#[test]
fn feed_reads_refuse_bad_limits() {
    let (s, _) = store();
    let feed = s.create_feed().unwrap();
    for bad in [0, 5001] {
        assert!(matches!(
            s.read_feed(&feed, bad),
            Err(Error::InvalidLimit { .. })
        ));
    }
    assert!(s.read_feed(&feed, 5000).is_ok());
}

#[test]
fn the_number_of_feeds_is_bounded() {
    let (s, _) = store_with(StoreConfig::default().with_feeds(2, Duration::from_secs(3600)));
    let a = s.create_feed().unwrap();
    s.create_feed().unwrap();
    assert_eq!(s.create_feed(), Err(Error::TooManyFeeds { max: 2 }));
    s.delete_feed(&a).unwrap();
    assert!(s.create_feed().is_ok());
}

#[test]
fn feeds_come_back_after_a_restore_and_read_the_full_list_first() {
    let config = StoreConfig::default()
        .with_shards(4)
        .with_feeds(1, Duration::from_secs(3600));
    let (s, clock) = store_with(config.clone());
    let feed = s.create_feed().unwrap();
    for u in 0..5 {
        s.heartbeat(&u, 1, Activity::Active).unwrap();
    }
    s.heartbeat(&9, 1, Activity::Active).unwrap();
    s.disconnect(&9, 1).unwrap();
    assert_eq!(s.feed_ids(), vec![feed]);
    assert_eq!(s.log_len(), 7);

    let r = PresenceStore::restore_with_clock(config, clock, s.snapshot()).unwrap();
    assert!(r.feed_ids().is_empty());
    r.restore_feed(feed).unwrap();
    r.restore_feed(feed).unwrap();
    assert_eq!(r.feed_ids(), vec![feed]);
    let other: FeedId = "00000000000000ab".parse().unwrap();
    assert_eq!(r.restore_feed(other), Err(Error::TooManyFeeds { max: 1 }));
    let first = r.read_feed(&feed, 100).unwrap();
    assert_eq!(
        (first.full, keys(&first.users)),
        (true, vec![0, 1, 2, 3, 4])
    );
    r.set(&3, Category::Busy, SetMode::Hard).unwrap();
    let next = r.read_feed(&feed, 100).unwrap();
    assert_eq!((next.full, keys(&next.users)), (false, vec![3]));
}

#[test]
fn a_feed_that_fell_behind_the_log_says_so() {
    let (s, _) = store_with(StoreConfig::default().with_shards(1).with_log_capacity(4));
    let feed = s.create_feed().unwrap();
    for u in 0..10 {
        s.heartbeat(&u, 1, Activity::Active).unwrap();
    }
    let r = s.read_feed(&feed, 100).unwrap();
    assert_eq!((r.full, r.reason), (true, Some(FullReason::LogPruned)));
    assert_eq!(keys(&r.users), (0..10).collect::<Vec<_>>());
    // Then it follows from there.
    s.set(&3, Category::Busy, SetMode::Hard).unwrap();
    let r = s.read_feed(&feed, 100).unwrap();
    assert_eq!((r.full, keys(&r.users)), (false, vec![3]));
}

/// Reads a feed until `more` is false; every read holds at most `max` users.
fn read_all_pages(
    s: &PresenceStore<u64>,
    feed: &FeedId,
    max: usize,
    between: &mut dyn FnMut(usize),
) -> Vec<presence_store::FeedRead<u64>> {
    let mut reads = Vec::new();
    loop {
        let r = s.read_feed(feed, max).unwrap();
        assert!(r.users.len() <= max, "{} users at max {max}", r.users.len());
        let more = r.more;
        reads.push(r);
        if !more {
            return reads;
        }
        between(reads.len());
    }
}

#[test]
fn a_feed_that_fell_behind_delivers_10_000_users_in_reads_of_500_then_loses_no_change() {
    let (s, clock) = store_with(StoreConfig::default().with_shards(8).with_log_capacity(64));
    let feed = s.create_feed().unwrap();
    for u in 0..10_000 {
        s.heartbeat(&u, 1, Activity::Active).unwrap();
    }
    // Between pages, users change behind the scan (low keys), ahead of it (high keys), go
    // offline ahead of it, and are added past the end.
    let mut changed = Vec::new();
    let pages = read_all_pages(&s, &feed, 500, &mut |page| {
        clock.advance(Duration::from_millis(1));
        let (behind, ahead) = (page as u64, 9_999 - page as u64);
        s.set(&behind, Category::Busy, SetMode::Hard).unwrap();
        s.set(&ahead, Category::InAMeeting, SetMode::Hard).unwrap();
        s.disconnect(&(5_000 + page as u64), 1).unwrap();
        s.heartbeat(&(20_000 + page as u64), 1, Activity::Active)
            .unwrap();
        changed.extend([behind, ahead, 5_000 + page as u64, 20_000 + page as u64]);
    });
    assert!(pages
        .iter()
        .all(|r| r.full && r.reason == Some(FullReason::LogPruned)));
    assert!(pages[..pages.len() - 1].iter().all(|r| r.more));
    let listed: Vec<u64> = pages.iter().flat_map(|r| keys(&r.users)).collect();
    assert!(listed.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
    // Every user that stayed online is listed, and so are the ones added during the scan.
    let went_offline = |u: u64| (5_000..5_000 + pages.len() as u64).contains(&u);
    let listed_set: std::collections::BTreeSet<u64> = listed.iter().copied().collect();
    for u in (0..10_000).filter(|&u| !went_offline(u)) {
        assert!(listed_set.contains(&u), "user {u} missing");
    }
    assert!(pages.len() >= 20, "{} pages", pages.len());
    assert!(listed_set.contains(&(20_000 + pages.len() as u64 - 1)));
    // Then exact reads again, from the first page's cursor: every change made while the pages
    // were read comes, each user once, with its latest state.
    let after = read_all_pages(&s, &feed, 500, &mut |_| {});
    assert!(after.iter().all(|r| !r.full));
    let mut got: Vec<u64> = after.iter().flat_map(|r| keys(&r.users)).collect();
    got.sort_unstable();
    changed.sort_unstable();
    changed.dedup();
    assert_eq!(got, changed);
    for r in &after {
        for (u, p) in &r.users {
            assert_eq!(Some(p), s.get(u).as_ref());
        }
    }
    assert!(s.read_feed(&feed, 500).unwrap().users.is_empty());
}

#[test]
fn a_full_list_of_exactly_max_users_is_one_read() {
    let (s, _) = store_with(StoreConfig::default().with_shards(2).with_log_capacity(4));
    let feed = s.create_feed().unwrap();
    for u in 0..10 {
        s.heartbeat(&u, 1, Activity::Active).unwrap();
    }
    let r = s.read_feed(&feed, 10).unwrap();
    assert_eq!((r.full, r.more, r.users.len()), (true, false, 10));
    let r = s.read_feed(&feed, 10).unwrap();
    assert_eq!((r.full, r.more, r.users.len()), (false, false, 0));
}

#[test]
fn feeds_read_within_the_expiry_live_and_unread_ones_expire() {
    let config = StoreConfig::default().with_feeds(10, Duration::from_secs(3600));
    let (s, clock) = store_with(config);
    let read = s.create_feed().unwrap();
    let unread = s.create_feed().unwrap();
    for _ in 0..6 {
        clock.advance(Duration::from_secs(600));
        s.read_feed(&read, 10).unwrap();
        s.sweep();
    }
    assert!(s.read_feed(&read, 10).is_ok());
    assert!(matches!(
        s.read_feed(&unread, 10),
        Err(Error::UnknownFeed { .. })
    ));
}

#[test]
fn a_subscription_receives_every_change_after_it_was_made() {
    let (s, _) = store();
    s.set(&1, Category::Busy, SetMode::Hard).unwrap();
    let sub = s.subscribe(SubscribeOptions::default());
    s.set(&2, Category::Busy, SetMode::Hard).unwrap();
    s.heartbeat(&2, 1, Activity::Idle).unwrap(); // the activity changes: visible
    s.heartbeat(&2, 1, Activity::Idle).unwrap(); // this one changes nothing
    s.remove(&1);
    let mut events = Vec::new();
    while let Some(e) = sub.try_recv() {
        events.push(e);
    }
    let changes: Vec<(u64, Category, Activity)> = events
        .iter()
        .map(|e| match e {
            Event::Change { user, presence } => (*user, presence.category, presence.activity),
            Event::Lagged { .. } => panic!("no lag expected"),
        })
        .collect();
    assert_eq!(
        changes,
        [
            (2, Category::Busy, Activity::Offline),
            (2, Category::Busy, Activity::Idle),
            (1, Category::Offline, Activity::Offline),
        ]
    );
}

#[test]
fn a_subscription_can_follow_some_users_only() {
    let (s, _) = store();
    let options = SubscribeOptions {
        capacity: 16,
        users: Some(vec![3, 5]),
    };
    let sub = s.subscribe(options);
    for u in 0..10 {
        s.set(&u, Category::Busy, SetMode::Hard).unwrap();
    }
    let mut users = Vec::new();
    while let Some(Event::Change { user, .. }) = sub.try_recv() {
        users.push(user);
    }
    assert_eq!(sorted(users), [3, 5]);
}

#[test]
fn a_slow_subscriber_lags_once_and_resyncs_from_its_cursor() {
    let (s, _) = store();
    let sub = s.subscribe(SubscribeOptions {
        capacity: 4,
        users: None,
    });
    let mut view: BTreeMap<u64, Presence> = BTreeMap::new();
    for u in 0..50 {
        s.set(&u, Category::ALL[u as usize % 11], SetMode::Hard)
            .unwrap();
    }
    let mut lags = 0;
    while let Some(e) = sub.try_recv() {
        match e {
            Event::Change { user, presence } => {
                view.insert(user, presence);
            }
            Event::Lagged { resume } => {
                lags += 1;
                for (k, p) in s.changes_since(&Since::Cursor(resume)).users {
                    view.insert(k, p);
                }
            }
        }
    }
    assert_eq!(lags, 1);
    // Writes after the resync flow as events again.
    s.set(&7, Category::Away, SetMode::Hard).unwrap();
    while let Some(Event::Change { user, presence }) = sub.try_recv() {
        view.insert(user, presence);
    }
    let all = s.page(&PageQuery::first()).unwrap().items;
    assert_eq!(view.into_iter().collect::<Vec<_>>(), all);
}

#[test]
fn dropping_a_subscription_unsubscribes() {
    let (s, _) = store();
    let sub = s.subscribe(SubscribeOptions::default());
    drop(sub);
    s.sweep();
    // Nothing left to offer to: writes go on as without subscribers.
    for u in 0..100 {
        s.set(&u, Category::Busy, SetMode::Hard).unwrap();
    }
    assert_eq!(s.len(), 100);
}

#[test]
fn a_status_message_is_a_logged_visible_change() {
    let (s, _) = store();
    assert!(matches!(
        s.set_message(&1, "hi"),
        Err(Error::UnknownUser { .. })
    ));
    s.set(&1, Category::Busy, SetMode::Hard).unwrap();
    let c = s.cursor();
    let p = s.set_message(&1, "in a call until 3").unwrap();
    assert_eq!(p.details.message(), Some("in a call until 3"));
    assert_eq!(
        s.get(&1).unwrap().details.message(),
        Some("in a call until 3")
    );
    let d = s.changes_since(&Since::Cursor(c));
    assert_eq!(d.users[0].1.details.message(), Some("in a call until 3"));
    // The same message again changes nothing; an empty one clears it.
    let c = s.cursor();
    assert_eq!(
        s.set_message(&1, "in a call until 3").unwrap().version,
        p.version
    );
    assert!(s.changes_since(&Since::Cursor(c)).users.is_empty());
    assert_eq!(s.set_message(&1, "").unwrap().details.message(), None);
    // Removal forgets it.
    s.set_message(&1, "bye").unwrap();
    s.remove(&1);
    assert_eq!(
        s.set(&1, Category::Busy, SetMode::Hard)
            .unwrap()
            .details
            .message(),
        None
    );
}

#[test]
fn an_overlong_message_is_refused_and_changes_nothing() {
    let (s, _) = store_with(StoreConfig::default().with_max_message_len(8));
    s.set(&1, Category::Busy, SetMode::Hard).unwrap();
    let before = s.get(&1).unwrap();
    assert_eq!(
        s.set_message(&1, "123456789"),
        Err(Error::MessageTooLong { len: 9, max: 8 })
    );
    assert_eq!(s.get(&1).unwrap(), before);
    assert!(s.set_message(&1, "12345678").is_ok());
}
