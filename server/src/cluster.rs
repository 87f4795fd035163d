//! The server's [`Store`]: the presence store, alone or as one node of a cluster
//! (`--redis URL --node NAME`, see `presence-cluster`).
//!
//! Handlers read it as a [`PresenceStore`] (it dereferences to one) and write through its own
//! methods, which shadow the store's: alone they are the store's; in a cluster they go through
//! the node's [`Replica`], which stamps each write and queues it for the other nodes. So every
//! dialect replicates without a handler knowing whether it runs in a cluster. That holds for
//! the organization state too: definitions, sources, and the dialects' settings, which ride
//! the replica as opaque JSON values under their own keys ([`Store::setting`]).

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;

use presence_store::{
    Activity, Category, Definition, DefinitionId, DefinitionUpdate, Error, NodeId, Presence,
    PresenceStore, Replica, SetMode, Source, SourceId, SourceUpdate, SystemPresence,
};

/// The store the server serves: users keyed by their Symphony id (`u64`); the other dialects'
/// ids map to it through the [`Directory`](crate::directory::Directory).
pub struct Store {
    store: Arc<PresenceStore<u64>>,
    replica: Option<Arc<Replica<u64>>>,
}

impl Deref for Store {
    type Target = PresenceStore<u64>;

    fn deref(&self) -> &PresenceStore<u64> {
        &self.store
    }
}

/// One write, to the replica in a cluster, else to the store.
macro_rules! write {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &$self.replica {
            Some(replica) => replica.$method($($arg),*),
            None => $self.store.$method($($arg),*),
        }
    };
}

impl Store {
    /// A store on its own.
    pub fn alone(store: PresenceStore<u64>) -> Self {
        Store {
            store: Arc::new(store),
            replica: None,
        }
    }

    /// A store that is node `node` of a cluster; its writes wait for the cluster's tasks to
    /// publish them.
    pub fn clustered(store: PresenceStore<u64>, node: NodeId) -> Self {
        let store = Arc::new(store);
        let replica = Arc::new(Replica::new(store.clone(), node));
        Store {
            store,
            replica: Some(replica),
        }
    }

    /// The node's replica, in a cluster.
    pub fn replica(&self) -> Option<&Arc<Replica<u64>>> {
        self.replica.as_ref()
    }

    /// [`PresenceStore::set`], replicated in a cluster.
    pub fn set(&self, user: &u64, category: Category, mode: SetMode) -> Result<Presence, Error> {
        write!(self.set(user, category, mode))
    }

    /// [`PresenceStore::heartbeat`], replicated in a cluster.
    pub fn heartbeat(
        &self,
        user: &u64,
        session: u64,
        activity: Activity,
    ) -> Result<Presence, Error> {
        write!(self.heartbeat(user, session, activity))
    }

    /// [`PresenceStore::disconnect`], replicated in a cluster.
    pub fn disconnect(&self, user: &u64, session: u64) -> Result<Presence, Error> {
        write!(self.disconnect(user, session))
    }

    /// [`PresenceStore::remove`], replicated in a cluster.
    pub fn remove(&self, user: &u64) -> Option<Presence> {
        write!(self.remove(user))
    }

    /// [`PresenceStore::set_message`], replicated in a cluster.
    pub fn set_message(&self, user: &u64, message: &str) -> Result<Presence, Error> {
        write!(self.set_message(user, message))
    }

    /// [`PresenceStore::set_definition`], replicated in a cluster.
    pub fn set_definition(
        &self,
        user: &u64,
        definition: &DefinitionId,
        mode: SetMode,
    ) -> Result<Presence, Error> {
        write!(self.set_definition(user, definition, mode))
    }

    /// [`PresenceStore::set_source_presence`], replicated in a cluster.
    pub fn set_source_presence(
        &self,
        user: &u64,
        source: &SourceId,
        definition: &DefinitionId,
        message: Option<&str>,
    ) -> Result<Presence, Error> {
        write!(self.set_source_presence(user, source, definition, message))
    }

    /// [`PresenceStore::set_primary_source`], replicated in a cluster.
    pub fn set_primary_source(&self, user: &u64, source: &SourceId) -> Result<Presence, Error> {
        write!(self.set_primary_source(user, source))
    }

    /// [`PresenceStore::create_definition`], replicated in a cluster.
    pub fn create_definition(
        &self,
        system_presence: SystemPresence,
        labels: BTreeMap<String, String>,
    ) -> Result<Definition, Error> {
        write!(self.create_definition(system_presence, labels))
    }

    /// [`PresenceStore::update_definition`], replicated in a cluster.
    pub fn update_definition(
        &self,
        id: &DefinitionId,
        update: DefinitionUpdate,
    ) -> Result<Definition, Error> {
        write!(self.update_definition(id, update))
    }

    /// [`PresenceStore::delete_definition`], replicated in a cluster.
    pub fn delete_definition(&self, id: &DefinitionId) -> Result<(), Error> {
        write!(self.delete_definition(id))
    }

    /// [`PresenceStore::create_source`], replicated in a cluster.
    pub fn create_source(&self, name: &str) -> Result<Source, Error> {
        write!(self.create_source(name))
    }

    /// [`PresenceStore::update_source`], replicated in a cluster.
    pub fn update_source(&self, id: &SourceId, update: SourceUpdate) -> Result<Source, Error> {
        write!(self.update_source(id, update))
    }

    /// [`PresenceStore::delete_source`], replicated in a cluster.
    pub fn delete_source(&self, id: &SourceId) -> Result<(), Error> {
        write!(self.delete_source(id))
    }

    /// In a cluster, the latest value any node gave the server setting `key` (JSON); `None`
    /// alone, or while no node has set it: then the instance's own value stands.
    pub fn setting(&self, key: &str) -> Option<String> {
        self.replica.as_ref()?.setting(key)
    }

    /// In a cluster, gives the server setting `key` the JSON `value` on every node (the latest
    /// writer wins); alone, nothing (the caller keeps its own value).
    pub fn set_setting(&self, key: &str, value: &str) {
        if let Some(replica) = &self.replica {
            replica.set_setting(key, value);
        }
    }

    /// How many organization changes other nodes made that this one applied (0 alone): the
    /// data directory is saved when it moves.
    pub fn org_version(&self) -> u64 {
        self.replica.as_ref().map_or(0, |r| r.org_version())
    }

    /// [`PresenceStore::sweep`]; in a cluster it publishes this node's sessions it idled or
    /// expired, and never ages the other nodes'.
    pub fn sweep(&self) -> usize {
        write!(self.sweep())
    }
}

/// `url` without its password (`redis://user:secret@host` gives `redis://user:***@host`), for
/// messages: a broker URL may carry a credential, and secrets are never logged.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or("", |(user, _)| user);
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn a_broker_password_never_reaches_a_message() {
        assert_eq!(
            redacted("redis://:hunter2@10.0.0.1:6379/0"),
            "redis://:***@10.0.0.1:6379/0"
        );
        assert_eq!(
            redacted("rediss://app:p@ss@broker:6380"),
            "rediss://app:***@broker:6380"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redacted("garbage"), "garbage");
    }
}
