//! Presence sources (Genesys): the systems a user's presence can come from, such as the
//! built-in `PURECLOUD` (this store's own sessions and sets) or an integration's calendar.
//!
//! Each user has a presence per source and one primary source, whose presence is what others
//! see. The registry here holds the sources themselves; per-user presences live with the user's
//! record. Invariant: the default source always exists and is never deactivated.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::Error;

/// The identity of a presence source: [`SourceId::DEFAULT`] (the built-in `PURECLOUD`), or an
/// id the store generated for a source created with
/// [`create_source`](crate::PresenceStore::create_source).
///
/// Cheap to clone (the text is shared). Ids compare as written, except that any ASCII case of
/// `PURECLOUD` is the default (Genesys accepts `purecloud` in paths).
///
/// ```
/// use presence_store::SourceId;
///
/// assert_eq!(SourceId::new("purecloud")?, SourceId::DEFAULT);
/// assert_eq!(SourceId::DEFAULT.as_str(), "PURECLOUD");
/// assert!(SourceId::new("").is_err());
/// # Ok::<(), presence_store::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(Repr);

/// The built-in source needs no text of its own, so its id can be a constant.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Repr {
    Default,
    Named(Arc<str>),
}

impl SourceId {
    /// The id of the built-in source (`PURECLOUD`), which sessions and plain sets act on.
    pub const DEFAULT: SourceId = SourceId(Repr::Default);

    /// The default source's id as text.
    const DEFAULT_TEXT: &'static str = "PURECLOUD";

    /// A source id from its text: 1 to 128 characters, else [`Error::InvalidSourceId`].
    pub fn new(id: &str) -> Result<Self, Error> {
        if id.is_empty() {
            return Err(Error::InvalidSourceId {
                reason: "it is empty",
            });
        }
        if id.chars().nth(MAX_ID_CHARS).is_some() {
            return Err(Error::InvalidSourceId {
                reason: "it is over 128 characters",
            });
        }
        if id.eq_ignore_ascii_case(Self::DEFAULT_TEXT) {
            return Ok(Self::DEFAULT);
        }
        Ok(SourceId(Repr::Named(Arc::from(id))))
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Default => Self::DEFAULT_TEXT,
            Repr::Named(id) => id,
        }
    }

    /// Whether this is the built-in source.
    pub fn is_default(&self) -> bool {
        self.0 == Repr::Default
    }
}

impl FromStr for SourceId {
    type Err = Error;

    /// Same as [`SourceId::new`].
    fn from_str(s: &str) -> Result<Self, Error> {
        SourceId::new(s)
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for SourceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for SourceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        SourceId::new(&s).map_err(serde::de::Error::custom)
    }
}

/// Longest source id, in characters.
const MAX_ID_CHARS: usize = 128;
/// Longest source name, in characters.
const MAX_NAME_CHARS: usize = 256;
/// Most sources besides the default.
pub(crate) const MAX_SOURCES: usize = 256;

/// A presence source.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Source {
    /// Its id; `PURECLOUD` for the built-in one.
    pub id: SourceId,
    /// A name for people.
    pub name: String,
    /// A deactivated source keeps its presences but takes no new ones.
    pub deactivated: bool,
}

/// What [`update_source`](crate::PresenceStore::update_source) changes of a source: each field
/// given, and nothing else.
///
/// ```
/// use presence_store::{PresenceStore, SourceUpdate, StoreConfig};
///
/// let store: PresenceStore<u64> = PresenceStore::new(StoreConfig::default());
/// let pbx = store.create_source("Old PBX")?;
/// let retired = SourceUpdate { deactivated: Some(true), ..Default::default() };
/// assert!(store.update_source(&pbx.id, retired)?.deactivated);
/// let renamed = SourceUpdate { name: Some("PBX".into()), ..Default::default() };
/// assert_eq!(store.update_source(&pbx.id, renamed)?.name, "PBX");
/// # Ok::<(), presence_store::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceUpdate {
    /// A new name for people.
    pub name: Option<String>,
    /// `Some(true)` deactivates the source (it keeps its presences but takes no new ones),
    /// `Some(false)` reactivates it. The default source cannot be deactivated.
    pub deactivated: Option<bool>,
}

/// The store's sources, default first.
#[derive(Debug)]
pub(crate) struct Sources {
    sources: RwLock<BTreeMap<SourceId, Source>>,
    next: AtomicU64,
    salt: u64,
}

impl Sources {
    pub(crate) fn new(salt: u64) -> Self {
        let default = Source {
            id: SourceId::DEFAULT,
            name: "Genesys Cloud".into(),
            deactivated: false,
        };
        Sources {
            sources: RwLock::new(BTreeMap::from([(default.id.clone(), default)])),
            next: AtomicU64::new(0),
            salt,
        }
    }

    pub(crate) fn get(&self, id: &SourceId) -> Result<Source, Error> {
        self.sources
            .read()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::unknown_source(id))
    }

    /// Every source, the default first, then by id.
    pub(crate) fn list(&self) -> Vec<Source> {
        let sources = self.sources.read();
        let (default, others): (Vec<_>, Vec<_>) =
            sources.values().cloned().partition(|s| s.id.is_default());
        default.into_iter().chain(others).collect()
    }

    pub(crate) fn create(&self, name: &str) -> Result<Source, Error> {
        check_name(name)?;
        let mut sources = self.sources.write();
        if sources.len() > MAX_SOURCES {
            return Err(Error::InvalidSource {
                reason: format!("at most {MAX_SOURCES} sources besides the default"),
            });
        }
        // Ids are random (122 bits); the loop only guards the theoretical case of a repeat.
        let id = loop {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let id = SourceId(Repr::Named(Arc::from(crate::id::random_uuid(n, self.salt))));
            if !sources.contains_key(&id) {
                break id;
            }
        };
        let source = Source {
            id: id.clone(),
            name: name.to_owned(),
            deactivated: false,
        };
        sources.insert(id, source.clone());
        Ok(source)
    }

    /// Adds a source from a snapshot, keeping its id (the default's name is taken over).
    #[cfg(feature = "serde")]
    pub(crate) fn restore(&self, source: Source) -> Result<(), Error> {
        check_name(&source.name)?;
        let mut sources = self.sources.write();
        if source.id.is_default() {
            if let Some(default) = sources.get_mut(&SourceId::DEFAULT) {
                default.name = source.name;
            }
            return Ok(());
        }
        if sources.len() > MAX_SOURCES || sources.contains_key(&source.id) {
            return Err(Error::InvalidSnapshot {
                reason: format!("source {} is a repeat or one too many", source.id),
            });
        }
        sources.insert(source.id.clone(), source);
        Ok(())
    }

    /// Puts a source as a replicated event carries it (`crate::replica`), keeping its id and
    /// replacing the one it had; the default one keeps being active. It was checked where it
    /// was made, so no cap applies: every node must hold the same set.
    pub(crate) fn put(&self, mut source: Source) {
        if source.id.is_default() {
            source.deactivated = false;
        }
        self.sources.write().insert(source.id.clone(), source);
    }

    pub(crate) fn update(&self, id: &SourceId, update: SourceUpdate) -> Result<Source, Error> {
        if id.is_default() && update.deactivated == Some(true) {
            return Err(Error::DefaultSource);
        }
        if let Some(name) = &update.name {
            check_name(name)?;
        }
        let mut sources = self.sources.write();
        let source = sources
            .get_mut(id)
            .ok_or_else(|| Error::unknown_source(id))?;
        if let Some(name) = update.name {
            source.name = name;
        }
        if let Some(deactivated) = update.deactivated {
            source.deactivated = deactivated;
        }
        Ok(source.clone())
    }

    /// Removes a source from the registry; the store then drops users' presences from it.
    pub(crate) fn delete(&self, id: &SourceId) -> Result<SourceId, Error> {
        if id.is_default() {
            return Err(Error::DefaultSource);
        }
        self.sources
            .write()
            .remove(id)
            .map(|s| s.id)
            .ok_or_else(|| Error::unknown_source(id))
    }

    /// Runs `f` with the registered id of `id` while holding the registry, so the source
    /// cannot be deleted (or deactivated) until `f` is done; with `active`, a deactivated
    /// source is [`Error::DeactivatedSource`].
    pub(crate) fn hold<R>(
        &self,
        id: &SourceId,
        active: bool,
        f: impl FnOnce(SourceId) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let sources = self.sources.read();
        let source = sources.get(id).ok_or_else(|| Error::unknown_source(id))?;
        if active && source.deactivated {
            return Err(Error::DeactivatedSource {
                id: source.id.to_string(),
            });
        }
        f(source.id.clone())
    }
}

fn check_name(name: &str) -> Result<(), Error> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.trim().is_empty() {
        return Err(Error::InvalidSource {
            reason: format!("a source name has 1 to {MAX_NAME_CHARS} characters, not all blank"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_source_is_built_in_and_stays() {
        let s = Sources::new(1);
        let d = SourceId::DEFAULT;
        assert_eq!(s.list().len(), 1);
        assert_eq!(s.get(&SourceId::new("purecloud").unwrap()).unwrap().id, d);
        assert_eq!(s.delete(&d), Err(Error::DefaultSource));
        let deactivate = SourceUpdate {
            deactivated: Some(true),
            ..Default::default()
        };
        assert_eq!(s.update(&d, deactivate), Err(Error::DefaultSource));
        let rename = SourceUpdate {
            name: Some("Cloud".into()),
            ..Default::default()
        };
        assert!(s.update(&d, rename).is_ok());
        assert!(s.hold(&d, true, |_| Ok(())).is_ok());
    }

    #[test]
    fn sources_are_created_listed_updated_and_deleted() {
        let s = Sources::new(7);
        let a = s.create("Calendar").unwrap();
        let b = s.create("Teams").unwrap();
        assert_ne!(a.id, b.id);
        let ids: Vec<SourceId> = s.list().into_iter().map(|x| x.id).collect();
        assert_eq!(ids[0], SourceId::DEFAULT);
        assert_eq!(ids.len(), 3);
        let both = SourceUpdate {
            name: Some("Outlook".into()),
            deactivated: Some(true),
        };
        let a2 = s.update(&a.id, both).unwrap();
        assert_eq!((a2.name.as_str(), a2.deactivated), ("Outlook", true));
        assert!(matches!(
            s.hold(&a.id, true, |_| Ok(())),
            Err(Error::DeactivatedSource { .. })
        ));
        assert!(s.hold(&a.id, false, |_| Ok(())).is_ok());
        assert_eq!(s.delete(&a.id), Ok(a.id.clone()));
        assert!(matches!(s.get(&a.id), Err(Error::UnknownSource { .. })));
        assert!(matches!(s.delete(&a.id), Err(Error::UnknownSource { .. })));
    }

    #[test]
    fn bad_names_and_ids_are_errors() {
        let s = Sources::new(0);
        for bad in ["", "   ", &"x".repeat(257)] {
            assert!(matches!(s.create(bad), Err(Error::InvalidSource { .. })));
        }
        assert!(matches!(
            SourceId::new(""),
            Err(Error::InvalidSourceId { .. })
        ));
        assert!(SourceId::new(&"x".repeat(129)).is_err());
    }
}
