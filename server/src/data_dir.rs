//! What the server keeps on disk, in its data directory, and how it is written so a crash
//! loses nothing that was acknowledged.
//!
//! | file | holds | written |
//! | --- | --- | --- |
//! | `organization.json` | definitions, sources, settings, feeds, revoked tokens ([`OrgState`]) | after every change, before its 2xx; in a cluster, also within moments of another node's change |
//! | `presence.json` | every user's presence and sessions (the store's [`Snapshot`]) | every `--snapshot-interval` and at shutdown |
//! | `presence.prev.json` | the snapshot before that one | with each snapshot |
//!
//! Every write goes to a temporary file, is fsynced, renamed over the old file and the
//! directory fsynced, so a file on disk is always one whole write. JSON (`serde_json`, already
//! the server's wire format) is read back strictly: a torn or corrupt file is never taken for
//! an empty store. A bad snapshot falls back to the previous one, with a warning naming the
//! file and why; a bad organization file stops the start, naming it, since falling back would
//! drop acknowledged changes. A plain file per kind of state was chosen over an embedded
//! database (`redb`, `sled`): the state is small, written whole, and stays readable with `jq`.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use presence_store::wire::genesys::PresenceSettings;
use presence_store::{Definition, Snapshot, Source};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::feeds::SavedFeed;
use super::tokens::Revocations;
use super::{App, Store};

/// The organization state's file.
pub const ORG_FILE: &str = "organization.json";
/// The presence snapshot's file.
pub const PRESENCE_FILE: &str = "presence.json";
/// The previous presence snapshot's file.
pub const PREVIOUS_PRESENCE_FILE: &str = "presence.prev.json";

/// The organization state: what an administrator set up, as opposed to who is online.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgState {
    /// The organization's presence definitions (the system ones are built in).
    pub definitions: Vec<Definition>,
    /// The presence sources (the built-in one included).
    pub sources: Vec<Source>,
    /// Rocket.Chat's `Presence_broadcast_disabled`.
    pub presence_broadcast_disabled: bool,
    /// Genesys' presence settings.
    pub genesys_settings: PresenceSettings,
    /// The presence feeds with their owners. Their positions cannot outlive the store
    /// instance (a restored store is a new one), so each restored feed's first read is the
    /// full list.
    #[serde(default)]
    pub feeds: Vec<SavedFeed>,
    /// Tokens issued in advance that were revoked (by digest): a logout outlives a restart.
    /// Tokens issued by a login are not kept at all, so their holders log in again.
    #[serde(default)]
    pub revocations: Revocations,
}

impl OrgState {
    /// The organization state `app` holds now.
    pub fn of(app: &App) -> OrgState {
        OrgState {
            definitions: app
                .store
                .definitions()
                .into_iter()
                .filter(|d| !d.system)
                .collect(),
            sources: app.store.sources(),
            presence_broadcast_disabled: app.rocketchat.broadcast_disabled(&app.store),
            genesys_settings: app.genesys.settings(&app.store),
            feeds: app.feeds.saved(),
            revocations: app.tokens.revocations(),
        }
    }
}

/// The data directory: where the files are, and when the last snapshot was written.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// Serializes writes of the organization file: each writes the state as it is when it
    /// starts, so the last one holds every change acknowledged before it.
    org: Mutex<()>,
    /// Serializes snapshot writes (the periodic one and the one at shutdown).
    presence: Mutex<()>,
    /// When the last snapshot was written (ms since the epoch; 0: never).
    pub last_snapshot_ms: AtomicU64,
    /// How long the last snapshot took to take and write, in µs.
    pub last_snapshot_micros: AtomicU64,
}

/// What a data directory held at start.
#[derive(Debug, Default)]
pub struct Restored {
    /// The organization state, if its file existed.
    pub org: Option<OrgState>,
    /// The presence snapshot, if one was readable.
    pub presence: Option<Snapshot<u64>>,
}

impl DataDir {
    /// Opens (creating it if needed) the data directory at `path`.
    /// A directory it creates is readable by its owner only (it holds status messages).
    pub fn open(path: &Path) -> Result<DataDir, String> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(path)
            .map_err(|e| format!("cannot create data directory {}: {e}", path.display()))?;
        Ok(DataDir {
            path: path.to_path_buf(),
            org: Mutex::new(()),
            presence: Mutex::new(()),
            last_snapshot_ms: AtomicU64::new(0),
            last_snapshot_micros: AtomicU64::new(0),
        })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what the directory holds; an unreadable organization file, or a snapshot
    /// unreadable with no good previous one, is an error naming the file.
    pub fn restore(&self) -> Result<Restored, String> {
        let org = read_json::<OrgState>(&self.path.join(ORG_FILE))?;
        let presence = match read_json::<Snapshot<u64>>(&self.path.join(PRESENCE_FILE)) {
            Ok(Some(snapshot)) => Some(snapshot),
            Ok(None) => self.previous_snapshot(None)?,
            Err(e) => self.previous_snapshot(Some(e))?,
        };
        Ok(Restored { org, presence })
    }

    /// The previous snapshot, when the latest is missing (`why` is `None`) or unreadable.
    fn previous_snapshot(&self, why: Option<String>) -> Result<Option<Snapshot<u64>>, String> {
        let previous = self.path.join(PREVIOUS_PRESENCE_FILE);
        match (read_json::<Snapshot<u64>>(&previous), why) {
            (Ok(Some(snapshot)), Some(why)) => {
                tracing::warn!(
                    file = %previous.display(),
                    "{why}; starting from the previous snapshot"
                );
                Ok(Some(snapshot))
            }
            (Ok(found), None) => Ok(found),
            (Ok(None), Some(why)) => Err(format!(
                "{why}, and there is no previous snapshot: move the file aside to start \
                 without presence"
            )),
            (Err(e), Some(why)) => Err(format!("{why}; the previous one too: {e}")),
            (Err(e), None) => Err(e),
        }
    }

    /// Writes the organization state `app` holds now, durably.
    pub fn save_org(&self, app: &App) -> Result<(), String> {
        let _serial = self.org.lock();
        let state = OrgState::of(app);
        let bytes = serde_json::to_vec_pretty(&state).map_err(|e| e.to_string())?;
        write_atomically(&self.path, ORG_FILE, &bytes, None)
    }

    /// Takes the store's snapshot and writes it durably, keeping the previous one.
    pub fn save_presence(&self, store: &Store, now_ms: u64) -> Result<(), String> {
        let _serial = self.presence.lock();
        let started = Instant::now();
        let bytes = serde_json::to_vec(&store.snapshot()).map_err(|e| e.to_string())?;
        write_atomically(
            &self.path,
            PRESENCE_FILE,
            &bytes,
            Some(PREVIOUS_PRESENCE_FILE),
        )?;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_snapshot_micros.store(micros, Ordering::Relaxed);
        self.last_snapshot_ms.store(now_ms, Ordering::Relaxed);
        Ok(())
    }
}

/// The snapshot to restore the store from: the users of `presence` (if any) with the sources
/// and definitions of `org`, which were written after every change (the snapshot's may be
/// older). A user's presence from a source deleted since the snapshot is dropped.
pub fn merged_snapshot(restored: &mut Restored) -> Option<Snapshot<u64>> {
    let org = restored.org.as_ref();
    let mut snapshot = match restored.presence.take() {
        Some(snapshot) => snapshot,
        None => Snapshot {
            taken_at: 0,
            sequence: 0,
            users: Vec::new(),
            sources: Vec::new(),
            definitions: Vec::new(),
        },
    };
    if let Some(org) = org {
        snapshot.sources = org.sources.clone();
        snapshot.definitions = org.definitions.clone();
        let known = |id: &presence_store::SourceId| org.sources.iter().any(|s| &s.id == id);
        for user in &mut snapshot.users {
            user.sources.retain(|p| known(&p.source));
            if user.primary.as_ref().is_some_and(|p| !known(p)) {
                user.primary = None;
            }
        }
    }
    let empty = snapshot.users.is_empty()
        && snapshot.sources.is_empty()
        && snapshot.definitions.is_empty()
        && snapshot.sequence == 0;
    (!empty).then_some(snapshot)
}

/// Reads a JSON file: `None` when it does not exist; an error naming it when it cannot be read
/// or parsed (an empty file too).
fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("{} is corrupt or truncated ({e})", path.display()))
}

/// Replaces `dir/name` with `bytes` so that a crash leaves either the old file or the new one:
/// a temporary file, fsynced, renamed over it, the directory fsynced. With `previous`, the old
/// file is first linked under that name (so the two are never both missing).
fn write_atomically(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    previous: Option<&str>,
) -> Result<(), String> {
    let target = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let fail = |what: &str, e: std::io::Error| format!("cannot {what} {}: {e}", target.display());
    let mut file = File::create(&tmp).map_err(|e| fail("create a temporary file for", e))?;
    file.write_all(bytes).map_err(|e| fail("write", e))?;
    file.sync_all().map_err(|e| fail("fsync", e))?;
    drop(file);
    if let Some(previous) = previous.filter(|_| target.exists()) {
        let previous = dir.join(previous);
        match fs::remove_file(&previous) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(fail("replace the previous snapshot of", e))
            }
            _ => {}
        }
        fs::hard_link(&target, &previous).map_err(|e| fail("keep the previous", e))?;
    }
    fs::rename(&tmp, &target).map_err(|e| fail("rename over", e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| fail("fsync the directory of", e))
}
