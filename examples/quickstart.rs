//! A tour of the store: soft and hard sets, sessions that idle and expire, pages, and deltas
//! that follow a cursor. Run it with `cargo run --example quickstart`.

use std::sync::Arc;
use std::time::Duration;

use presence_store::{
    Activity, Category, Clock, ManualClock, PageQuery, PresenceStore, SetMode, Since, StoreConfig,
};

fn main() -> Result<(), presence_store::Error> {
    // A manual clock makes the tour repeatable; services use `PresenceStore::new` (system clock).
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let config = StoreConfig::default()
        .with_session_timeouts(Duration::from_secs(60), Duration::from_secs(120));
    let store: PresenceStore<String> = PresenceStore::with_clock(config, clock.clone());

    let users = ["ada", "grace", "linus", "margaret", "ken", "barbara"];
    for (i, name) in users.iter().enumerate() {
        store.heartbeat(&name.to_string(), i as u64, Activity::Active)?;
    }
    let ada = "ada".to_string();
    store.set(&ada, Category::InAMeeting, SetMode::Hard)?;

    // A soft set on an offline user waits until they come online.
    let ghost = "dennis".to_string();
    store.set(&ghost, Category::Busy, SetMode::Soft)?;
    println!(
        "dennis, soft BUSY while offline: {}",
        store.get(&ghost).unwrap().category
    );

    let first = store.page(&PageQuery::first().with_limit(3))?;
    println!("first page: {:?}", names(&first.items));

    // Things change while a client is paging.
    store.heartbeat(&ghost, 9, Activity::Active)?;
    clock.advance(Duration::from_secs(60));
    let transitions = store.sweep();
    println!("after 60 s without activity, sweep applied {transitions} transitions");

    let rest = store.page(&PageQuery::starting_at(first.next.clone().unwrap()))?;
    println!("next page: {:?}", names(&rest.items));

    // The first page's cursor catches every change the pages may have missed.
    let delta = store.changes_since(&Since::Cursor(first.cursor));
    println!("changed since the first page: {:?}", names(&delta.users));

    // Rocket.Chat style: what changed in the last 30 seconds, and a query older than the window.
    let from = clock.now_ms() - 30_000;
    println!(
        "changed in the last 30 s: {:?}",
        names(&store.changes_since(&Since::Time(from)).users)
    );
    let old = store.changes_since(&Since::Time(clock.now_ms() - 11 * 60_000));
    println!(
        "from 11 minutes ago: full={} reason={:?}, {} users online",
        old.full,
        old.reason,
        old.users.len()
    );
    println!("cursor token for next time: {}", delta.cursor);
    Ok(())
}

fn names(items: &[(String, presence_store::Presence)]) -> Vec<String> {
    items
        .iter()
        .map(|(k, p)| format!("{k}={}", p.category))
        .collect()
}
