//! The entries on the log: a batch of events from one publisher, in `postcard` (serde's compact
//! varint encoding, chosen over `bincode` for its smaller integers: a stamp delta or a small
//! user id is one or two bytes). An event names its origin by an index into the batch's table
//! (0: the publisher) and its stamp as a delta from the batch's smallest, so a session event of
//! a `u64` user takes about a dozen bytes.

use presence_store::replica::{Event, Op};
use presence_store::{Hlc, NodeId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// An entry that is not a batch this crate wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecError(pub String);

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "undecodable log entry: {}", self.0)
    }
}

impl std::error::Error for CodecError {}

#[derive(Serialize, Deserialize)]
struct Batch<O> {
    publisher: NodeId,
    /// The publisher's sequence number of the first event.
    seq: u64,
    /// Origins other than the publisher; an event's origin `i > 0` is `origins[i - 1]`.
    origins: Vec<NodeId>,
    base: u64,
    events: Vec<Wire<O>>,
}

#[derive(Serialize, Deserialize)]
struct Wire<O> {
    origin: u32,
    delta: u64,
    op: O,
}

/// A decoded entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded<K> {
    /// Who published it.
    pub publisher: NodeId,
    /// The publisher's sequence number of the first event.
    pub seq: u64,
    /// The events, in publishing order.
    pub events: Vec<Event<K>>,
}

/// Encodes `events` as one entry of `publisher`, whose first event is its `seq`th.
pub fn encode<K: Serialize>(publisher: &NodeId, seq: u64, events: &[Event<K>]) -> Vec<u8> {
    let base = events.iter().map(|e| e.stamp.0).min().unwrap_or(0);
    let mut origins: Vec<NodeId> = Vec::new();
    let wire = events
        .iter()
        .map(|e| {
            let origin = if e.origin == *publisher {
                0
            } else if let Some(i) = origins.iter().position(|o| *o == e.origin) {
                i as u32 + 1
            } else {
                origins.push(e.origin.clone());
                origins.len() as u32
            };
            Wire {
                origin,
                delta: e.stamp.0 - base,
                op: &e.op,
            }
        })
        .collect();
    let batch = Batch {
        publisher: publisher.clone(),
        seq,
        origins,
        base,
        events: wire,
    };
    // Serializing to a Vec only fails for types serde cannot write, which `Op` is not.
    postcard::to_stdvec(&batch).unwrap_or_default()
}

/// Decodes an entry written by [`encode`].
pub fn decode<K: DeserializeOwned>(bytes: &[u8]) -> Result<Decoded<K>, CodecError> {
    let batch: Batch<Op<K>> = postcard::from_bytes(bytes).map_err(|e| CodecError(e.to_string()))?;
    let mut events = Vec::with_capacity(batch.events.len());
    for w in batch.events {
        let origin = match w.origin {
            0 => batch.publisher.clone(),
            i => batch
                .origins
                .get(i as usize - 1)
                .cloned()
                .ok_or_else(|| CodecError(format!("origin {i} is not in the batch")))?,
        };
        let stamp = batch
            .base
            .checked_add(w.delta)
            .ok_or_else(|| CodecError("stamp overflows".to_owned()))?;
        events.push(Event {
            origin,
            stamp: Hlc(stamp),
            op: w.op,
        });
    }
    Ok(Decoded {
        publisher: batch.publisher,
        seq: batch.seq,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use presence_store::replica::SessionState;
    use presence_store::{Category, SetMode};

    fn node(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn a_batch_round_trips_and_a_session_event_is_small() {
        let a = node("node-a/1f2e3d4c");
        let events: Vec<Event<u64>> = (0..100)
            .map(|i| Event {
                origin: if i % 10 == 0 {
                    node("node-b/0a0b0c0d")
                } else {
                    a.clone()
                },
                stamp: Hlc((1_700_000_000_000 << 16) + i * 70_000),
                op: if i % 2 == 0 {
                    Op::Session {
                        user: 1_000_000 + i,
                        session: 3,
                        state: SessionState::Active,
                    }
                } else {
                    Op::Set {
                        user: 1_000_000 + i,
                        category: Category::Busy,
                        mode: SetMode::Soft,
                        definition: None,
                    }
                },
            })
            .collect();
        let bytes = encode(&a, 7, &events);
        let back: Decoded<u64> = decode(&bytes).unwrap();
        assert_eq!(back.events, events);
        assert_eq!((back.publisher, back.seq), (a, 7));
        assert!(bytes.len() / events.len() <= 16, "{} bytes", bytes.len());
    }

    #[test]
    fn organization_events_round_trip() {
        use presence_store::{Source, SourceId};
        let a = node("a/1");
        let source = Source {
            id: SourceId::new("6f1c0f7e-0000-4000-8000-000000000000").unwrap(),
            name: "PBX".into(),
            deactivated: false,
        };
        let ops: Vec<Op<u64>> = vec![
            Op::Source {
                id: source.id.clone(),
                source: Some(source.clone()),
            },
            Op::Source {
                id: source.id.clone(),
                source: None,
            },
            Op::Setting {
                key: "rocketchat.x".into(),
                value: "true".into(),
            },
        ];
        let events: Vec<Event<u64>> = ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| Event {
                origin: a.clone(),
                stamp: Hlc(1 << 40 | i as u64),
                op,
            })
            .collect();
        let back: Decoded<u64> = decode(&encode(&a, 0, &events)).unwrap();
        assert_eq!(back.events, events);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&b""[..], b"\xff\xff\xff", b"\x05abc"] {
            assert!(decode::<u64>(bytes).is_err());
        }
    }
}
