//! The WebSocket fan-out driver of `server/load/run.sh`: opens N streams on a running server,
//! reports the server's memory per idle stream, holds them open while the script loads the
//! server over HTTP, then makes changes at a steady rate and reports how many streams received
//! every change and the delivery latency (the change's `updatedAt` to its arrival). Each set it
//! makes is a visible change (it flips a user between two categories, one set of a user at a
//! time), so a stream that got every change got exactly `made` of them.
//!
//! ```text
//! cargo run --release -p presence-server --example fanout -- ids
//! cargo run --release -p presence-server --example fanout -- \
//!     --addr 127.0.0.1:8080 --streams 10000 --tokens A,B --symphony-token S --rate 100 \
//!     --seconds 10 --server-pid PID --hold 15
//! ```
//!
//! The tokens are the ones the server's banner prints (fresh at every start): `--tokens` for
//! the streams (a gateway's, a Rocket.Chat user's, a Symphony bot's; a Genesys client may not
//! stream), `--symphony-token` for the changes it makes.
//!
//! Bounded: every wait has a deadline, and the driver exits when the drive and its grace end.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use parking_lot::Mutex;
use presence_server::directory::User;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// Users the driver changes: the last ones of a 100,000-user demo directory.
const DRIVEN_USERS: usize = 200;
/// Streams opened at once while connecting.
const CONNECTING: usize = 256;
/// What the drive flips each user between: categories the demo simulation does not impose.
const CATEGORIES: [&str; 2] = ["OFF_WORK", "OUT_OF_OFFICE"];
/// Sets in flight at once while driving.
const IN_FLIGHT: usize = 64;

#[derive(Clone, Debug)]
struct Args {
    addr: String,
    streams: usize,
    tokens: Vec<String>,
    rate: u64,
    seconds: u64,
    server_pid: Option<u32>,
    hold: u64,
    directory: usize,
    symphony_token: String,
}

fn parse() -> Result<Option<Args>, String> {
    let mut args = Args {
        addr: "127.0.0.1:8080".into(),
        streams: 1000,
        tokens: Vec::new(),
        rate: 100,
        seconds: 10,
        server_pid: None,
        hold: 0,
        directory: 100_000,
        symphony_token: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        if arg == "ids" {
            return Ok(None);
        }
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{v}: {e}"));
        match arg.as_str() {
            "--addr" => args.addr = value()?,
            "--streams" => args.streams = number(value()?)? as usize,
            "--tokens" => args.tokens = value()?.split(',').map(str::to_string).collect(),
            "--rate" => args.rate = number(value()?)?.max(1),
            "--seconds" => args.seconds = number(value()?)?,
            "--server-pid" => args.server_pid = Some(number(value()?)? as u32),
            "--hold" => args.hold = number(value()?)?,
            "--users" => args.directory = number(value()?)? as usize,
            "--symphony-token" => args.symphony_token = value()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.tokens.is_empty() || args.symphony_token.is_empty() {
        return Err("--tokens and --symphony-token are required (the server's banner)".into());
    }
    Ok(Some(args))
}

/// The server's resident memory in KiB, from /proc.
fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The fields of a stream message the driver reads (borrowed: the driver shares the machine
/// with the server, so it spends as little as it can per message).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Received<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default)]
    user_id: u64,
    #[serde(default)]
    updated_at: u64,
}

/// What one stream saw.
#[derive(Default)]
struct Seen {
    /// Changes of driven users made during the drive.
    driven: AtomicU64,
    lagged: AtomicU64,
    /// Delivery latencies of driven changes, in ms.
    latencies: Mutex<Vec<u32>>,
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let Some(args) = parse()? else {
        let first = User::demo(0);
        println!("{} {} {}", first.id, first.rc_id, first.genesys_id);
        return Ok(());
    };
    let driven: Arc<HashSet<u64>> = Arc::new(
        (args.directory.saturating_sub(DRIVEN_USERS)..args.directory)
            .map(|n| User::demo(n).id)
            .collect(),
    );
    let drive_start = Arc::new(AtomicU64::new(u64::MAX));
    let open = Arc::new(AtomicUsize::new(0));

    let rss_before = rss_kib(args.server_pid);
    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(CONNECTING));
    let mut seen = Vec::with_capacity(args.streams);
    let mut hellos = Vec::with_capacity(args.streams);
    for i in 0..args.streams {
        let stat = Arc::new(Seen::default());
        seen.push(Arc::clone(&stat));
        let (driven, drive_start, open, gate) = (
            Arc::clone(&driven),
            Arc::clone(&drive_start),
            Arc::clone(&open),
            Arc::clone(&gate),
        );
        let url = format!("ws://{}/devices/v1/stream", args.addr);
        let token = args.tokens[i % args.tokens.len()].clone();
        let (hello_tx, hello_rx) = tokio::sync::oneshot::channel::<bool>();
        hellos.push(hello_rx);
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let Ok(mut request) = url.into_client_request() else {
                return;
            };
            let Ok(auth) = format!("Bearer {token}").parse() else {
                return;
            };
            request.headers_mut().insert("Authorization", auth);
            let socket = tokio::time::timeout(
                Duration::from_secs(30),
                tokio_tungstenite::connect_async(request),
            )
            .await;
            let Ok(Ok((mut socket, _))) = socket else {
                let _ = hello_tx.send(false);
                return;
            };
            let hello = tokio::time::timeout(Duration::from_secs(30), socket.next()).await;
            drop(permit);
            let said_hello = matches!(hello, Ok(Some(Ok(Message::Text(_)))));
            let _ = hello_tx.send(said_hello);
            if !said_hello {
                return;
            }
            open.fetch_add(1, Ordering::Relaxed);
            while let Some(Ok(message)) = socket.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let arrived = now_ms();
                let Ok(event) = serde_json::from_str::<Received>(&text) else {
                    continue;
                };
                match event.kind {
                    "change" => {
                        let (user, at) = (event.user_id, event.updated_at);
                        if driven.contains(&user) && at >= drive_start.load(Ordering::Relaxed) {
                            stat.driven.fetch_add(1, Ordering::Relaxed);
                            let latency = arrived.saturating_sub(at).min(u32::MAX as u64);
                            stat.latencies.lock().push(latency as u32);
                        }
                    }
                    "lagged" => {
                        stat.lagged.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
    let mut opened = 0;
    for hello in hellos {
        if hello.await.unwrap_or(false) {
            opened += 1;
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_open = rss_kib(args.server_pid);
    println!(
        "streams: {opened} of {} open in {connect_secs:.1} s",
        args.streams
    );
    if let (Some(before), Some(after)) = (rss_before, rss_open) {
        let per = (after.saturating_sub(before) * 1024) as f64 / opened.max(1) as f64;
        println!(
            "server rss: {before} KiB before, {after} KiB with the streams open: {:.1} KiB per idle stream",
            per / 1024.0
        );
    }
    if args.hold > 0 {
        println!("HOLDING {} s", args.hold);
        tokio::time::sleep(Duration::from_secs(args.hold)).await;
        println!(
            "streams still open after the hold: {}",
            open.load(Ordering::Relaxed)
        );
    }

    // The drive: `rate` visible changes a second, each a hard set through Symphony that flips a
    // driven user between two categories the demo simulation does not impose.
    let client = reqwest::Client::new();
    let users: Vec<u64> = driven.iter().copied().collect();
    // Each user's first set must differ from what it shows now (an earlier run may have left
    // it at either category), so that every set is a visible change.
    let mut flipped = Vec::with_capacity(users.len());
    for user in &users {
        let url = format!("http://{}/pod/v3/user/{user}/presence", args.addr);
        let shown = match client
            .get(url)
            .header("sessionToken", &args.symphony_token)
            .send()
            .await
        {
            Ok(r) => r.json::<serde_json::Value>().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        flipped.push(shown["category"] == CATEGORIES[0]);
    }
    drive_start.store(now_ms(), Ordering::Relaxed);
    let made = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let flights = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let total = args.rate * args.seconds;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    // One set of a user at a time, in the order made: two sets of one user in flight together
    // could land in either order, and a set landing on the category it sets is no change, so
    // `made` would count a change no stream can see.
    let in_flight: Vec<Arc<tokio::sync::Mutex<()>>> =
        users.iter().map(|_| Arc::default()).collect();
    let drive = Instant::now();
    let url = format!("http://{}/pod/v3/user/presence", args.addr);
    for i in 0..total {
        tick.tick().await;
        let Ok(permit) = Arc::clone(&flights).acquire_owned().await else {
            break;
        };
        let n = i as usize % users.len();
        let previous_done = Arc::clone(&in_flight[n]).lock_owned().await;
        let user = users[n];
        let category = CATEGORIES[(i as usize / users.len() + usize::from(flipped[n])) % 2];
        let request = client
            .post(&url)
            .header("sessionToken", &args.symphony_token)
            .json(&serde_json::json!({ "userId": user, "category": category }));
        let (made, failed) = (Arc::clone(&made), Arc::clone(&failed));
        tokio::spawn(async move {
            match request.send().await {
                Ok(r) if r.status().is_success() => made.fetch_add(1, Ordering::Relaxed),
                _ => failed.fetch_add(1, Ordering::Relaxed),
            };
            drop((permit, previous_done));
        });
    }
    let _ = flights.acquire_many(IN_FLIGHT as u32).await;
    let drive_secs = drive.elapsed().as_secs_f64();
    let made = made.load(Ordering::Relaxed);
    let grace = Instant::now();
    while grace.elapsed() < Duration::from_secs(20) {
        if seen
            .iter()
            .all(|s| s.driven.load(Ordering::Relaxed) >= made)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let complete = seen
        .iter()
        .filter(|s| {
            s.driven.load(Ordering::Relaxed) >= made && s.lagged.load(Ordering::Relaxed) == 0
        })
        .count();
    let lagged = seen
        .iter()
        .filter(|s| s.lagged.load(Ordering::Relaxed) > 0)
        .count();
    let least = seen
        .iter()
        .map(|s| s.driven.load(Ordering::Relaxed))
        .min()
        .unwrap_or(0);
    let mut latencies: Vec<u32> = seen
        .iter()
        .flat_map(|s| std::mem::take(&mut *s.latencies.lock()))
        .collect();
    latencies.sort_unstable();
    println!(
        "drive: {made} changes ({} failed) in {drive_secs:.1} s = {:.0}/s to {opened} streams",
        failed.load(Ordering::Relaxed),
        made as f64 / drive_secs
    );
    println!(
        "delivery: {complete} of {opened} streams received every change (least {least} of {made}); {lagged} lagged"
    );
    println!(
        "latency ms over {} deliveries: p50 {} p99 {} max {}",
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0)
    );
    if let Some(rss) = rss_kib(args.server_pid) {
        println!("server rss after the drive: {rss} KiB");
    }
    Ok(())
}
