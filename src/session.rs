//! Sessions (a user's devices or connections) and the timer wheel that finds the ones due to
//! idle or expire.
//!
//! A user's first session lives inline in its record and the rest in the shard's side table
//! ([`MoreSessions`], a hash map by session id), so the common one-device user costs no
//! allocation and a heartbeat finds any session in O(1), however many the user has (at most
//! `StoreConfig::max_sessions_per_user`). The side table keeps a count of its active sessions,
//! so a user's activity is known without a scan, and gives its memory back as sessions go. Each user with sessions has one entry in the
//! [`Wheel`], filed under the bucket of its earliest deadline; a heartbeat only moves deadlines
//! later and leaves the entry where it is (it is re-filed when its bucket comes due), so a no-op
//! heartbeat touches nothing but the session's timestamps. Invariant: a user with sessions has a
//! wheel entry in a bucket no later than its earliest deadline's (`Record::sched` names it).

use std::collections::{BTreeMap, HashMap};

use ahash::RandomState;

use crate::Activity;

/// Bit of `Session::stamp` set while the session is active.
const ACTIVE: u64 = 1 << 63;

/// Bit of `Session::stamp` set while the session belongs to another node of a cluster
/// (`crate::replica`): its owner idles and expires it, never the local sweep.
const REMOTE: u64 = 1 << 62;

/// The newest time a session can record; the shard clamps its clock to it.
pub(crate) const MAX_TIME: u64 = REMOTE - 2;

/// The deadline of a session no sweep ages: another node's.
pub(crate) const NEVER: u64 = u64::MAX;

/// One session of a user: who it is, when it was last heard from, and whether it is active.
///
/// An active session's last heartbeat was an active one (an idle heartbeat makes it idle), so
/// one timestamp serves both rules: idle at `last_seen + idle_after`, expired at
/// `last_seen + ttl`. 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Session {
    pub(crate) id: u64,
    /// Time of the last heartbeat, with `ACTIVE` set while active; `u64::MAX` when empty.
    stamp: u64,
}

/// What [`Session::age`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Aging {
    Unchanged,
    Idled,
    Expired,
}

/// The session timeouts in ms, from the store's config.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub(crate) idle_after: u64,
    pub(crate) ttl: u64,
}

impl Session {
    /// The inline slot of a record with no session.
    pub(crate) const EMPTY: Session = Session {
        id: 0,
        stamp: u64::MAX,
    };

    #[inline]
    pub(crate) fn new(id: u64, now: u64, activity: Activity) -> Self {
        let mut s = Session { id, stamp: 0 };
        s.beat(now, activity);
        s
    }

    /// Marks the session as another node's: the local sweep leaves it alone.
    #[inline]
    pub(crate) fn pin(&mut self) {
        self.stamp |= REMOTE;
    }

    /// Whether the session is another node's.
    #[inline]
    pub(crate) fn is_remote(&self) -> bool {
        self.stamp & REMOTE != 0 && !self.is_empty()
    }

    /// A session as a snapshot holds it (its time clamped to [`MAX_TIME`]).
    #[cfg(feature = "serde")]
    pub(crate) fn restored(id: u64, last_seen: u64, active: bool) -> Self {
        let activity = if active {
            Activity::Active
        } else {
            Activity::Idle
        };
        Session::new(id, last_seen.min(MAX_TIME), activity)
    }

    /// When the session was last heard from.
    #[cfg(feature = "serde")]
    pub(crate) fn seen_at(&self) -> u64 {
        self.last_seen()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.stamp == u64::MAX
    }

    #[inline]
    pub(crate) fn is_active(&self) -> bool {
        self.stamp & ACTIVE != 0 && !self.is_empty()
    }

    #[inline]
    fn last_seen(&self) -> u64 {
        self.stamp & !(ACTIVE | REMOTE)
    }

    /// Records a heartbeat at `now` (at most [`MAX_TIME`]); `Activity::Offline` is the caller's
    /// to turn into a disconnect.
    #[inline]
    pub(crate) fn beat(&mut self, now: u64, activity: Activity) {
        debug_assert!(now <= MAX_TIME);
        self.stamp = match activity {
            Activity::Active => now | ACTIVE,
            Activity::Idle | Activity::Offline => now,
        };
    }

    /// When this session next idles or expires ([`NEVER`] for another node's).
    #[inline]
    pub(crate) fn deadline(&self, t: Timeouts) -> u64 {
        if self.is_remote() {
            return NEVER;
        }
        let wait = if self.is_active() {
            t.idle_after.min(t.ttl)
        } else {
            t.ttl
        };
        self.last_seen().saturating_add(wait)
    }

    /// Applies the sweep rules at `now`: expired once `now - last_seen >= ttl`, else idle once
    /// active and `now - last_seen >= idle_after`.
    /// Another node's session never ages here.
    pub(crate) fn age(&mut self, now: u64, t: Timeouts) -> Aging {
        if self.is_remote() {
            return Aging::Unchanged;
        }
        let silent = now.saturating_sub(self.last_seen());
        if silent >= t.ttl {
            Aging::Expired
        } else if self.is_active() && silent >= t.idle_after {
            self.stamp &= !ACTIVE;
            Aging::Idled
        } else {
            Aging::Unchanged
        }
    }
}

/// The activity of a user with these sessions: Active if any is, Idle if any exists, else Offline.
pub(crate) fn aggregate(inline: &Session, more: Option<&MoreSessions>) -> Activity {
    if inline.is_empty() {
        Activity::Offline
    } else if inline.is_active() || more.is_some_and(|m| m.active > 0) {
        Activity::Active
    } else {
        Activity::Idle
    }
}

/// A user's sessions beyond the inline one: by id, so any is found in O(1), with the number of
/// active ones, so the user's activity is known without a scan. Invariant: `active` counts the
/// active sessions of `by_id`.
#[derive(Debug)]
pub(crate) struct MoreSessions {
    by_id: HashMap<u64, Session, RandomState>,
    active: usize,
}

impl MoreSessions {
    pub(crate) fn new(hasher: RandomState) -> Self {
        MoreSessions {
            by_id: HashMap::with_hasher(hasher),
            active: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.by_id.contains_key(&id)
    }

    /// The sessions, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Session> {
        self.by_id.values()
    }

    /// A heartbeat of session `id`, which is here or is added (the caller checked the cap):
    /// the session after it, and whether its activity changed (a new session's always does).
    pub(crate) fn beat(&mut self, id: u64, now: u64, activity: Activity) -> (Session, bool) {
        let (session, changed) = match self.by_id.get_mut(&id) {
            Some(s) => {
                let was_active = s.is_active();
                s.beat(now, activity);
                self.active -= usize::from(was_active);
                (*s, was_active != s.is_active())
            }
            None => {
                let s = Session::new(id, now, activity);
                self.by_id.insert(id, s);
                (s, true)
            }
        };
        self.active += usize::from(session.is_active());
        (session, changed)
    }

    /// Adds a session the user does not have yet (a restore).
    #[cfg(feature = "serde")]
    pub(crate) fn insert(&mut self, s: Session) {
        self.active += usize::from(s.is_active());
        self.by_id.insert(s.id, s);
    }

    /// Removes session `id`; `false` if there is none.
    pub(crate) fn remove(&mut self, id: u64) -> bool {
        let Some(s) = self.by_id.remove(&id) else {
            return false;
        };
        self.active -= usize::from(s.is_active());
        self.give_back();
        true
    }

    /// Takes any one session out (to move it inline).
    pub(crate) fn pop(&mut self) -> Option<Session> {
        let id = *self.by_id.keys().next()?;
        let s = self.by_id.remove(&id)?;
        self.active -= usize::from(s.is_active());
        self.give_back();
        Some(s)
    }

    /// Session `id`, if the user has it.
    pub(crate) fn get(&self, id: u64) -> Option<Session> {
        self.by_id.get(&id).copied()
    }

    /// Session `id`, to change in place in ways that keep its activity (pinning it).
    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut Session> {
        self.by_id.get_mut(&id)
    }

    /// Applies the sweep rules at `now` to every session, pushing each change to `changed`.
    pub(crate) fn age(&mut self, now: u64, t: Timeouts, changed: &mut Vec<(u64, Aging)>) {
        let mut active = 0;
        self.by_id.retain(|&id, s| {
            let aged = s.age(now, t);
            if aged != Aging::Unchanged {
                changed.push((id, aged));
            }
            active += usize::from(aged != Aging::Expired && s.is_active());
            aged != Aging::Expired
        });
        self.active = active;
        self.give_back();
    }

    /// Shrinks the map once it is mostly empty, so a user who had many sessions gives their
    /// memory back as they go (amortized O(1): a shrink halves the room at least fourfold).
    fn give_back(&mut self) {
        let len = self.by_id.len();
        if self.by_id.capacity() > 4 * len.max(4) {
            self.by_id.shrink_to(len);
        }
    }
}

/// Width of a wheel bucket in ms. Buckets only group work: a sweep still applies every rule at
/// its exact time, re-checking the entries of the current bucket.
const TICK_MS: u64 = 1000;

/// `Record::sched` of a record that has no wheel entry.
pub(crate) const NOT_SCHEDULED: u32 = u32::MAX;

/// Record slots filed by the bucket of their earliest deadline.
#[derive(Debug, Default)]
pub(crate) struct Wheel {
    buckets: BTreeMap<u32, Vec<u32>>,
}

impl Wheel {
    /// The bucket a deadline falls in (saturating, so absurd clocks only make buckets coarse).
    #[inline]
    pub(crate) fn bucket_of(deadline: u64) -> u32 {
        (deadline / TICK_MS).min(u64::from(NOT_SCHEDULED - 1)) as u32
    }

    /// Files `slot` under `deadline`'s bucket and returns the bucket.
    pub(crate) fn schedule(&mut self, slot: u32, deadline: u64) -> u32 {
        let bucket = Self::bucket_of(deadline);
        self.buckets.entry(bucket).or_default().push(slot);
        bucket
    }

    /// Takes the earliest bucket at or before `bucket`.
    pub(crate) fn pop_due(&mut self, bucket: u32) -> Option<(u32, Vec<u32>)> {
        let entry = self.buckets.first_entry()?;
        (*entry.key() <= bucket).then(|| entry.remove_entry())
    }

    /// Puts entries back under `bucket` (the current one, partly due).
    pub(crate) fn refile(&mut self, bucket: u32, slots: Vec<u32>) {
        if !slots.is_empty() {
            self.buckets.entry(bucket).or_default().extend(slots);
        }
    }

    /// Moves every filed slot to `moved(slot)`, dropping those it maps to `None` (records the
    /// shard dropped), as when the shard reorders its records.
    pub(crate) fn remap(&mut self, moved: impl Fn(u32) -> Option<u32>) {
        for slots in self.buckets.values_mut() {
            slots.retain_mut(|s| moved(*s).map(|m| *s = m).is_some());
        }
        self.buckets.retain(|_, slots| !slots.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        idle_after: 60,
        ttl: 120,
    };

    #[test]
    fn a_session_idles_then_expires_at_its_exact_times() {
        let mut s = Session::new(1, 1000, Activity::Active);
        assert_eq!(s.deadline(T), 1060);
        assert_eq!(s.age(1059, T), Aging::Unchanged);
        assert_eq!(s.age(1060, T), Aging::Idled);
        assert_eq!(s.deadline(T), 1120);
        assert_eq!(s.age(1119, T), Aging::Unchanged);
        assert_eq!(s.age(1120, T), Aging::Expired);
    }

    #[test]
    fn a_remote_session_never_ages() {
        let mut s = Session::new(1, 1000, Activity::Active);
        s.pin();
        assert!(s.is_remote() && s.is_active());
        assert_eq!(s.deadline(T), NEVER);
        assert_eq!(s.age(u64::MAX / 4, T), Aging::Unchanged);
        assert!(!Session::EMPTY.is_remote());
    }

    #[test]
    fn aggregate_prefers_active() {
        let active = Session::new(1, 5, Activity::Active);
        let idle = Session::new(2, 5, Activity::Idle);
        let mut more = MoreSessions::new(RandomState::new());
        assert_eq!(aggregate(&Session::EMPTY, None), Activity::Offline);
        assert_eq!(aggregate(&idle, None), Activity::Idle);
        more.beat(2, 5, Activity::Idle);
        assert_eq!(aggregate(&idle, Some(&more)), Activity::Idle);
        more.beat(3, 5, Activity::Active);
        assert_eq!(aggregate(&idle, Some(&more)), Activity::Active);
        assert_eq!(aggregate(&active, None), Activity::Active);
    }

    #[test]
    fn many_sessions_are_found_by_id_and_give_their_memory_back_as_they_go() {
        let mut more = MoreSessions::new(RandomState::with_seeds(1, 2, 3, 4));
        for id in 0..10_000 {
            more.beat(id, 5, Activity::Idle);
        }
        assert_eq!((more.len(), more.active), (10_000, 0));
        assert!(more.beat(77, 6, Activity::Active).1);
        assert!(!more.beat(77, 7, Activity::Active).1);
        assert_eq!(more.active, 1);
        let full = more.by_id.capacity();
        for id in 0..9_990 {
            assert!(more.remove(id));
        }
        assert!(!more.remove(0));
        assert_eq!((more.len(), more.active), (10, 0));
        assert!(
            more.by_id.capacity() * 64 < full,
            "{}",
            more.by_id.capacity()
        );
        let mut changed = Vec::new();
        more.age(5 + T.ttl, T, &mut changed);
        assert_eq!(changed.len(), 10);
        assert!(changed.iter().all(|&(_, aging)| aging == Aging::Expired));
        assert!(more.is_empty());
    }

    #[test]
    fn wheel_pops_only_due_buckets_in_order() {
        let mut w = Wheel::default();
        let b2 = w.schedule(7, 2500);
        let b1 = w.schedule(8, 1500);
        assert_eq!(w.pop_due(0), None);
        assert_eq!(w.pop_due(b2), Some((b1, vec![8])));
        assert_eq!(w.pop_due(b2), Some((b2, vec![7])));
        assert_eq!(w.pop_due(u32::MAX), None);
        assert_eq!(Wheel::bucket_of(u64::MAX), NOT_SCHEDULED - 1);
    }
}
