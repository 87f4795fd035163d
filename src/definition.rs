//! Presence definitions (Genesys Cloud): the ten built-in [`SystemPresence`]s, the org-defined
//! [`Definition`]s layered over them with localized labels, and the registry that holds both.
//!
//! Invariant: the registry always holds the ten system definitions, unchanged (id = the system
//! presence's name, `system = true`, never deactivated); every other definition has a unique
//! UUID-shaped id, labels that pass validation, and there are at most
//! [`Definition::MAX_DEFINITIONS`] of them.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::{Category, Error};

/// One of Genesys Cloud's ten built-in presences, which every definition refines.
///
/// `Display` and `FromStr` use Genesys' spelling (`"ON_QUEUE"`); parsing ignores ASCII case and
/// also takes the display name (`"On Queue"`), and anything else is
/// [`Error::UnknownSystemPresence`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "SCREAMING_SNAKE_CASE"))]
#[repr(u8)]
pub enum SystemPresence {
    /// Available.
    Available,
    /// Away.
    Away,
    /// Busy.
    Busy,
    /// Offline.
    Offline,
    /// Idle: no recent activity.
    Idle,
    /// On queue: taking contact-center interactions.
    OnQueue,
    /// At a meal.
    Meal,
    /// In training.
    Training,
    /// On a break.
    Break,
    /// In a meeting.
    Meeting,
}

impl SystemPresence {
    /// All ten system presences, in declaration order.
    pub const ALL: [SystemPresence; 10] = [
        SystemPresence::Available,
        SystemPresence::Away,
        SystemPresence::Busy,
        SystemPresence::Offline,
        SystemPresence::Idle,
        SystemPresence::OnQueue,
        SystemPresence::Meal,
        SystemPresence::Training,
        SystemPresence::Break,
        SystemPresence::Meeting,
    ];

    /// Genesys' spelling, e.g. `"ON_QUEUE"`; also the id of its system definition.
    pub const fn as_str(self) -> &'static str {
        match self {
            SystemPresence::Available => "AVAILABLE",
            SystemPresence::Away => "AWAY",
            SystemPresence::Busy => "BUSY",
            SystemPresence::Offline => "OFFLINE",
            SystemPresence::Idle => "IDLE",
            SystemPresence::OnQueue => "ON_QUEUE",
            SystemPresence::Meal => "MEAL",
            SystemPresence::Training => "TRAINING",
            SystemPresence::Break => "BREAK",
            SystemPresence::Meeting => "MEETING",
        }
    }

    /// The English name people see, e.g. `"On Queue"`: the `en_US` label of its system definition.
    pub const fn display_name(self) -> &'static str {
        match self {
            SystemPresence::Available => "Available",
            SystemPresence::Away => "Away",
            SystemPresence::Busy => "Busy",
            SystemPresence::Offline => "Offline",
            SystemPresence::Idle => "Idle",
            SystemPresence::OnQueue => "On Queue",
            SystemPresence::Meal => "Meal",
            SystemPresence::Training => "Training",
            SystemPresence::Break => "Break",
            SystemPresence::Meeting => "Meeting",
        }
    }

    /// The id of its system definition, e.g. `"ON_QUEUE"`: infallible, unlike
    /// [`DefinitionId::new`] for an id from outside.
    ///
    /// ```
    /// use presence_store::{DefinitionId, SystemPresence};
    ///
    /// assert_eq!(SystemPresence::Busy.id().as_str(), "BUSY");
    /// assert_eq!(DefinitionId::from(SystemPresence::OnQueue).as_str(), "ON_QUEUE");
    /// ```
    pub fn id(self) -> DefinitionId {
        DefinitionId(Arc::from(self.as_str()))
    }

    /// The [`Category`] Symphony-side viewers see for a user in this presence.
    pub const fn category(self) -> Category {
        match self {
            SystemPresence::Available => Category::Available,
            SystemPresence::Away | SystemPresence::Idle | SystemPresence::Meal => Category::Away,
            SystemPresence::Busy | SystemPresence::OnQueue | SystemPresence::Training => {
                Category::Busy
            }
            SystemPresence::Offline => Category::Offline,
            SystemPresence::Break => Category::BeRightBack,
            SystemPresence::Meeting => Category::InAMeeting,
        }
    }
}

impl fmt::Display for SystemPresence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SystemPresence {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        SystemPresence::ALL
            .into_iter()
            .find(|p| {
                p.as_str().eq_ignore_ascii_case(s) || p.display_name().eq_ignore_ascii_case(s)
            })
            .ok_or_else(|| Error::UnknownSystemPresence { value: echo(s) })
    }
}

/// The id of a presence definition: a system presence's name (`"AVAILABLE"`) or a generated UUID.
///
/// Cheap to clone (shared). Any string of 1 to [`DefinitionId::MAX_LEN`] characters is a valid
/// id, so ids from another system can be looked up; anything else is
/// [`Error::InvalidDefinitionId`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DefinitionId(Arc<str>);

impl DefinitionId {
    /// The longest id accepted, in characters.
    pub const MAX_LEN: usize = 128;

    /// Checks and wraps an id: it must be 1 to [`DefinitionId::MAX_LEN`] characters.
    pub fn new(id: &str) -> Result<Self, Error> {
        if id.is_empty() {
            return Err(Error::InvalidDefinitionId {
                reason: "it is empty",
            });
        }
        if id.chars().nth(Self::MAX_LEN).is_some() {
            return Err(Error::InvalidDefinitionId {
                reason: "it is over 128 characters",
            });
        }
        Ok(DefinitionId(Arc::from(id)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<SystemPresence> for DefinitionId {
    /// The system presence's definition id; see [`SystemPresence::id`].
    fn from(p: SystemPresence) -> Self {
        p.id()
    }
}

impl fmt::Display for DefinitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DefinitionId {
    type Err = Error;

    /// Same as [`DefinitionId::new`].
    fn from_str(s: &str) -> Result<Self, Error> {
        DefinitionId::new(s)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for DefinitionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for DefinitionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DefinitionId::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A presence definition: a system presence, or an org's own presence over one (Genesys'
/// `OrganizationPresenceDefinition`), with its name in each locale.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Definition {
    /// Its id; what a user's presence names.
    pub id: DefinitionId,
    /// The built-in presence it refines, which decides what other systems see.
    pub system_presence: SystemPresence,
    /// Its name by locale code, e.g. `"en_US"` -> `"Lunch"`.
    pub labels: BTreeMap<String, String>,
    /// Whether it is retired: still listed on request, but users can no longer be set to it.
    pub deactivated: bool,
    /// Whether it is one of the ten built in, which cannot be changed or deleted.
    pub system: bool,
}

impl Definition {
    /// The most org definitions a store holds (the ten system ones not counted).
    pub const MAX_DEFINITIONS: usize = 1000;
    /// The most labels (locales) one definition has.
    pub const MAX_LABELS: usize = 32;
    /// The longest locale code, in characters.
    pub const MAX_LOCALE_LEN: usize = 16;
    /// The longest label, in characters.
    pub const MAX_LABEL_LEN: usize = 256;

    /// Its name in `locale`, else in `en_US`, else in any locale it has.
    pub fn label(&self, locale: &str) -> Option<&str> {
        self.labels
            .get(locale)
            .or_else(|| self.labels.get("en_US"))
            .or_else(|| self.labels.values().next())
            .map(String::as_str)
    }
}

/// What [`update_definition`](crate::PresenceStore::update_definition) changes of an
/// organization definition: each field given, and nothing else.
///
/// ```
/// use std::collections::BTreeMap;
/// use presence_store::{DefinitionUpdate, PresenceStore, StoreConfig, SystemPresence};
///
/// let store: PresenceStore<u64> = PresenceStore::new(StoreConfig::default());
/// let labels = BTreeMap::from([("en_US".to_owned(), "Lunch".to_owned())]);
/// let lunch = store.create_definition(SystemPresence::Meal, labels)?;
/// let retire = DefinitionUpdate { deactivated: Some(true), ..Default::default() };
/// assert!(store.update_definition(&lunch.id, retire)?.deactivated);
/// # Ok::<(), presence_store::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DefinitionUpdate {
    /// The system presence it refines from now on.
    pub system_presence: Option<SystemPresence>,
    /// Its labels by locale, replacing all it had.
    pub labels: Option<BTreeMap<String, String>>,
    /// `Some(true)` deactivates it (users can no longer be set to it), `Some(false)`
    /// reactivates it.
    pub deactivated: Option<bool>,
}

/// The presence definition registry of one store: the system definitions and the org's.
#[derive(Debug)]
pub(crate) struct Definitions {
    defs: RwLock<BTreeMap<DefinitionId, Definition>>,
    /// Generated ids so far; should the OS have no randomness, an id mixes it with `salt`.
    next: AtomicU64,
    /// The store's identity, so two stores generate different ids.
    salt: u64,
}

impl Definitions {
    /// A registry with the ten system definitions built in.
    pub(crate) fn new(salt: u64) -> Self {
        let defs = SystemPresence::ALL
            .into_iter()
            .map(|p| {
                let id = p.id();
                let labels = BTreeMap::from([("en_US".to_owned(), p.display_name().to_owned())]);
                let def = Definition {
                    id: id.clone(),
                    system_presence: p,
                    labels,
                    deactivated: false,
                    system: true,
                };
                (id, def)
            })
            .collect();
        Definitions {
            defs: RwLock::new(defs),
            next: AtomicU64::new(0),
            salt,
        }
    }

    pub(crate) fn get(&self, id: &DefinitionId) -> Result<Definition, Error> {
        self.defs.read().get(id).cloned().ok_or_else(|| unknown(id))
    }

    /// Every definition, sorted by id; deactivated ones only if asked.
    pub(crate) fn list(&self, include_deactivated: bool) -> Vec<Definition> {
        self.defs
            .read()
            .values()
            .filter(|d| include_deactivated || !d.deactivated)
            .cloned()
            .collect()
    }

    /// Adds an org definition with a generated id.
    pub(crate) fn create(
        &self,
        system_presence: SystemPresence,
        labels: BTreeMap<String, String>,
    ) -> Result<Definition, Error> {
        validate_labels(&labels)?;
        let mut defs = self.defs.write();
        let org = defs.len().saturating_sub(SystemPresence::ALL.len());
        if org >= Definition::MAX_DEFINITIONS {
            return Err(Error::InvalidDefinition {
                reason: format!(
                    "the store already has the most org definitions ({}); delete unused ones",
                    Definition::MAX_DEFINITIONS
                ),
            });
        }
        // Ids are random (122 bits); the loop only guards the theoretical case of a repeat.
        let id = loop {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let id = DefinitionId(Arc::from(crate::id::random_uuid(n, self.salt)));
            if !defs.contains_key(&id) {
                break id;
            }
        };
        let def = Definition {
            id: id.clone(),
            system_presence,
            labels,
            deactivated: false,
            system: false,
        };
        defs.insert(id, def.clone());
        Ok(def)
    }

    /// Adds an org definition from a snapshot, keeping its id; system ones are built in and
    /// only checked to be.
    #[cfg(feature = "serde")]
    pub(crate) fn restore(&self, def: Definition) -> Result<(), Error> {
        let mut defs = self.defs.write();
        if def.system {
            return match defs.get(&def.id) {
                Some(built_in) if built_in.system => Ok(()),
                _ => Err(Error::InvalidSnapshot {
                    reason: format!("{} is no system definition", echo(def.id.as_str())),
                }),
            };
        }
        validate_labels(&def.labels)?;
        if defs.contains_key(&def.id) {
            return Err(Error::InvalidSnapshot {
                reason: format!("definition {} appears twice", echo(def.id.as_str())),
            });
        }
        defs.insert(def.id.clone(), def);
        Ok(())
    }

    /// Puts an org definition as a replicated event carries it (`crate::replica`), keeping its
    /// id and replacing the one it had; system ones are built in and never put. It was
    /// checked where it was made, so no cap applies: every node must hold the same set.
    pub(crate) fn put(&self, def: Definition) {
        let mut defs = self.defs.write();
        if !defs.get(&def.id).is_some_and(|d| d.system) && !def.system {
            defs.insert(def.id.clone(), def);
        }
    }

    /// Removes an org definition a replicated event deleted; an unknown one is no change.
    pub(crate) fn forget(&self, id: &DefinitionId) {
        let mut defs = self.defs.write();
        if defs.get(id).is_some_and(|d| !d.system) {
            defs.remove(id);
        }
    }

    /// Changes the fields given of an org definition.
    pub(crate) fn update(
        &self,
        id: &DefinitionId,
        update: DefinitionUpdate,
    ) -> Result<Definition, Error> {
        let DefinitionUpdate {
            system_presence,
            labels,
            deactivated,
        } = update;
        let mut defs = self.defs.write();
        let def = defs.get_mut(id).ok_or_else(|| unknown(id))?;
        if def.system {
            return Err(system(id));
        }
        if let Some(labels) = &labels {
            validate_labels(labels)?;
        }
        if let Some(p) = system_presence {
            def.system_presence = p;
        }
        if let Some(labels) = labels {
            def.labels = labels;
        }
        if let Some(d) = deactivated {
            def.deactivated = d;
        }
        Ok(def.clone())
    }

    /// Removes an org definition.
    pub(crate) fn delete(&self, id: &DefinitionId) -> Result<(), Error> {
        let mut defs = self.defs.write();
        match defs.get(id) {
            None => Err(unknown(id)),
            Some(d) if d.system => Err(system(id)),
            Some(_) => {
                defs.remove(id);
                Ok(())
            }
        }
    }

    /// What setting a user to definition `id` needs: its id and the category others see.
    pub(crate) fn resolve_for_set(
        &self,
        id: &DefinitionId,
    ) -> Result<(DefinitionId, Category), Error> {
        let defs = self.defs.read();
        let def = defs.get(id).ok_or_else(|| unknown(id))?;
        if def.deactivated {
            return Err(Error::DeactivatedDefinition {
                id: echo(id.as_str()),
            });
        }
        Ok((def.id.clone(), def.system_presence.category()))
    }
}

/// Checks an org definition's labels: 1 to 32, each locale 1 to 16 of `[A-Za-z0-9_-]`, each
/// label 1 to 256 characters.
fn validate_labels(labels: &BTreeMap<String, String>) -> Result<(), Error> {
    let invalid = |reason: String| Err(Error::InvalidDefinition { reason });
    if labels.is_empty() {
        return invalid("it has no labels: give at least one, e.g. \"en_US\"".to_owned());
    }
    if labels.len() > Definition::MAX_LABELS {
        return invalid(format!(
            "it has {} labels, at most {} are allowed",
            labels.len(),
            Definition::MAX_LABELS
        ));
    }
    for (locale, label) in labels {
        let well_formed = (1..=Definition::MAX_LOCALE_LEN).contains(&locale.len())
            && locale
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !well_formed {
            return invalid(format!(
                "locale {:?} is not a locale code: use 1 to {} of A-Z, a-z, 0-9, '_' and '-', \
                 e.g. \"en_US\"",
                echo(locale),
                Definition::MAX_LOCALE_LEN
            ));
        }
        if label.is_empty() {
            return invalid(format!("the {locale} label is empty"));
        }
        if label.chars().nth(Definition::MAX_LABEL_LEN).is_some() {
            return invalid(format!(
                "the {locale} label is {} characters, at most {} are allowed",
                label.chars().count(),
                Definition::MAX_LABEL_LEN
            ));
        }
    }
    Ok(())
}

/// A caller's input cut to what an error message echoes.
fn echo(s: &str) -> String {
    s.chars().take(Error::ECHO_LIMIT).collect()
}

fn unknown(id: &DefinitionId) -> Error {
    Error::UnknownDefinition {
        id: echo(id.as_str()),
    }
}

fn system(id: &DefinitionId) -> Error {
    Error::SystemDefinition {
        id: echo(id.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn id(s: &str) -> DefinitionId {
        DefinitionId::new(s).unwrap()
    }

    fn is_invalid(r: Result<Definition, Error>) -> bool {
        matches!(r, Err(Error::InvalidDefinition { .. }))
    }

    fn is_uuid_v4(s: &str) -> bool {
        let groups: Vec<&str> = s.split('-').collect();
        groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
            && groups.iter().all(|g| {
                g.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
            && groups[2].starts_with('4')
            && groups[3].starts_with(['8', '9', 'a', 'b'])
    }

    #[test]
    fn system_presence_names_round_trip() {
        for p in SystemPresence::ALL {
            assert_eq!(p.to_string().parse::<SystemPresence>().unwrap(), p);
            assert_eq!(
                p.as_str()
                    .to_ascii_lowercase()
                    .parse::<SystemPresence>()
                    .unwrap(),
                p
            );
            assert_eq!(p.display_name().parse::<SystemPresence>().unwrap(), p);
            assert_eq!(
                p.display_name()
                    .to_ascii_uppercase()
                    .parse::<SystemPresence>()
                    .unwrap(),
                p
            );
        }
        let names: Vec<&str> = SystemPresence::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "AVAILABLE",
                "AWAY",
                "BUSY",
                "OFFLINE",
                "IDLE",
                "ON_QUEUE",
                "MEAL",
                "TRAINING",
                "BREAK",
                "MEETING"
            ]
        );
        assert_eq!(
            "On Queue".parse::<SystemPresence>().unwrap(),
            SystemPresence::OnQueue
        );
        assert_eq!(
            "on_queue".parse::<SystemPresence>().unwrap(),
            SystemPresence::OnQueue
        );
    }

    #[test]
    fn unknown_system_presence_is_an_error() {
        for bad in [
            "",
            "ONQUEUE",
            "On-Queue",
            "AVAILABLE ",
            "DO_NOT_DISTURB",
            "Lunch",
        ] {
            assert!(
                matches!(
                    bad.parse::<SystemPresence>(),
                    Err(Error::UnknownSystemPresence { .. })
                ),
                "{bad:?} parsed"
            );
        }
        let long = "x".repeat(1000);
        match long.parse::<SystemPresence>() {
            Err(Error::UnknownSystemPresence { value }) => {
                assert_eq!(value.chars().count(), Error::ECHO_LIMIT)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn category_of_every_system_presence() {
        use Category as C;
        use SystemPresence as S;
        let table = [
            (S::Available, C::Available),
            (S::Away, C::Away),
            (S::Busy, C::Busy),
            (S::Offline, C::Offline),
            (S::Idle, C::Away),
            (S::OnQueue, C::Busy),
            (S::Meal, C::Away),
            (S::Training, C::Busy),
            (S::Break, C::BeRightBack),
            (S::Meeting, C::InAMeeting),
        ];
        assert_eq!(table.map(|(s, _)| s), SystemPresence::ALL);
        for (s, c) in table {
            assert_eq!(s.category(), c, "{s}");
        }
    }

    #[test]
    fn definition_ids_are_checked() {
        assert_eq!(id("AVAILABLE").as_str(), "AVAILABLE");
        assert_eq!(id("x").to_string(), "x");
        assert_eq!("abc".parse::<DefinitionId>().unwrap(), id("abc"));
        assert!(DefinitionId::new(&"é".repeat(128)).is_ok());
        for bad in [String::new(), "a".repeat(129), "é".repeat(129)] {
            assert!(
                matches!(
                    DefinitionId::new(&bad),
                    Err(Error::InvalidDefinitionId { .. })
                ),
                "{bad:?}"
            );
            assert!(bad.parse::<DefinitionId>().is_err());
        }
    }

    #[test]
    fn label_falls_back_to_en_us_then_any() {
        let mut d = Definition {
            id: id("d"),
            system_presence: SystemPresence::Meal,
            labels: labels(&[("de", "Mittag"), ("en_US", "Lunch"), ("fr", "Déjeuner")]),
            deactivated: false,
            system: false,
        };
        assert_eq!(d.label("fr"), Some("Déjeuner"));
        assert_eq!(d.label("ja"), Some("Lunch"));
        d.labels.remove("en_US");
        assert_eq!(d.label("ja"), Some("Mittag"));
        d.labels.clear();
        assert_eq!(d.label("en_US"), None);
    }

    #[test]
    fn the_ten_system_definitions_are_built_in() {
        let defs = Definitions::new(1);
        let list = defs.list(false);
        assert_eq!(list.len(), 10);
        assert_eq!(defs.list(true), list);
        for p in SystemPresence::ALL {
            let d = defs.get(&id(p.as_str())).unwrap();
            assert_eq!(d.id.as_str(), p.as_str());
            assert_eq!(d.system_presence, p);
            assert_eq!(d.labels, labels(&[("en_US", p.display_name())]));
            assert!(d.system);
            assert!(!d.deactivated);
            assert_eq!(d.label("de"), Some(p.display_name()));
        }
        assert_eq!(
            defs.get(&id("ON_QUEUE")).unwrap().label("en_US"),
            Some("On Queue")
        );
    }

    #[test]
    fn system_definitions_cannot_change_or_go() {
        let defs = Definitions::new(1);
        for p in SystemPresence::ALL {
            let sid = id(p.as_str());
            let before = defs.get(&sid).unwrap();
            assert!(matches!(
                defs.update(
                    &sid,
                    DefinitionUpdate {
                        system_presence: Some(SystemPresence::Busy),
                        ..Default::default()
                    }
                ),
                Err(Error::SystemDefinition { .. })
            ));
            assert!(matches!(
                defs.update(
                    &sid,
                    DefinitionUpdate {
                        labels: Some(labels(&[("en_US", "x")])),
                        ..Default::default()
                    }
                ),
                Err(Error::SystemDefinition { .. })
            ));
            assert!(matches!(
                defs.update(
                    &sid,
                    DefinitionUpdate {
                        deactivated: Some(true),
                        ..Default::default()
                    }
                ),
                Err(Error::SystemDefinition { .. })
            ));
            assert!(matches!(
                defs.update(&sid, DefinitionUpdate::default()),
                Err(Error::SystemDefinition { .. })
            ));
            assert!(matches!(
                defs.delete(&sid),
                Err(Error::SystemDefinition { .. })
            ));
            assert_eq!(defs.get(&sid).unwrap(), before);
            assert_eq!(defs.resolve_for_set(&sid).unwrap(), (sid, p.category()));
        }
        assert_eq!(defs.list(true).len(), 10);
    }

    #[test]
    fn create_get_list_update_delete() {
        let defs = Definitions::new(7);
        let lunch = defs
            .create(
                SystemPresence::Meal,
                labels(&[("en_US", "Lunch"), ("de", "Mittag")]),
            )
            .unwrap();
        assert!(is_uuid_v4(lunch.id.as_str()), "{}", lunch.id);
        assert_eq!(lunch.system_presence, SystemPresence::Meal);
        assert_eq!(lunch.label("de"), Some("Mittag"));
        assert!(!lunch.system && !lunch.deactivated);
        assert_eq!(defs.get(&lunch.id).unwrap(), lunch);

        let coach = defs
            .create(SystemPresence::Training, labels(&[("en_US", "Coaching")]))
            .unwrap();
        let list = defs.list(false);
        assert_eq!(list.len(), 12);
        assert!(list.windows(2).all(|w| w[0].id < w[1].id));
        assert!(list.contains(&lunch) && list.contains(&coach));

        // Update each field alone; the others stay.
        let u = defs
            .update(
                &lunch.id,
                DefinitionUpdate {
                    system_presence: Some(SystemPresence::Break),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(u.system_presence, SystemPresence::Break);
        assert_eq!(u.labels, lunch.labels);
        let u = defs
            .update(
                &lunch.id,
                DefinitionUpdate {
                    labels: Some(labels(&[("en_US", "Dinner")])),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(u.labels, labels(&[("en_US", "Dinner")]));
        assert_eq!(u.system_presence, SystemPresence::Break);
        assert_eq!(defs.get(&lunch.id).unwrap(), u);
        assert_eq!(
            defs.resolve_for_set(&lunch.id).unwrap(),
            (lunch.id.clone(), Category::BeRightBack)
        );

        // Deactivate: listed only on request, and users can no longer be set to it.
        let u = defs
            .update(
                &lunch.id,
                DefinitionUpdate {
                    deactivated: Some(true),
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(u.deactivated);
        assert_eq!(defs.list(false).len(), 11);
        assert!(!defs.list(false).contains(&u));
        assert_eq!(defs.list(true).len(), 12);
        assert!(defs.list(true).contains(&u));
        assert!(matches!(
            defs.resolve_for_set(&lunch.id),
            Err(Error::DeactivatedDefinition { .. })
        ));
        assert_eq!(defs.get(&lunch.id).unwrap(), u);
        // And back.
        defs.update(
            &lunch.id,
            DefinitionUpdate {
                deactivated: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(defs.resolve_for_set(&lunch.id).is_ok());

        defs.delete(&lunch.id).unwrap();
        assert_eq!(
            defs.get(&lunch.id),
            Err(Error::UnknownDefinition {
                id: lunch.id.to_string()
            })
        );
        assert!(matches!(
            defs.delete(&lunch.id),
            Err(Error::UnknownDefinition { .. })
        ));
        assert_eq!(defs.list(true).len(), 11);
        assert_eq!(defs.get(&coach.id).unwrap(), coach);
    }

    #[test]
    fn unknown_definitions_are_errors() {
        let defs = Definitions::new(0);
        let nope = id("00000000-0000-4000-8000-000000000000");
        let unknown = |r: Result<_, Error>| matches!(r, Err(Error::UnknownDefinition { .. }));
        assert!(unknown(defs.get(&nope).map(|_| ())));
        assert!(unknown(
            defs.update(
                &nope,
                DefinitionUpdate {
                    deactivated: Some(true),
                    ..Default::default()
                }
            )
            .map(|_| ())
        ));
        assert!(unknown(
            defs.update(
                &nope,
                DefinitionUpdate {
                    labels: Some(BTreeMap::new()),
                    ..Default::default()
                }
            )
            .map(|_| ())
        ));
        assert!(unknown(defs.delete(&nope)));
        assert!(unknown(defs.resolve_for_set(&nope).map(|_| ())));
        // Ids are exact: no case folding.
        assert!(unknown(defs.get(&id("available")).map(|_| ())));
        // The echo is cut.
        match defs.get(&id(&"z".repeat(128))) {
            Err(Error::UnknownDefinition { id }) => {
                assert_eq!(id.chars().count(), Error::ECHO_LIMIT)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn labels_are_validated_on_create_and_update() {
        let defs = Definitions::new(3);
        let ok = defs
            .create(SystemPresence::Away, labels(&[("en_US", "Out")]))
            .unwrap();
        let long_locale = "a".repeat(17);
        let long_label = "é".repeat(257);
        let max_label = "é".repeat(256);
        let too_many: BTreeMap<String, String> =
            (0..33).map(|i| (format!("l{i}"), "x".to_owned())).collect();
        let bad: Vec<BTreeMap<String, String>> = vec![
            BTreeMap::new(),
            too_many,
            labels(&[("", "x")]),
            labels(&[(&long_locale, "x")]),
            labels(&[("en US", "x")]),
            labels(&[("en.US", "x")]),
            labels(&[("é", "x")]),
            labels(&[("en_US", "")]),
            labels(&[("en_US", &long_label)]),
            labels(&[("en_US", "fine"), ("de", "")]),
        ];
        for b in bad {
            assert!(
                is_invalid(defs.create(SystemPresence::Away, b.clone())),
                "{b:?}"
            );
            assert!(
                is_invalid(defs.update(
                    &ok.id,
                    DefinitionUpdate {
                        labels: Some(b.clone()),
                        ..Default::default()
                    }
                )),
                "{b:?}"
            );
        }
        assert_eq!(defs.get(&ok.id).unwrap(), ok);
        assert_eq!(defs.list(true).len(), 11);

        // The limits themselves are fine.
        let max: BTreeMap<String, String> = (0..32)
            .map(|i| (format!("{i:0>16}"), max_label.clone()))
            .collect();
        assert!(defs.create(SystemPresence::Away, max.clone()).is_ok());
        assert!(defs
            .update(
                &ok.id,
                DefinitionUpdate {
                    labels: Some(max),
                    ..Default::default()
                }
            )
            .is_ok());
        assert!(defs
            .create(SystemPresence::Away, labels(&[("zh-Hant_TW", "x")]))
            .is_ok());
    }

    #[test]
    fn at_most_max_definitions() {
        let defs = Definitions::new(5);
        let mut last = None;
        for i in 0..Definition::MAX_DEFINITIONS {
            let d = defs
                .create(SystemPresence::Busy, labels(&[("en_US", &format!("b{i}"))]))
                .unwrap();
            last = Some(d.id);
        }
        let over = defs.create(SystemPresence::Busy, labels(&[("en_US", "one more")]));
        match over {
            Err(Error::InvalidDefinition { reason }) => {
                assert!(reason.contains("1000"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // Deleting one makes room again.
        defs.delete(&last.unwrap()).unwrap();
        assert!(defs
            .create(SystemPresence::Busy, labels(&[("en_US", "one more")]))
            .is_ok());
        assert_eq!(defs.list(true).len(), Definition::MAX_DEFINITIONS + 10);
    }

    #[test]
    fn generated_ids_are_unique_and_uuid_shaped() {
        let a = Definitions::new(1);
        let b = Definitions::new(2);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            for defs in [&a, &b] {
                let d = defs
                    .create(SystemPresence::Meeting, labels(&[("en_US", "m")]))
                    .unwrap();
                assert!(is_uuid_v4(d.id.as_str()), "{}", d.id);
                assert!(seen.insert(d.id), "duplicate id");
            }
        }
        for n in 0..10_000 {
            assert!(is_uuid_v4(&crate::id::uuid(n, u64::MAX)));
        }
    }

    #[test]
    fn concurrent_creates_get_distinct_ids() {
        let defs = Definitions::new(9);
        let ids: Vec<DefinitionId> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..100)
                            .map(|_| {
                                defs.create(SystemPresence::Idle, labels(&[("en_US", "i")]))
                                    .unwrap()
                                    .id
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let unique: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), 400);
        assert_eq!(defs.list(true).len(), 410);
    }

    #[test]
    fn errors_read_well() {
        let msgs = [
            Error::UnknownSystemPresence { value: "X".into() }.to_string(),
            Error::InvalidDefinitionId {
                reason: "it is empty",
            }
            .to_string(),
            Error::UnknownDefinition { id: "X".into() }.to_string(),
            Error::InvalidDefinition {
                reason: "it has no labels".into(),
            }
            .to_string(),
            Error::SystemDefinition { id: "X".into() }.to_string(),
            Error::DeactivatedDefinition { id: "X".into() }.to_string(),
        ];
        for m in msgs {
            assert!(m.len() > 20, "{m}");
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_shapes() {
        let d = Definition {
            id: id("AVAILABLE"),
            system_presence: SystemPresence::OnQueue,
            labels: labels(&[("en_US", "On Queue")]),
            deactivated: false,
            system: true,
        };
        let json = serde_json::to_string(&d).unwrap();
        assert!(json.contains("\"id\":\"AVAILABLE\""), "{json}");
        assert!(json.contains("\"ON_QUEUE\""), "{json}");
        assert_eq!(serde_json::from_str::<Definition>(&json).unwrap(), d);
        assert!(serde_json::from_str::<DefinitionId>("\"\"").is_err());
    }
}
