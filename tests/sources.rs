//! Genesys' presence definitions and presence sources, through the store: setting by
//! definition, per-source presences, the primary source, and deleting a source.

use std::collections::BTreeMap;
use std::sync::Arc;

use presence_store::{
    Activity, Category, DefinitionId, DefinitionUpdate, Error, ManualClock, PresenceStore, SetMode,
    Since, SourceId, SourceUpdate, StoreConfig, SystemPresence,
};

const T0: u64 = 1_700_000_000_000;

fn store() -> PresenceStore<u64> {
    let clock = Arc::new(ManualClock::new(T0));
    PresenceStore::with_clock(StoreConfig::default().with_shards(4), clock)
}

fn labels(label: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("en_US".to_string(), label.to_string())])
}

fn id(s: &str) -> DefinitionId {
    DefinitionId::new(s).unwrap()
}

fn purecloud() -> SourceId {
    SourceId::DEFAULT
}

#[test]
fn setting_by_definition_keeps_its_id_and_maps_the_category() {
    let s = store();
    let lunch = s
        .create_definition(SystemPresence::Meal, labels("Lunch"))
        .unwrap();
    let p = s.set_definition(&1, &lunch.id, SetMode::Hard).unwrap();
    assert_eq!(
        (p.category, p.details.definition()),
        (Category::Away, Some(&lunch.id))
    );
    // A plain set forgets the definition; a system definition works like any other.
    let p = s.set(&1, Category::Busy, SetMode::Hard).unwrap();
    assert_eq!(p.details.definition().cloned(), None);
    let p = s.set_definition(&1, &id("MEETING"), SetMode::Hard).unwrap();
    assert_eq!(
        (p.category, p.details.definition().cloned()),
        (Category::InAMeeting, Some(id("MEETING")))
    );
}

#[test]
fn a_change_of_definition_alone_is_a_logged_visible_change() {
    let s = store();
    let a = s
        .create_definition(SystemPresence::Busy, labels("Focus"))
        .unwrap();
    let b = s
        .create_definition(SystemPresence::Busy, labels("Deep work"))
        .unwrap();
    s.set_definition(&1, &a.id, SetMode::Hard).unwrap();
    let c = s.cursor();
    let p = s.set_definition(&1, &b.id, SetMode::Hard).unwrap();
    assert_eq!(p.category, Category::Busy);
    let d = s.changes_since(&Since::Cursor(c));
    assert_eq!(d.users.len(), 1);
    assert_eq!(
        d.users[0].1.details.definition().cloned(),
        Some(b.id.clone())
    );
    // The same again is no change.
    let c = s.cursor();
    s.set_definition(&1, &b.id, SetMode::Hard).unwrap();
    assert!(s.changes_since(&Since::Cursor(c)).users.is_empty());
}

#[test]
fn unknown_and_deactivated_definitions_cannot_be_set() {
    let s = store();
    let d = s
        .create_definition(SystemPresence::Break, labels("Coffee"))
        .unwrap();
    s.update_definition(
        &d.id,
        DefinitionUpdate {
            deactivated: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(matches!(
        s.set_definition(&1, &d.id, SetMode::Hard),
        Err(Error::DeactivatedDefinition { .. })
    ));
    assert!(matches!(
        s.set_definition(&1, &id("nope"), SetMode::Hard),
        Err(Error::UnknownDefinition { .. })
    ));
    assert_eq!(s.len(), 0, "a refused set adds no user");
    // Listed still, saying it is deactivated.
    assert!(s
        .definitions()
        .iter()
        .any(|x| x.id == d.id && x.deactivated));
    assert!(matches!(
        s.delete_definition(&id("AVAILABLE")),
        Err(Error::SystemDefinition { .. })
    ));
}

#[test]
fn others_see_the_primary_sources_presence() {
    let s = store();
    let teams = s.create_source("Teams").unwrap();
    s.heartbeat(&1, 1, Activity::Active).unwrap();
    // A presence from a source that is not primary is kept but not shown, nor logged.
    let c = s.cursor();
    let p = s
        .set_source_presence(&1, &teams.id, &id("BUSY"), Some("in a call"))
        .unwrap();
    assert_eq!(
        (p.category, p.details.message()),
        (Category::Busy, Some("in a call"))
    );
    assert_eq!(s.get(&1).unwrap().category, Category::Available);
    assert!(s.changes_since(&Since::Cursor(c)).users.is_empty());
    assert_eq!(s.primary_source(&1), Some(purecloud()));
    // Made primary, it shows, with its message and the source named.
    let c = s.cursor();
    let p = s.set_primary_source(&1, &teams.id).unwrap();
    assert_eq!(
        (p.category, p.details.message(), p.details.source()),
        (Category::Busy, Some("in a call"), Some(&teams.id))
    );
    assert_eq!(s.changes_since(&Since::Cursor(c)).users.len(), 1);
    assert_eq!(s.primary_source(&1), Some(teams.id.clone()));
    // Sessions keep acting on the default source, which still holds its own presence.
    let own = s.source_presence(&1, &purecloud()).unwrap();
    assert_eq!(
        (own.category, own.details.source().cloned()),
        (Category::Available, None)
    );
    // Back to the default.
    let p = s
        .set_primary_source(&1, &SourceId::new("purecloud").unwrap())
        .unwrap();
    assert_eq!(
        (p.category, p.details.source().cloned()),
        (Category::Available, None)
    );
}

#[test]
fn the_default_source_presence_is_a_hard_set_by_definition_with_a_message() {
    let s = store();
    let p = s
        .set_source_presence(&1, &purecloud(), &id("AWAY"), Some("back at 2"))
        .unwrap();
    assert_eq!(
        (
            p.category,
            p.details.definition().cloned(),
            p.details.message()
        ),
        (Category::Away, Some(id("AWAY")), Some("back at 2"))
    );
    assert_eq!(s.get(&1).unwrap(), p);
}

#[test]
fn deleting_a_source_moves_its_users_back_to_the_default_and_logs_it() {
    let s = store();
    let cal = s.create_source("Calendar").unwrap();
    for u in 0..10 {
        s.heartbeat(&u, 1, Activity::Active).unwrap();
        s.set_source_presence(&u, &cal.id, &id("MEETING"), None)
            .unwrap();
    }
    for u in 0..5 {
        s.set_primary_source(&u, &cal.id).unwrap();
    }
    assert_eq!(s.get(&0).unwrap().category, Category::InAMeeting);
    let c = s.cursor();
    s.delete_source(&cal.id).unwrap();
    let mut changed: Vec<u64> = s
        .changes_since(&Since::Cursor(c))
        .users
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    changed.sort_unstable();
    assert_eq!(changed, [0, 1, 2, 3, 4]);
    for u in 0..10 {
        let p = s.get(&u).unwrap();
        assert_eq!(
            (p.category, p.details.source().cloned()),
            (Category::Available, None)
        );
        assert_eq!(s.source_presence(&u, &cal.id), None);
    }
    assert!(matches!(
        s.source(&cal.id),
        Err(Error::UnknownSource { .. })
    ));
    assert_eq!(s.delete_source(&purecloud()), Err(Error::DefaultSource));
}

#[test]
fn bad_source_calls_are_errors_that_change_nothing() {
    let s = store();
    let off = {
        let created = s.create_source("Old PBX").unwrap();
        let retire = SourceUpdate {
            deactivated: Some(true),
            ..Default::default()
        };
        s.update_source(&created.id, retire).unwrap()
    };
    let unknown = SourceId::new("no-such-source").unwrap();
    assert!(matches!(
        s.set_source_presence(&1, &off.id, &id("BUSY"), None),
        Err(Error::DeactivatedSource { .. })
    ));
    assert!(matches!(
        s.set_source_presence(&1, &unknown, &id("BUSY"), None),
        Err(Error::UnknownSource { .. })
    ));
    assert!(matches!(
        s.set_primary_source(&1, &off.id),
        Err(Error::UnknownUser { .. })
    ));
    assert_eq!(s.len(), 0);
    s.set(&1, Category::Busy, SetMode::Hard).unwrap();
    assert!(matches!(
        s.set_primary_source(&1, &unknown),
        Err(Error::UnknownSource { .. })
    ));
    assert_eq!(s.primary_source(&1), Some(purecloud()));
    assert_eq!(
        s.update_source(
            &purecloud(),
            SourceUpdate {
                deactivated: Some(true),
                ..Default::default()
            }
        ),
        Err(Error::DefaultSource)
    );
    let long = "x".repeat(2000);
    assert!(matches!(
        s.set_source_presence(&1, &purecloud(), &id("BUSY"), Some(&long)),
        Err(Error::MessageTooLong { .. })
    ));
    assert_eq!(s.get(&1).unwrap().details.message(), None);
}

#[test]
fn removing_a_user_forgets_its_sources_and_definition() {
    let s = store();
    let teams = s.create_source("Teams").unwrap();
    s.set_definition(&1, &id("BUSY"), SetMode::Hard).unwrap();
    s.set_source_presence(&1, &teams.id, &id("AWAY"), None)
        .unwrap();
    s.set_primary_source(&1, &teams.id).unwrap();
    s.remove(&1).unwrap();
    let p = s.set(&1, Category::Busy, SetMode::Hard).unwrap();
    assert_eq!(
        (p.details.definition().cloned(), p.details.source().cloned()),
        (None, None)
    );
    assert_eq!(s.source_presence(&1, &teams.id), None);
}
