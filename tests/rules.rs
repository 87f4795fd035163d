//! One test per rule of the contract in DESIGN.md, boundaries included, through the public API.

use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use presence_store::{
    resolve, Activity, Category, Clock, Cursor, Error, FullReason, ManualClock, PageQuery,
    PresenceStore, SetMode, Since, StoreConfig,
};

const T0: u64 = 1_700_000_000_000;
const WINDOW: Duration = Duration::from_secs(600);

fn store_with(config: StoreConfig) -> (PresenceStore<u64>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0));
    (PresenceStore::with_clock(config, clock.clone()), clock)
}

fn store() -> (PresenceStore<u64>, Arc<ManualClock>) {
    store_with(StoreConfig::default().with_shards(4))
}

fn keys<K: Clone, P>(items: &[(K, P)]) -> Vec<K> {
    items.iter().map(|(k, _)| k.clone()).collect()
}

fn sorted_keys<P>(items: &[(u64, P)]) -> Vec<u64> {
    let mut k = keys(items);
    k.sort_unstable();
    k
}

#[test]
fn a_new_user_starts_offline_and_undefined_and_its_addition_is_logged() {
    let (s, _) = store();
    let c = s.cursor();
    let p = s.set(&1, Category::Undefined, SetMode::Soft).unwrap();
    assert_eq!(
        (p.category, p.requested, p.activity),
        (Category::Offline, Category::Undefined, Activity::Offline)
    );
    assert_eq!(p.updated_at, T0);
    assert_eq!(s.len(), 1);
    assert_eq!(keys(&s.changes_since(&Since::Cursor(c)).users), [1]);
}

#[test]
fn soft_set_on_an_offline_user_waits_until_they_come_online() {
    let (s, _) = store();
    let p = s.set(&1, Category::Busy, SetMode::Soft).unwrap();
    assert_eq!(
        (p.category, p.requested),
        (Category::Offline, Category::Busy)
    );
    let p = s.heartbeat(&1, 10, Activity::Active).unwrap();
    assert_eq!((p.category, p.activity), (Category::Busy, Activity::Active));
}

#[test]
fn soft_available_on_an_idle_user_shows_away() {
    let (s, _) = store();
    s.heartbeat(&1, 10, Activity::Idle).unwrap();
    let p = s.set(&1, Category::Available, SetMode::Soft).unwrap();
    assert_eq!(
        (p.category, p.requested),
        (Category::Away, Category::Available)
    );
    let p = s.heartbeat(&1, 10, Activity::Active).unwrap();
    assert_eq!(p.category, Category::Available);
}

#[test]
fn hard_set_shows_at_once_and_holds_until_the_activity_changes() {
    let (s, _) = store();
    let p = s.set(&1, Category::Available, SetMode::Hard).unwrap();
    assert_eq!(
        (p.category, p.activity),
        (Category::Available, Activity::Offline)
    );
    // A heartbeat that adds a session changes the activity: resolve applies again.
    s.heartbeat(&1, 10, Activity::Idle).unwrap();
    assert_eq!(s.get(&1).unwrap().category, Category::Away);
    let p = s.set(&1, Category::Available, SetMode::Hard).unwrap();
    assert_eq!(p.category, Category::Available);
    // A heartbeat that leaves the activity as it was keeps the hard set.
    let before = s.get(&1).unwrap();
    let p = s.heartbeat(&1, 11, Activity::Idle).unwrap();
    assert_eq!(p, before);
    let p = s.disconnect(&1, 11).unwrap();
    assert_eq!(p, before);
    // The next activity change ends it.
    let p = s.disconnect(&1, 10).unwrap();
    assert_eq!(p.category, Category::Offline);
}

#[test]
fn a_write_that_changes_nothing_visible_keeps_version_and_time_and_logs_nothing() {
    let (s, clock) = store();
    let p1 = s.heartbeat(&1, 10, Activity::Active).unwrap();
    let c = s.cursor();
    clock.advance(Duration::from_secs(5));
    let p2 = s.heartbeat(&1, 10, Activity::Active).unwrap();
    let p3 = s.set(&1, Category::Undefined, SetMode::Soft).unwrap();
    assert_eq!((p1.clone(), p1), (p2, p3));
    let d = s.changes_since(&Since::Cursor(c.clone()));
    assert!(d.users.is_empty() && !d.full);
    assert_eq!(d.cursor, c);
}

#[test]
fn activity_aggregates_over_sessions() {
    let (s, _) = store();
    s.heartbeat(&1, 10, Activity::Idle).unwrap();
    assert_eq!(s.get(&1).unwrap().activity, Activity::Idle);
    s.heartbeat(&1, 11, Activity::Active).unwrap();
    assert_eq!(s.get(&1).unwrap().activity, Activity::Active);
    s.heartbeat(&1, 12, Activity::Idle).unwrap();
    s.heartbeat(&1, 11, Activity::Idle).unwrap();
    assert_eq!(s.get(&1).unwrap().activity, Activity::Idle);
    s.disconnect(&1, 10).unwrap();
    s.disconnect(&1, 12).unwrap();
    assert_eq!(s.get(&1).unwrap().activity, Activity::Idle);
    s.heartbeat(&1, 11, Activity::Offline).unwrap();
    assert_eq!(s.get(&1).unwrap().activity, Activity::Offline);
}

#[test]
fn disconnect_twice_or_of_an_unknown_session_changes_nothing() {
    let (s, _) = store();
    s.heartbeat(&1, 10, Activity::Active).unwrap();
    let p = s.disconnect(&1, 10).unwrap();
    assert_eq!(s.disconnect(&1, 10).unwrap(), p);
    assert_eq!(s.disconnect(&1, 99).unwrap(), p);
    assert!(matches!(
        s.disconnect(&2, 10),
        Err(Error::UnknownUser { .. })
    ));
    assert_eq!(s.len(), 1);
    assert_eq!(s.get(&2), None);
}

#[test]
fn sweep_idles_then_expires_sessions_at_their_exact_times() {
    let config = StoreConfig::default()
        .with_shards(2)
        .with_session_timeouts(Duration::from_secs(60), Duration::from_secs(120));
    let (s, clock) = store_with(config);
    s.heartbeat(&1, 10, Activity::Active).unwrap();
    s.heartbeat(&2, 20, Activity::Idle).unwrap();
    clock.advance(Duration::from_millis(59_999));
    assert_eq!(s.sweep(), 0);
    assert_eq!(s.get(&1).unwrap().category, Category::Available);
    clock.advance(Duration::from_millis(1));
    assert_eq!(s.sweep(), 1);
    let p = s.get(&1).unwrap();
    assert_eq!((p.category, p.activity), (Category::Away, Activity::Idle));
    assert_eq!(p.updated_at, T0 + 60_000);
    clock.advance(Duration::from_millis(59_999));
    assert_eq!(s.sweep(), 0);
    clock.advance(Duration::from_millis(1));
    assert_eq!(s.sweep(), 2);
    for u in [1, 2] {
        assert_eq!(s.get(&u).unwrap().category, Category::Offline);
    }
    assert_eq!(s.sweep(), 0);
}

#[test]
fn heartbeats_keep_a_session_alive_and_active() {
    let config = StoreConfig::default()
        .with_shards(1)
        .with_session_timeouts(Duration::from_secs(60), Duration::from_secs(120));
    let (s, clock) = store_with(config);
    for _ in 0..10 {
        s.heartbeat(&1, 10, Activity::Active).unwrap();
        clock.advance(Duration::from_secs(50));
        s.sweep();
        assert_eq!(s.get(&1).unwrap().activity, Activity::Active);
    }
    // Idle heartbeats keep it alive but not active.
    for _ in 0..10 {
        s.heartbeat(&1, 10, Activity::Idle).unwrap();
        clock.advance(Duration::from_secs(100));
        s.sweep();
        assert_eq!(s.get(&1).unwrap().activity, Activity::Idle);
    }
    clock.advance(Duration::from_secs(20));
    s.sweep();
    assert_eq!(s.get(&1).unwrap().activity, Activity::Offline);
}

#[test]
fn a_new_session_on_a_user_filed_late_still_idles_on_time() {
    let config = StoreConfig::default()
        .with_shards(1)
        .with_session_timeouts(Duration::from_secs(10), Duration::from_secs(100));
    let (s, clock) = store_with(config);
    s.heartbeat(&1, 10, Activity::Idle).unwrap(); // due at +100 s
    clock.advance(Duration::from_secs(5));
    s.heartbeat(&1, 11, Activity::Active).unwrap(); // due at +15 s
    clock.advance(Duration::from_secs(10));
    assert_eq!(s.sweep(), 1);
    assert_eq!(s.get(&1).unwrap().activity, Activity::Idle);
}

#[test]
fn remove_forgets_the_user_and_deltas_report_it_offline() {
    let (s, clock) = store();
    s.heartbeat(&1, 10, Activity::Active).unwrap();
    let c = s.cursor();
    clock.advance(Duration::from_secs(1));
    let old = s.remove(&1).unwrap();
    assert_eq!(old.category, Category::Available);
    assert_eq!(s.remove(&1), None);
    assert_eq!((s.get(&1), s.len()), (None, 0));
    assert!(s.page(&PageQuery::first()).unwrap().items.is_empty());
    for since in [Since::Cursor(c), Since::Time(T0 + 1000)] {
        let d = s.changes_since(&since);
        assert_eq!(d.users.len(), 1);
        let (k, p) = &d.users[0];
        assert_eq!(
            (*k, p.category, p.updated_at),
            (1, Category::Offline, T0 + 1000)
        );
    }
    // Re-added, it starts fresh and appears once.
    let c = s.cursor();
    let p = s.set(&1, Category::Busy, SetMode::Soft).unwrap();
    assert_eq!(
        (p.category, p.activity),
        (Category::Offline, Activity::Offline)
    );
    assert_eq!(keys(&s.changes_since(&Since::Time(T0)).users), [1]);
    assert_eq!(keys(&s.changes_since(&Since::Cursor(c)).users), [1]);
}

#[test]
fn unknown_users_stay_unknown() {
    let (s, _) = store();
    assert_eq!(s.get(&1), None);
    assert!(s.disconnect(&1, 1).is_err());
    assert_eq!(s.remove(&1), None);
    assert!(s.get_many(&[1, 2]).is_empty());
    assert_eq!(s.len(), 0);
    assert!(s.is_empty());
}

#[test]
fn get_many_gives_known_users_in_input_order() {
    let (s, _) = store();
    for u in [5, 3, 9] {
        s.set(&u, Category::Busy, SetMode::Hard).unwrap();
    }
    let got = s.get_many(&[9, 4, 3, 9]);
    assert_eq!(keys(&got), [9, 3, 9]);
    assert!(got.iter().all(|(_, p)| p.category == Category::Busy));
}

/// Past one batch of lookups, and past the shard count that `get_many` locks together, the
/// answer is still each `get` in input order.
#[test]
fn get_many_of_many_users_is_each_get_in_order() {
    for shards in [1, 8, 64, 65, 128] {
        let (s, _) = store_with(StoreConfig::default().with_shards(shards));
        for u in (0..300u64).filter(|u| u % 3 != 0) {
            s.set(&u, Category::Busy, SetMode::Hard).unwrap();
        }
        let asked: Vec<u64> = (0..500u64).map(|i| (i * 7919) % 320).collect();
        let expected: Vec<_> = asked.iter().filter_map(|u| Some((*u, s.get(u)?))).collect();
        assert_eq!(s.get_many(&asked), expected, "{shards} shards");
    }
}

#[test]
fn time_delta_is_inclusive_and_the_window_is_strict() {
    let (s, clock) = store();
    s.set(&1, Category::Busy, SetMode::Hard).unwrap();
    clock.advance(Duration::from_millis(10));
    s.set(&2, Category::Busy, SetMode::Hard).unwrap();
    let d = s.changes_since(&Since::Time(T0 + 10));
    assert_eq!((keys(&d.users), d.full), (vec![2], false));
    let d = s.changes_since(&Since::Time(T0));
    assert_eq!(sorted_keys(&d.users), [1, 2]);
    // Exactly the window old is full; 1 ms less is a delta.
    clock.set(T0 + WINDOW.as_millis() as u64 - 1);
    let d = s.changes_since(&Since::Time(T0));
    assert!(!d.full);
    clock.advance(Duration::from_millis(1));
    let d = s.changes_since(&Since::Time(T0));
    assert_eq!((d.full, d.reason), (true, Some(FullReason::OutsideWindow)));
    assert_eq!(keys(&d.users), [1, 2]);
}

#[test]
fn a_future_time_gives_an_empty_delta() {
    let (s, _) = store();
    s.set(&1, Category::Busy, SetMode::Hard).unwrap();
    let d = s.changes_since(&Since::Time(T0 + 1));
    assert!(d.users.is_empty() && !d.full && d.reason.is_none());
    assert_eq!(d.cursor, s.cursor());
}

#[test]
fn a_full_answer_lists_users_not_offline_sorted() {
    let (s, clock) = store();
    for u in (0..50).rev() {
        s.heartbeat(&u, 1, Activity::Active).unwrap();
    }
    s.set(&7, Category::Offline, SetMode::Hard).unwrap();
    s.disconnect(&8, 1).unwrap();
    s.remove(&9);
    clock.advance(WINDOW);
    let d = s.changes_since(&Since::Time(T0));
    let expected: Vec<u64> = (0..50).filter(|u| ![7, 8, 9].contains(u)).collect();
    assert_eq!(keys(&d.users), expected);
    assert!(d.users.iter().all(|(_, p)| p.category != Category::Offline));
}

#[test]
fn each_user_appears_once_with_its_latest_state() {
    let (s, clock) = store();
    let c = s.cursor();
    for (i, cat) in Category::ALL.into_iter().enumerate() {
        for u in 0..20u64 {
            s.set(&u, cat, SetMode::Hard).unwrap();
        }
        clock.advance(Duration::from_millis(i as u64));
    }
    for since in [Since::Cursor(c), Since::Time(T0)] {
        let d = s.changes_since(&since);
        assert_eq!(sorted_keys(&d.users), (0..20).collect::<Vec<_>>());
        assert!(d.users.iter().all(|(_, p)| p.category == Category::Offline));
    }
}

#[test]
fn cursor_deltas_are_exact_and_chain() {
    let (s, _) = store();
    for u in 0..100 {
        s.heartbeat(&u, 1, Activity::Active).unwrap();
    }
    let c1 = s.cursor();
    for u in (0..100).step_by(3) {
        s.set(&u, Category::Busy, SetMode::Hard).unwrap();
    }
    let d1 = s.changes_since(&Since::Cursor(c1.clone()));
    assert_eq!(
        sorted_keys(&d1.users),
        (0..100).step_by(3).collect::<Vec<_>>()
    );
    s.set(&1, Category::Away, SetMode::Hard).unwrap();
    let d2 = s.changes_since(&Since::Cursor(d1.cursor.clone()));
    assert_eq!(keys(&d2.users), [1]);
    let d3 = s.changes_since(&Since::Cursor(d2.cursor.clone()));
    assert!(d3.users.is_empty());
    // The same cursor answers the same way again.
    assert_eq!(s.changes_since(&Since::Cursor(c1)).users.len(), 35);
}

#[test]
fn a_cursor_from_another_store_or_shard_count_gets_the_full_list() {
    let (a, _) = store();
    let (b, _) = store();
    let (c8, _) = store_with(StoreConfig::default().with_shards(8));
    a.heartbeat(&1, 1, Activity::Active).unwrap();
    for other in [b.cursor(), c8.cursor()] {
        let d = a.changes_since(&Since::Cursor(other));
        assert_eq!((d.full, d.reason), (true, Some(FullReason::ForeignCursor)));
        assert_eq!(keys(&d.users), [1]);
    }
}

#[test]
fn a_cursor_past_what_the_log_holds_gets_the_full_list() {
    let (s, clock) = store_with(StoreConfig::default().with_shards(1).with_log_capacity(4));
    s.heartbeat(&1, 1, Activity::Active).unwrap();
    let c = s.cursor();
    let t = clock.now_ms();
    for u in 2..10 {
        clock.advance(Duration::from_millis(1));
        s.heartbeat(&u, 1, Activity::Active).unwrap();
    }
    for since in [Since::Cursor(c), Since::Time(t)] {
        let d = s.changes_since(&since);
        assert_eq!((d.full, d.reason), (true, Some(FullReason::LogPruned)));
        assert_eq!(keys(&d.users), (1..10).collect::<Vec<_>>());
    }
    // What the log still holds is answered exactly.
    let d = s.changes_since(&Since::Time(clock.now_ms() - 3));
    assert_eq!((d.full, sorted_keys(&d.users)), (false, vec![6, 7, 8, 9]));
}

#[test]
fn a_cursor_older_than_the_window_is_pruned_once_the_shard_moves_on() {
    let (s, clock) = store_with(StoreConfig::default().with_shards(1));
    s.heartbeat(&1, 1, Activity::Active).unwrap();
    let c = s.cursor();
    s.heartbeat(&2, 1, Activity::Active).unwrap();
    clock.advance(WINDOW);
    s.sweep(); // prunes the entries now a window old
    let d = s.changes_since(&Since::Cursor(c));
    assert_eq!((d.full, d.reason), (true, Some(FullReason::LogPruned)));
}

#[test]
fn a_quiet_shard_keeps_old_cursors_exact() {
    let (s, clock) = store_with(StoreConfig::default().with_shards(1));
    s.set(&1, Category::Busy, SetMode::Hard).unwrap();
    let c = s.cursor();
    clock.advance(WINDOW * 3);
    s.sweep(); // prunes the entry before the cursor, none after it
    s.set(&1, Category::Away, SetMode::Hard).unwrap();
    let d = s.changes_since(&Since::Cursor(c));
    assert_eq!((d.full, keys(&d.users)), (false, vec![1]));
}

#[test]
fn tombstones_are_freed_with_their_last_entry_and_slots_reused() {
    let (s, clock) = store_with(StoreConfig::default().with_shards(1));
    for round in 0..3u64 {
        for u in 0..100 {
            s.set(&(round * 1000 + u), Category::Busy, SetMode::Hard)
                .unwrap();
        }
        for u in 0..100 {
            s.remove(&(round * 1000 + u));
        }
        clock.advance(WINDOW);
        s.sweep();
        assert_eq!(s.len(), 0);
        assert!(s
            .changes_since(&Since::Time(clock.now_ms() - 1))
            .users
            .is_empty());
    }
    s.set(&5, Category::Busy, SetMode::Hard).unwrap();
    assert_eq!(s.get(&5).unwrap().category, Category::Busy);
    assert_eq!(s.get(&1005), None);
}

#[test]
fn pages_are_sorted_and_chain_with_next() {
    let (s, _) = store_with(StoreConfig::default().with_shards(8));
    for u in (0..1000u64).rev() {
        s.heartbeat(&(u * 7), 1, Activity::Active).unwrap();
    }
    let mut seen = Vec::new();
    let mut query = PageQuery::first().with_limit(64);
    loop {
        let page = s.page(&query).unwrap();
        seen.extend(keys(&page.items));
        match page.next {
            Some(next) => query = PageQuery::starting_at(next).with_limit(64),
            None => break,
        }
    }
    assert_eq!(seen, (0..1000).map(|u| u * 7).collect::<Vec<_>>());
}

#[test]
fn page_bounds_follow_symphony_last_user_id() {
    let (s, _) = store();
    for u in [10, 20, 30, 40] {
        s.set(&u, Category::Busy, SetMode::Hard).unwrap();
    }
    let page = |start| {
        let q = PageQuery {
            start,
            limit: Some(2),
            include_offline: true,
        };
        let p = s.page(&q).unwrap();
        (keys(&p.items), p.next)
    };
    assert_eq!(page(Bound::Included(20)), (vec![20, 30], Some(40)));
    assert_eq!(page(Bound::Excluded(20)), (vec![30, 40], None));
    assert_eq!(page(Bound::Included(15)), (vec![20, 30], Some(40)));
    assert_eq!(page(Bound::Unbounded), (vec![10, 20], Some(30)));
    assert_eq!(page(Bound::Included(41)), (vec![], None));
}

#[test]
fn page_limits_default_to_1000_and_stop_at_5000() {
    let (s, _) = store();
    for u in 0..6000 {
        s.set(&u, Category::Busy, SetMode::Hard).unwrap();
    }
    assert_eq!(s.page(&PageQuery::first()).unwrap().items.len(), 1000);
    let p = s.page(&PageQuery::first().with_limit(5000)).unwrap();
    assert_eq!((p.items.len(), p.next), (5000, Some(5000)));
    for bad in [0, 5001] {
        let e = s.page(&PageQuery::first().with_limit(bad)).unwrap_err();
        assert_eq!(
            e,
            Error::InvalidLimit {
                limit: bad,
                max: 5000
            }
        );
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn page_can_leave_out_offline_users() {
    let (s, _) = store();
    for u in 0..10 {
        s.heartbeat(&u, 1, Activity::Active).unwrap();
    }
    for u in [0, 3, 4, 5, 9] {
        s.disconnect(&u, 1).unwrap();
    }
    s.set(&6, Category::Offline, SetMode::Hard).unwrap();
    let q = PageQuery::first().with_limit(2).with_offline(false);
    let p = s.page(&q).unwrap();
    assert_eq!((keys(&p.items), p.next), (vec![1, 2], Some(7)));
    let p = s
        .page(&PageQuery::starting_at(7).with_limit(2).with_offline(false))
        .unwrap();
    assert_eq!((keys(&p.items), p.next), (vec![7, 8], None));
}

#[test]
fn paging_then_the_first_cursor_misses_no_change() {
    let (s, _) = store_with(StoreConfig::default().with_shards(8));
    for u in 0..300 {
        s.heartbeat(&(u * 2), 1, Activity::Active).unwrap();
    }
    let first = s.page(&PageQuery::first().with_limit(100)).unwrap();
    let mut view: std::collections::BTreeMap<u64, _> = first.items.into_iter().collect();
    // Mid-scan: users behind the scan change, new users appear behind it, one is removed.
    s.set(&0, Category::Busy, SetMode::Hard).unwrap();
    s.heartbeat(&1, 1, Activity::Active).unwrap();
    s.remove(&2);
    let mut next = first.next;
    while let Some(start) = next {
        let page = s
            .page(&PageQuery::starting_at(start).with_limit(100))
            .unwrap();
        view.extend(page.items);
        next = page.next;
        s.heartbeat(&3, 1, Activity::Idle).unwrap();
    }
    for (k, p) in s.changes_since(&Since::Cursor(first.cursor)).users {
        view.insert(k, p);
    }
    view.retain(|k, _| s.get(k).is_some());
    let all = s.page(&PageQuery::first().with_limit(5000)).unwrap();
    assert_eq!(view.into_iter().collect::<Vec<_>>(), all.items);
}

#[test]
fn string_and_signed_keys_work() {
    let clock = Arc::new(ManualClock::new(T0));
    let s: PresenceStore<String> = PresenceStore::with_clock(StoreConfig::default(), clock);
    for name in ["rocket.cat", "alice", "bob"] {
        s.set(&name.to_string(), Category::Busy, SetMode::Hard)
            .unwrap();
    }
    let p = s.page(&PageQuery::starting_at("b".to_string())).unwrap();
    assert_eq!(keys(&p.items), ["bob", "rocket.cat"]);
    let s: PresenceStore<i64> = PresenceStore::new(StoreConfig::default());
    for u in [-5, 3, -1] {
        s.heartbeat(&u, 1, Activity::Active).unwrap();
    }
    assert_eq!(
        keys(&s.page(&PageQuery::first()).unwrap().items),
        [-5, -1, 3]
    );
}

#[test]
fn timestamps_never_go_backwards_when_the_clock_does() {
    let (s, clock) = store_with(StoreConfig::default().with_shards(1));
    s.set(&1, Category::Busy, SetMode::Hard).unwrap();
    clock.set(T0 - 5000);
    let p = s.set(&2, Category::Busy, SetMode::Hard).unwrap();
    assert_eq!(p.updated_at, T0);
    let d = s.changes_since(&Since::Time(T0 - 6000));
    assert_eq!(sorted_keys(&d.users), [1, 2]);
}

#[test]
fn cursors_round_trip_as_tokens_and_garbage_is_an_error() {
    let (s, _) = store();
    s.set(&1, Category::Busy, SetMode::Hard).unwrap();
    let c = s.cursor();
    let back: Cursor = c.to_string().parse().unwrap();
    assert_eq!(back, c);
    for bad in ["", "%%%", "AAAA", "not a cursor", "\u{1F600}"] {
        assert!(matches!(
            bad.parse::<Cursor>(),
            Err(Error::InvalidCursor { .. })
        ));
    }
}

#[test]
fn invalid_configs_are_errors_not_stores() {
    let bad = StoreConfig::default().with_page_limits(10, 5);
    assert!(matches!(
        PresenceStore::<u64>::try_new(bad),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn resolve_is_the_documented_table() {
    assert_eq!(
        resolve(Category::Busy, Activity::Offline),
        Category::Offline
    );
    assert_eq!(resolve(Category::Available, Activity::Idle), Category::Away);
    assert_eq!(resolve(Category::Undefined, Activity::Idle), Category::Away);
    assert_eq!(
        resolve(Category::Undefined, Activity::Active),
        Category::Available
    );
    assert_eq!(resolve(Category::Busy, Activity::Idle), Category::Busy);
}

#[test]
fn versions_grow_with_every_change_of_a_user() {
    let (s, _) = store();
    let mut last = 0;
    for cat in Category::ALL {
        let p = s.set(&1, cat, SetMode::Hard).unwrap();
        assert!(p.version > last);
        last = p.version;
    }
}

#[test]
fn sessions_per_user_are_capped_and_past_the_cap_nothing_changes() {
    let (s, clock) = store_with(
        StoreConfig::default()
            .with_shards(2)
            .with_max_sessions_per_user(3),
    );
    for session in 1..=3 {
        s.heartbeat(&1, session, Activity::Idle).unwrap();
    }
    let before = s.get(&1).unwrap();
    let c = s.cursor();
    clock.advance(Duration::from_millis(5));
    // One more, active or not, is refused and changes nothing: not the activity, not the log.
    for activity in [Activity::Active, Activity::Idle] {
        assert_eq!(
            s.heartbeat(&1, 4, activity),
            Err(Error::TooManySessions { max: 3 })
        );
    }
    assert_eq!(s.get(&1).unwrap(), before);
    assert!(s.changes_since(&Since::Cursor(c)).users.is_empty());
    // Known sessions still beat, any of them; a disconnect of an unknown one changes nothing.
    let p = s.heartbeat(&1, 2, Activity::Active).unwrap();
    assert_eq!(p.activity, Activity::Active);
    assert_eq!(s.disconnect(&1, 4).unwrap(), p);
    // Ending one makes room for another; other users have their own cap.
    s.disconnect(&1, 1).unwrap();
    s.heartbeat(&1, 4, Activity::Idle).unwrap();
    for session in 1..=3 {
        s.heartbeat(&2, session, Activity::Idle).unwrap();
    }
    // Expired sessions make room too, and the user goes offline when the last one does.
    clock.advance(Duration::from_secs(121));
    s.sweep();
    assert_eq!(s.get(&1).unwrap().activity, Activity::Offline);
    for session in 10..13 {
        s.heartbeat(&1, session, Activity::Active).unwrap();
    }
    assert!(matches!(
        s.heartbeat(&1, 13, Activity::Active),
        Err(Error::TooManySessions { .. })
    ));
    assert!(matches!(
        StoreConfig::default()
            .with_max_sessions_per_user(0)
            .validate(),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn many_sessions_of_one_user_keep_the_activity_exact_as_they_come_and_go() {
    let (s, clock) = store_with(
        StoreConfig::default()
            .with_shards(1)
            .with_max_sessions_per_user(1000),
    );
    for session in 0..1000 {
        s.heartbeat(&1, session, Activity::Idle).unwrap();
    }
    assert_eq!(s.get(&1).unwrap().activity, Activity::Idle);
    // One active session among a thousand makes the user active, found by id, not by scan.
    assert_eq!(
        s.heartbeat(&1, 500, Activity::Active).unwrap().activity,
        Activity::Active
    );
    assert_eq!(
        s.heartbeat(&1, 500, Activity::Idle).unwrap().activity,
        Activity::Idle
    );
    for session in (0..1000).rev() {
        let p = s.disconnect(&1, session).unwrap();
        let want = if session == 0 {
            Activity::Offline
        } else {
            Activity::Idle
        };
        assert_eq!(p.activity, want, "after ending session {session}");
    }
    // The side table is gone; the user can open sessions again up to the cap.
    clock.advance(Duration::from_secs(1));
    s.heartbeat(&1, 7, Activity::Active).unwrap();
    assert_eq!(s.get(&1).unwrap().activity, Activity::Active);
}

#[test]
fn heartbeat_many_is_the_same_as_one_heartbeat_after_another() {
    let config = StoreConfig::default()
        .with_shards(4)
        .with_max_sessions_per_user(3);
    let (bulk, _) = store_with(config.clone());
    let (one, _) = store_with(config);
    for s in [&bulk, &one] {
        for u in 0..500u64 {
            s.heartbeat(&u, 1, Activity::Active).unwrap();
        }
        for u in (0..100u64).step_by(3) {
            s.remove(&u);
        }
    }
    let (c_bulk, c_one) = (bulk.cursor(), one.cursor());
    // New users, known ones, removed ones coming back, second and third sessions, idles,
    // ends, and one session past the cap.
    let mut beats: Vec<(u64, u64, Activity)> = Vec::new();
    for i in 0..4000u64 {
        let user = (i * 7919) % 3000;
        let activity = match i % 5 {
            0 => Activity::Idle,
            4 => Activity::Offline,
            _ => Activity::Active,
        };
        beats.push((user, i % 3, activity));
    }
    beats.push((1, 3, Activity::Active));
    beats.push((1, 4, Activity::Active));
    let got = bulk.heartbeat_many(beats.clone());
    let mut refused = None;
    let mut added = 0;
    for (u, session, activity) in beats {
        let known = one.get(&u).is_some();
        match one.heartbeat(&u, session, activity) {
            Ok(_) => added += usize::from(!known),
            Err(e) => {
                refused.get_or_insert(e);
            }
        }
    }
    assert_eq!(got, refused.map_or(Ok(added), Err));
    let all = |s: &PresenceStore<u64>| {
        let q = PageQuery::first().with_limit(5000).with_offline(true);
        let page = s.page(&q).unwrap();
        assert_eq!(page.next, None);
        page.items
            .into_iter()
            .map(|(k, p)| (k, p.category, p.requested, p.activity))
            .collect::<Vec<_>>()
    };
    assert_eq!(all(&bulk), all(&one));
    assert_eq!(bulk.len(), one.len());
    assert_eq!(
        sorted_keys(&bulk.changes_since(&Since::Cursor(c_bulk)).users),
        sorted_keys(&one.changes_since(&Since::Cursor(c_one)).users)
    );
    // Users added one by one after a bulk load land in order too.
    for u in [5_000u64, 2_500, 3_001] {
        bulk.heartbeat(&u, 9, Activity::Active)
            .unwrap_or_else(|e| panic!("{u}: {e}"));
    }
    let keys: Vec<u64> = all(&bulk).into_iter().map(|(k, ..)| k).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
}
