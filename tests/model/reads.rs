//! The reads both property suites compare with the model after every step: pages walked with
//! their `next`, time deltas at every boundary, deltas from every cursor taken, and the
//! versions rule on every presence returned.

use std::ops::Bound;

use presence_store::{Cursor, Delta, FullReason, Key, PageQuery, PresenceStore, Since};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::{Expected, Model, ModelCursor, ModelDelta, Versions};
use presence_store::Presence;

/// What a check returns.
pub type TestResult = Result<(), TestCaseError>;

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

/// A store and its model, borrowed for one round of comparisons.
pub struct Reads<'a, K> {
    pub store: &'a PresenceStore<K>,
    pub model: &'a Model<K>,
    pub versions: &'a mut Versions<K>,
    /// Cursors taken so far, each with the model's position when it was taken.
    pub cursors: &'a [(Cursor, ModelCursor)],
    pub window_ms: u64,
    /// How many of the oldest changes the store dropped for its log capacity (exact only with
    /// one shard and no window pruning; 0 otherwise).
    pub pruned_by_capacity: usize,
    /// Users the suite uses, which bounds a paging walk.
    pub users: usize,
}

impl<K: Key> Reads<'_, K> {
    /// One presence from the store against the model's.
    pub fn same(&mut self, what: &str, key: &K, got: &Presence, exp: &Expected) -> TestResult {
        self.versions
            .check(key, got, exp)
            .map_err(|e| fail(format!("{what}: {e}")))
    }

    /// Compares two lists of users in order.
    pub fn same_list(
        &mut self,
        what: &str,
        got: &[(K, Presence)],
        exp: &[(K, Expected)],
    ) -> TestResult {
        let got_keys: Vec<&K> = got.iter().map(|(k, _)| k).collect();
        let exp_keys: Vec<&K> = exp.iter().map(|(k, _)| k).collect();
        prop_assert_eq!(got_keys, exp_keys, "{}: keys", what);
        for ((k, g), (_, e)) in got.iter().zip(exp) {
            self.same(what, k, g, e)?;
        }
        Ok(())
    }

    /// Compares a delta: full and reason exactly, users as a set (sorted when full).
    pub fn same_delta(&mut self, what: &str, got: &Delta<K>, exp: &ModelDelta<K>) -> TestResult {
        prop_assert_eq!(
            (got.full, got.reason),
            (exp.full, exp.reason),
            "{}: full/reason; store users {:?}",
            what,
            got.users
        );
        let mut users = got.users.clone();
        if got.full {
            prop_assert!(
                users.windows(2).all(|w| w[0].0 < w[1].0),
                "{}: full answer not sorted",
                what
            );
        } else {
            users.sort_by(|a, b| a.0.cmp(&b.0));
            prop_assert!(
                users.windows(2).all(|w| w[0].0 != w[1].0),
                "{}: a user appears twice: {:?}",
                what,
                got.users
            );
        }
        self.same_list(what, &users, &exp.users)
    }

    /// A delta from a cursor taken just now is empty and not full.
    pub fn nothing_after(&mut self, cursor: &Cursor, what: &str) -> TestResult {
        let delta = self.store.changes_since(&Since::Cursor(cursor.clone()));
        prop_assert!(
            !delta.full && delta.users.is_empty(),
            "{}: a delta from its cursor is not empty: {:?}",
            what,
            delta
        );
        Ok(())
    }

    /// Reads one page from both and compares them; returns its `next`.
    pub fn page_once(
        &mut self,
        start: Bound<K>,
        limit: Option<usize>,
        include_offline: bool,
    ) -> Result<Option<K>, TestCaseError> {
        let query = PageQuery {
            start: start.clone(),
            limit,
            include_offline,
        };
        let what = format!("page {query:?}");
        let got = self
            .store
            .page(&query)
            .map_err(|e| fail(format!("{what}: {e}")))?;
        let exp = self
            .model
            .page(start.as_ref(), limit, include_offline)
            .map_err(|e| fail(format!("{what}: model refuses {e:?}")))?;
        self.same_list(&what, &got.items, &exp.items)?;
        prop_assert_eq!(&got.next, &exp.next, "{}: next", what);
        self.nothing_after(&got.cursor, &what)?;
        Ok(got.next)
    }

    /// Pages through every user with `limit`, comparing each page and its `next`.
    pub fn walk(&mut self, limit: usize, include_offline: bool) -> TestResult {
        let mut start = Bound::Unbounded;
        let mut pages = 0;
        loop {
            let next = self.page_once(start, Some(limit), include_offline)?;
            pages += 1;
            prop_assert!(pages <= self.users + 1, "paging does not end");
            match next {
                Some(k) => start = Bound::Included(k),
                None => return Ok(()),
            }
        }
    }

    /// Time deltas: the window's edges, now, the future, and every logged timestamp.
    pub fn time_deltas(&mut self) -> TestResult {
        let (now, window) = (self.model.now, self.window_ms);
        let mut times = vec![now + 1, now, now - 1, now - window, now - window + 1];
        times.push(now - window - 1);
        for c in &self.model.log {
            if c.at + window > now {
                times.extend([c.at, c.at + 1]);
            }
        }
        times.sort_unstable();
        times.dedup();
        for (i, &t) in times.iter().enumerate() {
            let delta = self.store.changes_since(&Since::Time(t));
            let mut exp = self.model.changes_since_time(t);
            let pruned = self.pruned_by_capacity;
            if !exp.full && t <= now && pruned > 0 && self.model.log[pruned - 1].at >= t {
                exp = self.model.full(FullReason::LogPruned);
            }
            self.same_delta(
                &format!("changes_since(Time({t})), now {now}"),
                &delta,
                &exp,
            )?;
            if i == 0 {
                self.nothing_after(&delta.cursor, "time delta's cursor")?;
            }
        }
        Ok(())
    }

    /// Deltas from every cursor taken so far.
    pub fn cursor_deltas(&mut self) -> TestResult {
        for (i, (cursor, at)) in self.cursors.iter().enumerate() {
            let what = format!("changes_since(cursor #{i} at change {})", at.0);
            let delta = self.store.changes_since(&Since::Cursor(cursor.clone()));
            let pruned =
                delta.reason == Some(FullReason::LogPruned) && self.model.cursor_may_be_pruned(*at);
            let exp = if pruned || at.0 < self.pruned_by_capacity {
                self.model.full(FullReason::LogPruned)
            } else {
                self.model.changes_since_cursor(*at)
            };
            self.same_delta(&what, &delta, &exp)?;
        }
        Ok(())
    }
}
