//! [`Cluster`]: one node's replication tasks on tokio: publishing the replica's outbox,
//! reading and applying the log, liveness and failure handling, and the session sweep.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use presence_store::replica::Event;
use presence_store::{Key, NodeId, PresenceStore, Replica};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::codec::{decode, encode};
use crate::transport::{Position, Transport};
use crate::ClusterError;

/// How a node replicates. `Default` gives Phoenix-beating timings: liveness refreshed every
/// second with a 3 s time to live (a lost node's sessions go within ~4 s), the outbox published
/// every 2 ms.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The node's name; its id in the cluster is `name/incarnation`, new at every start, so a
    /// restarted node is a new node and the old one's sessions go when its key lapses.
    pub name: String,
    /// How long a node's liveness key lives without a refresh.
    pub liveness_ttl: Duration,
    /// How often the key is refreshed and the others' checked.
    pub liveness_every: Duration,
    /// How often the outbox is published.
    pub publish_every: Duration,
    /// Most events per log entry.
    pub batch_events: usize,
    /// Most entries per read.
    pub read_entries: usize,
    /// How long a read waits for an entry.
    pub read_block: Duration,
    /// How often the replica sweeps (idles and expires this node's sessions); `None` if the
    /// host calls [`Replica::sweep`] itself.
    pub sweep_every: Option<Duration>,
    /// How often a node checks whether the log was trimmed past the snapshot (and then writes
    /// one).
    pub snapshot_check_every: Duration,
    /// Keeps a copy of every entry published, for [`Cluster::published_entries`] (checkers
    /// and tests; it grows without bound).
    pub record_published: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            name: "node".to_owned(),
            liveness_ttl: Duration::from_secs(3),
            liveness_every: Duration::from_secs(1),
            publish_every: Duration::from_millis(2),
            batch_events: 512,
            read_entries: 256,
            read_block: Duration::from_millis(500),
            sweep_every: Some(Duration::from_secs(1)),
            snapshot_check_every: Duration::from_secs(5),
            record_published: false,
        }
    }
}

/// What a node counts, for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    queued: AtomicU64,
    published: AtomicU64,
    applied: AtomicU64,
    entries_published: AtomicU64,
    bytes_published: AtomicU64,
    lag_ms: AtomicU64,
    peers: AtomicU64,
    nodes_down: AtomicU64,
    republished: AtomicU64,
    republished_events: AtomicU64,
    broker_errors: AtomicU64,
}

/// A reading of [`Metrics`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Events of local writes taken from the replica's outbox to publish.
    pub queued: u64,
    /// Events this node published.
    pub published: u64,
    /// Other nodes' events this node applied.
    pub applied: u64,
    /// Log entries this node published (each a batch of events).
    pub entries_published: u64,
    /// Bytes of those entries.
    pub bytes_published: u64,
    /// How old (broker time to local time) the last entry read was when it was applied, ms.
    pub lag_ms: u64,
    /// Other nodes alive at the last liveness check.
    pub peers: u64,
    /// Nodes this node declared down.
    pub nodes_down: u64,
    /// Times this node republished what it holds (rejoin, broker lost its data).
    pub republished: u64,
    /// Events those republishes queued (`published` counts them once sent, as it does the
    /// `queued` ones).
    pub republished_events: u64,
    /// Broker calls that failed (each retried).
    pub broker_errors: u64,
}

impl Metrics {
    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MetricsSnapshot {
            queued: get(&self.queued),
            published: get(&self.published),
            applied: get(&self.applied),
            entries_published: get(&self.entries_published),
            bytes_published: get(&self.bytes_published),
            lag_ms: get(&self.lag_ms),
            peers: get(&self.peers),
            nodes_down: get(&self.nodes_down),
            republished: get(&self.republished),
            republished_events: get(&self.republished_events),
            broker_errors: get(&self.broker_errors),
        }
    }
}

fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

/// Nothing to republish.
const NOTHING: u8 = 0;
/// Republish this node's own sessions.
const SESSIONS: u8 = 1;
/// Republish every register held and this node's own sessions.
const EVERYTHING: u8 = 2;

/// Asks the publisher to republish at least `what`.
fn ask_republish(shared: &Shared, what: u8) {
    shared.republish.fetch_max(what, Ordering::Relaxed);
}

/// State the tasks share.
struct Shared {
    metrics: Metrics,
    stop: AtomicBool,
    /// Set by [`Cluster::kill`]: the publisher stops without publishing what it holds.
    killed: AtomicBool,
    paused: AtomicBool,
    /// Set when the broker lost its data: the reader starts over from the log's start.
    restart_read: AtomicBool,
    /// What this node must republish: [`NOTHING`], [`SESSIONS`] (its own, which the others
    /// dropped if they declared it down) or [`EVERYTHING`] (the broker lost the log).
    republish: AtomicU8,
    ready: watch::Sender<bool>,
    /// Every other node this one has heard of (members, publishers read): their liveness is
    /// checked even after the broker forgot them.
    seen: parking_lot::Mutex<std::collections::HashSet<String>>,
    /// Every entry published, when recording.
    recorded: Option<parking_lot::Mutex<Vec<Vec<u8>>>>,
}

/// One node of a cluster: a [`Replica`] kept in step with the others through a [`Transport`].
/// Write through [`replica`](Cluster::replica); read the store directly.
pub struct Cluster<K> {
    replica: Arc<Replica<K>>,
    shared: Arc<Shared>,
    ready: watch::Receiver<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl<K> std::fmt::Debug for Cluster<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A random hex string from the OS CSPRNG.
fn random_hex() -> String {
    let mut bytes = [0u8; 4];
    // Uniqueness, not secrecy: a failed CSPRNG falls back to the clock.
    if getrandom::getrandom(&mut bytes).is_err() {
        bytes = (now_ms() as u32).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new node id for a node named `name`: `name/incarnation`, the incarnation random, so a
/// restarted node is a new node. A name that makes no valid id is [`ClusterError::Config`].
pub fn node_id(name: &str) -> Result<NodeId, ClusterError> {
    NodeId::new(&format!("{name}/{}", random_hex()))
        .map_err(|e| ClusterError::Config(e.to_string()))
}

/// Stream ids compare as (ms, seq).
fn position_key(p: &Position) -> (u64, u64) {
    let mut parts = p.0.split('-').map(|s| s.parse::<u64>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

impl<K: Key + Serialize + DeserializeOwned> Cluster<K> {
    /// Joins the cluster: registers this node alive, starts from the snapshot if one is stored
    /// (else from the log's start), and starts the tasks. The node serves its own writes at
    /// once; it is [ready](Self::wait_ready) once it has applied the log as it stood at the
    /// join and dropped the sessions of nodes no longer alive.
    pub async fn join<T: Transport>(
        store: Arc<PresenceStore<K>>,
        transport: T,
        config: ClusterConfig,
    ) -> Result<Self, ClusterError> {
        let replica = Arc::new(Replica::new(store, node_id(&config.name)?));
        Self::join_replica(replica, transport, config).await
    }

    /// [`join`](Self::join) with a replica made beforehand (its node id from [`node_id`]), for a
    /// host that hands the replica to its handlers before the cluster starts.
    pub async fn join_replica<T: Transport>(
        replica: Arc<Replica<K>>,
        transport: T,
        config: ClusterConfig,
    ) -> Result<Self, ClusterError> {
        let node = replica.node().clone();
        let transport = Arc::new(transport);
        let epoch = transport.epoch(&random_hex()).await?;
        transport
            .refresh(node.as_str(), config.liveness_ttl)
            .await?;
        let mut start = Position::start();
        if let Some((at, data)) = transport.snapshot().await? {
            let snapshot = decode::<K>(&data)?;
            replica.apply(&snapshot.events);
            start = at;
        }
        if let Some(first) = transport.trimmed_before().await? {
            if position_key(&first) > position_key(&start) {
                tracing::warn!(%first, "the log was trimmed past the snapshot: history is missing");
            }
        }
        let target = transport.head().await?;
        let (ready_tx, ready) = watch::channel(false);
        let shared = Arc::new(Shared {
            metrics: Metrics::default(),
            stop: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            restart_read: AtomicBool::new(false),
            republish: AtomicU8::new(NOTHING),
            ready: ready_tx,
            seen: parking_lot::Mutex::new(std::collections::HashSet::new()),
            recorded: config
                .record_published
                .then(|| parking_lot::Mutex::new(Vec::new())),
        });
        let tasks = vec![
            tokio::spawn(publish_loop(
                replica.clone(),
                transport.clone(),
                shared.clone(),
                config.clone(),
            )),
            tokio::spawn(read_loop(
                replica.clone(),
                transport.clone(),
                shared.clone(),
                config.clone(),
                start,
                target,
            )),
            tokio::spawn(liveness_loop(
                replica.clone(),
                transport,
                shared.clone(),
                config,
                epoch,
            )),
        ];
        Ok(Cluster {
            replica,
            shared,
            ready,
            tasks,
        })
    }

    /// The replica: write through it.
    pub fn replica(&self) -> &Arc<Replica<K>> {
        &self.replica
    }

    /// The store: read it.
    pub fn store(&self) -> &Arc<PresenceStore<K>> {
        self.replica.store()
    }

    /// This node's id (`name/incarnation`).
    pub fn node(&self) -> &NodeId {
        self.replica.node()
    }

    /// The counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics.snapshot()
    }

    /// Whether the node has caught up with the log as it stood at the join.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until the node [is ready](Self::is_ready).
    pub async fn wait_ready(&self) {
        let mut ready = self.ready.clone();
        // The sender lives as long as `self`; an error cannot happen while we wait.
        let _ = ready.wait_for(|r| *r).await;
    }

    /// Every entry this node published, if [`ClusterConfig::record_published`].
    pub fn published_entries(&self) -> Vec<Vec<u8>> {
        self.shared
            .recorded
            .as_ref()
            .map(|r| r.lock().clone())
            .unwrap_or_default()
    }

    /// Pauses or resumes applying the log (the node goes on serving and publishing); for
    /// maintenance and for tests of a lagging consumer.
    pub fn pause_reading(&self, paused: bool) {
        self.shared.paused.store(paused, Ordering::Relaxed);
    }

    /// Stops the tasks after publishing what the outbox holds (waiting at most about a second
    /// for the broker).
    pub async fn shutdown(self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let mut tasks = self.tasks.into_iter();
        if let Some(publisher) = tasks.next() {
            let _ = tokio::time::timeout(Duration::from_secs(2), publisher).await;
        }
        for task in tasks {
            task.abort();
        }
    }

    /// Stops the tasks, publishing nothing more (a publish under way completes): as if the
    /// process died. Returns what [`published_entries`](Self::published_entries) would.
    pub async fn kill(self) -> Vec<Vec<u8>> {
        self.shared.killed.store(true, Ordering::Relaxed);
        self.shared.stop.store(true, Ordering::Relaxed);
        let mut tasks = self.tasks.into_iter();
        if let Some(publisher) = tasks.next() {
            let _ = publisher.await;
        }
        for task in tasks {
            task.abort();
        }
        self.shared
            .recorded
            .as_ref()
            .map(|r| r.lock().clone())
            .unwrap_or_default()
    }
}

/// Publishes the outbox, in order, retrying until the broker takes it; and republishes what
/// the node holds when asked.
async fn publish_loop<K: Key + Serialize, T: Transport>(
    replica: Arc<Replica<K>>,
    transport: Arc<T>,
    shared: Arc<Shared>,
    config: ClusterConfig,
) {
    let mut pending: VecDeque<Event<K>> = VecDeque::new();
    let mut seq = 0u64;
    let mut failures = 0u32;
    loop {
        let stopping = shared.stop.load(Ordering::Relaxed);
        if shared.killed.load(Ordering::Relaxed) {
            return;
        }
        let what = shared.republish.swap(NOTHING, Ordering::Relaxed);
        if what != NOTHING {
            let r = replica.clone();
            let state = tokio::task::spawn_blocking(move || match what {
                SESSIONS => r.own_sessions(),
                _ => r.state_events(false),
            })
            .await
            .unwrap_or_default();
            add(&shared.metrics.republished, 1);
            add(&shared.metrics.republished_events, state.len() as u64);
            pending.extend(state);
        }
        let taken = replica.take_outbox();
        add(&shared.metrics.queued, taken.len() as u64);
        pending.extend(taken);
        while !pending.is_empty() && !shared.killed.load(Ordering::Relaxed) {
            let n = pending.len().min(config.batch_events.max(1));
            let batch: Vec<Event<K>> = pending.range(..n).cloned().collect();
            let entry = encode(replica.node(), seq, &batch);
            let bytes = entry.len() as u64;
            let copy = shared.recorded.as_ref().map(|_| entry.clone());
            match transport.publish(entry).await {
                Ok(_) => {
                    if let (Some(recorded), Some(copy)) = (&shared.recorded, copy) {
                        recorded.lock().push(copy);
                    }
                    pending.drain(..n);
                    seq += n as u64;
                    failures = 0;
                    let m = &shared.metrics;
                    add(&m.published, n as u64);
                    add(&m.entries_published, 1);
                    add(&m.bytes_published, bytes);
                }
                Err(e) => {
                    add(&shared.metrics.broker_errors, 1);
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(error = %e, pending = pending.len(), "publishing failed; retrying");
                    }
                    if stopping && failures > 5 {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    break;
                }
            }
        }
        if stopping && pending.is_empty() {
            return;
        }
        tokio::time::sleep(config.publish_every).await;
    }
}

/// Reads the log and applies the other nodes' events; marks the node ready once it reached
/// `target`, and writes a snapshot when the log was trimmed past the stored one.
async fn read_loop<K: Key + Serialize + DeserializeOwned, T: Transport>(
    replica: Arc<Replica<K>>,
    transport: Arc<T>,
    shared: Arc<Shared>,
    config: ClusterConfig,
    mut position: Position,
    target: Option<Position>,
) {
    let mut ready = false;
    let mut last_snapshot_check = tokio::time::Instant::now();
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        if shared.paused.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        if shared.restart_read.swap(false, Ordering::Relaxed) {
            position = Position::start();
        }
        let entries = match transport
            .read(&position, config.read_entries, config.read_block)
            .await
        {
            Ok(entries) => entries,
            Err(e) => {
                add(&shared.metrics.broker_errors, 1);
                tracing::debug!(error = %e, "reading the log failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let read_any = !entries.is_empty();
        let mut batch: Vec<Event<K>> = Vec::new();
        for (at, bytes) in entries {
            position = at;
            let decoded = match decode::<K>(&bytes) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, %position, "skipping an entry");
                    continue;
                }
            };
            if decoded.publisher == *replica.node() {
                continue;
            }
            {
                let mut seen = shared.seen.lock();
                if !seen.contains(decoded.publisher.as_str()) {
                    seen.insert(decoded.publisher.to_string());
                }
            }
            if replica.is_down(&decoded.publisher) {
                // It published, so it may be back: believe its liveness key, not the entry (a
                // lagging reader may be reading a dead node's last words).
                if let Ok(alive) = transport.alive(&[decoded.publisher.to_string()]).await {
                    if alive.first() == Some(&true) {
                        replica.node_up(&decoded.publisher);
                    }
                }
            }
            batch.extend(decoded.events);
        }
        if !batch.is_empty() {
            // Applying takes the store's locks and may take a while: off the async workers.
            let n = batch.len() as u64;
            let r = replica.clone();
            let _ = tokio::task::spawn_blocking(move || r.apply(&batch)).await;
            add(&shared.metrics.applied, n);
        }
        if read_any {
            if let Some(ms) = position.millis() {
                shared
                    .metrics
                    .lag_ms
                    .store(now_ms().saturating_sub(ms), Ordering::Relaxed);
            }
        }
        if !ready
            && target
                .as_ref()
                .is_none_or(|t| position_key(&position) >= position_key(t))
        {
            drop_dead_origins(&replica, &*transport, &shared).await;
            ready = true;
            shared.ready.send_replace(true);
        }
        if last_snapshot_check.elapsed() >= config.snapshot_check_every {
            last_snapshot_check = tokio::time::Instant::now();
            snapshot_if_trimmed(&replica, &*transport, &position).await;
        }
    }
}

/// Declares down every node whose sessions the replica holds but whose liveness key is gone
/// (a joiner learns of long-dead nodes from the log).
async fn drop_dead_origins<K: Key, T: Transport>(
    replica: &Replica<K>,
    transport: &T,
    shared: &Shared,
) {
    let origins: Vec<String> = replica.origins().iter().map(|n| n.to_string()).collect();
    let Ok(alive) = transport.alive(&origins).await else {
        return;
    };
    for (origin, alive) in origins.iter().zip(alive) {
        if !alive {
            if let Ok(node) = NodeId::new(origin) {
                replica.node_down(&node);
                add(&shared.metrics.nodes_down, 1);
            }
        }
    }
}

/// Writes a snapshot at `position` if the log was trimmed past the stored snapshot, so a
/// joiner never needs what the log no longer holds.
async fn snapshot_if_trimmed<K: Key + Serialize, T: Transport>(
    replica: &Replica<K>,
    transport: &T,
    position: &Position,
) {
    let Ok(Some(first)) = transport.trimmed_before().await else {
        return;
    };
    let stored = transport.snapshot().await.ok().flatten().map(|(at, _)| at);
    if stored.is_some_and(|at| position_key(&at) >= position_key(&first)) {
        return;
    }
    let state = replica.state_events(true);
    let data = encode(replica.node(), 0, &state);
    if let Err(e) = transport.put_snapshot(position, data).await {
        tracing::warn!(error = %e, "writing the snapshot failed");
    }
}

/// Refreshes this node's liveness, checks the others', notices a broker that lost its data,
/// and sweeps.
async fn liveness_loop<K: Key, T: Transport>(
    replica: Arc<Replica<K>>,
    transport: Arc<T>,
    shared: Arc<Shared>,
    config: ClusterConfig,
    mut epoch: String,
) {
    let me = replica.node().to_string();
    let mut last_sweep = tokio::time::Instant::now();
    // The sessions are republished again a few periods later: the others bring this node up
    // when they see its key again, and may read the first republish before that.
    let mut republish_again: Option<u32> = None;
    loop {
        tokio::time::sleep(config.liveness_every).await;
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        if let Some(sweep) = config.sweep_every {
            if last_sweep.elapsed() >= sweep {
                last_sweep = tokio::time::Instant::now();
                let r = replica.clone();
                let _ = tokio::task::spawn_blocking(move || r.sweep()).await;
            }
        }
        if let Some(n) = republish_again {
            if n == 0 {
                ask_republish(&shared, SESSIONS);
                republish_again = None;
            } else {
                republish_again = Some(n - 1);
            }
        }
        let kept = match transport.refresh(&me, config.liveness_ttl).await {
            Ok(kept) => kept,
            Err(_) => {
                add(&shared.metrics.broker_errors, 1);
                continue;
            }
        };
        match transport.epoch(&random_hex()).await {
            Ok(now) if now != epoch => {
                tracing::warn!("the broker lost its data: republishing and reading from the start");
                epoch = now;
                shared.restart_read.store(true, Ordering::Relaxed);
                ask_republish(&shared, EVERYTHING);
                republish_again = Some(2);
            }
            Ok(_) if !kept => {
                tracing::warn!("this node's liveness key had lapsed: republishing its sessions");
                ask_republish(&shared, SESSIONS);
                republish_again = Some(2);
            }
            Ok(_) => {}
            Err(_) => {
                add(&shared.metrics.broker_errors, 1);
                continue;
            }
        }
        check_peers(&replica, &*transport, &shared, &me).await;
    }
}

/// Declares down the members whose keys lapsed (once each) and up those back.
async fn check_peers<K: Key, T: Transport>(
    replica: &Arc<Replica<K>>,
    transport: &T,
    shared: &Shared,
    me: &str,
) {
    let Ok(members) = transport.members().await else {
        return;
    };
    let others: Vec<String> = {
        let mut seen = shared.seen.lock();
        seen.extend(members);
        seen.remove(me);
        seen.iter().cloned().collect()
    };
    let Ok(alive) = transport.alive(&others).await else {
        return;
    };
    let mut peers = 0;
    for (member, alive) in others.iter().zip(alive) {
        let Ok(node) = NodeId::new(member) else {
            shared.seen.lock().remove(member);
            continue;
        };
        if alive {
            peers += 1;
            if replica.is_down(&node) {
                replica.node_up(&node);
            }
        } else if !replica.is_down(&node) {
            let r = replica.clone();
            let down = node.clone();
            let dropped = tokio::task::spawn_blocking(move || r.node_down(&down))
                .await
                .unwrap_or_default();
            add(&shared.metrics.nodes_down, 1);
            tracing::info!(node = %member, sessions = dropped, "node down: its sessions dropped");
            // Down for good unless it publishes or refreshes again.
            shared.seen.lock().remove(member);
        }
    }
    shared.metrics.peers.store(peers, Ordering::Relaxed);
}
