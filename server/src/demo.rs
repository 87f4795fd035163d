//! The demo: a believable starting state ([`seed`]) and simulated devices that keep it moving
//! ([`spawn_simulation`]), so a newcomer sees deltas, feeds and the WebSocket change live.
//!
//! Everything goes through the store's public API, the way a real gateway would; errors are
//! ignored (a simulated device has no one to report to) and nothing here can panic. The random
//! numbers come from a tiny xorshift generator with a fixed seed, so every run starts the same.

use std::sync::Arc;
use std::time::Duration;

use presence_store::{Activity, Category, SetMode};
use tokio::task::JoinHandle;

use super::App;

/// How often the simulation acts.
const TICK: Duration = Duration::from_millis(250);
/// The most users the simulation changes per tick.
const CHANGES_PER_TICK: u64 = 4;
/// Ticks between two keep-alive heartbeats of the same user: well under the store's idle time
/// and session TTL (60 s and 120 s by default), so seeded users stay online.
const KEEP_ALIVE_TICKS: usize = 80;
/// The simulated devices of each user: a desktop and a phone.
const DEVICES: [u64; 2] = [1, 2];

/// What users choose for themselves (softly: shown once they are active).
const CHOSEN: [Category; 6] = [
    Category::Available,
    Category::Busy,
    Category::InAMeeting,
    Category::BeRightBack,
    Category::DoNotDisturb,
    Category::OutOfOffice,
];
/// What a calendar or a phone system sets (hard: shown at once).
const IMPOSED: [Category; 3] = [Category::OnThePhone, Category::InAMeeting, Category::Busy];
/// Status messages.
const MESSAGES: [&str; 5] = [
    "Back at 3pm",
    "Heads down on the release",
    "Working from the Lisbon office",
    "On a customer call",
    "Lunch",
];

/// xorshift64: small, fast, and good enough to pick demo users.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced, as xorshift would stay at 0).
    fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next number.
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number below `n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64().checked_rem(n).unwrap_or(0)
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A random element of `items`, or `None` when it is empty.
    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len() as u64) as usize)
    }
}

/// The initial demo state: about 60% of the directory online (three in four active, the rest
/// idle), a third of those with a category they chose, a few on the phone or in a meeting
/// (hard), a few with a status message, and some offline users who chose `OUT_OF_OFFICE`
/// (soft: they stay `OFFLINE` until they come online).
pub fn seed(app: &App) {
    let mut rng = Rng::new(0x5eed);
    for user in app.directory.users() {
        let id = user.id;
        if !rng.chance(60) {
            if rng.chance(10) {
                let _ = app.store.set(&id, Category::OutOfOffice, SetMode::Soft);
            }
            continue;
        }
        let activity = if rng.chance(75) {
            Activity::Active
        } else {
            Activity::Idle
        };
        let _ = app.store.heartbeat(&id, DEVICES[0], activity);
        if rng.chance(33) {
            set_category(app, &mut rng, id, &CHOSEN, SetMode::Soft);
        } else if rng.chance(8) {
            set_category(app, &mut rng, id, &IMPOSED, SetMode::Hard);
        }
        if rng.chance(5) {
            set_message(app, &mut rng, id);
        }
    }
}

/// Seeds the demo state (into an empty store only: a restored one keeps its state), then starts a task that every `TICK` (250 ms) changes a few random users
/// (a device active, idle or gone, a new category or message) and keeps the online ones alive.
/// The task runs until the runtime stops; its handle is for tests (it never finishes).
pub fn spawn_simulation(app: Arc<App>) -> JoinHandle<()> {
    if app.store.is_empty() {
        seed(&app);
    }
    tokio::spawn(async move {
        let mut rng = Rng::new(0xdecaf);
        let mut tick = tokio::time::interval(TICK);
        let mut next_keep_alive = 0;
        loop {
            tick.tick().await;
            for _ in 0..=rng.below(CHANGES_PER_TICK) {
                change_someone(&app, &mut rng);
            }
            next_keep_alive = keep_alive(&app, next_keep_alive);
        }
    })
}

/// One random change to one random user.
fn change_someone(app: &App, rng: &mut Rng) {
    let Some(id) = rng.pick(app.directory.users()).map(|u| u.id) else {
        return;
    };
    let device = rng.pick(&DEVICES).copied().unwrap_or(DEVICES[0]);
    match rng.below(10) {
        0..=3 => {
            let _ = app.store.heartbeat(&id, device, Activity::Active);
        }
        4..=5 => {
            let _ = app.store.heartbeat(&id, device, Activity::Idle);
        }
        6..=7 => {
            let _ = app.store.disconnect(&id, device);
        }
        8 => set_category(app, rng, id, &CHOSEN, SetMode::Soft),
        _ if rng.chance(50) => set_category(app, rng, id, &IMPOSED, SetMode::Hard),
        _ => set_message(app, rng, id),
    }
}

/// Heartbeats the next slice of users with the activity they already have, so online users do
/// not expire; an unchanged activity is not a visible change. Returns where the next slice starts.
fn keep_alive(app: &App, start: usize) -> usize {
    let users = app.directory.users();
    let slice = users.len() / KEEP_ALIVE_TICKS + 1;
    for user in users.iter().skip(start).take(slice) {
        let activity = app.store.get(&user.id).map(|p| p.activity);
        if let Some(activity @ (Activity::Active | Activity::Idle)) = activity {
            let _ = app.store.heartbeat(&user.id, DEVICES[0], activity);
        }
    }
    let next = start + slice;
    if next >= users.len() {
        0
    } else {
        next
    }
}

fn set_category(app: &App, rng: &mut Rng, id: u64, from: &[Category], mode: SetMode) {
    if let Some(&category) = rng.pick(from) {
        let _ = app.store.set(&id, category, mode);
    }
}

fn set_message(app: &App, rng: &mut Rng, id: u64) {
    let message = if rng.chance(30) {
        ""
    } else {
        rng.pick(&MESSAGES).copied().unwrap_or_default()
    };
    let _ = app.store.set_message(&id, message);
}
