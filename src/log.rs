//! The change log and what it answers: each shard's [`Log`] of visible changes, the [`Cursor`]
//! that names a point in every shard's log, and the [`Delta`] a query returns.
//!
//! Invariant: a shard's log is ordered by sequence and by time. Entry `i` has sequence
//! `first_seq + i` (sequences are implicit, so an entry is 16 bytes), and its timestamp is never
//! below the one before it, because the shard clamps the clock under its write lock. An entry is
//! *live* when its record's `version` equals the entry's sequence: that is the record's latest
//! change, so walking the log and keeping live entries yields each user once, with no set built.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

use crate::{Error, Presence, StoreConfig};

/// Entries a log keeps room for however short it gets (1 KiB of entries' worth).
const SHRINK_ABOVE: usize = 64;

/// One visible change: when, and which record slot of the shard.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub(crate) ts: u64,
    pub(crate) slot: u32,
}

/// A shard's change log: a queue of entries with implicit, consecutive sequence numbers.
#[derive(Debug)]
pub(crate) struct Log {
    entries: VecDeque<Entry>,
    /// Sequence of `entries[0]`, or of the next entry when empty. Sequences start at 1, so a
    /// cursor position of 0 means "before everything".
    first_seq: u64,
    /// Timestamp of the newest pruned entry: the log is complete only for times after it.
    pruned_ts: Option<u64>,
}

impl Log {
    pub(crate) fn new() -> Self {
        Log {
            entries: VecDeque::new(),
            first_seq: 1,
            pruned_ts: None,
        }
    }

    /// An empty log whose next sequence is `next`, complete only for times after `since`:
    /// what a restored shard starts from.
    #[cfg(feature = "serde")]
    pub(crate) fn resumed(next: u64, since: u64) -> Self {
        Log {
            entries: VecDeque::new(),
            first_seq: next.max(1),
            pruned_ts: Some(since),
        }
    }

    /// Sequence of the newest entry ever appended (0 if none): the shard's cursor position.
    #[inline]
    pub(crate) fn last_seq(&self) -> u64 {
        self.first_seq + self.entries.len() as u64 - 1
    }

    /// Appends a change and returns its sequence.
    #[inline]
    pub(crate) fn push(&mut self, ts: u64, slot: u32) -> u64 {
        debug_assert!(self.entries.back().is_none_or(|e| e.ts <= ts));
        self.entries.push_back(Entry { ts, slot });
        self.last_seq()
    }

    /// The oldest entry with its sequence, if any.
    #[inline]
    pub(crate) fn front(&self) -> Option<(u64, Entry)> {
        self.entries.front().map(|e| (self.first_seq, *e))
    }

    /// Drops the oldest entry; the log is then complete only after its timestamp. Gives memory
    /// back once the log has shrunk to a quarter of what it holds room for.
    #[inline]
    pub(crate) fn pop_front(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.first_seq += 1;
            self.pruned_ts = Some(e.ts);
            let room = self.entries.capacity();
            if room > SHRINK_ABOVE && self.entries.len() < room / 4 {
                self.shrink();
            }
        }
    }

    /// Halves the room of a log that has shrunk to a quarter of it (the rare half of
    /// `pop_front`, kept out of line so a full log's push-and-pop stays small).
    #[cold]
    #[inline(never)]
    fn shrink(&mut self) {
        self.entries.shrink_to(self.entries.len() * 2);
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries after sequence `after`, or why they cannot be given.
    pub(crate) fn after_seq(
        &self,
        after: u64,
    ) -> Result<impl Iterator<Item = (u64, &Entry)> + '_, FullReason> {
        if after > self.last_seq() {
            return Err(FullReason::ForeignCursor);
        }
        if after + 1 < self.first_seq {
            return Err(FullReason::LogPruned);
        }
        Ok(self.iter_from((after + 1 - self.first_seq) as usize))
    }

    /// Entries with a timestamp at or after `t`, or `LogPruned` if some may have been pruned.
    pub(crate) fn since_ts(
        &self,
        t: u64,
    ) -> Result<impl Iterator<Item = (u64, &Entry)> + '_, FullReason> {
        if self.pruned_ts.is_some_and(|p| p >= t) {
            return Err(FullReason::LogPruned);
        }
        Ok(self.iter_from(self.entries.partition_point(|e| e.ts < t)))
    }

    /// Moves every entry's slot to `moved(slot)`, as when the shard reorders its records.
    pub(crate) fn remap(&mut self, moved: impl Fn(u32) -> u32) {
        for e in self.entries.iter_mut() {
            e.slot = moved(e.slot);
        }
    }

    fn iter_from(&self, index: usize) -> impl Iterator<Item = (u64, &Entry)> + '_ {
        let first = self.first_seq;
        self.entries
            .range(index..)
            .enumerate()
            .map(move |(i, e)| (first + (index + i) as u64, e))
    }
}

/// Why a [`Delta`] is the full list instead of the changes asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum FullReason {
    /// The time asked for is `delta_window` or more in the past.
    OutsideWindow,
    /// Changes after the point asked for were pruned from the log (by window or capacity).
    LogPruned,
    /// The cursor comes from another store instance, or one with another shard count.
    ForeignCursor,
}

/// Where a delta starts.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Since {
    /// Changes at or after this time, in ms since the Unix epoch (Rocket.Chat's `from`).
    Time(u64),
    /// Changes after this cursor, exactly.
    Cursor(Cursor),
}

/// The answer to [`PresenceStore::changes_since`](crate::PresenceStore::changes_since).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Delta<K> {
    /// Changed users with their latest state, each once. When `full`, every user not offline,
    /// sorted by key.
    pub users: Vec<(K, Presence)>,
    /// Whether `users` is the full list rather than the changes.
    pub full: bool,
    /// Why the answer is full; `None` when it is not.
    pub reason: Option<FullReason>,
    /// Where to start next time: pass it back as `Since::Cursor`.
    pub cursor: Cursor,
}

/// A point in every shard's change log: what a client has seen.
///
/// Opaque; its `Display` is a short URL-safe token and `FromStr` reads it back, refusing
/// anything malformed with [`Error::InvalidCursor`]. A cursor names the store instance it came
/// from, so one from another instance (or an older incarnation) is answered with the full list.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cursor {
    pub(crate) store: u64,
    pub(crate) seqs: Box<[u64]>,
}

/// The token format's version byte.
const CURSOR_FORMAT: u8 = 1;

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = vec![CURSOR_FORMAT];
        put_varint(&mut bytes, self.store);
        put_varint(&mut bytes, self.seqs.len() as u64);
        for &s in self.seqs.iter() {
            put_varint(&mut bytes, s);
        }
        f.write_str(&base64url::encode(&bytes))
    }
}

impl FromStr for Cursor {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = |reason| Error::InvalidCursor { reason };
        let bytes = base64url::decode(s).ok_or(invalid("not a base64url token"))?;
        let (&format, mut rest) = bytes.split_first().ok_or(invalid("empty"))?;
        if format != CURSOR_FORMAT {
            return Err(invalid("unknown cursor format"));
        }
        let truncated = invalid("truncated or overlong number");
        let store = take_varint(&mut rest).ok_or(truncated.clone())?;
        let n = take_varint(&mut rest).ok_or(truncated.clone())?;
        if n == 0 || n > StoreConfig::MAX_SHARDS as u64 {
            return Err(invalid("shard count out of range"));
        }
        let mut seqs = Vec::with_capacity((n as usize).min(rest.len()));
        for _ in 0..n {
            seqs.push(take_varint(&mut rest).ok_or(truncated.clone())?);
        }
        if !rest.is_empty() {
            return Err(invalid("trailing bytes"));
        }
        Ok(Cursor {
            store,
            seqs: seqs.into(),
        })
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Cursor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads one LEB128 number; `None` when truncated or longer than a `u64`.
fn take_varint(input: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for (i, &b) in input.iter().enumerate().take(10) {
        let part = u64::from(b & 0x7f);
        if i == 9 && part > 1 {
            return None;
        }
        v |= part << (7 * i);
        if b & 0x80 == 0 {
            *input = &input[i + 1..];
            return Some(v);
        }
    }
    None
}

/// URL-safe base64 without padding (RFC 4648 section 5), just what cursors need.
mod base64url {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    pub(super) fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            }
        }
        out
    }

    pub(super) fn decode(s: &str) -> Option<Vec<u8>> {
        if s.len() % 4 == 1 {
            return None;
        }
        let mut out = Vec::with_capacity(s.len() / 4 * 3 + 2);
        for chunk in s.as_bytes().chunks(4) {
            let mut n = 0u32;
            for (i, &c) in chunk.iter().enumerate() {
                let v = ALPHABET.iter().position(|&a| a == c)? as u32;
                n |= v << (18 - 6 * i);
            }
            let bytes = n.to_be_bytes();
            let produced = &bytes[1..chunk.len()];
            // Bits left over past the last full byte must be zero, so each token has one spelling.
            if bytes[chunk.len()..].iter().any(|&b| b != 0) {
                return None;
            }
            out.extend_from_slice(produced);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        for seqs in [vec![0], vec![1, 2, 3], vec![u64::MAX; 7], (0..64).collect()] {
            let c = Cursor {
                store: 0xdead_beef_cafe,
                seqs: seqs.into(),
            };
            let token = c.to_string();
            assert!(token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(token.parse::<Cursor>().unwrap(), c);
        }
    }

    #[test]
    fn malformed_cursors_are_errors() {
        let good = Cursor {
            store: 9,
            seqs: vec![1, 300].into(),
        }
        .to_string();
        let mut bad: Vec<String> = ["", "A", "====", "ab+/", "AQ", "AgEB", "AQkA"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        bad.push(format!("{good}AA"));
        bad.push(good[..good.len() - 1].to_string());
        for b in bad {
            assert!(
                matches!(b.parse::<Cursor>(), Err(Error::InvalidCursor { .. })),
                "{b:?} parsed"
            );
        }
    }

    #[test]
    fn log_sequences_are_implicit() {
        let mut log = Log::new();
        assert_eq!(log.last_seq(), 0);
        assert_eq!(log.push(10, 0), 1);
        assert_eq!(log.push(20, 1), 2);
        assert_eq!(log.push(20, 2), 3);
        let after: Vec<u64> = log.after_seq(1).unwrap().map(|(s, _)| s).collect();
        assert_eq!(after, [2, 3]);
        let since: Vec<u64> = log.since_ts(20).unwrap().map(|(s, _)| s).collect();
        assert_eq!(since, [2, 3]);
        assert_eq!(log.after_seq(4).err(), Some(FullReason::ForeignCursor));
        log.pop_front();
        assert_eq!(log.after_seq(0).err(), Some(FullReason::LogPruned));
        assert!(log.after_seq(1).is_ok());
        assert_eq!(log.since_ts(10).err(), Some(FullReason::LogPruned));
        assert!(log.since_ts(11).is_ok());
        assert_eq!(log.last_seq(), 3);
    }
}
