//! `cursor`: arbitrary text into `Cursor::from_str`, and parseable cursors into stores.
//!
//! The input is read three ways: as text (lossy UTF-8), as the bytes inside a token (encoded
//! here, so the varint decoder sees far more than random text reaches), and as a cursor forged
//! with a real store's identity and the input's shard count and sequences. Parsing must never
//! panic and must refuse with `Error::InvalidCursor` only; a cursor that parses must print a
//! token that parses back to an equal cursor; and a store given any parseable cursor (foreign,
//! garbage, or its own identity with impossible sequences) answers with a delta or the full
//! list, whose users are each listed once with the state the store holds for them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use presence_store::{
    Activity, Category, Cursor, Delta, Error, FullReason, ManualClock, PresenceStore, SetMode,
    Since, StoreConfig,
};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// The token format's version byte.
const FORMAT: u8 = 1;

/// Checks the input as text, as token bytes, and as a forged cursor.
pub fn run(data: &[u8]) {
    let stores = Stores::new();
    let text = String::from_utf8_lossy(data);
    check_token(&text, &stores);
    check_token(&encode(data), &stores);
    check_forged(data, &stores);
}

/// Two stores with some history: one keeps its whole log, one keeps 3 entries per shard (so
/// old cursors are pruned).
struct Stores {
    full: PresenceStore<u64>,
    pruned: PresenceStore<u64>,
}

impl Stores {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        let config = StoreConfig::default().with_shards(4);
        let full = PresenceStore::with_clock(config.clone(), clock.clone());
        let pruned = PresenceStore::with_clock(config.with_log_capacity(3), clock.clone());
        for store in [&full, &pruned] {
            for user in 0..12u64 {
                store
                    .heartbeat(&user, user % 3, Activity::Active)
                    .expect("a heartbeat");
                clock.advance(Duration::from_millis(5));
                if user % 2 == 0 {
                    store
                        .set(&user, Category::Busy, SetMode::Soft)
                        .expect("a set");
                }
                if user % 5 == 0 {
                    store.remove(&user);
                }
            }
        }
        Stores { full, pruned }
    }
}

fn check_token(token: &str, stores: &Stores) {
    match token.parse::<Cursor>() {
        Err(Error::InvalidCursor { reason }) => {
            assert!(!reason.is_empty());
        }
        Err(e) => panic!("{token:?}: not InvalidCursor but {e:?}"),
        Ok(cursor) => {
            let printed = cursor.to_string();
            assert!(
                printed
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{token:?} prints as {printed:?}, not URL-safe"
            );
            assert_eq!(
                printed.parse::<Cursor>().as_ref(),
                Ok(&cursor),
                "{token:?} prints as {printed:?}, which does not read back"
            );
            for store in [&stores.full, &stores.pruned] {
                check_answer(store, &cursor);
            }
        }
    }
}

/// A cursor with the identity of `stores.full`, the shard count the input's first byte gives
/// (the store's own, mostly) and sequences read from the rest.
fn check_forged(data: &[u8], stores: &Stores) {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    for (store, prunes) in [(&stores.full, false), (&stores.pruned, true)] {
        let (id, current) = decode_cursor(&store.cursor().to_string());
        let shards = match first % 8 {
            0 => usize::from(first / 8),
            _ => current.len(),
        };
        let mut seqs = Vec::with_capacity(shards);
        for &now in current.iter().chain(std::iter::repeat(&0)).take(shards) {
            let seq = match rest.split_first() {
                None => now,
                Some((&b, tail)) => {
                    rest = tail;
                    match b % 4 {
                        0 => now,
                        1 => now.saturating_sub(u64::from(b / 4)),
                        2 => now + u64::from(b / 4),
                        _ => u64::MAX - u64::from(b / 4),
                    }
                }
            };
            seqs.push(seq);
        }
        let token = encode(&cursor_bytes(id, &seqs));
        match token.parse::<Cursor>() {
            Ok(cursor) => {
                let delta = check_answer(store, &cursor);
                let own_shape = shards == current.len();
                let beyond = seqs.iter().zip(&current).any(|(s, now)| s > now);
                if !own_shape || (beyond && !prunes) {
                    assert_eq!(
                        delta.reason,
                        Some(FullReason::ForeignCursor),
                        "forged {seqs:?} against {current:?}"
                    );
                } else if beyond {
                    // Sequences past the store's in some shards and pruned in others: either
                    // reason, whichever shard the store looks at first.
                    assert!(delta.full, "forged {seqs:?} against {current:?}: {delta:?}");
                } else if seqs == current {
                    assert!(
                        !delta.full && delta.users.is_empty(),
                        "a delta from the store's own cursor: {delta:?}"
                    );
                } else {
                    assert_ne!(delta.reason, Some(FullReason::ForeignCursor));
                }
            }
            Err(Error::InvalidCursor { .. }) => {
                assert!(
                    shards == 0 || shards > StoreConfig::MAX_SHARDS,
                    "{token:?} ({seqs:?}) refused"
                );
            }
            Err(e) => panic!("{token:?}: not InvalidCursor but {e:?}"),
        }
    }
}

/// Asks `store` for the changes since `cursor` and checks the answer's shape: each user once,
/// with the presence the store holds (or, for a removed user, `Offline`); a full answer sorted
/// and without offline users; a cursor to go on from that reads back and gives nothing new.
fn check_answer(store: &PresenceStore<u64>, cursor: &Cursor) -> Delta<u64> {
    let delta = store.changes_since(&Since::Cursor(cursor.clone()));
    assert_eq!(delta.full, delta.reason.is_some(), "{delta:?}");
    let mut seen = BTreeMap::new();
    for (user, presence) in &delta.users {
        assert!(
            seen.insert(*user, ()).is_none(),
            "{user} twice in {delta:?}"
        );
        match store.get(user) {
            Some(now) => assert_eq!(&now, presence, "{user} in {delta:?}"),
            None => assert_eq!(presence.category, Category::Offline, "removed {user}"),
        }
        if delta.full {
            assert_ne!(presence.category, Category::Offline, "{delta:?}");
        }
    }
    if delta.full {
        assert!(delta.users.windows(2).all(|w| w[0].0 < w[1].0), "{delta:?}");
    }
    let next = delta.cursor.to_string().parse::<Cursor>();
    assert_eq!(next.as_ref(), Ok(&delta.cursor));
    let after = store.changes_since(&Since::Cursor(delta.cursor.clone()));
    assert!(!after.full && after.users.is_empty(), "{after:?}");
    delta
}

/// The bytes of a cursor token: format, store, shard count, sequences, as LEB128 varints.
fn cursor_bytes(store: u64, seqs: &[u64]) -> Vec<u8> {
    let mut bytes = vec![FORMAT];
    put_varint(&mut bytes, store);
    put_varint(&mut bytes, seqs.len() as u64);
    for &s in seqs {
        put_varint(&mut bytes, s);
    }
    bytes
}

/// The store identity and sequences of a token this crate printed.
fn decode_cursor(token: &str) -> (u64, Vec<u64>) {
    let bytes = decode(token);
    assert_eq!(bytes.first(), Some(&FORMAT), "{token:?}");
    let mut rest = &bytes[1..];
    let store = take_varint(&mut rest);
    let n = take_varint(&mut rest);
    let seqs = (0..n).map(|_| take_varint(&mut rest)).collect();
    assert!(rest.is_empty(), "{token:?}");
    (store, seqs)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(input: &mut &[u8]) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = input.split_first().expect("a complete varint");
        *input = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
    }
    v
}

/// URL-safe base64 without padding.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let mut n = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            n |= u32::from(b) << (16 - 8 * i);
        }
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

fn decode(token: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in token.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let v = ALPHABET
                .iter()
                .position(|a| a == c)
                .expect("a base64url digit");
            n |= (v as u32) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}
