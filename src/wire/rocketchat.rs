//! Rocket.Chat's REST dialect (`/api/v1`): the user statuses and their mapping to and from
//! [`Category`], the bodies of `login`, `users.presence`, `users.getPresence`,
//! `users.setStatus` and `settings`, the error bodies, and the `users.presence` query string.
//!
//! Rocket.Chat knows four statuses, so eleven categories fold into them ([`Status::of`]), as
//! the one table of the dialects says ([`super::SHOWN`]). Setting goes the other way one to
//! one ([`Status::category`]), so a status set here reads back the same.
//!
//! Invariant: every body serializes to the JSON the vendor's own server writes (field names,
//! `success`, error shapes), so the vendor's clients read it unchanged.

use serde::{Deserialize, Serialize};

use super::time::parse_iso8601;
use crate::{Activity, Category, Error};

/// A Rocket.Chat user status, lowercase on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `online`.
    Online,
    /// `away`.
    Away,
    /// `busy`.
    Busy,
    /// `offline`: not connected, or invisible.
    Offline,
}

impl Status {
    /// All four, in Rocket.Chat's order.
    pub const ALL: [Status; 4] = [Status::Online, Status::Away, Status::Busy, Status::Offline];

    /// The wire name, e.g. `"online"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Away => "away",
            Status::Busy => "busy",
            Status::Offline => "offline",
        }
    }

    /// The status a wire name stands for; `None` for anything else (Rocket.Chat compares the
    /// names exactly, so `"Online"` is not one).
    pub fn from_name(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The status others see for a category: its row of [`super::SHOWN`].
    pub const fn of(category: Category) -> Status {
        super::shown(category).rocketchat
    }

    /// The category `users.setStatus` sets for this status; [`Status::of`] maps it back.
    pub const fn category(self) -> Category {
        match self {
            Status::Online => Category::Available,
            Status::Away => Category::Away,
            Status::Busy => Category::Busy,
            Status::Offline => Category::Offline,
        }
    }

    /// Rocket.Chat's `connectionStatus` (`statusConnection`) for what the devices say:
    /// active is `online`, idle `away`, no session `offline`.
    pub const fn of_activity(activity: Activity) -> Status {
        match activity {
            Activity::Active => Status::Online,
            Activity::Idle => Status::Away,
            Activity::Offline => Status::Offline,
        }
    }
}

/// One user in `users.presence`'s `users`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceUser {
    /// Rocket.Chat's user id.
    #[serde(rename = "_id")]
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Login name.
    pub username: String,
    /// What others see.
    pub status: Status,
    /// Hours from UTC.
    #[serde(rename = "utcOffset")]
    pub utc_offset: Option<i32>,
    /// The avatar's version; absent for a user without a custom avatar, as in Rocket.Chat.
    #[serde(
        rename = "avatarETag",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub avatar_etag: Option<String>,
    /// The user's status message; absent when none.
    #[serde(
        rename = "statusText",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub status_text: Option<String>,
}

/// The body of `GET /api/v1/users.presence`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersPresence {
    /// The users asked for.
    pub users: Vec<PresenceUser>,
    /// `true` when `users` is every user not offline, `false` when it is only the changes
    /// since `from` (or only the `ids` asked for).
    pub full: bool,
    /// Always `true`.
    pub success: bool,
}

/// The query of `GET /api/v1/users.presence`, read from the raw query string because `ids`
/// comes in four spellings: `ids=a`, `ids=a,b`, `ids=a&ids=b` and `ids[]=a&ids[]=b`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PresenceQuery {
    /// `from`, in ms since the Unix epoch; `None` when absent or empty (Rocket.Chat treats an
    /// empty `from` as none).
    pub from: Option<u64>,
    /// The ids asked for, in order, empty entries dropped; `None` when no `ids` names one.
    pub ids: Option<Vec<String>>,
}

impl PresenceQuery {
    /// Reads a raw query string (without the `?`), percent-decoding names and values. Other
    /// parameters are ignored. A malformed `from`, or `from` given twice, is
    /// [`Error::InvalidTimestamp`]; nothing panics.
    ///
    /// A `+` left unencoded in `from` is read as form encoding has it (a space, which may stand
    /// for the `T`), and if that does not parse, as the sign of a zone offset: clients that
    /// write `?from=2019-05-22T14:11:45+02:00` as is mean the offset.
    pub fn parse(raw: &str) -> Result<PresenceQuery, Error> {
        let mut query = PresenceQuery::default();
        let mut seen_from = false;
        for (name, value) in query_pairs(raw) {
            match name.as_str() {
                "from" if seen_from => {
                    return Err(Error::InvalidTimestamp {
                        value: percent_decode(value)
                            .chars()
                            .take(Error::ECHO_LIMIT)
                            .collect(),
                        reason: "`from` is given more than once",
                    })
                }
                "from" => {
                    seen_from = true;
                    query.from = parse_from(value)?;
                }
                "ids" | "ids[]" => {
                    let value = percent_decode(value);
                    let ids = value.split(',').filter(|id| !id.is_empty());
                    let ids: Vec<String> = ids.map(str::to_owned).collect();
                    if !ids.is_empty() {
                        query.ids.get_or_insert_with(Vec::new).extend(ids);
                    }
                }
                _ => {}
            }
        }
        Ok(query)
    }
}

/// A raw `from` value: `None` when empty; a `+` is a space first, else a plus.
fn parse_from(raw: &str) -> Result<Option<u64>, Error> {
    let value = percent_decode(raw);
    if value.is_empty() {
        return Ok(None);
    }
    parse_iso8601(&value)
        .or_else(|e| parse_iso8601(&percent_decode(&raw.replace('+', "%2B"))).map_err(|_| e))
        .map(Some)
}

/// The `name=value` pairs of a query string, the name percent-decoded (`+` is a space), the
/// value as written; a pair without `=` has an empty value.
fn query_pairs(raw: &str) -> impl Iterator<Item = (String, &str)> + '_ {
    raw.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(name), value)
    })
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space and `%XX` a byte; an escape
/// that is not two hex digits stays as written, and bytes that are not UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |i: usize| bytes.get(i).and_then(|&b| char::from(b).to_digit(16));
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = if b == b'%' {
            hex(i + 1)
                .zip(hex(i + 2))
                .map(|(hi, lo)| (hi * 16 + lo) as u8)
        } else {
            None
        };
        match (b, escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query of `GET /api/v1/users.getPresence`: a user by id or by name; neither means the
/// caller.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetPresenceQuery {
    /// Rocket.Chat's user id; wins over `username`.
    #[serde(rename = "userId", default)]
    pub user_id: Option<String>,
    /// Login name.
    #[serde(default)]
    pub username: Option<String>,
}

/// The body of `GET /api/v1/users.getPresence`. Rocket.Chat adds `connectionStatus` and
/// `lastLogin` only when the user asked about is the caller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetPresence {
    /// What others see.
    pub presence: Status,
    /// What the caller's devices say.
    #[serde(
        rename = "connectionStatus",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub connection_status: Option<Status>,
    /// When the caller last logged in, ISO 8601.
    #[serde(rename = "lastLogin", default, skip_serializing_if = "Option::is_none")]
    pub last_login: Option<String>,
    /// Always `true`.
    pub success: bool,
}

/// The body of `POST /api/v1/users.setStatus`. `status` stays text so an unknown one is the
/// vendor's `error-invalid-status`, not a parse failure.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetStatusRequest {
    /// The new status message; absent keeps it, empty clears it.
    #[serde(default)]
    pub message: Option<String>,
    /// `online`, `away`, `busy` or `offline`; absent keeps the status.
    #[serde(default)]
    pub status: Option<String>,
    /// Whose status to set; only the caller's own may be set here.
    #[serde(rename = "userId", default)]
    pub user_id: Option<String>,
}

/// The body of `POST /api/v1/login`, as JSON or as a form: `user` (a username or an email)
/// or `username`, and `password`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    /// Username or email.
    #[serde(default)]
    pub user: Option<String>,
    /// Username.
    #[serde(default)]
    pub username: Option<String>,
    /// Password.
    #[serde(default)]
    pub password: Option<String>,
}

impl LoginRequest {
    /// The name to log in as: `user`, else `username`.
    pub fn name(&self) -> Option<&str> {
        self.user.as_deref().or(self.username.as_deref())
    }
}

/// The logged-in user, as `login`'s `data.me` describes them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// Rocket.Chat's user id.
    #[serde(rename = "_id")]
    pub id: String,
    /// Display name.
    pub name: String,
    /// Login name.
    pub username: String,
    /// What others see.
    pub status: Status,
    /// What the devices say.
    #[serde(rename = "statusConnection")]
    pub status_connection: Status,
    /// Hours from UTC.
    #[serde(rename = "utcOffset")]
    pub utc_offset: i32,
    /// Whether the account is active.
    pub active: bool,
    /// The user's roles, e.g. `["user"]`.
    pub roles: Vec<String>,
}

/// `login`'s `data`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginData {
    /// The token for `X-Auth-Token`.
    #[serde(rename = "authToken")]
    pub auth_token: String,
    /// The id for `X-User-Id`.
    #[serde(rename = "userId")]
    pub user_id: String,
    /// Who logged in.
    pub me: Me,
}

/// A `{status: "success", data}` body, which `login` and `logout` answer with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusSuccess<T> {
    /// Always `"success"`.
    pub status: String,
    /// The payload.
    pub data: T,
}

impl<T> StatusSuccess<T> {
    /// A success carrying `data`.
    pub fn new(data: T) -> Self {
        StatusSuccess {
            status: "success".into(),
            data,
        }
    }
}

/// `logout`'s `data`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutData {
    /// `"You've been logged out!"`.
    pub message: String,
}

impl Default for LogoutData {
    fn default() -> Self {
        LogoutData {
            message: "You've been logged out!".into(),
        }
    }
}

/// The `{success: true}` body of calls that return nothing else (`users.setStatus`,
/// `settings/:_id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Success {
    /// Always `true`.
    pub success: bool,
}

impl Default for Success {
    fn default() -> Self {
        Success { success: true }
    }
}

/// A setting, as `GET /api/v1/settings/:_id` answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting<T> {
    /// The setting's id, e.g. `Presence_broadcast_disabled`.
    #[serde(rename = "_id")]
    pub id: String,
    /// Its value.
    pub value: T,
    /// Always `true`.
    pub success: bool,
}

/// The body of `POST /api/v1/settings/:_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetSetting<T> {
    /// The new value.
    pub value: T,
}

/// The setting that turns `users.presence` into an empty full list.
pub const PRESENCE_BROADCAST_DISABLED: &str = "Presence_broadcast_disabled";

/// The 401 body: `{status: "error", message}` (and `error` on a failed login).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusError {
    /// Always `"error"`.
    pub status: String,
    /// `"Unauthorized"` on a failed login; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What went wrong.
    pub message: String,
}

impl StatusError {
    /// What every authenticated call answers without valid `X-Auth-Token` and `X-User-Id`.
    pub const NOT_LOGGED_IN: &'static str = "You must be logged in to do this.";

    /// A 401 body saying `message`.
    pub fn new(message: &str) -> Self {
        StatusError {
            status: "error".into(),
            error: None,
            message: message.into(),
        }
    }

    /// What a login with a wrong name or password answers.
    pub fn login_failed() -> Self {
        StatusError {
            status: "error".into(),
            error: Some("Unauthorized".into()),
            message: "Unauthorized".into(),
        }
    }
}

/// Every other error body: `{success: false, error, errorType?}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Always `false`.
    pub success: bool,
    /// What went wrong; for a typed error, ends with `[errorType]` as Rocket.Chat writes it.
    pub error: String,
    /// Rocket.Chat's error code, e.g. `error-invalid-status`, when there is one.
    #[serde(rename = "errorType", default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
}

impl Failure {
    /// A failure saying `message`.
    pub fn new(message: &str) -> Self {
        Failure {
            success: false,
            error: message.into(),
            error_type: None,
        }
    }

    /// A failure with Rocket.Chat's error code: `error` is `"{message} [{error_type}]"`.
    pub fn typed(message: &str, error_type: &str) -> Self {
        Failure {
            success: false,
            error: format!("{message} [{error_type}]"),
            error_type: Some(error_type.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_maps_as_the_table_says() {
        let expect = |c| match c {
            Category::Available | Category::Undefined => "online",
            Category::Away | Category::BeRightBack | Category::OutOfOffice | Category::OffWork => {
                "away"
            }
            Category::Offline => "offline",
            _ => "busy",
        };
        for c in Category::ALL {
            assert_eq!(Status::of(c).as_str(), expect(c), "{c}");
        }
    }

    #[test]
    fn a_status_set_reads_back_the_same() {
        for s in Status::ALL {
            assert_eq!(Status::of(s.category()), s);
            assert_eq!(Status::from_name(s.as_str()), Some(s));
            let json = format!("\"{}\"", s.as_str());
            assert_eq!(serde_json::to_string(&s).unwrap(), json);
            assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), s);
        }
        for bad in ["", "Online", "ONLINE", "invisible", "dnd", "online "] {
            assert_eq!(Status::from_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn connection_status_follows_activity() {
        assert_eq!(Status::of_activity(Activity::Active), Status::Online);
        assert_eq!(Status::of_activity(Activity::Idle), Status::Away);
        assert_eq!(Status::of_activity(Activity::Offline), Status::Offline);
    }

    #[test]
    fn presence_body_has_the_seed_shape() {
        let body = UsersPresence {
            users: vec![PresenceUser {
                id: "rocket.cat".into(),
                name: Some("Rocket.Cat".into()),
                username: "rocket.cat".into(),
                status: Status::Online,
                utc_offset: Some(-2),
                avatar_etag: Some("5BB9B5ny5DkKdrwkq".into()),
                status_text: None,
            }],
            full: true,
            success: true,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({
                "users": [{"_id": "rocket.cat", "name": "Rocket.Cat", "username": "rocket.cat",
                           "status": "online", "utcOffset": -2, "avatarETag": "5BB9B5ny5DkKdrwkq"}],
                "full": true, "success": true
            })
        );
        let back: UsersPresence =
            serde_json::from_value(serde_json::to_value(&body).unwrap()).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn error_bodies_have_the_vendor_shapes() {
        assert_eq!(
            serde_json::to_value(StatusError::new(StatusError::NOT_LOGGED_IN)).unwrap(),
            serde_json::json!({"status": "error", "message": "You must be logged in to do this."})
        );
        assert_eq!(
            serde_json::to_value(StatusError::login_failed()).unwrap(),
            serde_json::json!({"status": "error", "error": "Unauthorized", "message": "Unauthorized"})
        );
        assert_eq!(
            serde_json::to_value(Failure::new("bad")).unwrap(),
            serde_json::json!({"success": false, "error": "bad"})
        );
        assert_eq!(
            serde_json::to_value(Failure::typed("Invalid status", "error-invalid-status")).unwrap(),
            serde_json::json!({"success": false, "error": "Invalid status [error-invalid-status]",
                               "errorType": "error-invalid-status"})
        );
    }

    #[test]
    fn login_takes_user_or_username() {
        let login: LoginRequest =
            serde_json::from_str(r#"{"user": "ada", "password": "pw"}"#).unwrap();
        assert_eq!(
            (login.name(), login.password.as_deref()),
            (Some("ada"), Some("pw"))
        );
        let login: LoginRequest = serde_json::from_str(r#"{"username": "ada"}"#).unwrap();
        assert_eq!(
            (login.name(), login.password.as_deref()),
            (Some("ada"), None)
        );
        let body = serde_json::to_value(StatusSuccess::new(LogoutData::default())).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"status": "success", "data": {"message": "You've been logged out!"}})
        );
    }

    #[test]
    fn get_presence_leaves_out_what_it_does_not_know() {
        let body = GetPresence {
            presence: Status::Busy,
            connection_status: None,
            last_login: None,
            success: true,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"presence": "busy", "success": true})
        );
    }

    fn ids(raw: &str) -> Option<Vec<String>> {
        PresenceQuery::parse(raw).unwrap().ids
    }

    #[test]
    fn ids_come_in_four_spellings() {
        let ab = Some(vec!["a".to_string(), "b".to_string()]);
        assert_eq!(ids("ids=a"), Some(vec!["a".to_string()]));
        assert_eq!(ids("ids=a,b"), ab);
        assert_eq!(ids("ids=a&ids=b"), ab);
        assert_eq!(ids("ids[]=a&ids[]=b"), ab);
        assert_eq!(ids("ids%5B%5D=a&ids%5b%5d=b"), ab);
        assert_eq!(ids("ids=a%2Cb"), ab);
        assert_eq!(ids("ids=a,,b,&ids="), ab);
        assert_eq!(ids("ids=&ids[]="), None);
        assert_eq!(ids(""), None);
        assert_eq!(ids("other=1&ids"), None);
    }

    #[test]
    fn from_is_parsed_and_checked() {
        let q = PresenceQuery::parse("from=2019-05-22T12:11:45.392Z").unwrap();
        assert_eq!(q.from, Some(1_558_527_105_392));
        let q = PresenceQuery::parse("from=2019-05-22T14%3A11%3A45.392%2B02%3A00").unwrap();
        assert_eq!(q.from, Some(1_558_527_105_392));
        let q = PresenceQuery::parse("from=2019-05-22+12:11").unwrap();
        assert_eq!(q.from, Some(1_558_527_060_000));
        let q = PresenceQuery::parse("from=2019-05-22T14:11:45.392+02:00").unwrap();
        assert_eq!(q.from, Some(1_558_527_105_392));
        assert_eq!(PresenceQuery::parse("from=").unwrap().from, None);
        for bad in [
            "from=yesterday",
            "from=2019-13-01T00:00Z",
            "from=1558527105392",
            "from=%ff",
        ] {
            assert!(
                matches!(
                    PresenceQuery::parse(bad),
                    Err(Error::InvalidTimestamp { .. })
                ),
                "{bad}"
            );
        }
        let twice = PresenceQuery::parse("from=2019-05-22T12:11Z&from=2019-05-22T12:11Z");
        assert!(matches!(twice, Err(Error::InvalidTimestamp { .. })));
    }

    #[test]
    fn percent_decoding_is_lenient_and_never_panics() {
        assert_eq!(percent_decode("a+b%20c"), "a b c");
        assert_eq!(percent_decode("%41%4a%4A"), "AJJ");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz%+1"), "%zz% 1");
        assert_eq!(percent_decode("%C3%A9é"), "éé");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
        assert_eq!(percent_decode("%é"), "%é");
        assert_eq!(percent_decode("%+a"), "% a");
    }
}
