//! Paging through every user in key order: [`PageQuery`], [`Page`], and the k-way merge of the
//! shards' key-ordered records that produces them.
//!
//! A page is read with every shard's read lock held, so its items and its cursor are one
//! consistent snapshot; the merge costs O(limit x log shards + shards x log users).

use std::ops::Bound;

use crate::{Cursor, Presence};

/// Which page of users to read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PageQuery<K> {
    /// Where the page starts; Symphony's `lastUserId` is `Bound::Included`.
    pub start: Bound<K>,
    /// Page size; `None` takes `StoreConfig::default_page`. 0 or over `max_page` is an error.
    pub limit: Option<usize>,
    /// Whether users whose category is `Offline` are listed.
    pub include_offline: bool,
}

impl<K> PageQuery<K> {
    /// The first page of all users, offline ones included, at the default size.
    pub fn first() -> Self {
        PageQuery {
            start: Bound::Unbounded,
            limit: None,
            include_offline: true,
        }
    }

    /// The page starting at `key` (included), as [`Page::next`] names it.
    pub fn starting_at(key: K) -> Self {
        PageQuery {
            start: Bound::Included(key),
            ..Self::first()
        }
    }

    /// The same query with another limit.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The same query, listing or leaving out users who show `Offline`.
    pub fn with_offline(mut self, include_offline: bool) -> Self {
        self.include_offline = include_offline;
        self
    }
}

impl<K> Default for PageQuery<K> {
    fn default() -> Self {
        Self::first()
    }
}

/// One page of users, sorted by key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Page<K> {
    /// The users of this page with their presence, in ascending key order.
    pub items: Vec<(K, Presence)>,
    /// The first key of the following page (`None` at the end): query `starting_at(next)`.
    pub next: Option<K>,
    /// The store's cursor when this page was read. After paging through every user, a delta
    /// from the *first* page's cursor holds every change the pages may have missed.
    pub cursor: Cursor,
}

/// Merges sorted iterators with disjoint keys into one sorted iterator, with a loser tree: each
/// item costs one comparison per level (log2 of the number of ranges). The tree's nodes hold
/// the losers' heads themselves, so a replay compares the climbing head with each node in place.
pub(crate) struct Merge<'a, K, V, I> {
    ranges: Vec<I>,
    /// `losers[n]` is the head that lost the match at inner node `n` (1-based, children `2n`
    /// and `2n + 1`; range `i` is leaf `losers.len() + i`).
    losers: Vec<Head<'a, K, V>>,
    /// The smallest head.
    winner: Head<'a, K, V>,
}

/// A range's smallest remaining item (`None` once it is exhausted, or for the padding that makes
/// the number of leaves a power of two), and the range's index.
type Head<'a, K, V> = (Option<(&'a K, V)>, usize);

/// Whether head `a` comes before head `b`; an exhausted range comes last. Equal keys (which
/// only merges of timestamps have) come in either order.
#[inline]
fn beats<K: Ord, V>(a: &Head<'_, K, V>, b: &Head<'_, K, V>) -> bool {
    match (&a.0, &b.0) {
        (Some(x), Some(y)) => x.0 < y.0,
        (x, _) => x.is_some(),
    }
}

impl<'a, K: Ord, V: Copy, I: Iterator<Item = (&'a K, V)>> Merge<'a, K, V, I> {
    pub(crate) fn new(ranges: impl IntoIterator<Item = I>) -> Self {
        let mut ranges: Vec<I> = ranges.into_iter().collect();
        let leaves = ranges.len().next_power_of_two();
        let mut heads: Vec<Head<'a, K, V>> = (0..leaves)
            .map(|i| (ranges.get_mut(i).and_then(Iterator::next), i))
            .collect();
        let mut losers = vec![(None, 0); leaves];
        let winner = Self::play(&mut heads, &mut losers, 1);
        Merge {
            ranges,
            losers,
            winner,
        }
    }

    /// Plays the matches of the subtree at `node`, filing its losers; returns its winner.
    fn play(
        heads: &mut [Head<'a, K, V>],
        losers: &mut [Head<'a, K, V>],
        node: usize,
    ) -> Head<'a, K, V> {
        if node >= losers.len() {
            return heads[node - losers.len()];
        }
        let left = Self::play(heads, losers, 2 * node);
        let right = Self::play(heads, losers, 2 * node + 1);
        let (winner, loser) = if beats(&left, &right) {
            (left, right)
        } else {
            (right, left)
        };
        losers[node] = loser;
        winner
    }
}

impl<'a, K: Ord, V: Copy, I: Iterator<Item = (&'a K, V)>> Iterator for Merge<'a, K, V, I> {
    /// The next smallest key, with its value and the index of the range it came from.
    type Item = (usize, &'a K, V);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (Some((key, value)), range) = self.winner else {
            return None;
        };
        // The range's next head climbs from its leaf, swapping places with every loser that
        // beats it; what reaches the root is the new winner.
        let mut head = (self.ranges[range].next(), range);
        let mut node = (self.losers.len() + range) / 2;
        while let Some(loser) = self.losers.get_mut(node).filter(|_| node > 0) {
            if beats(loser, &head) {
                std::mem::swap(loser, &mut head);
            }
            node /= 2;
        }
        self.winner = head;
        Some((range, key, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sorts_disjoint_ranges() {
        let a = [1, 4, 7];
        let b = [2, 3, 9];
        let c: [i32; 0] = [];
        let d = [5];
        let ranges = [&a[..], &b[..], &c[..], &d[..]].map(|r| r.iter().map(|k| (k, ())));
        let merged: Vec<(usize, i32)> = Merge::new(ranges).map(|(s, k, _)| (s, *k)).collect();
        assert_eq!(
            merged,
            [(0, 1), (1, 2), (1, 3), (0, 4), (3, 5), (0, 7), (1, 9)]
        );
    }

    #[test]
    fn merge_matches_a_sort_for_any_number_of_ranges_and_ties() {
        for ranges in 0..12 {
            // Range r holds the multiples of r + 1 below 40: ties across ranges, some empty.
            let data: Vec<Vec<u32>> = (0..ranges)
                .map(|r| (0..40).filter(|k| k % (r + 1) == 0 && k % 7 != r).collect())
                .collect();
            let merged: Vec<(u32, usize)> =
                Merge::new(data.iter().map(|d| d.iter().map(|k| (k, ()))))
                    .map(|(r, k, ())| (*k, r))
                    .collect();
            assert!(
                merged.windows(2).all(|w| w[0].0 <= w[1].0),
                "{ranges} ranges"
            );
            let mut got = merged.clone();
            got.sort_unstable();
            let mut want: Vec<(u32, usize)> = (0..ranges as usize)
                .flat_map(|r| data[r].iter().map(move |&k| (k, r)))
                .collect();
            want.sort_unstable();
            assert_eq!(got, want, "{ranges} ranges");
        }
    }
}
