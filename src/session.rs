//! Sessions (a user's devices or connections) and the timer wheel that finds the ones due to
//! idle or expire.
//!
//! A user's first session lives inline in its record and the rest in the shard's side table, so
//! the common one-device user costs no allocation. Each user with sessions has one entry in the
//! [`Wheel`], filed under the bucket of its earliest deadline; a heartbeat only moves deadlines
//! later and leaves the entry where it is (it is re-filed when its bucket comes due), so a no-op
//! heartbeat touches nothing but the session's timestamps. Invariant: a user with sessions has a
//! wheel entry in a bucket no later than its earliest deadline's (`Record::sched` names it).

use std::collections::BTreeMap;

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
pub(crate) fn aggregate(inline: &Session, extra: &[Session]) -> Activity {
    if inline.is_empty() {
        Activity::Offline
    } else if inline.is_active() || extra.iter().any(Session::is_active) {
        Activity::Active
    } else {
        Activity::Idle
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
        assert_eq!(aggregate(&Session::EMPTY, &[]), Activity::Offline);
        assert_eq!(aggregate(&idle, &[]), Activity::Idle);
        assert_eq!(aggregate(&idle, &[idle, active]), Activity::Active);
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
