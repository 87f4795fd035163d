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

/// `Session::last_active` of an idle session; the shard's clock never reaches it.
const IDLE: u64 = u64::MAX;

/// One session of a user: who it is and when it was last heard from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Session {
    pub(crate) id: u64,
    /// Time of the last heartbeat of any kind; `u64::MAX` marks an empty inline slot.
    pub(crate) last_seen: u64,
    /// Time of the last active heartbeat, or `IDLE`.
    last_active: u64,
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
        last_seen: u64::MAX,
        last_active: IDLE,
    };

    pub(crate) fn new(id: u64, now: u64, activity: Activity) -> Self {
        let mut s = Session {
            id,
            last_seen: now,
            last_active: IDLE,
        };
        s.beat(now, activity);
        s
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.last_seen == u64::MAX
    }

    pub(crate) fn is_active(&self) -> bool {
        self.last_active != IDLE
    }

    /// Records a heartbeat; `Activity::Offline` is the caller's to turn into a disconnect.
    pub(crate) fn beat(&mut self, now: u64, activity: Activity) {
        self.last_seen = now;
        self.last_active = match activity {
            Activity::Active => now,
            Activity::Idle | Activity::Offline => IDLE,
        };
    }

    /// When this session next idles or expires.
    pub(crate) fn deadline(&self, t: Timeouts) -> u64 {
        let expiry = self.last_seen.saturating_add(t.ttl);
        if self.is_active() {
            expiry.min(self.last_active.saturating_add(t.idle_after))
        } else {
            expiry
        }
    }

    /// Applies the sweep rules at `now`: expired once `now - last_seen >= ttl`, else idle once
    /// `now - last_active >= idle_after`.
    pub(crate) fn age(&mut self, now: u64, t: Timeouts) -> Aging {
        if now.saturating_sub(self.last_seen) >= t.ttl {
            Aging::Expired
        } else if self.is_active() && now.saturating_sub(self.last_active) >= t.idle_after {
            self.last_active = IDLE;
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
