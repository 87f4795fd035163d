//! Snapshot -> JSON -> restore round trips: after a restore every `get`, `page`, source presence
//! and primary source equals the snapshot's; old cursors get the full list.
#![cfg(feature = "serde")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use presence_store::{
    Activity, Category, DefinitionId, Error, FullReason, ManualClock, PageQuery, PresenceStore,
    SetMode, Since, Snapshot, SourceId, StoreConfig, SystemPresence,
};
use proptest::prelude::*;

const T0: u64 = 1_700_000_000_000;

#[derive(Clone, Debug)]
enum Op {
    Set(u64, usize, bool),
    Beat(u64, u64, u8),
    Disconnect(u64, u64),
    Remove(u64),
    Message(u64, u8),
    Definition(u64, usize),
    FromSource(u64, usize),
    Primary(u64, bool),
    Advance(u64),
    Sweep,
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0u64..12;
    prop_oneof![
        (user.clone(), 0usize..11, any::<bool>()).prop_map(|(u, c, h)| Op::Set(u, c, h)),
        (user.clone(), 0u64..3, 0u8..3).prop_map(|(u, s, a)| Op::Beat(u, s, a)),
        (user.clone(), 0u64..3).prop_map(|(u, s)| Op::Disconnect(u, s)),
        user.clone().prop_map(Op::Remove),
        (user.clone(), 0u8..3).prop_map(|(u, m)| Op::Message(u, m)),
        (user.clone(), 0usize..3).prop_map(|(u, d)| Op::Definition(u, d)),
        (user.clone(), 0usize..3).prop_map(|(u, d)| Op::FromSource(u, d)),
        (user, any::<bool>()).prop_map(|(u, p)| Op::Primary(u, p)),
        (0u64..90_000).prop_map(Op::Advance),
        Just(Op::Sweep),
    ]
}

/// A store driven through `ops`, with one org definition and one extra source.
fn build(shards: usize, ops: &[Op]) -> (PresenceStore<u64>, Arc<ManualClock>, SourceId) {
    let clock = Arc::new(ManualClock::new(T0));
    let config = StoreConfig::default().with_shards(shards);
    let store = PresenceStore::with_clock(config, clock.clone());
    let lunch = store
        .create_definition(
            SystemPresence::Meal,
            BTreeMap::from([("en_US".into(), "Lunch".into())]),
        )
        .unwrap();
    let teams = store.create_source("Teams").unwrap().id;
    let defs = [
        lunch.id,
        DefinitionId::new("BUSY").unwrap(),
        DefinitionId::new("MEETING").unwrap(),
    ];
    let activities = [Activity::Active, Activity::Idle, Activity::Offline];
    for op in ops {
        match *op {
            Op::Set(u, c, hard) => {
                let mode = if hard { SetMode::Hard } else { SetMode::Soft };
                store.set(&u, Category::ALL[c], mode).unwrap();
            }
            Op::Beat(u, s, a) => {
                store.heartbeat(&u, s, activities[a as usize]).unwrap();
            }
            Op::Disconnect(u, s) => {
                let _ = store.disconnect(&u, s);
            }
            Op::Remove(u) => {
                store.remove(&u);
            }
            Op::Message(u, m) => {
                let _ = store.set_message(&u, ["", "lunch", "in a call"][m as usize]);
            }
            Op::Definition(u, d) => {
                store.set_definition(&u, &defs[d], SetMode::Hard).unwrap();
            }
            Op::FromSource(u, d) => {
                store
                    .set_source_presence(&u, &teams, &defs[d], Some("from Teams"))
                    .unwrap();
            }
            Op::Primary(u, teams_primary) => {
                let source = if teams_primary {
                    teams.clone()
                } else {
                    SourceId::DEFAULT
                };
                let _ = store.set_primary_source(&u, &source);
            }
            Op::Advance(ms) => clock.advance(Duration::from_millis(ms)),
            Op::Sweep => {
                store.sweep();
            }
        }
    }
    (store, clock, teams)
}

fn round_trip(snapshot: &Snapshot<u64>) -> Snapshot<u64> {
    let json = serde_json::to_string(snapshot).unwrap();
    serde_json::from_str(&json).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn a_restored_store_shows_what_the_snapshot_holds(
        ops in proptest::collection::vec(op(), 0..60),
        shards in prop_oneof![Just(1usize), Just(4), Just(16)],
        restored_shards in prop_oneof![Just(1usize), Just(8)],
    ) {
        let (store, clock, teams) = build(shards, &ops);
        let snapshot = store.snapshot();
        let back = round_trip(&snapshot);
        prop_assert_eq!(&back, &snapshot);
        let config = StoreConfig::default().with_shards(restored_shards);
        let restored = PresenceStore::restore_with_clock(config, clock.clone(), back).unwrap();

        let all = PageQuery::first().with_limit(5000);
        prop_assert_eq!(restored.page(&all).unwrap().items, store.page(&all).unwrap().items);
        prop_assert_eq!(restored.len(), store.len());
        prop_assert_eq!(restored.sources(), store.sources());
        prop_assert_eq!(restored.definitions(), store.definitions());
        for u in 0..12u64 {
            prop_assert_eq!(restored.get(&u), store.get(&u));
            prop_assert_eq!(restored.primary_source(&u), store.primary_source(&u));
            for source in [SourceId::DEFAULT, teams.clone()] {
                prop_assert_eq!(
                    restored.source_presence(&u, &source),
                    store.source_presence(&u, &source)
                );
            }
        }
        // Both age the same from here: sessions kept their last heartbeats.
        clock.advance(Duration::from_secs(61));
        store.sweep();
        restored.sweep();
        for u in 0..12u64 {
            let (a, b) = (store.get(&u), restored.get(&u));
            prop_assert_eq!(a.map(|p| (p.category, p.activity)), b.map(|p| (p.category, p.activity)));
        }
    }
}

#[test]
fn old_cursors_and_times_before_the_restore_get_the_full_list() {
    let (store, clock, _) = build(4, &[Op::Beat(1, 1, 0), Op::Set(2, 2, true)]);
    let cursor = store.cursor();
    let restored =
        PresenceStore::restore_with_clock(StoreConfig::default(), clock.clone(), store.snapshot())
            .unwrap();
    let d = restored.changes_since(&Since::Cursor(cursor));
    assert_eq!((d.full, d.reason), (true, Some(FullReason::ForeignCursor)));
    let d = restored.changes_since(&Since::Time(T0));
    assert_eq!((d.full, d.reason), (true, Some(FullReason::LogPruned)));
    // From its own cursor it is exact, and versions keep growing.
    let before = restored.get(&2).unwrap().version;
    let c = restored.cursor();
    clock.advance(Duration::from_millis(5));
    let p = restored.set(&2, Category::Away, SetMode::Hard).unwrap();
    assert!(p.version > before);
    let d = restored.changes_since(&Since::Cursor(c));
    assert_eq!((d.full, d.users.len()), (false, 1));
}

#[test]
fn a_snapshot_no_store_could_take_is_refused() {
    let (store, clock, _) = build(2, &[Op::Beat(1, 1, 0), Op::FromSource(2, 1)]);
    let good = store.snapshot();

    let mut twice = good.clone();
    twice.users.push(twice.users[0].clone());
    let mut unknown_source = good.clone();
    unknown_source.sources.retain(|s| s.id.is_default());
    let mut same_session = good.clone();
    let user = same_session
        .users
        .iter_mut()
        .find(|u| !u.sessions.is_empty())
        .unwrap();
    user.sessions.push(user.sessions[0]);

    for bad in [twice, unknown_source, same_session] {
        let r = PresenceStore::restore_with_clock(StoreConfig::default(), clock.clone(), bad);
        assert!(matches!(r, Err(Error::InvalidSnapshot { .. })), "{r:?}");
    }
}
