//! The shard's hash index from a key's hash to its record slot.
//!
//! Open addressing with linear probing over one `u64` per bucket: the low 32 bits of the key's
//! hash beside the slot. A lookup reads one cache line of buckets in the common case and
//! compares hash bits before it touches a record, so finding a user costs two cache misses
//! (bucket, record), as in a map that stores values inline, while records stay in a dense slab
//! that the change log can address by slot. Because each bucket keeps the bits that place it,
//! growing and deleting never rehash a key. Deletion shifts the entries after it back (no
//! tombstones), so probe chains stay short. Invariant: at most 4/5 of the buckets are used, so
//! every probe ends at an empty bucket.

/// An empty bucket. No entry can equal it, since slots are below `u32::MAX`.
const EMPTY: u64 = u64::MAX;

/// Key-hash to record-slot index of one shard.
#[derive(Debug, Default)]
pub(crate) struct SlotTable {
    buckets: Box<[u64]>,
    len: usize,
}

fn entry(hash: u64, slot: u32) -> u64 {
    (hash << 32) | u64::from(slot)
}

impl SlotTable {
    /// The slot of the first entry with `hash` for which `is_match` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut is_match: impl FnMut(u32) -> bool) -> Option<u32> {
        let mask = self.buckets.len().checked_sub(1)?;
        let bits = hash << 32;
        let mut i = hash as u32 as usize & mask;
        loop {
            let e = self.buckets[i];
            if e == EMPTY {
                return None;
            }
            if e & !u64::from(u32::MAX) == bits && is_match(e as u32) {
                return Some(e as u32);
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `slot` under `hash`; the caller knows no entry for the key exists.
    pub(crate) fn insert(&mut self, hash: u64, slot: u32) {
        if (self.len + 1) * 5 > self.buckets.len() * 4 {
            self.grow();
        }
        Self::place(&mut self.buckets, entry(hash, slot));
        self.len += 1;
    }

    /// Removes the entry of `slot` under `hash`, if present.
    pub(crate) fn remove(&mut self, hash: u64, slot: u32) {
        let Some(mask) = self.buckets.len().checked_sub(1) else {
            return;
        };
        let wanted = entry(hash, slot);
        let mut hole = hash as u32 as usize & mask;
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
            let home = (e >> 32) as usize & mask;
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.buckets[hole] = e;
                hole = j;
            }
        }
        self.buckets[hole] = EMPTY;
        self.len -= 1;
    }

    fn grow(&mut self) {
        let size = (self.buckets.len() * 2).max(16);
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY; size].into_boxed_slice());
        for e in old.iter().copied().filter(|&e| e != EMPTY) {
            Self::place(&mut self.buckets, e);
        }
    }

    fn place(buckets: &mut [u64], e: u64) {
        let mask = buckets.len() - 1;
        let mut i = (e >> 32) as usize & mask;
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

    /// A deliberately poor hash: few homes, at the end of the table, so runs collide and wrap.
    fn hash(key: u64) -> u64 {
        ((0xffff_fff8 + key % 11) & 0xffff_ffff) | (key << 40)
    }

    #[test]
    fn matches_a_hash_map_through_inserts_and_removes() {
        let mut table = SlotTable::default();
        let mut model: HashMap<u64, u32> = HashMap::new();
        let mut rng = 12345u64;
        for step in 0..20_000u32 {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = (rng >> 33) % 300;
            match model.get(&key) {
                Some(&slot) if rng % 3 == 0 => {
                    table.remove(hash(key), slot);
                    model.remove(&key);
                }
                Some(_) => {}
                None => {
                    table.insert(hash(key), step);
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
        t.remove(1, 1);
    }
}
