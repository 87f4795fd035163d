//! Paging through every user in key order: [`PageQuery`], [`Page`], and the k-way merge of the
//! shards' ordered indexes that produces them.
//!
//! A page is read with every shard's read lock held, so its items and its cursor are one
//! consistent snapshot; the merge costs O(limit x log shards + shards x log users).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
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

/// The smallest current key of one shard's range.
struct Head<'a, K, V> {
    key: &'a K,
    value: V,
    shard: usize,
}

impl<K: Ord, V> PartialEq for Head<'_, K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl<K: Ord, V> Eq for Head<'_, K, V> {}

impl<K: Ord, V> PartialOrd for Head<'_, K, V> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: Ord, V> Ord for Head<'_, K, V> {
    /// Reversed, so that `BinaryHeap` pops the smallest key first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(self.key)
    }
}

/// Merges sorted iterators with disjoint keys into one sorted iterator.
pub(crate) struct Merge<'a, K, V, I> {
    ranges: Vec<I>,
    heap: BinaryHeap<Head<'a, K, V>>,
}

impl<'a, K: Ord, V, I: Iterator<Item = (&'a K, V)>> Merge<'a, K, V, I> {
    pub(crate) fn new(ranges: impl IntoIterator<Item = I>) -> Self {
        let mut ranges: Vec<I> = ranges.into_iter().collect();
        let mut heap = BinaryHeap::with_capacity(ranges.len());
        for (shard, range) in ranges.iter_mut().enumerate() {
            if let Some((key, value)) = range.next() {
                heap.push(Head { key, value, shard });
            }
        }
        Merge { ranges, heap }
    }
}

impl<'a, K: Ord, V, I: Iterator<Item = (&'a K, V)>> Iterator for Merge<'a, K, V, I> {
    /// The next smallest key, with its value and the index of the range it came from.
    type Item = (usize, &'a K, V);

    fn next(&mut self) -> Option<Self::Item> {
        let mut top = self.heap.peek_mut()?;
        let shard = top.shard;
        let old = match self.ranges[shard].next() {
            Some((key, value)) => std::mem::replace(&mut *top, Head { key, value, shard }),
            None => std::collections::binary_heap::PeekMut::pop(top),
        };
        Some((shard, old.key, old.value))
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
}
