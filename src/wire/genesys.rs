//! Genesys Cloud's presence JSON (the `PresenceApi` of its Platform API), and the mappings to and
//! from the store.
//!
//! Field names are Genesys' camelCase ones, so its SDKs, which deserialize strictly, read what
//! the server writes. Most fields are `Option`s because Genesys uses one model for a request and
//! its response (`UserPresence` is both the body of a PATCH and its answer); `None` fields are
//! left out when written.
//!
//! The mapping keeps what each side can say:
//! - a presence set by a definition reads back with the same definition id, as long as the
//!   category it set is what shows (an idle or offline user shows the system presence of what
//!   their activity made of it, `AWAY` or `OFFLINE`);
//! - a presence set in another dialect (a bare [`Category`](crate::Category)) reads back as the system
//!   presence that category maps to (its row of [`super::SHOWN`], the table all three dialects
//!   share), whose definition id is the system presence's name (`"BUSY"`).
//!
//! Genesys spells a system presence three ways, and each is written where Genesys writes it:
//! `ON_QUEUE` (ids of `/api/v2/systempresences`), `On Queue` (the older
//! `/api/v2/presencedefinitions`) and `OnQueue` (`/api/v2/presence/definitions`). A user's
//! `presenceDefinition` links to `/api/v2/presence/definitions/{id}`, so it spells the system
//! presence as that definition does: `OnQueue`. [`parse_system_presence`] takes any of them.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use crate::wire::time::format_iso8601;
use crate::{Definition, DefinitionId, Error, Presence, SourceId, SystemPresence};

/// The root of every `selfUri`.
const API: &str = "/api/v2";

/// How long an issued access token lives, in seconds (Genesys' client-credentials default).
pub const TOKEN_LIFETIME_SECS: u64 = 86_399;

/// Genesys' error body, the same for every status: `{message, code, status, messageParams,
/// contextId, details, errors}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub message: String,
    /// What went wrong, for programs, e.g. `not.found`.
    pub code: String,
    /// The HTTP status, repeated.
    pub status: u16,
    /// Values to fill into a localized message; empty here.
    #[serde(default)]
    pub message_params: BTreeMap<String, String>,
    /// The request's correlation id (also the `inin-correlation-id` header).
    #[serde(default)]
    pub context_id: String,
    /// Which fields or entities were at fault; empty here.
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
    /// Nested errors; empty here.
    #[serde(default)]
    pub errors: Vec<ErrorBody>,
}

/// One item of [`ErrorBody::details`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// The detail's error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The field at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_name: Option<String>,
    /// The entity at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    /// The entity's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_name: Option<String>,
}

impl ErrorBody {
    /// An error with an explicit `code`.
    pub fn new(status: u16, code: &str, message: &str, context_id: &str) -> Self {
        ErrorBody {
            message: message.to_owned(),
            code: code.to_owned(),
            status,
            message_params: BTreeMap::new(),
            context_id: context_id.to_owned(),
            details: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// An error whose code is the usual one for `status` ([`code_for_status`]).
    pub fn for_status(status: u16, message: &str, context_id: &str) -> Self {
        ErrorBody::new(status, code_for_status(status), message, context_id)
    }

    /// The answer to a store error: its status and code ([`error_status`]) and its message.
    pub fn from_error(error: &Error, context_id: &str) -> Self {
        let (status, code) = error_status(error);
        ErrorBody::new(status, code, &error.to_string(), context_id)
    }
}

/// Genesys' error code for a plain HTTP failure status.
pub fn code_for_status(status: u16) -> &'static str {
    match status {
        400 => "bad.request",
        401 => "bad.credentials",
        403 => "missing.any.permissions",
        404 => "not.found",
        405 => "method.not.allowed",
        409 => "general.conflict",
        413 => "request.entity.too.large",
        415 => "unsupported.media.type",
        429 => "too.many.requests",
        500..=599 => "internal.server.error",
        _ => "bad.request",
    }
}

/// The HTTP status and Genesys code of a store error: an unknown user, definition or source is
/// 404 `not.found`; a value out of range 400 `invalid.value`; a definition or source that cannot
/// be used or changed (deactivated, built in) 400 `bad.request`.
pub fn error_status(error: &Error) -> (u16, &'static str) {
    match error {
        Error::UnknownUser { .. }
        | Error::UnknownDefinition { .. }
        | Error::UnknownSource { .. }
        | Error::UnknownFeed { .. } => (404, "not.found"),
        Error::MessageTooLong { .. }
        | Error::UnknownSystemPresence { .. }
        | Error::InvalidDefinitionId { .. }
        | Error::InvalidDefinition { .. }
        | Error::InvalidSource { .. }
        | Error::InvalidSourceId { .. }
        | Error::InvalidFeedId { .. }
        | Error::UnknownCategory { .. }
        | Error::InvalidLimit { .. }
        | Error::InvalidCursor { .. } => (400, "invalid.value"),
        Error::CapacityExceeded | Error::InvalidConfig { .. } => (500, "internal.server.error"),
        _ => (400, "bad.request"),
    }
}

/// The answer to `POST /oauth/token`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

impl TokenResponse {
    /// A bearer token living [`TOKEN_LIFETIME_SECS`].
    pub fn bearer(access_token: String) -> Self {
        TokenResponse {
            access_token,
            token_type: "bearer".into(),
            expires_in: TOKEN_LIFETIME_SECS,
        }
    }
}

/// The OAuth endpoint's error body (RFC 6749's, with Genesys' extra `description`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthError {
    /// RFC 6749 code: `invalid_client`, `unsupported_grant_type`, `invalid_request`.
    pub error: String,
    /// What went wrong (Genesys writes it twice).
    pub description: String,
    /// What went wrong.
    pub error_description: String,
}

impl OAuthError {
    /// An error with RFC 6749 code `error`.
    pub fn new(error: &str, description: &str) -> Self {
        OAuthError {
            error: error.to_owned(),
            description: description.to_owned(),
            error_description: description.to_owned(),
        }
    }
}

/// Genesys' spelling of a system presence in `/api/v2/presence/definitions`: `"OnQueue"`.
pub const fn pascal_name(p: SystemPresence) -> &'static str {
    match p {
        SystemPresence::OnQueue => "OnQueue",
        other => other.display_name(),
    }
}

/// A system presence from any of Genesys' spellings (`ON_QUEUE`, `On Queue`, `OnQueue`),
/// ignoring ASCII case; anything else is [`Error::UnknownSystemPresence`].
pub fn parse_system_presence(s: &str) -> Result<SystemPresence, Error> {
    s.parse().or_else(|e| {
        SystemPresence::ALL
            .into_iter()
            .find(|p| pascal_name(*p).eq_ignore_ascii_case(s))
            .ok_or(e)
    })
}

/// One of `GET /api/v2/systempresences`: `{id: "ON_QUEUE", name: "On Queue", selfUri}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemPresenceEntity {
    /// `ON_QUEUE`.
    pub id: String,
    /// `On Queue`.
    pub name: String,
    /// Where it is.
    pub self_uri: String,
}

impl From<SystemPresence> for SystemPresenceEntity {
    fn from(p: SystemPresence) -> Self {
        SystemPresenceEntity {
            id: p.as_str().to_owned(),
            name: p.display_name().to_owned(),
            self_uri: format!("{API}/systempresences/{}", p.as_str()),
        }
    }
}

/// What creating or replacing a definition asks for, read from either definition model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefinitionInput {
    /// The system presence it refines.
    pub system_presence: SystemPresence,
    /// Its labels by locale.
    pub labels: BTreeMap<String, String>,
    /// Whether to (de)activate it; `None` leaves it as it is.
    pub deactivated: Option<bool>,
}

impl DefinitionInput {
    /// Checks that both required fields are there and the system presence is one of the ten.
    fn read(
        labels: Option<&BTreeMap<String, String>>,
        system_presence: Option<&str>,
        deactivated: Option<bool>,
    ) -> Result<Self, Error> {
        let missing = |field: &str| Error::InvalidDefinition {
            reason: format!("{field} is required"),
        };
        Ok(DefinitionInput {
            system_presence: parse_system_presence(
                system_presence.ok_or_else(|| missing("systemPresence"))?,
            )?,
            labels: labels.ok_or_else(|| missing("languageLabels"))?.clone(),
            deactivated,
        })
    }
}

/// A wire shape of a presence definition, so one set of handlers serves both Genesys' current
/// and older definition endpoints.
pub trait DefinitionModel: Sized {
    /// `def` as this model writes it, with only the label of `locale` when one is given
    /// (`ALL` or `None`: every label).
    fn from_definition(def: &Definition, locale: Option<&str>) -> Self;
    /// What a create or replace with this body asks for.
    fn input(&self) -> Result<DefinitionInput, Error>;
}

/// The labels of `def` to write: every one, or only `locale`'s (else `en_US`'s) when asked.
fn labels_for(def: &Definition, locale: Option<&str>) -> BTreeMap<String, String> {
    let one = locale
        .filter(|l| !l.eq_ignore_ascii_case("ALL"))
        .and_then(|l| {
            def.labels
                .get_key_value(l)
                .or_else(|| def.labels.get_key_value("en_US"))
        });
    match one {
        Some((k, v)) => BTreeMap::from([(k.clone(), v.clone())]),
        None => def.labels.clone(),
    }
}

/// Which of Genesys' two definition shapes a [`DefinitionBody`] is.
pub trait DefinitionShape {
    /// The older shape: definitions at `/api/v2/presencedefinitions`, with `primary` (whether
    /// the definition is built in) and system presences spelled `On Queue`. Else the current
    /// one: at `/api/v2/presence/definitions`, with `type` and system presences spelled
    /// `OnQueue`.
    const OLDER: bool;
}

/// The shape of Genesys `OrganizationPresenceDefinition`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CurrentShape;

impl DefinitionShape for CurrentShape {
    const OLDER: bool = false;
}

/// The shape of Genesys `OrganizationPresence`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OlderShape;

impl DefinitionShape for OlderShape {
    const OLDER: bool = true;
}

/// A definition of `/api/v2/presence/definitions` (Genesys `OrganizationPresenceDefinition`).
pub type OrganizationPresenceDefinition = DefinitionBody<CurrentShape>;

/// A definition of the older `/api/v2/presencedefinitions` (Genesys `OrganizationPresence`).
pub type OrganizationPresence = DefinitionBody<OlderShape>;

/// A presence definition in shape `S` ([`OrganizationPresenceDefinition`] or
/// [`OrganizationPresence`]). The fields of one shape only are `None` in the other, so never
/// written there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", bound = "")]
pub struct DefinitionBody<S> {
    /// Its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its `en_US` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `System` for the ten built in, `User` for the org's (the current shape only).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Its name by locale; required when creating or replacing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_labels: Option<BTreeMap<String, String>>,
    /// The system presence it refines, e.g. `OnQueue` (`On Queue` in the older shape);
    /// required when creating or replacing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_presence: Option<String>,
    /// Its division (the current shape only; unused: every definition is in the home
    /// division).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division_id: Option<String>,
    /// Whether it is retired ("deleted" in the older API's words).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivated: Option<bool>,
    /// Whether it is the built-in definition of its system presence (the older shape only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    /// Where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_uri: Option<String>,
    /// Which shape it is (no data).
    #[serde(skip)]
    pub shape: PhantomData<S>,
}

impl<S: DefinitionShape> DefinitionModel for DefinitionBody<S> {
    fn from_definition(def: &Definition, locale: Option<&str>) -> Self {
        let (path, system_presence) = if S::OLDER {
            ("presencedefinitions", def.system_presence.display_name())
        } else {
            ("presence/definitions", pascal_name(def.system_presence))
        };
        DefinitionBody {
            id: Some(def.id.to_string()),
            name: def.label("en_US").map(str::to_owned),
            kind: (!S::OLDER).then(|| if def.system { "System" } else { "User" }.into()),
            language_labels: Some(labels_for(def, locale)),
            system_presence: Some(system_presence.into()),
            division_id: None,
            deactivated: Some(def.deactivated),
            primary: S::OLDER.then_some(def.system),
            self_uri: Some(format!("{API}/{path}/{}", def.id)),
            shape: PhantomData,
        }
    }

    fn input(&self) -> Result<DefinitionInput, Error> {
        DefinitionInput::read(
            self.language_labels.as_ref(),
            self.system_presence.as_deref(),
            self.deactivated,
        )
    }
}

/// A list of everything at once: `{total, entities, selfUri}` (Genesys
/// `OrganizationPresenceDefinitionEntityListing`, `SourceEntityListing`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityListing<T> {
    /// How many entities.
    pub total: u64,
    /// The entities.
    pub entities: Vec<T>,
    /// Where the list is.
    pub self_uri: String,
}

impl<T> EntityListing<T> {
    /// The listing of `entities`, found at `self_uri`.
    pub fn new(entities: Vec<T>, self_uri: &str) -> Self {
        EntityListing {
            total: entities.len() as u64,
            entities,
            self_uri: self_uri.to_owned(),
        }
    }
}

/// One page of a list (Genesys `OrganizationPresenceEntityListing`): `{entities, pageSize,
/// pageNumber, total, pageCount, ...Uri}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PagedListing<T> {
    /// This page's entities.
    pub entities: Vec<T>,
    /// Entities per page.
    pub page_size: u64,
    /// This page's number, from 1.
    pub page_number: u64,
    /// Entities on all pages.
    pub total: u64,
    /// How many pages there are.
    pub page_count: u64,
    /// This page.
    pub self_uri: String,
    /// The first page.
    pub first_uri: String,
    /// The last page.
    pub last_uri: String,
    /// The next page, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_uri: Option<String>,
    /// The previous page, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_uri: Option<String>,
}

impl<T: Clone> PagedListing<T> {
    /// Page `page_number` (from 1) of `all`, `page_size` to a page, listed at `path`.
    pub fn page(all: &[T], page_number: u64, page_size: u64, path: &str) -> Self {
        let size = page_size.max(1);
        let total = all.len() as u64;
        let page_count = total.div_ceil(size);
        let skip = page_number.saturating_sub(1).saturating_mul(size);
        let entities = all
            .iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .take(usize::try_from(size).unwrap_or(usize::MAX))
            .cloned()
            .collect();
        let uri = |n: u64| format!("{path}?pageSize={size}&pageNumber={n}");
        PagedListing {
            entities,
            page_size: size,
            page_number,
            total,
            page_count,
            self_uri: uri(page_number),
            first_uri: uri(1),
            last_uri: uri(page_count.max(1)),
            next_uri: (page_number < page_count).then(|| uri(page_number + 1)),
            previous_uri: (page_number > 1).then(|| uri(page_number - 1)),
        }
    }
}

/// A presence source (Genesys `Source`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceEntity {
    /// Its id; `PURECLOUD` for the built-in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its name; required when creating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A description (not kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `System` for the built-in source, `User` for the others.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Whether it takes no new presences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivated: Option<bool>,
    /// Where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_uri: Option<String>,
}

impl From<&crate::Source> for SourceEntity {
    fn from(s: &crate::Source) -> Self {
        SourceEntity {
            id: Some(s.id.to_string()),
            name: Some(s.name.clone()),
            description: None,
            kind: Some(if s.id.is_default() { "System" } else { "User" }.into()),
            deactivated: Some(s.deactivated),
            self_uri: Some(format!("{API}/presence/sources/{}", s.id)),
        }
    }
}

/// The definition a user's presence names (Genesys `PresenceDefinition`): `{id,
/// systemPresence, selfUri}`; in a PATCH only `id` is read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceDefinition {
    /// The definition's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its system presence as the definition it links to spells it, e.g. `OnQueue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_presence: Option<String>,
    /// Where the definition is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_uri: Option<String>,
}

impl PresenceDefinition {
    /// The definition `presence` shows. `definition` is the registry's entry for
    /// `presence.definition`, if it still has one.
    ///
    /// The definition set shows, with its id, while the category it set is the one showing; a
    /// presence set by category alone, or overridden by the user's activity (idle, offline),
    /// shows the system presence of its category.
    pub fn from_presence(presence: &Presence, definition: Option<&Definition>) -> Self {
        let fallback = super::shown(presence.category).genesys;
        let set = presence
            .details
            .definition()
            .filter(|_| presence.category == presence.requested);
        let (id, system) = match set {
            Some(id) => {
                let system = definition
                    .filter(|d| d.id == *id && d.system_presence.category() == presence.category)
                    .map_or(fallback, |d| d.system_presence);
                (id.to_string(), system)
            }
            None => (fallback.as_str().to_owned(), fallback),
        };
        PresenceDefinition::new(id, system)
    }

    /// The reference to definition `id` of system presence `system`.
    fn new(id: String, system: SystemPresence) -> Self {
        PresenceDefinition {
            system_presence: Some(pascal_name(system).into()),
            self_uri: Some(format!("{API}/presence/definitions/{id}")),
            id: Some(id),
        }
    }

    /// The id given in a PATCH, checked.
    pub fn definition_id(&self) -> Option<Result<DefinitionId, Error>> {
        self.id.as_deref().map(DefinitionId::new)
    }
}

/// A user's presence from one source (Genesys `UserPresence`); also the body of a PATCH (which
/// reads `presenceDefinition.id`, `message` and `primary`) and an item of a bulk PUT (Genesys
/// `MutableUserPresence`, which adds the user's id as `id`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserPresence {
    /// The user's id (bulk PUT only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The source's id, e.g. `PURECLOUD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The source's id again (Genesys' newer field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// Whether the source is the user's primary one; `true` in a PATCH makes it so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    /// The definition of the presence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_definition: Option<PresenceDefinition>,
    /// The status message, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When it last changed, ISO-8601.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_date: Option<String>,
    /// Where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_uri: Option<String>,
}

/// An item of a bulk PUT: a [`UserPresence`] whose `id` is the user's.
pub type MutableUserPresence = UserPresence;

impl UserPresence {
    /// `presence` of user `user_id` as `source` sets it; `primary` says whether `source` is the
    /// user's primary source, `definition` is the registry's entry for `presence.definition`.
    pub fn from_presence(
        presence: &Presence,
        user_id: &str,
        source: &SourceId,
        primary: bool,
        definition: Option<&Definition>,
    ) -> Self {
        UserPresence {
            message: presence.details.message().map(str::to_owned),
            modified_date: Some(format_iso8601(presence.updated_at)),
            ..UserPresence::of(
                user_id,
                source,
                primary,
                PresenceDefinition::from_presence(presence, definition),
            )
        }
    }

    /// The presence of a user of whom `source` knows nothing: offline, never modified.
    pub fn offline(user_id: &str, source: &SourceId, primary: bool) -> Self {
        let offline = SystemPresence::Offline;
        UserPresence::of(
            user_id,
            source,
            primary,
            PresenceDefinition::new(offline.as_str().into(), offline),
        )
    }

    /// `definition` of user `user_id` from `source`, without a message or a date.
    fn of(user_id: &str, source: &SourceId, primary: bool, definition: PresenceDefinition) -> Self {
        UserPresence {
            id: None,
            source: Some(source.to_string()),
            source_id: Some(source.to_string()),
            primary: Some(primary),
            presence_definition: Some(definition),
            message: None,
            modified_date: None,
            self_uri: Some(format!("{API}/users/{user_id}/presences/{source}")),
        }
    }

    /// The source a bulk PUT item names (`sourceId`, else `source`), if any.
    pub fn named_source(&self) -> Option<&str> {
        self.source_id.as_deref().or(self.source.as_deref())
    }
}

/// A user's presence in a bulk GET (Genesys `UcUserPresence`): a [`UserPresence`] with the
/// user's id and without `primary`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UcUserPresence {
    /// The user's id.
    pub user_id: String,
    /// The source's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The source's id again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// The definition of the presence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_definition: Option<PresenceDefinition>,
    /// The status message, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When it last changed, ISO-8601.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_date: Option<String>,
    /// Where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_uri: Option<String>,
}

impl UcUserPresence {
    /// User `user_id`'s `presence`, in the bulk shape.
    pub fn new(user_id: &str, presence: UserPresence) -> Self {
        UcUserPresence {
            user_id: user_id.to_owned(),
            source: presence.source,
            source_id: presence.source_id,
            presence_definition: presence.presence_definition,
            message: presence.message,
            modified_date: presence.modified_date,
            self_uri: presence.self_uri,
        }
    }
}

/// A user's primary source (Genesys `UserPrimarySource`); a PUT reads `sourceId`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserPrimarySource {
    /// The user's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The source's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The source's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// Whether the source is registered (every source here is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered: Option<bool>,
    /// Where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_uri: Option<String>,
}

impl UserPrimarySource {
    /// User `user_id`'s primary source `source`.
    pub fn new(user_id: &str, source: &crate::Source) -> Self {
        UserPrimarySource {
            id: Some(user_id.to_owned()),
            name: Some(source.name.clone()),
            source_id: Some(source.id.to_string()),
            registered: Some(true),
            self_uri: Some(format!("{API}/presence/users/{user_id}/primarysource")),
        }
    }
}

/// The org's presence settings (Genesys `PresenceSettings`); a PUT changes the fields given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceSettings {
    /// The settings' id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The settings' name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether and when a presence is restored after an automatic change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_presence_settings: Option<RestorePresenceSettings>,
    /// Whether agents may ask to go off queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requesting_off_queue_enabled: Option<bool>,
    /// The source that is new users' primary one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_primary_presence_registered_source_id: Option<String>,
    /// Where they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_uri: Option<String>,
}

/// Genesys `RestorePresenceSettings`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestorePresenceSettings {
    /// Whether presences are restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// After how long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_time_milliseconds: Option<u64>,
    /// Whether `On Queue` is restored too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_on_queue_enabled: Option<bool>,
}

impl Default for PresenceSettings {
    /// Restoring off, off-queue requests off, `PURECLOUD` the default primary source.
    fn default() -> Self {
        PresenceSettings {
            id: Some("presence-settings".into()),
            name: Some("Presence settings".into()),
            restore_presence_settings: Some(RestorePresenceSettings {
                enabled: Some(false),
                restore_time_milliseconds: Some(0),
                restore_on_queue_enabled: Some(false),
            }),
            requesting_off_queue_enabled: Some(false),
            default_primary_presence_registered_source_id: Some(SourceId::DEFAULT.to_string()),
            self_uri: Some(format!("{API}/presence/settings")),
        }
    }
}

impl PresenceSettings {
    /// These settings with the fields `update` gives replaced (the read-only `id`, `name` and
    /// `selfUri` kept).
    pub fn merged(&self, update: PresenceSettings) -> Self {
        PresenceSettings {
            restore_presence_settings: update
                .restore_presence_settings
                .or_else(|| self.restore_presence_settings.clone()),
            requesting_off_queue_enabled: update
                .requesting_off_queue_enabled
                .or(self.requesting_off_queue_enabled),
            default_primary_presence_registered_source_id: update
                .default_primary_presence_registered_source_id
                .or_else(|| self.default_primary_presence_registered_source_id.clone()),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Category, DefinitionUpdate, ManualClock, PresenceStore, SetMode, StoreConfig};
    use serde_json::{json, Value};
    use std::sync::Arc;

    const T0: u64 = 1_795_435_200_000;

    fn store() -> PresenceStore<u64> {
        PresenceStore::with_clock(StoreConfig::default(), Arc::new(ManualClock::new(T0)))
    }

    fn to_json(v: &impl Serialize) -> Value {
        serde_json::to_value(v).unwrap()
    }

    fn shown(store: &PresenceStore<u64>, user: u64) -> PresenceDefinition {
        let p = store.get(&user).unwrap();
        let def = p
            .details
            .definition()
            .and_then(|id| store.definition(id).ok());
        PresenceDefinition::from_presence(&p, def.as_ref())
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_spelling_of_a_system_presence_parses() {
        for p in SystemPresence::ALL {
            for s in [p.as_str(), p.display_name(), pascal_name(p)] {
                assert_eq!(parse_system_presence(s).unwrap(), p, "{s}");
                assert_eq!(parse_system_presence(&s.to_ascii_lowercase()).unwrap(), p);
            }
        }
        assert_eq!(pascal_name(SystemPresence::OnQueue), "OnQueue");
        for bad in ["", "Lunch", "DO_NOT_DISTURB", "On-Queue"] {
            assert!(matches!(
                parse_system_presence(bad),
                Err(Error::UnknownSystemPresence { .. })
            ));
        }
    }

    #[test]
    fn system_presences_have_genesys_ids_and_names() {
        let e = to_json(&SystemPresenceEntity::from(SystemPresence::OnQueue));
        assert_eq!(
            e,
            json!({"id": "ON_QUEUE", "name": "On Queue",
                   "selfUri": "/api/v2/systempresences/ON_QUEUE"})
        );
    }

    #[test]
    fn a_presence_set_by_definition_reads_back_with_its_id() {
        let s = store();
        let lunch = s
            .create_definition(SystemPresence::Meal, labels(&[("en_US", "Lunch")]))
            .unwrap();
        s.set_definition(&1, &lunch.id, SetMode::Hard).unwrap();
        let shown = shown(&s, 1);
        assert_eq!(shown.id.as_deref(), Some(lunch.id.as_str()));
        assert_eq!(shown.system_presence.as_deref(), Some("Meal"));
        // The id, sent back in a PATCH, names the same definition.
        assert_eq!(shown.definition_id().unwrap().unwrap(), lunch.id);
    }

    #[test]
    fn a_bare_category_reads_back_as_its_system_presence() {
        let s = store();
        for c in Category::ALL {
            s.set(&2, c, SetMode::Hard).unwrap();
            let sp = crate::wire::shown(c).genesys;
            let shown = shown(&s, 2);
            assert_eq!(shown.id.as_deref(), Some(sp.as_str()), "{c}");
            assert_eq!(shown.system_presence.as_deref(), Some(pascal_name(sp)));
            // That id is a definition the registry has.
            let id = shown.definition_id().unwrap().unwrap();
            assert_eq!(s.definition(&id).unwrap().system_presence, sp);
        }
    }

    #[test]
    fn activity_overrides_show_as_the_category_they_made() {
        let s = store();
        s.heartbeat(&3, 1, crate::Activity::Active).unwrap();
        s.set_definition(&3, &DefinitionId::new("AVAILABLE").unwrap(), SetMode::Soft)
            .unwrap();
        s.heartbeat(&3, 1, crate::Activity::Idle).unwrap();
        assert_eq!(shown(&s, 3).id.as_deref(), Some("AWAY"));
        s.disconnect(&3, 1).unwrap();
        assert_eq!(shown(&s, 3).id.as_deref(), Some("OFFLINE"));
    }

    #[test]
    fn a_deleted_or_changed_definition_still_reads_consistently() {
        let s = store();
        let d = s
            .create_definition(SystemPresence::Break, labels(&[("en_US", "Coffee")]))
            .unwrap();
        s.set_definition(&4, &d.id, SetMode::Hard).unwrap();
        s.update_definition(
            &d.id,
            DefinitionUpdate {
                system_presence: Some(SystemPresence::Busy),
                ..Default::default()
            },
        )
        .unwrap();
        let shown_now = shown(&s, 4);
        assert_eq!(shown_now.id.as_deref(), Some(d.id.as_str()));
        assert_eq!(shown_now.system_presence.as_deref(), Some("Break"));
        s.delete_definition(&d.id).unwrap();
        assert_eq!(shown(&s, 4).id.as_deref(), Some(d.id.as_str()));
    }

    #[test]
    fn user_presence_has_genesys_fields() {
        let s = store();
        s.set_definition(&5, &SystemPresence::OnQueue.id(), SetMode::Hard)
            .unwrap();
        s.set_message(&5, "on the phones").unwrap();
        let p = s.get(&5).unwrap();
        let def = s.definition(p.details.definition().unwrap()).unwrap();
        let up = UserPresence::from_presence(&p, "u-5", &SourceId::DEFAULT, true, Some(&def));
        assert_eq!(
            to_json(&up),
            json!({
                "source": "PURECLOUD", "sourceId": "PURECLOUD", "primary": true,
                "presenceDefinition": {"id": "ON_QUEUE", "systemPresence": "OnQueue",
                    "selfUri": "/api/v2/presence/definitions/ON_QUEUE"},
                "message": "on the phones",
                "modifiedDate": "2026-11-23T12:00:00.000Z",
                "selfUri": "/api/v2/users/u-5/presences/PURECLOUD"
            })
        );
        let uc = to_json(&UcUserPresence::new("u-5", up));
        assert_eq!(uc["userId"], "u-5");
        assert!(uc.get("primary").is_none());
        let off = to_json(&UserPresence::offline("u-6", &SourceId::DEFAULT, true));
        assert_eq!(off["presenceDefinition"]["id"], "OFFLINE");
        assert!(off.get("modifiedDate").is_none());
    }

    #[test]
    fn definitions_map_both_ways() {
        let s = store();
        let d = s
            .create_definition(
                SystemPresence::OnQueue,
                labels(&[("en_US", "Phones"), ("fr", "Téléphones")]),
            )
            .unwrap();
        let current = OrganizationPresenceDefinition::from_definition(&d, None);
        let j = to_json(&current);
        assert_eq!(j["systemPresence"], "OnQueue");
        assert_eq!(j["type"], "User");
        assert_eq!(j["languageLabels"]["fr"], "Téléphones");
        assert_eq!(j["deactivated"], false);
        let fr = OrganizationPresenceDefinition::from_definition(&d, Some("fr"));
        assert_eq!(fr.language_labels.unwrap().len(), 1);
        let ja = OrganizationPresenceDefinition::from_definition(&d, Some("ja"));
        assert_eq!(ja.language_labels.unwrap(), labels(&[("en_US", "Phones")]));
        let input = current.input().unwrap();
        assert_eq!(input.system_presence, SystemPresence::OnQueue);
        assert_eq!(input.labels, d.labels);

        let older = OrganizationPresence::from_definition(&d, Some("ALL"));
        let j = to_json(&older);
        assert_eq!(j["systemPresence"], "On Queue");
        assert_eq!(j["primary"], false);
        assert_eq!(older.input().unwrap().labels, d.labels);
    }

    #[test]
    fn definition_bodies_need_labels_and_a_system_presence() {
        let no_labels: OrganizationPresenceDefinition =
            serde_json::from_value(json!({"systemPresence": "Busy"})).unwrap();
        assert!(matches!(
            no_labels.input(),
            Err(Error::InvalidDefinition { .. })
        ));
        let no_presence: OrganizationPresence =
            serde_json::from_value(json!({"languageLabels": {"en_US": "x"}})).unwrap();
        assert!(matches!(
            no_presence.input(),
            Err(Error::InvalidDefinition { .. })
        ));
        let bad: OrganizationPresence = serde_json::from_value(
            json!({"languageLabels": {"en_US": "x"}, "systemPresence": "Lunch"}),
        )
        .unwrap();
        assert!(matches!(
            bad.input(),
            Err(Error::UnknownSystemPresence { .. })
        ));
    }

    #[test]
    fn sources_and_primary_sources_have_genesys_fields() {
        let s = store();
        let cal = s.create_source("Calendar").unwrap();
        let j = to_json(&SourceEntity::from(&cal));
        assert_eq!(j["type"], "User");
        assert_eq!(j["name"], "Calendar");
        let d = to_json(&SourceEntity::from(&s.sources()[0]));
        assert_eq!(
            (d["id"].as_str(), d["type"].as_str()),
            (Some("PURECLOUD"), Some("System"))
        );
        let p = to_json(&UserPrimarySource::new("u-1", &cal));
        assert_eq!(p["sourceId"], cal.id.as_str());
        assert_eq!(p["registered"], true);
    }

    #[test]
    fn errors_have_the_genesys_shape_and_status() {
        let e = ErrorBody::from_error(&Error::UnknownDefinition { id: "x".into() }, "ctx");
        let j = to_json(&e);
        for key in [
            "message",
            "code",
            "status",
            "messageParams",
            "contextId",
            "details",
            "errors",
        ] {
            assert!(j.get(key).is_some(), "{key} missing from {j}");
        }
        assert_eq!((e.status, e.code.as_str()), (404, "not.found"));
        let cases = [
            (Error::DefaultSource, 400),
            (Error::SystemDefinition { id: "AWAY".into() }, 400),
            (Error::DeactivatedDefinition { id: "x".into() }, 400),
            (Error::MessageTooLong { len: 2, max: 1 }, 400),
            (Error::TooManyIds { count: 51, max: 50 }, 400),
            (Error::unknown_source("x"), 404),
            (Error::unknown_user(&1u64), 404),
        ];
        for (error, status) in cases {
            assert_eq!(error_status(&error).0, status, "{error}");
        }
        assert_eq!(
            ErrorBody::for_status(405, "no", "c").code,
            "method.not.allowed"
        );
    }

    #[test]
    fn paged_listings_count_pages() {
        let all: Vec<u32> = (0..26).collect();
        let p = PagedListing::page(&all, 2, 25, "/x");
        assert_eq!((p.entities, p.total, p.page_count), (vec![25], 26, 2));
        assert!(p.next_uri.is_none());
        assert_eq!(
            p.previous_uri.as_deref(),
            Some("/x?pageSize=25&pageNumber=1")
        );
        let past = PagedListing::page(&all, 9, 25, "/x");
        assert!(past.entities.is_empty());
        let empty = PagedListing::<u32>::page(&[], 1, 25, "/x");
        assert_eq!(
            (empty.page_count, empty.last_uri.as_str()),
            (0, "/x?pageSize=25&pageNumber=1")
        );
    }

    #[test]
    fn settings_merge_the_fields_given() {
        let base = PresenceSettings::default();
        let update: PresenceSettings =
            serde_json::from_value(json!({"requestingOffQueueEnabled": true, "id": "other"}))
                .unwrap();
        let merged = base.merged(update);
        assert_eq!(merged.requesting_off_queue_enabled, Some(true));
        assert_eq!(merged.id, base.id);
        assert_eq!(
            merged.restore_presence_settings,
            base.restore_presence_settings
        );
    }

    #[test]
    fn oauth_bodies() {
        let t = to_json(&TokenResponse::bearer("abc".into()));
        assert_eq!(
            t,
            json!({"access_token": "abc", "token_type": "bearer", "expires_in": 86399})
        );
        let e = to_json(&OAuthError::new("invalid_client", "bad secret"));
        assert_eq!(e["error_description"], "bad secret");
    }
}
