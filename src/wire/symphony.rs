//! Symphony's presence JSON (Pod API 20.17.1): the records its presence endpoints answer
//! ([`V2Presence`]), the bodies they take ([`V2PresenceStatus`], [`V2UserPresence`]), their
//! query strings ([`AllPresenceQuery`], [`SetPresenceQuery`]), the error body ([`ErrorBody`]) and
//! the RSA login's request and answer ([`AuthenticateRequest`], [`Token`]).
//!
//! Names on the wire are Symphony's (camelCase fields, `DO_NOT_DISTURB` categories); the store's
//! user key is Symphony's user id, so no id mapping happens here. Categories in request bodies
//! are read with [`Category::from_str`] (ASCII case ignored), so an unknown one is
//! [`Error::UnknownCategory`] for the caller to answer 400 with, never a panic.

use std::ops::Bound;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Category, Error, PageQuery, Presence, SetMode};

/// One user's presence as Symphony answers it: `{"category", "userId", "timestamp"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct V2Presence {
    /// What others see.
    pub category: Category,
    /// The user's Symphony id.
    pub user_id: u64,
    /// Milliseconds since the Unix epoch when the presence last changed.
    pub timestamp: u64,
}

impl V2Presence {
    /// The presence of a pod user the store has never heard of: `OFFLINE`, and timestamp 0,
    /// since no presence was ever set (the epoch says "never", where "now" would claim a change).
    pub fn never_seen(user_id: u64) -> V2Presence {
        V2Presence {
            category: Category::Offline,
            user_id,
            timestamp: 0,
        }
    }

    /// The records of a page or a feed read, in the same order.
    pub fn list(users: &[(u64, Presence)]) -> Vec<V2Presence> {
        users
            .iter()
            .map(|(id, p)| V2Presence::from((*id, p)))
            .collect()
    }
}

impl From<(u64, &Presence)> for V2Presence {
    fn from((user_id, presence): (u64, &Presence)) -> Self {
        V2Presence {
            category: presence.category,
            user_id,
            timestamp: presence.updated_at,
        }
    }
}

/// The body of `POST /v2/user/presence` (set the caller's own presence): `{"category"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct V2PresenceStatus {
    /// The category's name, as sent.
    pub category: String,
}

impl V2PresenceStatus {
    /// The category asked for; an unknown name is [`Error::UnknownCategory`].
    pub fn category(&self) -> Result<Category, Error> {
        Category::from_str(&self.category)
    }
}

/// The body of `POST /v3/user/presence` (set another user's presence): `{"userId", "category"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct V2UserPresence {
    /// The user to set; the endpoint needs it, the schema leaves it optional.
    #[serde(default)]
    pub user_id: Option<u64>,
    /// The category's name, as sent.
    pub category: String,
}

impl V2UserPresence {
    /// The category asked for; an unknown name is [`Error::UnknownCategory`].
    pub fn category(&self) -> Result<Category, Error> {
        Category::from_str(&self.category)
    }
}

/// The query of `GET /v2/users/presence`: `?lastUserId=&limit=`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllPresenceQuery {
    /// Where the page starts, *inclusive*: "results will skip users with IDs less than this".
    #[serde(default)]
    pub last_user_id: Option<u64>,
    /// Page size; the store's default (1000) when absent. 0 or over the maximum (5000) is
    /// refused by the store with [`Error::InvalidLimit`].
    #[serde(default)]
    pub limit: Option<usize>,
}

impl AllPresenceQuery {
    /// The store's page query: from `lastUserId` included, offline users listed too (Symphony
    /// may list inactive users, and listing them leaves fewer to guess).
    pub fn page_query(&self) -> PageQuery<u64> {
        PageQuery {
            start: self.last_user_id.map_or(Bound::Unbounded, Bound::Included),
            limit: self.limit,
            include_offline: true,
        }
    }
}

/// The query of the set endpoints: `?soft=`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetPresenceQuery {
    /// Whether the user's activity is taken into account; absent means false.
    #[serde(default)]
    pub soft: Option<bool>,
}

impl SetPresenceQuery {
    /// `soft=true` is [`SetMode::Soft`]; false or absent is [`SetMode::Hard`].
    pub fn mode(&self) -> SetMode {
        if self.soft == Some(true) {
            SetMode::Soft
        } else {
            SetMode::Hard
        }
    }
}

/// Symphony's error body: `{"code": 400, "message": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The HTTP status, repeated.
    pub code: u16,
    /// What went wrong.
    pub message: String,
}

/// The body of the RSA logins (`POST /login/pubkey/authenticate`, `/relay/pubkey/authenticate`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticateRequest {
    /// An RS512 JWT whose `sub` is the service account's username.
    pub token: String,
}

/// A login's answer: the header to send the token in, and the token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// `sessionToken` or `keyManagerToken`.
    pub name: String,
    /// The opaque token.
    pub token: String,
}

impl Token {
    /// A session token, which the pod's endpoints take in the `sessionToken` header.
    pub fn session(token: String) -> Token {
        Token {
            name: "sessionToken".into(),
            token,
        }
    }

    /// A key manager token, which the agent's endpoints take in the `keyManagerToken` header.
    pub fn key_manager(token: String) -> Token {
        Token {
            name: "keyManagerToken".into(),
            token,
        }
    }
}

/// `{"id": "..."}`: what creating or deleting a presence feed answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StringId {
    /// The feed's id.
    pub id: String,
}

/// The part of Symphony's `UserV2` that `GET /v2/sessioninfo` answers for a service account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserV2 {
    /// The account's user id.
    pub id: u64,
    /// Its username (the JWT's `sub`).
    pub username: String,
    /// Its display name.
    pub display_name: String,
    /// `SYSTEM` for a service account.
    pub account_type: String,
    /// Its roles, e.g. `USER_PROVISIONING`.
    pub roles: Vec<String>,
}

impl UserV2 {
    /// A service account's session info; each entitlement becomes a role in Symphony's
    /// spelling (`"User Provisioning"` -> `USER_PROVISIONING`).
    pub fn service_account(id: u64, username: &str, entitlements: &[String]) -> UserV2 {
        UserV2 {
            id,
            username: username.into(),
            display_name: username.into(),
            account_type: "SYSTEM".into(),
            roles: entitlements
                .iter()
                .map(|e| e.trim().replace(' ', "_").to_ascii_uppercase())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn presence(category: Category, updated_at: u64) -> Presence {
        Presence {
            category,
            requested: category,
            activity: crate::Activity::Active,
            updated_at,
            version: 1,
            details: crate::PresenceDetails::default(),
        }
    }

    #[test]
    fn presence_is_camel_case_with_symphony_categories() {
        let p = V2Presence::from((68_719_476_737, &presence(Category::DoNotDisturb, 1_533_928)));
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"category": "DO_NOT_DISTURB", "userId": 68_719_476_737u64, "timestamp": 1_533_928})
        );
        let back: V2Presence = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn never_seen_users_are_offline_at_the_epoch() {
        let p = V2Presence::never_seen(7);
        assert_eq!(
            (p.category, p.user_id, p.timestamp),
            (Category::Offline, 7, 0)
        );
    }

    #[test]
    fn list_keeps_order() {
        let users = [
            (3, presence(Category::Busy, 10)),
            (9, presence(Category::Away, 20)),
        ];
        let ids: Vec<u64> = V2Presence::list(&users).iter().map(|p| p.user_id).collect();
        assert_eq!(ids, [3, 9]);
    }

    #[test]
    fn request_categories_parse_or_say_why() {
        let body: V2UserPresence =
            serde_json::from_value(json!({"userId": 5, "category": "in_a_meeting"})).unwrap();
        assert_eq!(body.user_id, Some(5));
        assert_eq!(body.category(), Ok(Category::InAMeeting));
        let body: V2PresenceStatus = serde_json::from_value(json!({"category": "LUNCH"})).unwrap();
        assert!(matches!(
            body.category(),
            Err(Error::UnknownCategory { .. })
        ));
        let body: V2UserPresence = serde_json::from_value(json!({"category": "BUSY"})).unwrap();
        assert_eq!(body.user_id, None);
        assert!(serde_json::from_value::<V2PresenceStatus>(json!({})).is_err());
    }

    #[test]
    fn last_user_id_is_an_inclusive_start() {
        let q: AllPresenceQuery =
            serde_json::from_value(json!({"lastUserId": 42, "limit": 10})).unwrap();
        let page = q.page_query();
        assert_eq!(page.start, Bound::Included(42));
        assert_eq!(page.limit, Some(10));
        assert!(page.include_offline);
        assert_eq!(
            AllPresenceQuery::default().page_query().start,
            Bound::Unbounded
        );
    }

    #[test]
    fn only_soft_true_is_soft() {
        let mode = |soft| SetPresenceQuery { soft }.mode();
        assert_eq!(mode(Some(true)), SetMode::Soft);
        assert_eq!(mode(Some(false)), SetMode::Hard);
        assert_eq!(mode(None), SetMode::Hard);
    }

    #[test]
    fn tokens_errors_and_session_info_have_symphony_shapes() {
        assert_eq!(
            serde_json::to_value(Token::session("t".into())).unwrap(),
            json!({"name": "sessionToken", "token": "t"})
        );
        assert_eq!(Token::key_manager("k".into()).name, "keyManagerToken");
        let error = ErrorBody {
            code: 404,
            message: "no such user".into(),
        };
        assert_eq!(
            serde_json::to_value(error).unwrap(),
            json!({"code": 404, "message": "no such user"})
        );
        let info = UserV2::service_account(1, "bot", &["User Provisioning".into()]);
        assert_eq!(
            serde_json::to_value(info).unwrap(),
            json!({"id": 1, "username": "bot", "displayName": "bot",
                   "accountType": "SYSTEM", "roles": ["USER_PROVISIONING"]})
        );
    }
}
