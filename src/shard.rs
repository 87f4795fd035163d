//! One lock stripe: the records of the users whose keys hash here, kept mostly in key order for
//! paging, the shard's change log, and its session wheel.
//!
//! Records live in a dense slab addressed by `u32` slots, found by key through a [`SlotTable`].
//! The slab starts with the *sorted run*: records in key order, which a page reads in sequence
//! like the leaves of a B-tree. Users added since are appended after it and found in key order
//! through a small `BTreeMap`, the *tail*. Once the users added, removed or freed since the last
//! time pass (records + log entries / 4) / 32, the shard *compacts*: it merges the records after
//! the run into it, in place from the back, and moves each slot the hash table, log, wheel and
//! side tables hold with its record. That is O(records + log entries) once per that many
//! changes: O(1) per change, amortized, however long the log is next to the records.
//!
//! A removed user leaves a tombstone (its record, marked removed, still in the hash table) until
//! its last log entry is pruned, so deltas can report the removal and a user re-added meanwhile
//! keeps one record and one latest entry; then the record is *freed* (out of the hash table) and
//! dropped at the next compaction. A compaction files tombstones in the run by key like live
//! users (pages skip them), so it never sorts more than what came after the run. Invariants:
//! every log entry's record has `version >= ` the entry's sequence, with equality for exactly the
//! latest change of each record, and no entry names a freed record; every live user's record is
//! in the run or in the tail, not both; `live` counts the records that are not tombstones.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use ahash::RandomState;

use crate::log::{Entry, Log};
use crate::presence::{Detail, PresenceDetails};
use crate::session::{
    aggregate, Aging, MoreSessions, Session, Timeouts, Wheel, MAX_TIME, NEVER, NOT_SCHEDULED,
};
use crate::subscription::{Subscriber, SubscriberStats, Subscribers};
use crate::table::{SlotTable, MAX_SLOTS};
use crate::{
    resolve, Activity, Category, Clock, DefinitionId, Error, Key, Presence, SetMode, SourceId,
};

/// Record flag: the user was removed; the record is a tombstone, or freed.
const REMOVED: u8 = 1;
/// Record flag: the user has sessions beyond the inline one, in `Shard::more_sessions`.
const MORE_SESSIONS: u8 = 2;
/// Record flag: the user has rarer state (a status message) in `Shard::extras`.
const EXTRAS: u8 = 4;
/// Record flag: a removed user's last log entry was pruned; the record is out of the hash table
/// and the next compaction drops it.
const FREED: u8 = 8;

/// Every this many records of the sorted run, a key is copied into `Shard::fences`.
const FENCE_EVERY: usize = 64;

/// A shard compacts once the changes to its layout since the last compaction pass this
/// fraction of its records and of a quarter of its log entries (the compaction moves both):
/// 1/32 keeps the tails, which pages read at random, under ~4% of a shard, for adds ~35%
/// dearer than at 1/16 and ~40% cheaper than at 1/64.
const COMPACT_EVERY: usize = 32;

/// The rarer parts of a user's state, kept beside the record so records stay small.
#[derive(Clone, Debug, Default)]
struct Extra {
    /// The default source's status message.
    message: Option<Arc<str>>,
    /// The definition the default source's category was set by.
    definition: Option<DefinitionId>,
    /// The primary source, when it is not the default.
    primary: Option<SourceId>,
    /// Presences from sources other than the default.
    sources: Vec<SourcePresence>,
    /// What others see of the above, built once per edit so reads only share it.
    shown: PresenceDetails,
}

/// A user's presence as a source other than the default sets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SourcePresence {
    pub(crate) source: SourceId,
    pub(crate) definition: DefinitionId,
    pub(crate) category: Category,
    pub(crate) message: Option<Arc<str>>,
    pub(crate) updated_at: u64,
}

impl Extra {
    fn of_source(&self, source: &SourceId) -> Option<&SourcePresence> {
        self.sources.iter().find(|p| p.source == *source)
    }

    /// The primary source's presence, when the primary is not the default and has set one.
    fn of_primary(&self) -> Option<&SourcePresence> {
        self.of_source(self.primary.as_ref()?)
    }

    fn is_empty(&self) -> bool {
        self.message.is_none()
            && self.definition.is_none()
            && self.primary.is_none()
            && self.sources.is_empty()
    }

    /// The default source's details.
    fn own(&self) -> Detail {
        Detail {
            message: self.message.clone(),
            definition: self.definition.clone(),
            source: None,
        }
    }

    /// What others see: the primary source's details, the default's if it has set none.
    fn view(&self) -> PresenceDetails {
        let detail = match self.of_primary() {
            Some(p) => p.detail(self.primary.clone()),
            None => Detail {
                source: self.primary.clone(),
                ..self.own()
            },
        };
        detail.shared()
    }
}

/// One user's state. 48 bytes for a `u64` key.
#[derive(Debug)]
pub(crate) struct Record<K> {
    pub(crate) key: K,
    updated_at: u64,
    version: u64,
    /// The first session, inline; `Session::EMPTY` when the user has none.
    session: Session,
    /// Wheel bucket holding this record's entry, or `NOT_SCHEDULED`.
    sched: u32,
    requested: Category,
    category: Category,
    activity: Activity,
    flags: u8,
}

impl<K> Record<K> {
    fn new(key: K) -> Self {
        Record {
            key,
            updated_at: 0,
            version: 0,
            session: Session::EMPTY,
            sched: NOT_SCHEDULED,
            requested: Category::Undefined,
            category: Category::Offline,
            activity: Activity::Offline,
            flags: 0,
        }
    }

    /// Applies a set of `category`.
    fn request(&mut self, category: Category, mode: SetMode) {
        self.requested = category;
        self.category = match mode {
            SetMode::Hard => category,
            SetMode::Soft => resolve(category, self.activity),
        };
    }

    /// Makes a tombstone a fresh user again, keeping its place in the wheel.
    fn revive(&mut self) {
        self.flags = 0;
        self.session = Session::EMPTY;
        self.requested = Category::Undefined;
        self.category = Category::Offline;
        self.activity = Activity::Offline;
    }

    pub(crate) fn is_removed(&self) -> bool {
        self.flags & REMOVED != 0
    }

    /// The user's presence, less what `Shard::extras` holds.
    #[inline]
    fn base_presence(&self) -> Presence {
        Presence {
            category: self.category,
            requested: self.requested,
            activity: self.activity,
            updated_at: self.updated_at,
            version: self.version,
            details: PresenceDetails::default(),
        }
    }
}

impl SourcePresence {
    /// This source's details, shown as from `source`.
    fn detail(&self, source: Option<SourceId>) -> Detail {
        Detail {
            message: self.message.clone(),
            definition: Some(self.definition.clone()),
            source,
        }
    }

    /// Whether both set the same (whenever they were set).
    fn same_as(&self, other: &SourcePresence) -> bool {
        (&self.definition, self.category, &self.message)
            == (&other.definition, other.category, &other.message)
    }
}

/// The parts of the store's config a shard needs, in ms.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) timeouts: Timeouts,
    pub(crate) window: u64,
    pub(crate) log_capacity: usize,
    /// `StoreConfig::max_sessions_per_user`.
    pub(crate) max_sessions: usize,
}

/// One lock stripe. Every method expects the caller to hold the shard's lock (read for `&self`,
/// write for `&mut self`); `hash` is the store's hash of `key`.
#[derive(Debug)]
pub(crate) struct Shard<K> {
    table: SlotTable,
    records: Vec<Record<K>>,
    /// Records `..sorted` are in key order (the sorted run).
    sorted: usize,
    /// The key of every `FENCE_EVERY`th record of the run: a page's binary search for its
    /// first key runs over these (a few KiB that stay in cache), then within one block.
    fences: Vec<K>,
    /// The live users whose records are after the sorted run, by key.
    tail: BTreeMap<K, u32>,
    /// Users added, removed, revived or freed since the last compaction.
    since_compaction: usize,
    /// During a bulk load ([`begin_bulk`](Self::begin_bulk)): how many users it added since
    /// the last compaction, after the run in no order and not in the tail; the load's end sorts
    /// them into the run at once (a compaction finds them after the run).
    loose: Option<usize>,
    log: Log,
    wheel: Wheel,
    more_sessions: HashMap<u32, MoreSessions, RandomState>,
    extras: HashMap<u32, Extra, RandomState>,
    live: usize,
    /// Removed users whose records still wait for their last log entry to be pruned.
    tombstones: usize,
    /// Newest time this shard has used; times are clamped to never go below it.
    last_ts: u64,
    hasher: RandomState,
    /// Subscriptions offered every change of this shard.
    subscribers: Subscribers<K>,
    /// This shard's place in the store, by which subscriptions keep their positions.
    number: usize,
}

impl<K: Key> Shard<K> {
    pub(crate) fn new(hasher: RandomState, number: usize) -> Self {
        Shard {
            table: SlotTable::default(),
            records: Vec::new(),
            sorted: 0,
            fences: Vec::new(),
            tail: BTreeMap::new(),
            since_compaction: 0,
            loose: None,
            log: Log::new(),
            wheel: Wheel::default(),
            more_sessions: HashMap::with_hasher(hasher.clone()),
            extras: HashMap::with_hasher(hasher.clone()),
            live: 0,
            tombstones: 0,
            last_ts: 0,
            hasher,
            subscribers: Subscribers::default(),
            number,
        }
    }

    /// Number of users (tombstones excluded).
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// The shard's position in its log: the sequence of its newest change.
    pub(crate) fn seq(&self) -> u64 {
        self.log.last_seq()
    }

    pub(crate) fn log(&self) -> &Log {
        &self.log
    }

    /// The slot of `key`, tombstones included.
    #[inline]
    fn find(&self, hash: u64, key: &K) -> Option<u32> {
        let records = &self.records;
        self.table.find(hash, |s| records[s as usize].key == *key)
    }

    /// The slot of a known user.
    #[inline]
    pub(crate) fn get(&self, hash: u64, key: &K) -> Option<u32> {
        let slot = self.find(hash, key)?;
        (!self.records[slot as usize].is_removed()).then_some(slot)
    }

    /// The presence of the user at `slot`: its primary source's.
    #[inline]
    pub(crate) fn presence(&self, slot: u32) -> Presence {
        let rec = &self.records[slot as usize];
        let mut presence = rec.base_presence();
        // The rare part comes back in two registers, not as a whole presence, so the presence
        // is built in registers and written once, straight into the caller's result.
        if rec.flags & EXTRAS != 0 {
            let (detail, primary) = self.extras_view(slot);
            presence.details = detail;
            if let Some(category) = primary {
                presence.category = category;
                presence.requested = category;
            }
        }
        presence
    }

    /// What a user's extras change in its presence: the details others see, and the primary
    /// source's category when that source has set one.
    #[cold]
    #[inline(never)]
    fn extras_view(&self, slot: u32) -> (PresenceDetails, Option<Category>) {
        match self.extras.get(&slot) {
            Some(extra) => (extra.shown.clone(), extra.of_primary().map(|p| p.category)),
            None => (PresenceDetails::default(), None),
        }
    }

    /// The presence of the user at `slot` as `source` sets it; `None` for a source other than
    /// the default that has set none.
    pub(crate) fn source_presence(&self, slot: u32, source: &SourceId) -> Option<Presence> {
        if source.is_default() {
            return Some(self.own_presence(slot));
        }
        let p = self.extra(slot)?.of_source(source)?;
        let mut presence = self.records[slot as usize].base_presence();
        presence.category = p.category;
        presence.requested = p.category;
        presence.updated_at = p.updated_at;
        presence.details = p.detail(Some(source.clone())).shared();
        Some(presence)
    }

    /// The presence of the user at `slot` from the default source, whatever its primary.
    pub(crate) fn own_presence(&self, slot: u32) -> Presence {
        let mut presence = self.records[slot as usize].base_presence();
        if let Some(extra) = self.extra(slot) {
            presence.details = extra.own().shared();
        }
        presence
    }

    /// The user's primary source, when it is not the default.
    pub(crate) fn primary_source(&self, slot: u32) -> Option<SourceId> {
        self.extra(slot)?.primary.clone()
    }

    fn extra(&self, slot: u32) -> Option<&Extra> {
        if self.records[slot as usize].flags & EXTRAS == 0 {
            return None;
        }
        self.extras.get(&slot)
    }

    /// The key of the user at `slot`.
    pub(crate) fn key(&self, slot: u32) -> &K {
        &self.records[slot as usize].key
    }

    /// Whether `seq` is the latest change of the record at `slot`.
    pub(crate) fn is_latest(&self, slot: u32, seq: u64) -> bool {
        self.records[slot as usize].version == seq
    }

    /// Users from `start` on, in key order, with their slots: the sorted run from `start`
    /// merged with the tail.
    #[cfg(any(test, feature = "serde"))]
    pub(crate) fn range(&self, start: Bound<&K>) -> impl Iterator<Item = (&K, u32)> {
        let from = Self::run_starts(&[self], start)[0];
        crate::page::Merge::new(self.sources(from, start)).map(|(_, key, slot)| (key, slot))
    }

    /// Where `start` falls in the sorted run of each of `shards`, found for all at once: a
    /// binary search over each shard's fences (which stay in cache), then one over the block
    /// of records they leave, in lockstep across the shards so that their cache misses overlap
    /// instead of queueing one behind another.
    pub(crate) fn run_starts(shards: &[&Self], start: Bound<&K>) -> Vec<usize> {
        let before = |key: &K| match start {
            Bound::Included(k) => key < k,
            Bound::Excluded(k) => key <= k,
            Bound::Unbounded => false,
        };
        // Each shard's (first record not known to be before `start`, records left to search).
        let mut searches: Vec<(usize, usize)> = shards
            .iter()
            .map(|shard| {
                let block = shard.fences.partition_point(|k| before(k));
                let from = block.saturating_sub(1) * FENCE_EVERY;
                let to = (block * FENCE_EVERY + 1).min(shard.sorted);
                (from, to - from)
            })
            .collect();
        while searches.iter().any(|&(_, left)| left > 0) {
            for (shard, (from, left)) in shards.iter().zip(&mut searches) {
                if *left > 0 {
                    let half = *left / 2;
                    if before(&shard.records[*from + half].key) {
                        *from += half + 1;
                        *left -= half + 1;
                    } else {
                        *left = half;
                    }
                }
            }
        }
        searches.into_iter().map(|(from, _)| from).collect()
    }

    /// The two sorted sources of the users from `start` on: the run from `from` (as
    /// [`run_starts`](Self::run_starts) finds it) and the tail. A page merges every shard's two
    /// at once, in one loser tree.
    pub(crate) fn sources(&self, from: usize, start: Bound<&K>) -> [Source<'_, K>; 2] {
        [
            Source::Run {
                run: &self.records[..self.sorted],
                next: from,
            },
            Source::Tail(self.tail.range::<K, _>((start, Bound::Unbounded))),
        ]
    }

    /// Appends to `out` the users whose latest change is among `entries`.
    pub(crate) fn collect_latest<'a>(
        &self,
        entries: impl Iterator<Item = (u64, &'a Entry)>,
        out: &mut Vec<(K, Presence)>,
    ) {
        for (seq, entry) in entries {
            if self.is_latest(entry.slot, seq) {
                out.push((self.key(entry.slot).clone(), self.presence(entry.slot)));
            }
        }
    }

    /// The shard's clock: the clock's time, never below the last one used here.
    pub(crate) fn tick(&mut self, clock: &dyn Clock) -> u64 {
        let now = clock.now_ms().min(MAX_TIME).max(self.last_ts);
        self.last_ts = now;
        now
    }

    /// Sets a user's requested category (by `definition` if given), adding the user if new.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn set(
        &mut self,
        hash: u64,
        key: &K,
        category: Category,
        mode: SetMode,
        definition: Option<DefinitionId>,
        clock: &dyn Clock,
        limits: &Limits,
    ) -> Result<Presence, Error> {
        let (slot, added) = self.upsert(hash, key)?;
        let rec = &mut self.records[slot as usize];
        // The hot path: a user with no extras, set by category alone.
        if rec.flags & EXTRAS == 0 && definition.is_none() {
            let before = (rec.requested, rec.category);
            rec.request(category, mode);
            if added || before != (rec.requested, rec.category) {
                let now = self.tick(clock);
                self.commit(slot, now, limits);
            }
            return Ok(self.presence(slot));
        }
        self.set_detailed(slot, added, category, mode, definition, clock, limits)
    }

    /// The rest of `set`: a user with extras, or a set by definition.
    #[allow(clippy::too_many_arguments)]
    #[cold]
    #[inline(never)]
    fn set_detailed(
        &mut self,
        slot: u32,
        added: bool,
        category: Category,
        mode: SetMode,
        definition: Option<DefinitionId>,
        clock: &dyn Clock,
        limits: &Limits,
    ) -> Result<Presence, Error> {
        let before = self.presence(slot);
        self.records[slot as usize].request(category, mode);
        self.edit_extra(slot, |e| e.definition = definition);
        self.commit_if_seen(slot, &before, added, clock, limits);
        Ok(self.presence(slot))
    }

    /// Sets or clears a known user's status message (of the default source).
    pub(crate) fn set_message(
        &mut self,
        hash: u64,
        key: &K,
        message: Option<Arc<str>>,
        clock: &dyn Clock,
        limits: &Limits,
    ) -> Result<Presence, Error> {
        self.edit_known(hash, key, |e| e.message = message, clock, limits)
    }

    /// Edits a known user's extras, logging the change if others see it.
    fn edit_known(
        &mut self,
        hash: u64,
        key: &K,
        edit: impl FnOnce(&mut Extra),
        clock: &dyn Clock,
        limits: &Limits,
    ) -> Result<Presence, Error> {
        let slot = self
            .get(hash, key)
            .ok_or_else(|| Error::unknown_user(key))?;
        let before = self.presence(slot);
        self.edit_extra(slot, edit);
        self.commit_if_seen(slot, &before, false, clock, limits);
        Ok(self.presence(slot))
    }

    /// Sets a user's presence from a source other than the default, adding the user if new.
    /// Returns that source's presence of the user.
    pub(crate) fn set_source_presence(
        &mut self,
        hash: u64,
        key: &K,
        set: SourcePresence,
        clock: &dyn Clock,
        limits: &Limits,
    ) -> Result<Presence, Error> {
        let (slot, added) = self.upsert(hash, key)?;
        let before = self.presence(slot);
        if set.source.is_default() {
            self.records[slot as usize].request(set.category, SetMode::Hard);
            self.edit_extra(slot, |e| {
                e.definition = Some(set.definition);
                e.message = set.message;
            });
            self.commit_if_seen(slot, &before, added, clock, limits);
            return Ok(self.own_presence(slot));
        }
        let source = set.source.clone();
        let now = self.tick(clock);
        self.edit_extra(slot, |e| {
            match e.sources.iter_mut().find(|p| p.source == set.source) {
                Some(p) if p.same_as(&set) => {}
                Some(p) => {
                    *p = SourcePresence {
                        updated_at: now,
                        ..set
                    }
                }
                None => e.sources.push(SourcePresence {
                    updated_at: now,
                    ..set
                }),
            }
        });
        self.commit_if_seen(slot, &before, added, clock, limits);
        self.source_presence(slot, &source)
            .ok_or_else(|| Error::unknown_source(&source))
    }

    /// Makes `source` (`None`: the default) a known user's primary source.
    pub(crate) fn set_primary_source(
        &mut self,
        hash: u64,
        key: &K,
        source: Option<SourceId>,
        clock: &dyn Clock,
        limits: &Limits,
    ) -> Result<Presence, Error> {
        self.edit_known(hash, key, |e| e.primary = source, clock, limits)
    }

    /// Forgets a deleted source: its presences go, and its users' primary source becomes the
    /// default, each visible change logged.
    pub(crate) fn drop_source(&mut self, source: &SourceId, clock: &dyn Clock, limits: &Limits) {
        let uses = |e: &Extra| e.primary.as_ref() == Some(source) || e.of_source(source).is_some();
        let slots: Vec<u32> = self
            .extras
            .iter()
            .filter(|(_, e)| uses(e))
            .map(|(&slot, _)| slot)
            .collect();
        for slot in slots {
            let before = self.presence(slot);
            self.edit_extra(slot, |e| {
                e.sources.retain(|p| p.source != *source);
                if e.primary.as_ref() == Some(source) {
                    e.primary = None;
                }
            });
            self.commit_if_seen(slot, &before, false, clock, limits);
        }
    }

    /// Changes the user's extras, keeping the side table free of empty entries.
    fn edit_extra(&mut self, slot: u32, edit: impl FnOnce(&mut Extra)) {
        let rec = &mut self.records[slot as usize];
        let extra = self.extras.entry(slot).or_default();
        edit(extra);
        if extra.is_empty() {
            self.extras.remove(&slot);
            rec.flags &= !EXTRAS;
        } else {
            extra.shown = extra.view();
            rec.flags |= EXTRAS;
        }
    }

    /// Logs a change of the user at `slot` if others now see other than `before`.
    fn commit_if_seen(
        &mut self,
        slot: u32,
        before: &Presence,
        added: bool,
        clock: &dyn Clock,
        limits: &Limits,
    ) {
        if added || !self.presence(slot).same_view(before) {
            let now = self.tick(clock);
            self.commit(slot, now, limits);
        }
    }

    /// Records a heartbeat of one session, adding the user and the session if new; `remote`
    /// marks the session as another node's (`crate::replica`), which the sweep leaves alone.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn heartbeat(
        &mut self,
        hash: u64,
        key: &K,
        session: u64,
        activity: Activity,
        remote: bool,
        clock: &dyn Clock,
        limits: &Limits,
    ) -> Result<Presence, Error> {
        let (slot, added) = self.upsert(hash, key)?;
        let now = self.tick(clock);
        let changed = if activity == Activity::Offline {
            self.end_session(slot, session)
        } else {
            self.beat(slot, session, now, activity, remote, limits)?
        };
        let visible = changed && self.refresh_activity(slot);
        if added || visible {
            self.commit(slot, now, limits);
        }
        Ok(self.presence(slot))
    }

    /// Ends one session of a known user.
    pub(crate) fn disconnect(
        &mut self,
        hash: u64,
        key: &K,
        session: u64,
        clock: &dyn Clock,
        limits: &Limits,
    ) -> Result<Presence, Error> {
        let slot = match self.find(hash, key) {
            Some(slot) if !self.records[slot as usize].is_removed() => slot,
            _ => return Err(Error::unknown_user(key)),
        };
        if self.end_session(slot, session) && self.refresh_activity(slot) {
            let now = self.tick(clock);
            self.commit(slot, now, limits);
        }
        Ok(self.presence(slot))
    }

    /// Forgets a user, leaving a logged tombstone; returns the presence it had.
    pub(crate) fn remove(
        &mut self,
        hash: u64,
        key: &K,
        clock: &dyn Clock,
        limits: &Limits,
    ) -> Option<Presence> {
        let slot = self.get(hash, key)?;
        let old = self.presence(slot);
        let rec = &mut self.records[slot as usize];
        if rec.flags & MORE_SESSIONS != 0 {
            self.more_sessions.remove(&slot);
        }
        if rec.flags & EXTRAS != 0 {
            self.extras.remove(&slot);
        }
        rec.revive();
        rec.flags = REMOVED;
        if slot as usize >= self.sorted {
            self.tail.remove(key);
        }
        self.since_compaction += 1;
        self.live -= 1;
        self.tombstones += 1;
        let now = self.tick(clock);
        self.commit(slot, now, limits);
        Some(old)
    }

    /// Applies every idle and expiry rule due at `now`; returns how many sessions changed, and
    /// tells `report` of each (user, session id, what happened).
    pub(crate) fn sweep(
        &mut self,
        now: u64,
        limits: &Limits,
        report: &mut dyn FnMut(&K, u64, Aging),
    ) -> usize {
        let current = Wheel::bucket_of(now);
        let mut transitions = 0;
        let mut still_current = Vec::new();
        while let Some((bucket, slots)) = self.wheel.pop_due(current) {
            for slot in slots {
                let rec = &mut self.records[slot as usize];
                if rec.sched != bucket {
                    continue; // stale: the record was filed again elsewhere
                }
                rec.sched = NOT_SCHEDULED;
                if rec.is_removed() {
                    continue;
                }
                let mut aged = Vec::new();
                self.age_sessions(slot, now, limits.timeouts, &mut aged);
                for &(id, aging) in &aged {
                    report(&self.records[slot as usize].key, id, aging);
                }
                let aged = aged.len();
                transitions += aged;
                if aged > 0 && self.refresh_activity(slot) {
                    self.commit(slot, now, limits);
                }
                let deadline = self.deadline(slot, limits.timeouts);
                if let Some(deadline) = deadline.filter(|&d| d != NEVER) {
                    if Wheel::bucket_of(deadline) <= current {
                        still_current.push(slot);
                    } else {
                        self.records[slot as usize].sched = self.wheel.schedule(slot, deadline);
                    }
                }
            }
        }
        for &slot in &still_current {
            self.records[slot as usize].sched = current;
        }
        self.wheel.refile(current, still_current);
        self.prune(now, limits);
        // Removals and frees compact here too, so a shard that only loses users gives their
        // records back and its pages stop skipping them.
        if self.compaction_due() {
            self.compact();
        }
        transitions
    }

    /// Drops log entries older than the window or over capacity, freeing tombstones whose last
    /// entry goes.
    #[inline]
    pub(crate) fn prune(&mut self, now: u64, limits: &Limits) {
        while let Some((seq, entry)) = self.log.front() {
            let expired = entry.ts.saturating_add(limits.window) <= now;
            if !expired && self.log.len() <= limits.log_capacity {
                break;
            }
            // Only a tombstone's own last entry frees it; most shards have none to look for,
            // and then pruning reads no record.
            if self.tombstones > 0 {
                self.free_if_tombstone(seq, entry.slot);
            }
            self.log.pop_front();
        }
    }

    /// Frees the record at `slot` if it is a tombstone whose last change is `seq`.
    fn free_if_tombstone(&mut self, seq: u64, slot: u32) {
        let rec = &mut self.records[slot as usize];
        if rec.version == seq && rec.is_removed() {
            rec.flags |= FREED;
            self.tombstones -= 1;
            self.since_compaction += 1;
            let hash_of = |s: u32| self.hasher.hash_one(&self.records[s as usize].key);
            self.table.remove(hash_of(slot), slot, hash_of);
        }
    }

    /// The slot of `key`, adding the user (or reviving its tombstone) if needed; `true` if added.
    #[inline]
    fn upsert(&mut self, hash: u64, key: &K) -> Result<(u32, bool), Error> {
        let found = self.find(hash, key);
        match found {
            Some(slot) if !self.records[slot as usize].is_removed() => Ok((slot, false)),
            _ => self.add(hash, key, found),
        }
    }

    /// Adds `key`, reviving its tombstone at `found` if it has one (the rare half of `upsert`).
    #[cold]
    #[inline(never)]
    fn add(&mut self, hash: u64, key: &K, found: Option<u32>) -> Result<(u32, bool), Error> {
        if let Some(slot) = found {
            self.records[slot as usize].revive();
            // A tombstone in the run is back in key order; one after it joins the tail (or
            // the loose users of a bulk load).
            if slot as usize >= self.sorted {
                self.file_after_run(key, slot);
                self.since_compaction += 1;
            }
            self.live += 1;
            self.tombstones -= 1;
            return Ok((slot, true));
        }
        let full = self.records.len() >= MAX_SLOTS as usize;
        let due = self.loose.is_none() && self.compaction_due();
        if due || (full && self.since_compaction > 0) {
            self.compact();
        }
        let slot = u32::try_from(self.records.len())
            .ok()
            .filter(|&s| s < MAX_SLOTS)
            .ok_or(Error::CapacityExceeded)?;
        if self.records.len() == self.records.capacity() && self.loose.is_none() {
            // Grow by what the next compaction would leave room for, not by doubling.
            self.records.reserve_exact(Self::room(self.records.len()));
        }
        self.records.push(Record::new(key.clone()));
        let hash_of = |s: u32| self.hasher.hash_one(&self.records[s as usize].key);
        self.table.insert(hash, slot, hash_of);
        self.file_after_run(key, slot);
        self.since_compaction += 1;
        self.live += 1;
        Ok((slot, true))
    }

    /// Files a user added after the run: in the tail, or among a bulk load's loose users.
    fn file_after_run(&mut self, key: &K, slot: u32) {
        match &mut self.loose {
            Some(loose) => *loose += 1,
            None => {
                self.tail.insert(key.clone(), slot);
            }
        }
    }

    /// Starts a bulk load of about `adds` users: until [`end_bulk`](Self::end_bulk), added users
    /// go in neither the run nor the tail, the slab and the hash table grow by doubling, and no
    /// compaction is due. The caller holds the write lock from here to `end_bulk`.
    pub(crate) fn begin_bulk(&mut self, adds: usize) {
        self.loose = Some(0);
        self.records.reserve(adds);
        let records = &self.records;
        let hasher = &self.hasher;
        self.table
            .reserve(adds, |s| hasher.hash_one(&records[s as usize].key));
    }

    /// Ends a bulk load: the users it added are sorted into the run in one compaction,
    /// O((records + log entries) + added x log added).
    pub(crate) fn end_bulk(&mut self) {
        if self.loose.is_some_and(|loose| loose > 0) {
            self.compact();
        }
        self.loose = None;
    }

    /// Applies heartbeats as [`heartbeat`](Self::heartbeat) would, one after the other, in a
    /// bulk load. A beat refused (a user's session cap, a full shard) is skipped; the first
    /// refusal is returned after the others are applied. Returns how many users were added.
    pub(crate) fn heartbeat_many(
        &mut self,
        beats: Vec<(u64, K, u64, Activity)>,
        clock: &dyn Clock,
        limits: &Limits,
    ) -> (usize, Option<Error>) {
        self.begin_bulk(beats.len());
        let (mut added, mut refused) = (0, None);
        for (hash, key, session, activity) in beats {
            let before = self.live;
            match self.heartbeat(hash, &key, session, activity, false, clock, limits) {
                Ok(_) => added += self.live - before,
                Err(e) => {
                    added += self.live - before;
                    refused.get_or_insert(e);
                }
            }
        }
        self.end_bulk();
        (added, refused)
    }

    /// Whether the changes since the last compaction pay for the next one.
    fn compaction_due(&self) -> bool {
        self.since_compaction > (self.records.len() + self.log.len() / 4) / COMPACT_EVERY
    }

    /// Room for the records to grow by between compactions, for `len` of them.
    fn room(len: usize) -> usize {
        len / COMPACT_EVERY + 16
    }

    /// Rebuilds the slab as one sorted run: the records after the run (the tail's users, a
    /// bulk load's, tombstones) go into it in key order, and freed records are dropped. Every
    /// slot held elsewhere (the hash table, the log, the wheel and the side tables) moves with
    /// its record. O(records + log entries).
    #[cold]
    #[inline(never)]
    fn compact(&mut self) {
        let len = self.records.len();
        let sorted = self.sorted;
        let incoming = self.order_after_run();
        // Old slot to new; `NOT_KEPT` for a freed record.
        let mut moved = vec![NOT_KEPT; len];
        if sorted == 0 {
            self.permute_into(&incoming, &mut moved);
        } else {
            self.merge_into_run(incoming, &mut moved);
        }
        let kept = self.records.len();
        if self.records.capacity() > kept + 2 * Self::room(kept) {
            self.records.shrink_to(kept + Self::room(kept));
        }
        if let Some(loose) = &mut self.loose {
            *loose = 0;
        }
        let to = |slot: u32| moved[slot as usize];
        self.table.remap(to);
        self.log.remap(to);
        self.wheel
            .remap(|slot| Some(to(slot)).filter(|&s| s != NOT_KEPT));
        rekey(&mut self.extras, to);
        rekey(&mut self.more_sessions, to);
        self.tail.clear();
        self.sorted = kept;
        self.fences = self
            .records
            .iter()
            .step_by(FENCE_EVERY)
            .map(|r| r.key.clone())
            .collect();
        self.since_compaction = 0;
    }

    /// The slots of the records after the run that a compaction keeps (all but the freed), in
    /// key order: the tail's own order, unless a bulk load's users or tombstones are among them.
    fn order_after_run(&self) -> Vec<u32> {
        let mut incoming: Vec<u32> = (self.sorted..self.records.len())
            .filter(|&s| self.records[s].flags & FREED == 0)
            .map(|s| s as u32)
            .collect();
        if self.loose.is_none() && incoming.len() == self.tail.len() {
            incoming.clear();
            incoming.extend(self.tail.values().copied());
        } else {
            // They are in slot order, the order they came in. A restore brings each shard the
            // users of every old shard, each old shard's in key order: a few ascending runs,
            // which a stable sort finds and merges in a few passes. Anything else is sorted
            // without regard to order.
            let records = &self.records;
            let key = |slot: &u32| &records[*slot as usize].key;
            let runs = 1 + incoming
                .windows(2)
                .filter(|w| key(&w[0]) > key(&w[1]))
                .count();
            if runs <= incoming.len() / 1024 + 1 {
                incoming.sort_by(|a, b| key(a).cmp(key(b)));
            } else {
                incoming.sort_unstable_by(|a, b| key(a).cmp(key(b)));
            }
        }
        incoming
    }

    /// With no run (a restore, a first bulk load): permutes the slab in place so that record
    /// `i` is the one at `order[i]`, each record moved once, straight to its place; the
    /// records not in `order` (freed) are dropped. Fills `moved`.
    fn permute_into(&mut self, order: &[u32], moved: &mut [u32]) {
        for (new, &old) in (0..).zip(order) {
            moved[old as usize] = new;
        }
        let mut dest = moved.to_vec();
        for (d, spare) in dest
            .iter_mut()
            .filter(|d| **d == NOT_KEPT)
            .zip(order.len() as u32..)
        {
            *d = spare;
        }
        for i in 0..dest.len() {
            while dest[i] as usize != i {
                let to = dest[i] as usize;
                self.records.swap(i, to);
                dest.swap(i, to);
            }
        }
        self.records.truncate(order.len());
    }

    /// Merges the records at `incoming` (after the run, in key order) into the run, dropping
    /// the freed records of both; fills `moved`. In place from the back, so records stream
    /// through the slab in sequence, no second slab is allocated and faulted in, and records
    /// below the first incoming key do not move at all.
    fn merge_into_run(&mut self, incoming: Vec<u32>, moved: &mut [u32]) {
        let sorted = self.sorted;
        let kept = |r: &Record<K>| r.flags & FREED == 0;
        let freed = self.records.len() - self.live - self.tombstones;
        let freed_in_run = freed.saturating_sub(self.records.len() - sorted - incoming.len());
        let mut after: Vec<Option<Record<K>>> = self.records.drain(sorted..).map(Some).collect();
        let mut incoming: Vec<(u32, Record<K>)> = incoming
            .into_iter()
            .filter_map(|s| Some((s, after[s as usize - sorted].take()?)))
            .collect();
        drop(after);
        // The run less its freed records, in order; `origin[i]` is the old slot of record `i`
        // (left empty when no record of the run was freed, and then `i` itself).
        let mut origin: Vec<u32> = Vec::new();
        if freed_in_run > 0 {
            origin.reserve(sorted);
            let mut kept_so_far = 0;
            for slot in 0..sorted {
                if kept(&self.records[slot]) {
                    self.records.swap(kept_so_far, slot);
                    origin.push(slot as u32);
                    kept_so_far += 1;
                }
            }
            self.records.truncate(kept_so_far);
        }
        let origin_of = |i: usize| origin.get(i).map_or(i, |&slot| slot as usize);
        // The slab grows by stand-ins for the incoming records, and each place from the end
        // takes the greater of the run's last unplaced record and the last incoming one. A
        // stand-in swapped down is overwritten before the merge ends.
        let mut run_left = self.records.len();
        self.records
            .extend(incoming.iter().map(|(_, r)| Record::new(r.key.clone())));
        let mut place = self.records.len();
        while let Some((slot, rec)) = incoming.last_mut() {
            place -= 1;
            if run_left > 0 && self.records[run_left - 1].key > rec.key {
                run_left -= 1;
                self.records.swap(run_left, place);
                moved[origin_of(run_left)] = place as u32;
            } else {
                std::mem::swap(&mut self.records[place], rec);
                moved[*slot as usize] = place as u32;
                incoming.pop();
            }
        }
        for i in 0..run_left {
            moved[origin_of(i)] = i as u32;
        }
    }

    /// Logs a visible change of the record at `slot` and offers it to subscribers.
    #[inline(always)]
    fn commit(&mut self, slot: u32, now: u64, limits: &Limits) {
        let seq = self.log.push(now, slot);
        let rec = &mut self.records[slot as usize];
        rec.version = seq;
        rec.updated_at = now;
        self.prune(now, limits);
        if !self.subscribers.is_empty() {
            self.publish(slot, seq);
        }
    }

    /// Offers the change `seq` of the record at `slot` to every subscriber.
    #[cold]
    #[inline(never)]
    fn publish(&mut self, slot: u32, seq: u64) {
        let key = &self.records[slot as usize].key;
        self.subscribers
            .offer(self.number, seq, key, || self.presence(slot));
        self.subscribers.drop_closed();
    }

    /// Adds a subscriber, which is then offered every change after the shard's current one.
    pub(crate) fn subscribe(&mut self, sub: Arc<Subscriber<K>>) {
        let seq = self.seq();
        self.subscribers.add(sub, self.number, seq);
    }

    pub(crate) fn drop_closed_subscribers(&mut self) {
        self.subscribers.drop_closed();
    }

    /// Live and lagged subscribers (every subscriber is in every shard).
    pub(crate) fn subscriber_stats(&self) -> SubscriberStats {
        self.subscribers.stats()
    }

    /// Applies a heartbeat to one session, opening it if new (as another node's if `remote`);
    /// `true` if the session's activity may have changed (so the user's must be recomputed).
    /// A new session past `max_sessions` is [`Error::TooManySessions`], and changes nothing.
    /// O(1).
    fn beat(
        &mut self,
        slot: u32,
        id: u64,
        now: u64,
        activity: Activity,
        remote: bool,
        limits: &Limits,
    ) -> Result<bool, Error> {
        let rec = &mut self.records[slot as usize];
        let (session, changed) = if rec.session.is_empty() {
            rec.session = Session::new(id, now, activity);
            (rec.session, true)
        } else if rec.session.id == id {
            let was_active = rec.session.is_active();
            rec.session.beat(now, activity);
            (rec.session, was_active != rec.session.is_active())
        } else {
            let more = self.more_sessions.get(&slot);
            let known = more.is_some_and(|m| m.contains(id));
            let count = 1 + more.map_or(0, MoreSessions::len);
            if !known && count >= limits.max_sessions {
                return Err(Error::TooManySessions {
                    max: limits.max_sessions,
                });
            }
            rec.flags |= MORE_SESSIONS;
            self.more_sessions
                .entry(slot)
                .or_insert_with(|| MoreSessions::new(self.hasher.clone()))
                .beat(id, now, activity)
        };
        if remote {
            self.pin_session(slot, id);
            return Ok(changed);
        }
        // Deadlines only move later on a known session, so its filing stays valid; a new or
        // re-activated session may need an earlier one.
        let deadline = session.deadline(limits.timeouts);
        let rec = &mut self.records[slot as usize];
        if Wheel::bucket_of(deadline) < rec.sched {
            rec.sched = self.wheel.schedule(slot, deadline);
        }
        Ok(changed)
    }

    /// Marks one session of the user as another node's.
    #[cold]
    fn pin_session(&mut self, slot: u32, id: u64) {
        let rec = &mut self.records[slot as usize];
        if rec.session.id == id {
            rec.session.pin();
        } else if let Some(s) = self
            .more_sessions
            .get_mut(&slot)
            .and_then(|more| more.get_mut(id))
        {
            s.pin();
        }
    }

    /// One session of the user, if it has it. O(1).
    pub(crate) fn session(&self, slot: u32, id: u64) -> Option<Session> {
        let inline = self.records[slot as usize].session;
        if !inline.is_empty() && inline.id == id {
            return Some(inline);
        }
        self.extra_sessions(slot).and_then(|more| more.get(id))
    }

    /// Ends one session; `false` if the user has no such session. O(1).
    fn end_session(&mut self, slot: u32, id: u64) -> bool {
        let rec = &self.records[slot as usize];
        if rec.session.is_empty() {
            return false;
        }
        if rec.session.id == id {
            self.drop_inline_session(slot);
            return true;
        }
        if rec.flags & MORE_SESSIONS == 0 {
            return false;
        }
        let Some(more) = self.more_sessions.get_mut(&slot) else {
            return false;
        };
        if !more.remove(id) {
            return false;
        }
        self.forget_empty_side_table(slot);
        true
    }

    /// Removes the inline session, moving a side-table session inline if there is one.
    fn drop_inline_session(&mut self, slot: u32) {
        let next = if self.records[slot as usize].flags & MORE_SESSIONS != 0 {
            self.more_sessions
                .get_mut(&slot)
                .and_then(MoreSessions::pop)
        } else {
            None
        };
        self.records[slot as usize].session = next.unwrap_or(Session::EMPTY);
        self.forget_empty_side_table(slot);
    }

    fn forget_empty_side_table(&mut self, slot: u32) {
        let rec = &mut self.records[slot as usize];
        if rec.flags & MORE_SESSIONS != 0
            && self
                .more_sessions
                .get(&slot)
                .is_none_or(MoreSessions::is_empty)
        {
            self.more_sessions.remove(&slot);
            rec.flags &= !MORE_SESSIONS;
        }
    }

    /// The user's sessions beyond the inline one.
    fn extra_sessions(&self, slot: u32) -> Option<&MoreSessions> {
        if self.records[slot as usize].flags & MORE_SESSIONS == 0 {
            return None;
        }
        self.more_sessions.get(&slot)
    }

    /// Recomputes the user's activity from its sessions; `true` if it changed (then the
    /// category is resolved again, ending a hard set).
    fn refresh_activity(&mut self, slot: u32) -> bool {
        let activity = aggregate(
            &self.records[slot as usize].session,
            self.extra_sessions(slot),
        );
        let rec = &mut self.records[slot as usize];
        if activity == rec.activity {
            return false;
        }
        rec.activity = activity;
        rec.category = resolve(rec.requested, activity);
        true
    }

    /// Applies the sweep rules to every session of the user, pushing each change to `changed`.
    fn age_sessions(&mut self, slot: u32, now: u64, t: Timeouts, changed: &mut Vec<(u64, Aging)>) {
        if let Some(more) = self.more_sessions.get_mut(&slot) {
            more.age(now, t, changed);
            self.forget_empty_side_table(slot);
        }
        // Expiring the inline session promotes a side-table one, which was aged above.
        let rec = &mut self.records[slot as usize];
        if !rec.session.is_empty() {
            let id = rec.session.id;
            match rec.session.age(now, t) {
                Aging::Unchanged => {}
                Aging::Idled => changed.push((id, Aging::Idled)),
                Aging::Expired => {
                    changed.push((id, Aging::Expired));
                    self.drop_inline_session(slot);
                }
            }
        }
    }

    /// The earliest deadline of the user's sessions, if it has any.
    fn deadline(&self, slot: u32, t: Timeouts) -> Option<u64> {
        let inline = &self.records[slot as usize].session;
        if inline.is_empty() {
            return None;
        }
        let extra = self
            .extra_sessions(slot)
            .into_iter()
            .flat_map(MoreSessions::iter)
            .map(|s| s.deadline(t));
        extra.chain([inline.deadline(t)]).min()
    }
}

/// A slot `compact` drops.
const NOT_KEPT: u32 = u32::MAX;

/// Moves a side table's entries to their records' new slots.
fn rekey<V>(map: &mut HashMap<u32, V, RandomState>, moved: impl Fn(u32) -> u32) {
    let entries: Vec<(u32, V)> = map.drain().collect();
    map.extend(entries.into_iter().map(|(slot, v)| (moved(slot), v)));
    // Users who lost their side entries since give that room back.
    map.shrink_to_fit();
}

/// One sorted source of a shard's live users, with their slots.
pub(crate) enum Source<'a, K> {
    /// The sorted run from record `next` on, skipping removed records.
    Run { run: &'a [Record<K>], next: usize },
    /// The tail, from some key on.
    Tail(std::collections::btree_map::Range<'a, K, u32>),
}

impl<'a, K> Iterator for Source<'a, K> {
    type Item = (&'a K, u32);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Source::Run { run, next } => {
                while let Some(rec) = run.get(*next) {
                    *next += 1;
                    if !rec.is_removed() {
                        return Some((&rec.key, *next as u32 - 1));
                    }
                }
                None
            }
            Source::Tail(tail) => tail.next().map(|(key, &slot)| (key, slot)),
        }
    }
}

#[cfg(feature = "serde")]
mod snapshot {
    use super::*;
    use crate::snapshot::{SessionSnapshot, SourcePresenceSnapshot, UserSnapshot};

    impl<K: Key> Shard<K> {
        /// The highest version or sequence a snapshot may hold: far past what any store reaches
        /// (2^62 changes of one shard), and far enough below `u64::MAX` that the restored log's
        /// sequences, which resume above it, cannot overflow.
        pub(crate) const MAX_RESTORED_VERSION: u64 = 1 << 62;

        /// Appends this shard's users, in key order, to `out`.
        pub(crate) fn snapshot_users(&self, out: &mut Vec<UserSnapshot<K>>) {
            for (key, slot) in self.range(Bound::Unbounded) {
                let rec = &self.records[slot as usize];
                // Another node's sessions are its to snapshot.
                let sessions = std::iter::once(&rec.session)
                    .filter(|s| !s.is_empty())
                    .chain(
                        self.extra_sessions(slot)
                            .into_iter()
                            .flat_map(MoreSessions::iter),
                    )
                    .filter(|s| !s.is_remote())
                    .map(|s| SessionSnapshot {
                        id: s.id,
                        last_seen: s.seen_at(),
                        active: s.is_active(),
                    })
                    .collect();
                let extra = self.extra(slot);
                let sources = extra.map_or(&[][..], |e| &e.sources);
                out.push(UserSnapshot {
                    user: key.clone(),
                    own: self.own_presence(slot),
                    sessions,
                    primary: extra.and_then(|e| e.primary.clone()),
                    sources: sources
                        .iter()
                        .map(|p| SourcePresenceSnapshot {
                            source: p.source.clone(),
                            definition: p.definition.clone(),
                            category: p.category,
                            message: p.message.clone(),
                            updated_at: p.updated_at,
                        })
                        .collect(),
                });
            }
        }

        /// Adds a user from a snapshot, unlogged; a key already here is an error. The activity
        /// is recomputed from the sessions, so a snapshot cannot restore a ghost.
        pub(crate) fn restore_user(
            &mut self,
            hash: u64,
            user: UserSnapshot<K>,
            limits: &Limits,
        ) -> Result<(), Error> {
            if self.find(hash, &user.user).is_some() {
                return Err(Error::InvalidSnapshot {
                    reason: format!("user {:?} appears twice", user.user),
                });
            }
            if user.own.version > Self::MAX_RESTORED_VERSION {
                return Err(Error::InvalidSnapshot {
                    reason: format!(
                        "user {:?} has version {}, past what any store reaches (2^62)",
                        user.user, user.own.version
                    ),
                });
            }
            if user.sessions.len() > 1 {
                let mut ids: Vec<u64> = user.sessions.iter().map(|s| s.id).collect();
                ids.sort_unstable();
                if ids.windows(2).any(|w| w[0] == w[1]) {
                    return Err(Error::InvalidSnapshot {
                        reason: format!("user {:?} has two sessions with one id", user.user),
                    });
                }
            }
            if user.sessions.len() > limits.max_sessions {
                return Err(Error::InvalidSnapshot {
                    reason: format!(
                        "user {:?} has {} sessions, over max_sessions_per_user ({})",
                        user.user,
                        user.sessions.len(),
                        limits.max_sessions
                    ),
                });
            }
            let (slot, _) = self.add(hash, &user.user, None)?;
            let own = user.own;
            let detail = own.details.to_detail();
            let mut sessions = user.sessions.iter();
            let rec = &mut self.records[slot as usize];
            rec.requested = own.requested;
            rec.category = own.category;
            rec.activity = own.activity;
            rec.updated_at = own.updated_at.min(MAX_TIME);
            rec.version = own.version;
            if let Some(first) = sessions.next() {
                rec.session = Session::restored(first.id, first.last_seen, first.active);
                let mut more = MoreSessions::new(self.hasher.clone());
                for s in sessions {
                    more.insert(Session::restored(s.id, s.last_seen, s.active));
                }
                if !more.is_empty() {
                    rec.flags |= MORE_SESSIONS;
                    self.more_sessions.insert(slot, more);
                }
            }
            self.refresh_activity(slot);
            if let Some(deadline) = self.deadline(slot, limits.timeouts) {
                self.records[slot as usize].sched = self.wheel.schedule(slot, deadline);
            }
            let sources = user
                .sources
                .into_iter()
                .map(|p| SourcePresence {
                    source: p.source,
                    definition: p.definition,
                    category: p.category,
                    message: p.message,
                    updated_at: p.updated_at,
                })
                .collect();
            let extra = Extra {
                message: detail.message,
                definition: detail.definition,
                primary: user.primary,
                sources,
                shown: PresenceDetails::default(),
            };
            if !extra.is_empty() {
                self.edit_extra(slot, |e| *e = extra);
            }
            self.last_ts = self.last_ts.max(self.records[slot as usize].updated_at);
            Ok(())
        }

        /// Ends a restore at `now`: the log resumes above every restored version and every
        /// sequence the old store `issued`, and is complete only from now on.
        pub(crate) fn finish_restore(&mut self, now: u64, issued: u64) {
            let newest = self
                .records
                .iter()
                .map(|r| r.version)
                .fold(issued, u64::max);
            self.log = Log::resumed(newest + 1, now);
            self.last_ts = self.last_ts.max(now.min(MAX_TIME));
            self.end_bulk();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_of_a_u64_key_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Record<u64>>(), 48);
    }

    /// Adds, removes, re-adds and frees, with compactions between them: every range matches a
    /// sorted set, and compaction gives freed records back.
    #[test]
    fn ranges_match_a_sorted_set_through_compactions() {
        let clock = crate::ManualClock::new(1_000);
        let limits = Limits {
            timeouts: Timeouts {
                idle_after: 60_000,
                ttl: 120_000,
            },
            window: 40,
            log_capacity: 64,
            max_sessions: 8,
        };
        let hasher = RandomState::with_seeds(1, 2, 3, 4);
        let mut shard: Shard<u64> = Shard::new(hasher.clone(), 0);
        let mut model = std::collections::BTreeSet::new();
        let mut rng = 7u64;
        let mut compactions = 0;
        for step in 0..6_000 {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = (rng >> 33) % 300;
            let hash = hasher.hash_one(key);
            if rng % 3 == 0 {
                shard.remove(hash, &key, &clock, &limits);
                model.remove(&key);
            } else {
                let set = shard.set(
                    hash,
                    &key,
                    Category::Busy,
                    SetMode::Hard,
                    None,
                    &clock,
                    &limits,
                );
                assert!(set.is_ok());
                model.insert(key);
            }
            clock.set(1_000 + step);
            if step % 40 == 0 {
                let before = shard.since_compaction;
                shard.sweep(clock.now_ms(), &limits, &mut |_, _, _| {});
                compactions += usize::from(shard.since_compaction < before);
            }
            let start = (rng >> 20) % 320;
            let got: Vec<u64> = shard
                .range(Bound::Excluded(&start))
                .map(|(k, _)| *k)
                .collect();
            let want: Vec<u64> = model.range(start + 1..).copied().collect();
            assert_eq!(got, want, "step {step}");
            assert_eq!(shard.live(), model.len());
            // Every user is found at its own record, and every log entry names a record whose
            // version is at least the entry's, through every move of the records.
            for key in &model {
                let slot = shard.get(hasher.hash_one(key), key);
                assert_eq!(slot.map(|s| shard.key(s)), Some(key), "step {step}");
            }
            let first = shard.log.front().map_or(0, |(seq, _)| seq - 1);
            for (seq, entry) in shard.log.after_seq(first).into_iter().flatten() {
                let rec = &shard.records[entry.slot as usize];
                assert!(rec.version >= seq && rec.flags & FREED == 0, "step {step}");
            }
        }
        assert!(compactions > 10, "{compactions} compactions in sweeps");
        let addressed = shard.live + shard.tombstones;
        assert!(shard.records.len() <= addressed + shard.since_compaction);
    }
}
