//! Following presence without polling everyone: a Symphony-style feed read in batches, a push
//! subscription that lags and resyncs, and a Genesys-style source and definition.
//! Run it with `cargo run --example feeds`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use presence_store::{
    Activity, Category, DefinitionId, Event, ManualClock, PresenceStore, SetMode, Since,
    StoreConfig, SubscribeOptions, SystemPresence,
};

fn main() -> Result<(), presence_store::Error> {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store: PresenceStore<u64> =
        PresenceStore::with_clock(StoreConfig::default(), clock.clone());

    // A feed remembers where its reader is; each read resumes exactly after the last.
    let feed = store.create_feed()?;
    // A subscriber with room for 4 events: it will fall behind and resync.
    let sub = store.subscribe(SubscribeOptions {
        capacity: 4,
        users: None,
    });

    for user in 1..=10u64 {
        clock.advance(Duration::from_millis(5));
        store.heartbeat(&user, 1, Activity::Active)?;
    }
    store.set(&3, Category::Busy, SetMode::Hard)?;

    loop {
        let read = store.read_feed(&feed, 4)?;
        let users: Vec<String> = read
            .users
            .iter()
            .map(|(u, p)| format!("{u}={}", p.category))
            .collect();
        println!("feed read: {users:?} (more: {})", read.more);
        if !read.more {
            break;
        }
    }

    let (mut events, mut resynced) = (0, 0);
    while let Some(event) = sub.try_recv() {
        match event {
            Event::Change { .. } => events += 1,
            Event::Lagged { resume } => {
                resynced += store.changes_since(&Since::Cursor(resume)).users.len();
            }
        }
    }
    println!("subscriber: {events} events, then lagged and resynced {resynced} users");

    // Genesys: an organization definition over a system presence, and a second source.
    let labels = BTreeMap::from([("en_US".to_string(), "Lunch".to_string())]);
    let lunch = store.create_definition(SystemPresence::Meal, labels)?;
    let p = store.set_definition(&4, &lunch.id, SetMode::Hard)?;
    println!(
        "user 4 set to 'Lunch': shows {} (definition {})",
        p.category, lunch.id
    );

    let teams = store.create_source("Teams")?;
    let busy = DefinitionId::new("BUSY")?;
    store.set_source_presence(&5, &teams.id, &busy, Some("in a Teams call"))?;
    println!(
        "user 5 before Teams is primary: {}",
        store.get(&5).unwrap().category
    );
    let p = store.set_primary_source(&5, &teams.id)?;
    println!(
        "user 5 with Teams primary: {} {:?}",
        p.category,
        p.details.message()
    );
    Ok(())
}
