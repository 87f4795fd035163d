//! The presence model: what a user asked for ([`Category`]), what their devices say
//! ([`Activity`]), how a set applies ([`SetMode`]), and the one pure rule that turns the first
//! two into what others see ([`resolve`]).
//!
//! Invariant: a stored [`Presence`] always has `category == resolve(requested, activity)`, except
//! after a [`SetMode::Hard`] set, which holds its category until the activity next changes.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::{DefinitionId, Error, SourceId};

/// A presence category, with Symphony's eleven names.
///
/// `Display` and `FromStr` use Symphony's spelling (`"DO_NOT_DISTURB"`); parsing ignores ASCII
/// case, so `"available"` is accepted, and anything else is [`Error::UnknownCategory`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "SCREAMING_SNAKE_CASE"))]
#[repr(u8)]
pub enum Category {
    /// Nothing was ever set; shows as [`Category::Available`] while active.
    Undefined,
    /// Available.
    Available,
    /// Busy.
    Busy,
    /// Do not disturb.
    DoNotDisturb,
    /// On the phone.
    OnThePhone,
    /// Be right back.
    BeRightBack,
    /// In a meeting.
    InAMeeting,
    /// Away; also what an idle user who asked for `Available` shows.
    Away,
    /// Out of office.
    OutOfOffice,
    /// Off work.
    OffWork,
    /// Offline; what every user with no session shows.
    Offline,
}

impl Category {
    /// All eleven categories, in declaration order.
    pub const ALL: [Category; 11] = [
        Category::Undefined,
        Category::Available,
        Category::Busy,
        Category::DoNotDisturb,
        Category::OnThePhone,
        Category::BeRightBack,
        Category::InAMeeting,
        Category::Away,
        Category::OutOfOffice,
        Category::OffWork,
        Category::Offline,
    ];

    /// Symphony's spelling of the category, e.g. `"DO_NOT_DISTURB"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Undefined => "UNDEFINED",
            Category::Available => "AVAILABLE",
            Category::Busy => "BUSY",
            Category::DoNotDisturb => "DO_NOT_DISTURB",
            Category::OnThePhone => "ON_THE_PHONE",
            Category::BeRightBack => "BE_RIGHT_BACK",
            Category::InAMeeting => "IN_A_MEETING",
            Category::Away => "AWAY",
            Category::OutOfOffice => "OUT_OF_OFFICE",
            Category::OffWork => "OFF_WORK",
            Category::Offline => "OFFLINE",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownCategory {
                value: s.chars().take(Error::ECHO_LIMIT).collect(),
            })
    }
}

/// What a user's devices say, aggregated over their sessions: `Active` if any session is active,
/// else `Idle` if any session exists, else `Offline`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "SCREAMING_SNAKE_CASE"))]
#[repr(u8)]
pub enum Activity {
    /// At least one session reported recent user activity.
    Active,
    /// Sessions exist, none of them active.
    Idle,
    /// No session.
    Offline,
}

/// How [`PresenceStore::set`](crate::PresenceStore::set) applies a category.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "SCREAMING_SNAKE_CASE"))]
pub enum SetMode {
    /// Show the category at once, whatever the activity, until the activity next changes.
    Hard,
    /// Symphony's `soft=true`: store the request and show `resolve(requested, activity)`, so an
    /// offline user stays `Offline` and `Available` on an idle user shows `Away`.
    Soft,
}

/// A user's presence as the store holds it: plain public fields, read them directly.
///
/// Marked `non_exhaustive`: later layers may add fields. The rare [`details`](Self::details)
/// (status message, definition, primary source) sit behind one shared pointer, empty for most
/// users, so a presence is 32 bytes and reading one copies no string and counts no reference.
///
/// ```
/// use presence_store::{Activity, Category, PresenceStore, SetMode, StoreConfig};
///
/// let store: PresenceStore<u64> = PresenceStore::new(StoreConfig::default());
/// store.heartbeat(&7, 1, Activity::Active)?;
/// store.set(&7, Category::Busy, SetMode::Soft)?;
/// let p = store.set_message(&7, "back at 3")?;
/// assert_eq!((p.category, p.activity), (Category::Busy, Activity::Active));
/// assert_eq!(p.details.message(), Some("back at 3"));
/// assert_eq!(p.details.definition(), None);
/// # Ok::<(), presence_store::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(from = "wire::PresenceFields", into = "wire::PresenceFields")
)]
#[non_exhaustive]
pub struct Presence {
    /// What others see (the effective category).
    pub category: Category,
    /// What was last set for the user; sticky across activity changes.
    pub requested: Category,
    /// Aggregated from the user's sessions.
    pub activity: Activity,
    /// Milliseconds since the Unix epoch of the last visible change.
    pub updated_at: u64,
    /// Shard-local sequence number of the last visible change; grows with every change of the user.
    pub version: u64,
    /// Status message, definition and source, when any is set.
    pub details: PresenceDetails,
}

/// The rarer parts of a [`Presence`]: its status message, the definition it was set by and its
/// primary source. One shared pointer (8 bytes, empty for most users), read through these
/// methods so that a presence stays 32 bytes and cheap to copy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PresenceDetails(pub(crate) Option<Arc<Detail>>);

/// The rarer parts of a presence, shared between the store and the presences it hands out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Detail {
    pub(crate) message: Option<Arc<str>>,
    pub(crate) definition: Option<DefinitionId>,
    pub(crate) source: Option<SourceId>,
}

impl Detail {
    /// The details to store: empty when they hold nothing, so equal presences compare equal.
    pub(crate) fn shared(self) -> PresenceDetails {
        PresenceDetails((self != Detail::default()).then(|| Arc::new(self)))
    }
}

impl PresenceDetails {
    /// The user's status message (Genesys `message`), if any.
    pub fn message(&self) -> Option<&str> {
        self.0.as_ref()?.message.as_deref()
    }

    /// The presence definition the category was set by (Genesys), if it was set by one.
    pub fn definition(&self) -> Option<&DefinitionId> {
        self.0.as_ref()?.definition.as_ref()
    }

    /// The user's primary source when it is not the built-in `PURECLOUD`: then `category`,
    /// `message` and `definition` are that source's.
    pub fn source(&self) -> Option<&SourceId> {
        self.0.as_ref()?.source.as_ref()
    }

    /// Whether none is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The details as the store keeps them.
    #[cfg(feature = "serde")]
    pub(crate) fn to_detail(&self) -> Detail {
        self.0.as_deref().cloned().unwrap_or_default()
    }
}

impl Presence {
    /// Whether others see the same in both (everything but when and in which change).
    pub(crate) fn same_view(&self, other: &Presence) -> bool {
        (self.category, self.requested, self.activity, &self.details)
            == (
                other.category,
                other.requested,
                other.activity,
                &other.details,
            )
    }
}

/// Presence's serialized form: every field by name, as flat as the struct reads.
#[cfg(feature = "serde")]
mod wire {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize)]
    pub(super) struct PresenceFields {
        category: Category,
        requested: Category,
        activity: Activity,
        updated_at: u64,
        version: u64,
        #[serde(default)]
        message: Option<Arc<str>>,
        #[serde(default)]
        definition: Option<DefinitionId>,
        #[serde(default)]
        source: Option<SourceId>,
    }

    impl From<PresenceFields> for Presence {
        fn from(f: PresenceFields) -> Presence {
            Presence {
                category: f.category,
                requested: f.requested,
                activity: f.activity,
                updated_at: f.updated_at,
                version: f.version,
                details: Detail {
                    message: f.message,
                    definition: f.definition,
                    source: f.source,
                }
                .shared(),
            }
        }
    }

    impl From<Presence> for PresenceFields {
        fn from(p: Presence) -> PresenceFields {
            let detail = p.details.to_detail();
            PresenceFields {
                category: p.category,
                requested: p.requested,
                activity: p.activity,
                updated_at: p.updated_at,
                version: p.version,
                message: detail.message,
                definition: detail.definition,
                source: detail.source,
            }
        }
    }
}

/// The presence others see for a `requested` category at an `activity`:
/// `Offline` activity shows `Offline`; `Idle` with `Available` or `Undefined` shows `Away`;
/// `Active` with `Undefined` shows `Available`; otherwise the requested category.
pub const fn resolve(requested: Category, activity: Activity) -> Category {
    match (activity, requested) {
        (Activity::Offline, _) => Category::Offline,
        (Activity::Idle, Category::Available | Category::Undefined) => Category::Away,
        (Activity::Active, Category::Undefined) => Category::Available,
        (_, requested) => requested,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_presence_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Presence>(), 32);
    }

    #[test]
    fn resolve_over_every_pair() {
        for requested in Category::ALL {
            for activity in [Activity::Active, Activity::Idle, Activity::Offline] {
                let expected = match (requested, activity) {
                    (_, Activity::Offline) => Category::Offline,
                    (Category::Available | Category::Undefined, Activity::Idle) => Category::Away,
                    (Category::Undefined, Activity::Active) => Category::Available,
                    (r, _) => r,
                };
                assert_eq!(
                    resolve(requested, activity),
                    expected,
                    "{requested} {activity:?}"
                );
            }
        }
    }

    #[test]
    fn category_names_round_trip() {
        for c in Category::ALL {
            assert_eq!(c.to_string().parse::<Category>().unwrap(), c);
        }
        assert_eq!(
            "do_not_disturb".parse::<Category>().unwrap(),
            Category::DoNotDisturb
        );
    }

    #[test]
    fn unknown_category_is_an_error() {
        for bad in ["", "ONLINE", "AVAILABLE ", "DO-NOT-DISTURB"] {
            assert!(matches!(
                bad.parse::<Category>(),
                Err(Error::UnknownCategory { .. })
            ));
        }
    }
}
