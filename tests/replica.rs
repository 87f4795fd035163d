//! Replication (`presence_store::replica`): any delivery order, with any duplicates, of other
//! nodes' events gives the same view, equal to a naive last-writer-wins model; local writes go
//! to the outbox and applied events never do; other nodes' sessions never expire locally and go
//! when their node is declared down.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use presence_store::replica::{Event, Op, SessionState};
use presence_store::{
    Activity, Category, Definition, DefinitionId, DefinitionUpdate, Error, Hlc, ManualClock,
    NodeId, PresenceStore, Replica, SetMode, Source, SourceId, SourceUpdate, StoreConfig,
    SystemPresence,
};
use proptest::prelude::*;

mod lww;
use lww::{model, org_model, org_view, views as views_of, OrgView, View};

const USERS: u8 = 3;
const ORIGINS: [&str; 3] = ["a", "b", "c"];

fn node(name: &str) -> NodeId {
    NodeId::new(name).unwrap()
}

fn replica(name: &str) -> (Replica<u8>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let config = StoreConfig {
        idle_after: Duration::from_secs(60),
        session_ttl: Duration::from_secs(120),
        ..StoreConfig::default()
    };
    let store = Arc::new(PresenceStore::with_clock(config, clock.clone()));
    (Replica::new(store, node(name)), clock)
}

fn category() -> impl Strategy<Value = Category> {
    prop::sample::select(vec![
        Category::Available,
        Category::Busy,
        Category::Away,
        Category::DoNotDisturb,
        Category::Offline,
    ])
}

fn text(options: &'static [&'static str]) -> impl Strategy<Value = Option<Arc<str>>> {
    prop::option::of(prop::sample::select(options).prop_map(Arc::from))
}

fn op() -> impl Strategy<Value = Op<u8>> {
    let user = 0..USERS;
    let source = prop::sample::select(vec!["PURECLOUD", "s1"]).prop_map(|s| {
        if s == "PURECLOUD" {
            SourceId::DEFAULT
        } else {
            SourceId::new(s).unwrap()
        }
    });
    let definition =
        prop::sample::select(vec!["d1", "d2"]).prop_map(|d| DefinitionId::new(d).unwrap());
    prop_oneof![
        3 => (user.clone(), category(), any::<bool>(), prop::option::of(definition.clone()))
            .prop_map(|(user, category, hard, definition)| Op::Set {
                user,
                category,
                mode: if hard { SetMode::Hard } else { SetMode::Soft },
                definition,
            }),
        1 => (user.clone(), text(&["m1", "m2"])).prop_map(|(user, message)| Op::Message { user, message }),
        1 => (user.clone(), prop::option::of(Just(SourceId::new("s1").unwrap())))
            .prop_map(|(user, source)| Op::Primary { user, source }),
        2 => (user.clone(), source, definition, category(), text(&["x", "y"]))
            .prop_map(|(user, source, definition, category, message)| Op::SourcePresence {
                user, source, definition, category, message,
            }),
        4 => (user.clone(), 0..2u64, prop::sample::select(vec![
                SessionState::Active, SessionState::Idle, SessionState::Ended]))
            .prop_map(|(user, session, state)| Op::Session { user, session, state }),
        1 => user.clone().prop_map(|user| Op::Remove { user }),
        1 => user.prop_map(|user| Op::SessionsSeen { user }),
        2 => org_op(),
    ]
}

/// Organization writes: whole definitions and sources or their tombstones, and settings. The
/// sources include `s1`, which users have presences from.
fn org_op() -> impl Strategy<Value = Op<u8>> {
    let presence = prop::sample::select(vec![SystemPresence::Meal, SystemPresence::Busy]);
    let label = prop::sample::select(vec!["Lunch", "Gym"]);
    let definition = (
        prop::sample::select(vec!["d1", "d2"]),
        prop::option::of((presence, label, any::<bool>())),
    )
        .prop_map(|(id, def)| {
            let id = DefinitionId::new(id).unwrap();
            let definition = def.map(|(system_presence, label, deactivated)| Definition {
                id: id.clone(),
                system_presence,
                labels: BTreeMap::from([("en_US".to_owned(), label.to_owned())]),
                deactivated,
                system: false,
            });
            Op::Definition { id, definition }
        });
    let name = prop::sample::select(vec!["Calendar", "PBX"]);
    let source = (
        prop::sample::select(vec!["s1", "s2"]),
        prop::option::of((name, any::<bool>())),
    )
        .prop_map(|(id, source)| {
            let id = SourceId::new(id).unwrap();
            let source = source.map(|(name, deactivated)| Source {
                id: id.clone(),
                name: name.to_owned(),
                deactivated,
            });
            Op::Source { id, source }
        });
    let setting = (
        prop::sample::select(vec!["k1", "k2"]),
        prop::sample::select(vec!["true", "false"]),
    )
        .prop_map(|(key, value)| Op::Setting {
            key: Arc::from(key),
            value: Arc::from(value),
        });
    prop_oneof![definition, source, setting]
}

/// Events of the three origins, each origin's stamps strictly increasing (as its hybrid clock
/// makes them); origins' stamps may tie.
fn events() -> impl Strategy<Value = Vec<Event<u8>>> {
    prop::collection::vec((0..ORIGINS.len(), 1..3u64, op()), 1..40).prop_map(|raw| {
        let mut clocks = [0u64; 3];
        raw.into_iter()
            .map(|(origin, step, op)| {
                clocks[origin] += step;
                Event {
                    origin: node(ORIGINS[origin]),
                    stamp: Hlc(clocks[origin]),
                    op,
                }
            })
            .collect()
    })
}

/// Delivers `events` in the order of `order` (indices, repeats being duplicates), declaring
/// `down` down after `down_at` deliveries.
fn deliver(
    events: &[Event<u8>],
    order: &[usize],
    down: Option<(&NodeId, usize)>,
) -> (BTreeMap<u8, View>, OrgView) {
    let (r, _) = replica("observer");
    for (i, &at) in order.iter().enumerate() {
        if let Some((node, when)) = down {
            if when == i {
                r.node_down(node);
            }
        }
        r.apply([&events[at % events.len()]]);
    }
    if let Some((node, when)) = down {
        if when >= order.len() {
            r.node_down(node);
        }
    }
    assert!(
        r.take_outbox().is_empty(),
        "applied events are never published again"
    );
    (views(&r), org_view(&r))
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_order_and_any_duplicates_converge_to_the_model(
        events in events(),
        shuffle in any::<prop::sample::Index>(),
        dups in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        down in prop::option::of((0..ORIGINS.len(), any::<prop::sample::Index>())),
    ) {
        let n = events.len();
        let in_order: Vec<usize> = (0..n).collect();
        // Another order: a rotation and a reversal of halves, then duplicates anywhere.
        let mut other: Vec<usize> = (0..n).map(|i| (i + shuffle.index(n)) % n).rev().collect();
        for d in &dups {
            let at = d.index(other.len() + 1);
            other.insert(at, d.index(n));
        }
        let down_node = down.map(|(o, _)| node(ORIGINS[o]));
        let down_at = |len: usize| down.map(|(_, at)| at.index(len + 1));
        let first = deliver(&events, &in_order, down_node.as_ref().zip(down_at(in_order.len())));
        let second = deliver(&events, &other, down_node.as_ref().zip(down_at(other.len())));
        let expected = (
            model(&events, down_node.as_slice(), USERS),
            org_model(&events, &org_view(&replica("fresh").0)),
        );
        prop_assert_eq!(&first, &expected, "in order");
        prop_assert_eq!(&second, &expected, "shuffled, with duplicates");
    }
}

/// Two replicas that trade their outboxes show the same presence.
#[test]
fn two_nodes_trading_outboxes_agree() {
    let (a, _) = replica("a");
    let (b, _) = replica("b");
    a.heartbeat(&1, 10, Activity::Active).unwrap();
    b.set(&1, Category::Busy, SetMode::Soft).unwrap();
    b.heartbeat(&2, 10, Activity::Idle).unwrap();
    a.set_message(&1, "lunch").unwrap();
    let from_a = a.take_outbox();
    let from_b = b.take_outbox();
    assert_eq!(from_a.len(), 2);
    assert!(from_a.iter().all(|e| e.origin == *a.node()));
    b.apply(&from_a);
    a.apply(&from_b);
    assert!(a.take_outbox().is_empty() && b.take_outbox().is_empty());
    assert_eq!(views(&a), views(&b));
    let p = a.store().get(&1).unwrap();
    assert_eq!(
        (p.category, p.activity, p.details.message()),
        (Category::Busy, Activity::Active, Some("lunch"))
    );
}

/// A heartbeat that changes nothing publishes nothing.
#[test]
fn a_no_op_heartbeat_publishes_nothing() {
    let (a, _) = replica("a");
    a.heartbeat(&1, 10, Activity::Active).unwrap();
    assert_eq!(a.take_outbox().len(), 1);
    a.heartbeat(&1, 10, Activity::Active).unwrap();
    assert!(a.take_outbox().is_empty());
    a.heartbeat(&1, 10, Activity::Idle).unwrap();
    a.disconnect(&1, 10).unwrap();
    let states: Vec<_> = a
        .take_outbox()
        .into_iter()
        .map(|e| match e.op {
            Op::Session { state, .. } => state,
            _ => panic!("not a session event"),
        })
        .collect();
    assert_eq!(states, [SessionState::Idle, SessionState::Ended]);
}

/// Only the owner ages its sessions: the sweep publishes what it idled and expired, the other
/// node's sweep leaves the session alone, and applying the owner's events ends it there.
#[test]
fn only_the_owner_expires_its_sessions() {
    let (a, clock_a) = replica("a");
    let (b, clock_b) = replica("b");
    a.heartbeat(&1, 10, Activity::Active).unwrap();
    b.apply(&a.take_outbox());
    for clock in [&clock_a, &clock_b] {
        clock.advance(Duration::from_secs(600));
    }
    b.sweep();
    assert_eq!(
        b.store().get(&1).unwrap().activity,
        Activity::Active,
        "b never ages a's session"
    );
    a.sweep();
    assert_eq!(a.store().get(&1).unwrap().activity, Activity::Offline);
    let events = a.take_outbox();
    assert!(!events.is_empty(), "the expiry is published");
    b.apply(&events);
    assert_eq!(b.store().get(&1).unwrap().activity, Activity::Offline);
}

/// A node declared down loses all of its sessions on the others, each logged; its later session
/// events are ignored until it is up again.
#[test]
fn a_node_down_loses_its_sessions() {
    let (a, _) = replica("a");
    let (b, _) = replica("b");
    for user in 0..3 {
        a.heartbeat(&user, 1, Activity::Active).unwrap();
    }
    b.heartbeat(&0, 1, Activity::Active).unwrap();
    b.apply(&a.take_outbox());
    let cursor = b.store().cursor();
    assert_eq!(b.node_down(a.node()), 3);
    assert_eq!(
        b.store().get(&0).unwrap().activity,
        Activity::Active,
        "b's own session stays"
    );
    assert_eq!(b.store().get(&1).unwrap().activity, Activity::Offline);
    let delta = b
        .store()
        .changes_since(&presence_store::Since::Cursor(cursor));
    assert_eq!(
        delta.users.len(),
        2,
        "each user that went offline is a logged change"
    );
    a.heartbeat(&1, 2, Activity::Active).unwrap();
    b.apply(&a.take_outbox());
    assert_eq!(
        b.store().get(&1).unwrap().activity,
        Activity::Offline,
        "ignored while down"
    );
    b.node_up(a.node());
    b.apply(&a.state_events(false));
    assert_eq!(
        b.store().get(&1).unwrap().activity,
        Activity::Active,
        "republished on rejoin"
    );
    assert_eq!(views(&a).get(&2).map(|v| v.2), Some(Activity::Active));
    assert_eq!(views(&b).get(&2).map(|v| v.2), Some(Activity::Active));
}

/// A joiner that applies a node's full state (its snapshot) shows what that node shows.
#[test]
fn a_snapshot_rebuilds_the_view() {
    let (a, _) = replica("a");
    let (b, _) = replica("b");
    a.heartbeat(&0, 1, Activity::Active).unwrap();
    a.set(&1, Category::Busy, SetMode::Hard).unwrap();
    b.heartbeat(&1, 1, Activity::Idle).unwrap();
    a.apply(&b.take_outbox());
    a.set_message(&1, "back at 3").unwrap();
    a.remove(&0);
    let (c, _) = replica("c");
    c.apply(&a.state_events(true));
    assert_eq!(views(&c), views(&a));
    assert!(!views(&c).contains_key(&0));
}

#[test]
fn node_ids_are_checked() {
    assert!(NodeId::new("").is_err());
    assert!(NodeId::new("a b").is_err());
    assert!(NodeId::new(&"x".repeat(65)).is_err());
    assert_eq!(NodeId::new("eu-1/3").unwrap().as_str(), "eu-1/3");
}

fn views(r: &Replica<u8>) -> BTreeMap<u8, View> {
    views_of(r, USERS)
}

/// Definitions, sources and settings made on one node appear, with their ids, on a node that
/// applies its events; an update carries the whole item, a deletion removes it, and each write
/// is checked as the store checks it.
#[test]
fn organization_writes_replicate_with_their_ids() {
    let (a, _) = replica("a");
    let (b, _) = replica("b");
    let labels = BTreeMap::from([("en_US".to_owned(), "Lunch".to_owned())]);
    let lunch = a.create_definition(SystemPresence::Meal, labels).unwrap();
    let pbx = a.create_source("PBX").unwrap();
    a.set_setting("broadcast", "true");
    b.apply(&a.take_outbox());
    assert_eq!(b.store().definition(&lunch.id).unwrap(), lunch);
    assert_eq!(b.store().source(&pbx.id).unwrap(), pbx);
    assert_eq!(b.setting("broadcast").as_deref(), Some("true"));
    b.set_definition(&1, &lunch.id, SetMode::Hard).unwrap();

    let retire = DefinitionUpdate {
        deactivated: Some(true),
        ..Default::default()
    };
    let retired = b.update_definition(&lunch.id, retire).unwrap();
    let renamed = SourceUpdate {
        name: Some("Phone".into()),
        ..Default::default()
    };
    b.update_source(&pbx.id, renamed).unwrap();
    a.apply(&b.take_outbox());
    assert_eq!(a.store().definition(&lunch.id).unwrap(), retired);
    assert_eq!(a.store().source(&pbx.id).unwrap().name, "Phone");
    assert_eq!(org_view(&a), org_view(&b));

    a.delete_definition(&lunch.id).unwrap();
    a.delete_source(&pbx.id).unwrap();
    b.apply(&a.take_outbox());
    assert!(matches!(
        b.store().definition(&lunch.id),
        Err(Error::UnknownDefinition { .. })
    ));
    assert!(matches!(
        b.store().source(&pbx.id),
        Err(Error::UnknownSource { .. })
    ));
    assert_eq!(org_view(&a), org_view(&b));

    // Checked as the store checks: nothing is stamped or published for a refused write.
    assert!(a.delete_source(&SourceId::DEFAULT).is_err());
    assert!(a
        .create_definition(SystemPresence::Meal, BTreeMap::new())
        .is_err());
    assert!(matches!(
        a.update_source(&pbx.id, SourceUpdate::default()),
        Err(Error::UnknownSource { .. })
    ));
    assert!(a.take_outbox().is_empty());
}

/// A source deleted on one node takes the users' presences from it on the others, whether
/// the deletion arrives before or after the presences.
#[test]
fn a_deleted_source_takes_its_presences_everywhere() {
    let (a, _) = replica("a");
    let (b, _) = replica("b");
    let (late, _) = replica("late");
    let pbx = a.create_source("PBX").unwrap();
    a.heartbeat(&1, 1, Activity::Active).unwrap();
    a.set_source_presence(&1, &pbx.id, &SystemPresence::Busy.id(), None)
        .unwrap();
    a.set_primary_source(&1, &pbx.id).unwrap();
    let made = a.take_outbox();
    b.apply(&made);
    assert_eq!(b.store().get(&1).unwrap().category, Category::Busy);
    b.delete_source(&pbx.id).unwrap();
    let deleted = b.take_outbox();
    a.apply(&deleted);
    late.apply(&deleted);
    late.apply(&made);
    for r in [&a, &b, &late] {
        let p = r.store().get(&1).unwrap();
        assert_eq!(
            (p.category, p.details.source()),
            (Category::Available, None)
        );
        assert_eq!(r.store().primary_source(&1), Some(SourceId::DEFAULT));
        assert_eq!(r.store().source_presence(&1, &pbx.id), None);
    }
    assert_eq!(views(&a), views(&late));
}

/// A joiner that applies a node's full state gets its organization state too.
#[test]
fn a_snapshot_carries_the_organization() {
    let (a, _) = replica("a");
    let labels = BTreeMap::from([("en_US".to_owned(), "Gym".to_owned())]);
    let gym = a.create_definition(SystemPresence::Away, labels).unwrap();
    let gone = a.create_source("Gone").unwrap();
    a.create_source("Calendar").unwrap();
    a.delete_source(&gone.id).unwrap();
    a.set_setting("k", "{\"x\":1}");
    let (c, _) = replica("c");
    c.apply(&a.state_events(true));
    assert_eq!(org_view(&c), org_view(&a));
    assert_eq!(c.store().definition(&gym.id).unwrap(), gym);
    // The deletion travels as a tombstone: the creation arriving late does not revive it.
    let (d, _) = replica("d");
    let create = Event {
        origin: a.node().clone(),
        stamp: Hlc(1),
        op: Op::Source {
            id: gone.id.clone(),
            source: Some(gone.clone()),
        },
    };
    d.apply(&a.state_events(true));
    d.apply([&create]);
    assert_eq!(org_view(&d), org_view(&a));
}

/// Organization state a store already held (restored from disk) goes into snapshots, and
/// loses to any write made anywhere.
#[test]
fn organization_restored_from_disk_is_adopted_at_the_oldest_stamp() {
    let store = Arc::new(PresenceStore::<u8>::new(StoreConfig::default()));
    let kept = store.create_source("Kept").unwrap();
    let a = Replica::new(store, node("a"));
    let (b, _) = replica("b");
    b.apply(&a.state_events(false));
    assert_eq!(b.store().source(&kept.id).unwrap(), kept);
    b.update_source(
        &kept.id,
        SourceUpdate {
            name: Some("Newer".into()),
            ..Default::default()
        },
    )
    .unwrap();
    a.apply(&b.take_outbox());
    assert_eq!(a.store().source(&kept.id).unwrap().name, "Newer");
}
