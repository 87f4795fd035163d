//! The naive last-writer-wins model of replication, shared by `tests/replica.rs` and the
//! cluster's convergence checker (`cluster/tests/convergence.rs`): no registers, no stripes,
//! just "the latest event of each kind wins" recomputed from the whole set of events.
#![allow(dead_code)]

use std::collections::BTreeMap;

use presence_store::replica::{Event, Op, SessionState};
use presence_store::{
    resolve, Activity, Category, Definition, Hlc, Key, NodeId, Presence, Replica, SetMode, Source,
    SourceId,
};

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
        let mine: Vec<&Event<u8>> = events.iter().filter(|e| e.op.user() == Some(&u)).collect();
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
        // A deleted source counts for no one: neither its presences nor as a primary.
        let org = org_model(events, &OrgView::default());
        let deleted = |s: &SourceId| {
            events
                .iter()
                .any(|e| matches!(&e.op, Op::Source { id, .. } if id == s))
                && !org.1.contains_key(s.as_str())
        };
        let primary = match primary.map(|e| &e.op) {
            Some(Op::Primary { source, .. }) => source.clone().filter(|s| !deleted(s)),
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

/// The organization state a replica shows: its organization definitions and its sources, by
/// id, and the host's settings.
pub type OrgView = (
    BTreeMap<String, Definition>,
    BTreeMap<String, Source>,
    BTreeMap<String, String>,
);

pub fn org_view<K: Key>(r: &Replica<K>) -> OrgView {
    let definitions = r
        .store()
        .definitions()
        .into_iter()
        .filter(|d| !d.system)
        .map(|d| (d.id.as_str().to_owned(), d))
        .collect();
    let sources = r
        .store()
        .sources()
        .into_iter()
        .map(|s| (s.id.as_str().to_owned(), s))
        .collect();
    (definitions, sources, r.settings())
}

/// The naive model of the organization state: from `base` (what a fresh store holds), each
/// definition, source and setting as its latest event by (stamp, origin) left it.
pub fn org_model<K>(events: &[Event<K>], base: &OrgView) -> OrgView {
    let mut latest: BTreeMap<(u8, String), &Event<K>> = BTreeMap::new();
    for e in events {
        let key = match &e.op {
            Op::Definition { id, .. } => (0, id.as_str().to_owned()),
            Op::Source { id, .. } => (1, id.as_str().to_owned()),
            Op::Setting { key, .. } => (2, key.to_string()),
            _ => continue,
        };
        let newer = latest
            .get(&key)
            .is_none_or(|l| (l.stamp, &l.origin) < (e.stamp, &e.origin));
        if newer {
            latest.insert(key, e);
        }
    }
    let mut out = base.clone();
    for ((_, key), e) in latest {
        match &e.op {
            Op::Definition { definition, .. } => match definition {
                Some(d) => drop(out.0.insert(key, d.clone())),
                None => drop(out.0.remove(&key)),
            },
            Op::Source { source, .. } => match source {
                Some(s) => drop(out.1.insert(key, s.clone())),
                None => drop(out.1.remove(&key)),
            },
            Op::Setting { value, .. } => drop(out.2.insert(key, value.to_string())),
            _ => {}
        }
    }
    out
}
