//! The shard's hash index from a key's hash to its record slot.
//!
//! Open addressing with linear probing over one `u32` per bucket: an 8-bit tag of the key's hash
//! beside a 24-bit slot. Four bytes a bucket keep the table small enough to stay in the last-level
//! cache at a million users, so finding a user costs one miss to memory (the record) like a map
//! that stores values inline, while records stay in a dense slab that the change log can address
//! by slot. The tag filters out nearly every probe that is not the key before a record is read.
//! A bucket does not keep the bits that place it, so growing and deleting ask the caller for a
//! slot's hash (the shard hashes the record's key). Deletion shifts the entries after it back (no
//! tombstones), so probe chains stay short. Invariant: at most 4/5 of the buckets are used, so
//! every probe ends at an empty bucket.

/// An empty bucket. No entry can equal it, since slots are below [`MAX_SLOTS`].
const EMPTY: u32 = u32::MAX;
/// The bits of a bucket that hold the slot.
const SLOT_BITS: u32 = (1 << 24) - 1;
/// Slots must be below this: 24 bits, the all-ones slot being part of [`EMPTY`].
pub(crate) const MAX_SLOTS: u32 = SLOT_BITS;

/// Key-hash to record-slot index of one shard.
#[derive(Debug, Default)]
pub(crate) struct SlotTable {
    buckets: Box<[u32]>,
    len: usize,
}

/// The tag of a hash: bits 32..40, which neither the home bucket (low bits) nor the shard
/// (top bits) uses.
fn tag(hash: u64) -> u32 {
    (((hash >> 32) & 0xff) as u32) << 24
}

fn entry(hash: u64, slot: u32) -> u32 {
    debug_assert!(slot < MAX_SLOTS);
    tag(hash) | slot
}

impl SlotTable {
    /// The slot of the first entry with `hash` for which `is_match` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut is_match: impl FnMut(u32) -> bool) -> Option<u32> {
        let mask = self.buckets.len().checked_sub(1)?;
        let tag = tag(hash);
        let mut i = hash as usize & mask;
        loop {
            let e = self.buckets[i];
            if e == EMPTY {
                return None;
            }
            if e & !SLOT_BITS == tag && is_match(e & SLOT_BITS) {
                return Some(e & SLOT_BITS);
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `slot` under `hash`; the caller knows no entry for the key exists. `hash_of` gives
    /// the hash of a slot already in the table, for moving it when the table grows.
    pub(crate) fn insert(&mut self, hash: u64, slot: u32, hash_of: impl Fn(u32) -> u64) {
        if (self.len + 1) * 5 > self.buckets.len() * 4 {
            self.grow(&hash_of);
        }
        Self::place(&mut self.buckets, hash, entry(hash, slot));
        self.len += 1;
    }

    /// Removes the entry of `slot` under `hash`, if present; `hash_of` as for `insert`.
    pub(crate) fn remove(&mut self, hash: u64, slot: u32, hash_of: impl Fn(u32) -> u64) {
        let Some(mask) = self.buckets.len().checked_sub(1) else {
            return;
        };
        let wanted = entry(hash, slot);
        let mut hole = hash as usize & mask;
        while self.buckets[hole] != wanted {
            if self.buckets[hole] == EMPTY {
                return;
            }
            hole = (hole + 1) & mask;
        }
        // Shift back each later entry of the run whose home is not between the hole and it.
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let e = self.buckets[j];
            if e == EMPTY {
                break;
            }
            let home = hash_of(e & SLOT_BITS) as usize & mask;
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.buckets[hole] = e;
                hole = j;
            }
        }
        self.buckets[hole] = EMPTY;
        self.len -= 1;
    }

    /// Moves every entry's slot to `moved(slot)`, as when the shard reorders its records. The
    /// hashes do not change, so every entry keeps its bucket.
    ///
    /// Without a branch on empty buckets (an empty one asks for slot 0's move and keeps its
    /// value): the buckets are half empty at random, so a branch would mispredict half the time.
    pub(crate) fn remap(&mut self, moved: impl Fn(u32) -> u32) {
        if self.len == 0 {
            return;
        }
        for e in self.buckets.iter_mut() {
            let empty = *e == EMPTY;
            let slot = if empty { 0 } else { *e & SLOT_BITS };
            let new = (*e & !SLOT_BITS) | moved(slot);
            *e = if empty { EMPTY } else { new };
        }
    }

    /// Makes room for `additional` more entries without growing again; `hash_of` as for
    /// `insert`.
    pub(crate) fn reserve(&mut self, additional: usize, hash_of: impl Fn(u32) -> u64) {
        let mut size = self.buckets.len().max(16);
        while (self.len + additional) * 5 > size * 4 {
            size *= 2;
        }
        if size > self.buckets.len() {
            self.resize(size, &hash_of);
        }
    }

    fn grow(&mut self, hash_of: &impl Fn(u32) -> u64) {
        self.resize((self.buckets.len() * 2).max(16), hash_of);
    }

    fn resize(&mut self, size: usize, hash_of: &impl Fn(u32) -> u64) {
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY; size].into_boxed_slice());
        for e in old.iter().copied().filter(|&e| e != EMPTY) {
            Self::place(&mut self.buckets, hash_of(e & SLOT_BITS), e);
        }
    }

    fn place(buckets: &mut [u32], hash: u64, e: u32) {
        let mask = buckets.len() - 1;
        let mut i = hash as usize & mask;
        while buckets[i] != EMPTY {
            i = (i + 1) & mask;
        }
        buckets[i] = e;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A deliberately poor hash: few homes, at the end of the table, so runs collide and wrap,
    /// and tags that repeat every 7 keys, so tags collide too.
    fn hash(key: u64) -> u64 {
        ((0xffff_fff8 + key % 11) & 0xffff_ffff) | ((key % 7) << 32) | (key << 40)
    }

    #[test]
    fn matches_a_hash_map_through_inserts_and_removes() {
        let mut table = SlotTable::default();
        let mut model: HashMap<u64, u32> = HashMap::new();
        // Which key each slot holds, so the table can ask for a slot's hash.
        let mut keys: HashMap<u32, u64> = HashMap::new();
        let mut rng = 12345u64;
        for step in 0..20_000u32 {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = (rng >> 33) % 300;
            match model.get(&key) {
                Some(&slot) if rng % 3 == 0 => {
                    table.remove(hash(key), slot, |s| hash(keys[&s]));
                    model.remove(&key);
                    keys.remove(&slot);
                }
                Some(_) => {}
                None => {
                    keys.insert(step, key);
                    table.insert(hash(key), step, |s| hash(keys[&s]));
                    model.insert(key, step);
                }
            }
            if step % 97 == 0 {
                for k in 0..300 {
                    let found = table.find(hash(k), |s| model.get(&k) == Some(&s));
                    assert_eq!(found, model.get(&k).copied(), "key {k} at step {step}");
                }
            }
        }
        assert_eq!(table.len, model.len());
    }

    #[test]
    fn an_empty_table_finds_nothing_and_removes_nothing() {
        let mut t = SlotTable::default();
        assert_eq!(t.find(1, |_| true), None);
        t.remove(1, 1, |_| 1);
    }
}
