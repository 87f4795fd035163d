//! The naive last-writer-wins model of replication, shared by `tests/replica.rs` and the
//! cluster's convergence checker (`cluster/tests/convergence.rs`): no registers, no stripes,
//! just "the latest event of each kind wins" recomputed from the whole set of events.
#![allow(dead_code)]

use std::collections::BTreeMap;

use presence_store::replica::{Event, Op, SessionState};
use presence_store::{resolve, Activity, Category, Hlc, NodeId, Presence, Replica, SetMode};

/// What others see of a user, without when or in which change.
pub type View = (
    Category,
    Category,
    Activity,
    Option<String>,
    Option<String>,
    Option<String>,
);

pub fn view_of(p: &Presence) -> View {
    (
        p.category,
        p.requested,
        p.activity,
        p.details.message().map(str::to_owned),
        p.details.definition().map(|d| d.as_str().to_owned()),
        p.details.source().map(|s| s.as_str().to_owned()),
    )
}

pub const DEFAULT_VIEW: View = (
    Category::Offline,
    Category::Undefined,
    Activity::Offline,
    None,
    None,
    None,
);

/// Every user whose view is not the default one (whether a store knows a user with nothing
/// set may depend on the order of arrival; what it shows does not).
pub fn views(r: &Replica<u8>, users: u8) -> BTreeMap<u8, View> {
    (0..users)
        .filter_map(|u| Some((u, view_of(&r.store().get(&u)?))))
        .filter(|(_, v)| *v != DEFAULT_VIEW)
        .collect()
}

/// The naive model: for each user, the latest event of each register by (stamp, origin),
/// nothing older than the user's latest removal, and no session of a node down. Users are
/// `0..users`.
pub fn model(events: &[Event<u8>], down: &[NodeId], users: u8) -> BTreeMap<u8, View> {
    type St = (Hlc, NodeId);
    let st = |e: &Event<u8>| (e.stamp, e.origin.clone());
    let mut out = BTreeMap::new();
    for u in 0..users {
        let mine: Vec<&Event<u8>> = events.iter().filter(|e| *e.op.user() == u).collect();
        let removed: Option<St> = mine
            .iter()
            .filter(|e| matches!(e.op, Op::Remove { .. }))
            .map(|e| st(e))
            .max();
        let live: Vec<&Event<u8>> = mine
            .iter()
            .copied()
            .filter(|e| removed.as_ref().is_none_or(|r| st(e) > *r))
            .collect();
        let latest = |f: &dyn Fn(&Op<u8>) -> bool| {
            live.iter()
                .copied()
                .filter(|e| f(&e.op))
                .max_by_key(|e| st(e))
        };
        let request = latest(&|op| {
            matches!(op, Op::Set { .. })
                || matches!(op, Op::SourcePresence { source, .. } if source.is_default())
        });
        let message = latest(&|op| {
            matches!(op, Op::Message { .. })
                || matches!(op, Op::SourcePresence { source, .. } if source.is_default())
        });
        let primary = latest(&|op| matches!(op, Op::Primary { .. }));
        let s1 =
            latest(&|op| matches!(op, Op::SourcePresence { source, .. } if !source.is_default()));
        let session_stamp: Option<St> = mine
            .iter()
            .filter(|e| matches!(e.op, Op::Session { .. } | Op::SessionsSeen { .. }))
            .map(|e| st(e))
            .max();
        let mut sessions: BTreeMap<(NodeId, u64), (St, SessionState)> = BTreeMap::new();
        for e in &live {
            if let Op::Session { session, state, .. } = e.op {
                if down.contains(&e.origin) {
                    continue;
                }
                let key = (e.origin.clone(), session);
                if sessions.get(&key).is_none_or(|(s, _)| *s < st(e)) {
                    sessions.insert(key, (st(e), state));
                }
            }
        }
        let states: Vec<SessionState> = sessions.values().map(|(_, s)| *s).collect();
        let activity = if states.contains(&SessionState::Active) {
            Activity::Active
        } else if states.contains(&SessionState::Idle) {
            Activity::Idle
        } else {
            Activity::Offline
        };
        let (requested, hard, definition) = match request.map(|e| &e.op) {
            Some(Op::Set {
                category,
                mode,
                definition,
                ..
            }) => (*category, *mode == SetMode::Hard, definition.clone()),
            Some(Op::SourcePresence {
                category,
                definition,
                ..
            }) => (*category, true, Some(definition.clone())),
            _ => (Category::Undefined, false, None),
        };
        let in_force = hard && session_stamp < request.map(st);
        let mut category = if in_force {
            requested
        } else {
            resolve(requested, activity)
        };
        let mut requested = requested;
        let mut message = match message.map(|e| &e.op) {
            Some(Op::Message { message, .. }) | Some(Op::SourcePresence { message, .. }) => {
                message.as_deref().map(str::to_owned)
            }
            _ => None,
        };
        let mut definition = definition.map(|d| d.as_str().to_owned());
        let primary = match primary.map(|e| &e.op) {
            Some(Op::Primary { source, .. }) => source.clone(),
            _ => None,
        };
        if let (
            Some(_),
            Some(Op::SourcePresence {
                category: c,
                definition: d,
                message: m,
                ..
            }),
        ) = (&primary, s1.map(|e| &e.op))
        {
            category = *c;
            requested = *c;
            message = m.as_deref().map(str::to_owned);
            definition = Some(d.as_str().to_owned());
        }
        let view = (
            category,
            requested,
            activity,
            message,
            definition,
            primary.map(|s| s.as_str().to_owned()),
        );
        if view != DEFAULT_VIEW {
            out.insert(u, view);
        }
    }
    out
}
