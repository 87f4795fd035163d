//! The seeds of the `router` target (`corpus/router/seed-*`): every route with what it takes to
//! succeed, and the ways each dialect refuses (no or wrong credentials, another method, unknown
//! paths and ids, bodies of the wrong type, too large or malformed, bad query values), alone
//! and in short sequences (create then use, log out then call).
//!
//! `router_seeds_read_back` checks that each seed reads back as the requests it was written
//! from (the encoder in `src/router.rs` mirrors `derive(Arbitrary)`). The seeds are committed;
//! `cargo test --test router_seeds -- --ignored` writes them again.

use std::path::PathBuf;

use presence_store::{Category, SystemPresence};
use presence_store_fuzz::router::{
    decode, encode, BodyChoice, Bytes, ContentType, Creds, Field, Json, Kind, Leaf, MethodChoice,
    Param, PathChoice, QVal, QueryChoice, Ref, Req, Slot, Text, FIELDS, PARAMS, ROUTES,
};

/// The route `method path` (as [`ROUTES`] writes it), with everything else plain: its own
/// method and path, known values in the placeholders, valid credentials, no query, no body.
fn req(method: &str, path: &str) -> Req {
    let route = ROUTES
        .iter()
        .position(|r| r.method == method && r.path == path)
        .unwrap_or_else(|| panic!("no route {method} {path}"));
    Req {
        route: u8::try_from(route).unwrap(),
        method: MethodChoice::Route,
        path: PathChoice::Template,
        slots: [Slot::Known(0), Slot::Known(0)],
        creds: Creds::Valid,
        query: QueryChoice::None,
        content_type: ContentType::Auto,
        body: BodyChoice::Empty,
        upgrade: false,
    }
}

fn text(s: &str) -> Text {
    Text(s.to_owned())
}

fn known(kind: Kind, index: u8) -> Leaf {
    Leaf::Ref(Ref { kind, index })
}

fn field(name: &str) -> Field {
    let i = FIELDS.iter().position(|f| *f == name).unwrap();
    Field::Known(u8::try_from(i).unwrap())
}

fn param(name: &str) -> Param {
    let i = PARAMS.iter().position(|p| *p == name).unwrap();
    Param::Known(u8::try_from(i).unwrap())
}

fn obj(members: Vec<(&str, Json)>) -> Json {
    Json::Object(members.into_iter().map(|(k, v)| (field(k), v)).collect())
}

fn json(members: Vec<(&str, Json)>) -> BodyChoice {
    BodyChoice::Json(obj(members))
}

fn r(kind: Kind, index: u8) -> Json {
    Json::Leaf(known(kind, index))
}

fn s(value: &str) -> Json {
    Json::Leaf(Leaf::Text(text(value)))
}

fn query(pairs: Vec<(&str, QVal)>) -> QueryChoice {
    QueryChoice::Params(pairs.into_iter().map(|(k, v)| (param(k), v)).collect())
}

fn qk(kind: Kind, index: u8) -> QVal {
    QVal::Leaf(known(kind, index))
}

fn qt(value: &str) -> QVal {
    QVal::Leaf(Leaf::Text(text(value)))
}

fn category(c: Category) -> Json {
    let i = Category::ALL.iter().position(|x| *x == c).unwrap();
    r(Kind::Category, u8::try_from(i).unwrap())
}

fn system(p: SystemPresence) -> Json {
    let i = SystemPresence::ALL.iter().position(|x| *x == p).unwrap();
    r(Kind::SystemPresence, u8::try_from(i).unwrap())
}

fn labels(en: &str) -> Json {
    obj(vec![("en_US", s(en))])
}

// Indexes of known values (see `Kind` and the tables in `src/router.rs`).
const PURECLOUD: u8 = 0;
const CALENDAR: u8 = 1; // deactivated
const TEAMS: u8 = 2;
const LUNCH: u8 = 0;
const RETIRED: u8 = 1; // deactivated
const A_SYSTEM_DEFINITION: u8 = 2;
const DEMO_PASSWORD: u8 = 0;
const CLIENT_CREDENTIALS: u8 = 3;
const NOT_A_JWT: u8 = 10;
const EXPIRED_JWT: u8 = 5;
const IN_THE_WINDOW: u8 = 2;

/// Each route with what it takes to succeed.
fn good(method: &str, path: &str) -> Req {
    let plain = req(method, path);
    let with_body = |body| Req {
        body,
        ..req(method, path)
    };
    let with_query = |query| Req {
        query,
        ..req(method, path)
    };
    let definition_body = || {
        json(vec![
            ("languageLabels", labels("Coffee")),
            ("systemPresence", system(SystemPresence::Break)),
        ])
    };
    match (method, path) {
        ("POST", "/login/pubkey/authenticate" | "/relay/pubkey/authenticate") => {
            with_body(json(vec![("token", r(Kind::Jwt, 0))]))
        }
        ("GET", "/pod/v2/users/presence") => with_query(query(vec![
            ("lastUserId", qk(Kind::SymUser, 1)),
            ("limit", QVal::Number(3)),
        ])),
        ("POST", "/pod/v2/user/presence") => Req {
            query: query(vec![("soft", QVal::Flag(0))]),
            body: json(vec![("category", category(Category::Busy))]),
            ..plain
        },
        ("POST", "/pod/v3/user/presence") => with_body(json(vec![
            ("userId", r(Kind::SymUser, 1)),
            ("category", category(Category::Away)),
        ])),
        ("POST", "/api/v1/login") => with_body(json(vec![
            ("user", r(Kind::Username, 0)),
            ("password", r(Kind::Secret, DEMO_PASSWORD)),
        ])),
        ("GET", "/api/v1/users.presence") => with_query(query(vec![
            ("from", qk(Kind::Time, IN_THE_WINDOW)),
            (
                "ids",
                QVal::List(vec![known(Kind::RcUser, 1), known(Kind::RcUser, 2)]),
            ),
        ])),
        ("GET", "/api/v1/users.getPresence") => {
            with_query(query(vec![("userId", qk(Kind::RcUser, 1))]))
        }
        ("POST", "/api/v1/users.setStatus") => with_body(json(vec![
            ("status", r(Kind::RcStatus, 2)),
            ("message", s("heads down")),
        ])),
        ("POST", "/api/v1/settings/{setting}") => {
            with_body(json(vec![("value", Json::Bool(true))]))
        }
        ("POST", "/oauth/token") => with_body(BodyChoice::Form(vec![(
            field("grant_type"),
            qk(Kind::Secret, CLIENT_CREDENTIALS),
        )])),
        ("GET", "/api/v2/presence/definitions") => with_query(query(vec![
            ("deactivated", QVal::Flag(2)),
            ("localeCode", qk(Kind::Locale, 1)),
        ])),
        ("POST", "/api/v2/presence/definitions" | "/api/v2/presencedefinitions") => {
            with_body(definition_body())
        }
        ("GET", "/api/v2/presence/definitions/{definition}") => {
            with_query(query(vec![("localeCode", qk(Kind::Locale, 1))]))
        }
        (
            "PUT",
            "/api/v2/presence/definitions/{definition}"
            | "/api/v2/presencedefinitions/{definition}",
        ) => with_body(json(vec![
            ("languageLabels", labels("Brunch")),
            ("systemPresence", system(SystemPresence::Meal)),
            ("deactivated", Json::Bool(false)),
        ])),
        ("GET", "/api/v2/presencedefinitions") => with_query(query(vec![
            ("pageNumber", QVal::Number(1)),
            ("pageSize", QVal::Number(2)),
            ("deleted", QVal::Flag(8)),
        ])),
        ("GET", "/api/v2/presence/sources") => {
            with_query(query(vec![("deactivated", QVal::Flag(0))]))
        }
        ("POST", "/api/v2/presence/sources") => with_body(json(vec![("name", s("Zoom"))])),
        ("GET" | "PUT" | "DELETE", "/api/v2/presence/sources/{source}") => Req {
            slots: [Slot::Known(TEAMS), Slot::Known(0)],
            body: if method == "PUT" {
                json(vec![
                    ("name", s("Teams 2")),
                    ("deactivated", Json::Bool(false)),
                ])
            } else {
                BodyChoice::Empty
            },
            ..plain
        },
        ("PUT", "/api/v2/presence/users/{user}/primarysource") => {
            with_body(json(vec![("sourceId", r(Kind::Source, TEAMS))]))
        }
        ("PUT", "/api/v2/presence/settings") => with_body(json(vec![
            ("requestingOffQueueEnabled", Json::Bool(true)),
            (
                "defaultPrimaryPresenceRegisteredSourceId",
                r(Kind::Source, TEAMS),
            ),
        ])),
        ("GET", "/api/v2/users/{user}/presences/{source}") => Req {
            slots: [Slot::Known(2), Slot::Known(TEAMS)],
            ..plain
        },
        ("PATCH", "/api/v2/users/{user}/presences/{source}") => Req {
            slots: [Slot::Known(1), Slot::Known(PURECLOUD)],
            body: json(vec![
                (
                    "presenceDefinition",
                    obj(vec![("id", r(Kind::Definition, LUNCH))]),
                ),
                ("message", s("out for lunch")),
                ("primary", Json::Bool(true)),
            ]),
            ..plain
        },
        ("GET", "/api/v2/users/presences/{source}/bulk") => Req {
            slots: [Slot::Known(TEAMS), Slot::Known(0)],
            query: query(vec![(
                "id",
                QVal::List(vec![
                    known(Kind::GenesysUser, 1),
                    known(Kind::GenesysUser, 2),
                ]),
            )]),
            ..plain
        },
        ("GET", "/api/v2/users/presences/bulk") => with_query(query(vec![
            ("id", qk(Kind::GenesysUser, 0)),
            ("id", qk(Kind::GenesysUser, 1)),
        ])),
        ("PUT", "/api/v2/users/presences/bulk") => with_body(BodyChoice::Json(Json::Array(vec![
            obj(vec![
                ("id", r(Kind::GenesysUser, 3)),
                (
                    "presenceDefinition",
                    obj(vec![("id", r(Kind::Definition, LUNCH))]),
                ),
            ]),
            obj(vec![
                ("id", r(Kind::GenesysUser, 4)),
                ("sourceId", r(Kind::Source, TEAMS)),
                (
                    "presenceDefinition",
                    obj(vec![("id", r(Kind::Definition, A_SYSTEM_DEFINITION))]),
                ),
                ("message", s("on a call")),
            ]),
        ]))),
        ("POST", "/devices/v1/users/{userId}/sessions/{sessionId}/heartbeat") => Req {
            slots: [Slot::Known(3), Slot::Known(1)],
            body: json(vec![("activity", r(Kind::Activity, 1))]),
            ..plain
        },
        ("GET", "/devices/v1/stream") => Req {
            query: query(vec![
                (
                    "users",
                    QVal::List(vec![known(Kind::SymUser, 0), known(Kind::SymUser, 1)]),
                ),
                ("capacity", QVal::Number(8)),
            ]),
            upgrade: true,
            ..plain
        },
        _ => plain,
    }
}

/// Every seed: a name and its requests.
fn seeds() -> Vec<(String, Vec<Req>)> {
    let mut seeds: Vec<(String, Vec<Req>)> = ROUTES
        .iter()
        .enumerate()
        .map(|(i, route)| (format!("ok-{i:02}"), vec![good(route.method, route.path)]))
        .collect();
    let mut add = |name: &str, requests: Vec<Req>| seeds.push((name.to_owned(), requests));
    let no_creds = |method, path| Req {
        creds: Creds::None,
        ..good(method, path)
    };
    let other_method = |method, path, i| Req {
        method: MethodChoice::Other(i),
        ..good(method, path)
    };
    let content = |method, path, content_type| Req {
        content_type,
        ..good(method, path)
    };
    let raw_body = |method, path, bytes: &[u8]| Req {
        body: BodyChoice::Raw(Bytes(bytes.to_vec())),
        content_type: ContentType::Json,
        ..good(method, path)
    };

    // Credentials.
    add(
        "no-creds-symphony",
        vec![no_creds("GET", "/pod/v2/sessioninfo")],
    );
    add(
        "no-creds-rocketchat",
        vec![no_creds("GET", "/api/v1/users.presence")],
    );
    add(
        "no-creds-genesys",
        vec![no_creds("GET", "/api/v2/systempresences")],
    );
    add("no-creds-oauth", vec![no_creds("POST", "/oauth/token")]);
    add(
        "no-creds-devices",
        vec![no_creds(
            "POST",
            "/devices/v1/users/{userId}/sessions/{sessionId}/heartbeat",
        )],
    );
    add(
        "plain-bot-page",
        vec![Req {
            creds: Creds::Alt(0),
            ..good("GET", "/pod/v2/users/presence")
        }],
    );
    add(
        "rc-other-user-id",
        vec![Req {
            creds: Creds::Alt(0),
            ..good("POST", "/api/v1/users.setStatus")
        }],
    );
    add(
        "genesys-basic-on-api",
        vec![Req {
            creds: Creds::Alt(1),
            ..good("GET", "/api/v2/presence/settings")
        }],
    );
    add(
        "foreign-token-genesys",
        vec![Req {
            creds: Creds::Foreign(0),
            ..good("GET", "/api/v2/presence/sources")
        }],
    );
    add(
        "garbage-creds-symphony",
        vec![Req {
            creds: Creds::Garbage(text("\u{0}\u{7f}é")),
            ..good("GET", "/pod/v2/user/presence")
        }],
    );
    add(
        "oauth-wrong-secret",
        vec![Req {
            creds: Creds::Alt(0),
            ..good("POST", "/oauth/token")
        }],
    );
    add(
        "oauth-form-client",
        vec![Req {
            creds: Creds::None,
            body: BodyChoice::Form(vec![
                (field("grant_type"), qk(Kind::Secret, CLIENT_CREDENTIALS)),
                (field("client_id"), qk(Kind::Secret, 2)),
                (field("client_secret"), qk(Kind::Secret, 1)),
            ]),
            ..good("POST", "/oauth/token")
        }],
    );
    add(
        "login-expired-jwt",
        vec![Req {
            body: json(vec![("token", r(Kind::Jwt, EXPIRED_JWT))]),
            ..good("POST", "/login/pubkey/authenticate")
        }],
    );
    add(
        "login-not-a-jwt",
        vec![Req {
            body: json(vec![("token", r(Kind::Jwt, NOT_A_JWT))]),
            ..good("POST", "/relay/pubkey/authenticate")
        }],
    );
    add(
        "rc-login-wrong-password",
        vec![Req {
            body: BodyChoice::Form(vec![
                (field("username"), qk(Kind::Username, 0)),
                (field("password"), qt("nope")),
            ]),
            ..good("POST", "/api/v1/login")
        }],
    );

    // Methods and paths.
    add(
        "method-symphony",
        vec![other_method("GET", "/pod/v2/sessioninfo", 1)],
    );
    add(
        "method-rocketchat",
        vec![other_method("GET", "/api/v1/users.presence", 2)],
    );
    add(
        "method-genesys",
        vec![other_method("GET", "/api/v2/systempresences", 3)],
    );
    add(
        "method-oauth",
        vec![other_method("POST", "/oauth/token", 0)],
    );
    add(
        "method-devices",
        vec![other_method(
            "POST",
            "/devices/v1/users/{userId}/sessions/{sessionId}/heartbeat",
            0,
        )],
    );
    add(
        "method-openapi",
        vec![other_method("GET", "/openapi.json", 4)],
    );
    add(
        "head",
        vec![other_method("GET", "/api/v2/presence/sources", 5)],
    );
    add(
        "options",
        vec![other_method("GET", "/pod/v2/sessioninfo", 6)],
    );
    for (i, path) in [
        "/pod/v2/sessioninfo",
        "/api/v1/users.presence",
        "/api/v2/systempresences",
        "/devices/v1/stream",
    ]
    .into_iter()
    .enumerate()
    {
        add(
            &format!("unknown-path-{i}"),
            vec![Req {
                path: PathChoice::UnderPrefix(text("nope/x")),
                ..good("GET", path)
            }],
        );
    }
    add(
        "trailing-slash",
        vec![Req {
            path: PathChoice::TrailingSlash,
            ..good("GET", "/api/v2/presence/definitions")
        }],
    );
    add(
        "suffix",
        vec![Req {
            path: PathChoice::Suffix(text("extra")),
            ..good("GET", "/pod/v3/user/{uid}/presence")
        }],
    );
    add(
        "raw-path",
        vec![Req {
            path: PathChoice::Raw(text("oauth/../pod/%zz%2F")),
            ..good("GET", "/openapi.json")
        }],
    );

    // Ids.
    add(
        "unknown-symphony-user",
        vec![Req {
            slots: [Slot::Number(1), Slot::Known(0)],
            ..good("GET", "/pod/v3/user/{uid}/presence")
        }],
    );
    add(
        "malformed-symphony-user",
        vec![Req {
            slots: [Slot::Raw(text("-1")), Slot::Known(0)],
            ..good("GET", "/pod/v3/user/{uid}/presence")
        }],
    );
    add(
        "unknown-feed",
        vec![Req {
            slots: [Slot::Known(1), Slot::Known(0)],
            ..good("GET", "/pod/v1/presence/feed/{feed}/read")
        }],
    );
    add(
        "malformed-feed",
        vec![Req {
            slots: [Slot::Known(2), Slot::Known(0)],
            ..good("POST", "/pod/v1/presence/feed/{feed}/delete")
        }],
    );
    add(
        "unknown-setting",
        vec![Req {
            slots: [Slot::Known(2), Slot::Known(0)],
            ..good("POST", "/api/v1/settings/{setting}")
        }],
    );
    add(
        "delete-system-definition",
        vec![Req {
            slots: [Slot::Known(A_SYSTEM_DEFINITION), Slot::Known(0)],
            ..good("DELETE", "/api/v2/presence/definitions/{definition}")
        }],
    );
    add(
        "delete-default-source",
        vec![Req {
            slots: [Slot::Known(PURECLOUD), Slot::Known(0)],
            ..good("DELETE", "/api/v2/presence/sources/{source}")
        }],
    );
    add(
        "genesys-user-as-rc-id",
        vec![Req {
            slots: [
                Slot::Ref(Ref {
                    kind: Kind::RcUser,
                    index: 0,
                }),
                Slot::Known(0),
            ],
            ..good("GET", "/api/v2/presence/users/{user}/primarysource")
        }],
    );
    add(
        "patch-retired-definition",
        vec![Req {
            body: json(vec![(
                "presenceDefinition",
                obj(vec![("id", r(Kind::Definition, RETIRED))]),
            )]),
            ..good("PATCH", "/api/v2/users/{user}/presences/{source}")
        }],
    );
    add(
        "patch-deactivated-source",
        vec![Req {
            slots: [Slot::Known(0), Slot::Known(CALENDAR)],
            ..good("PATCH", "/api/v2/users/{user}/presences/{source}")
        }],
    );
    add(
        "patch-nothing",
        vec![Req {
            body: json(vec![]),
            ..good("PATCH", "/api/v2/users/{user}/presences/{source}")
        }],
    );
    add(
        "bulk-put-one-bad",
        vec![Req {
            body: BodyChoice::Json(Json::Array(vec![
                obj(vec![
                    ("id", r(Kind::GenesysUser, 0)),
                    ("message", s("fine")),
                ]),
                obj(vec![("id", s("nobody"))]),
            ])),
            ..good("PUT", "/api/v2/users/presences/bulk")
        }],
    );
    add(
        "bulk-get-51",
        vec![Req {
            query: query(vec![(
                "id",
                QVal::List((0..51).map(|i| known(Kind::GenesysUser, i)).collect()),
            )]),
            ..good("GET", "/api/v2/users/presences/bulk")
        }],
    );
    add(
        "heartbeat-bad-session",
        vec![Req {
            slots: [Slot::Known(0), Slot::Text(text("one"))],
            ..good(
                "POST",
                "/devices/v1/users/{userId}/sessions/{sessionId}/heartbeat",
            )
        }],
    );
    add(
        "heartbeat-offline",
        vec![Req {
            body: json(vec![("activity", r(Kind::Activity, 3))]),
            ..good(
                "POST",
                "/devices/v1/users/{userId}/sessions/{sessionId}/heartbeat",
            )
        }],
    );
    add(
        "disconnect-unknown-user",
        vec![Req {
            slots: [Slot::Known(7), Slot::Known(0)],
            ..good("DELETE", "/devices/v1/users/{userId}/sessions/{sessionId}")
        }],
    );

    // Queries.
    add(
        "rc-from-malformed",
        vec![Req {
            query: query(vec![("from", qk(Kind::Time, 9))]),
            ..good("GET", "/api/v1/users.presence")
        }],
    );
    add(
        "rc-from-twice",
        vec![Req {
            query: query(vec![
                ("from", qk(Kind::Time, 0)),
                ("from", qk(Kind::Time, 2)),
            ]),
            ..good("GET", "/api/v1/users.presence")
        }],
    );
    add(
        "rc-ids-brackets",
        vec![Req {
            query: query(vec![
                ("ids[]", qk(Kind::RcUser, 0)),
                ("ids[]", qk(Kind::RcUser, 2)),
            ]),
            ..good("GET", "/api/v1/users.presence")
        }],
    );
    add(
        "symphony-limit-zero",
        vec![Req {
            query: query(vec![("limit", QVal::Number(0))]),
            ..good("GET", "/pod/v2/users/presence")
        }],
    );
    add(
        "symphony-limit-negative",
        vec![Req {
            query: query(vec![("limit", QVal::Signed(-1)), ("lastUserId", qt("x"))]),
            ..good("GET", "/pod/v2/users/presence")
        }],
    );
    add(
        "symphony-soft-garbage",
        vec![Req {
            query: query(vec![("soft", QVal::Flag(6))]),
            ..good("POST", "/pod/v2/user/presence")
        }],
    );
    add(
        "genesys-page-size",
        vec![Req {
            query: query(vec![
                ("pageSize", QVal::Number(101)),
                ("pageNumber", QVal::Number(0)),
            ]),
            ..good("GET", "/api/v2/presencedefinitions")
        }],
    );
    add(
        "genesys-locale-unknown",
        vec![Req {
            query: query(vec![
                ("localeCode", qk(Kind::Locale, 4)),
                ("deactivated", QVal::Flag(6)),
            ]),
            ..good("GET", "/api/v2/presence/definitions")
        }],
    );
    add(
        "stream-capacity-zero",
        vec![Req {
            query: query(vec![("capacity", QVal::Number(0))]),
            ..good("GET", "/devices/v1/stream")
        }],
    );
    add(
        "stream-unknown-user",
        vec![Req {
            query: query(vec![(
                "users",
                QVal::List(vec![known(Kind::SymUser, 7), Leaf::Text(text("x"))]),
            )]),
            upgrade: false,
            ..good("GET", "/devices/v1/stream")
        }],
    );
    add(
        "raw-query",
        vec![Req {
            query: QueryChoice::Raw(text("%zz&&==&ids=%E9&from=+")),
            ..good("GET", "/api/v1/users.presence")
        }],
    );

    // Bodies.
    add(
        "symphony-text-body",
        vec![content("POST", "/pod/v2/user/presence", ContentType::Text)],
    );
    add(
        "rc-garbage-content-type",
        vec![content(
            "POST",
            "/api/v1/users.setStatus",
            ContentType::Garbage(text("a/b")),
        )],
    );
    add(
        "genesys-form-body",
        vec![content(
            "PUT",
            "/api/v2/presence/settings",
            ContentType::Form,
        )],
    );
    add(
        "heartbeat-no-content-type",
        vec![content(
            "POST",
            "/devices/v1/users/{userId}/sessions/{sessionId}/heartbeat",
            ContentType::None,
        )],
    );
    add(
        "symphony-truncated-json",
        vec![raw_body("POST", "/pod/v3/user/presence", b"{\"category\":")],
    );
    add(
        "genesys-wrong-type-json",
        vec![raw_body(
            "POST",
            "/api/v2/presence/sources",
            b"{\"name\":[1,2]}",
        )],
    );
    add(
        "rc-not-json",
        vec![raw_body("POST", "/api/v1/login", b"\xff\xfe")],
    );
    add(
        "huge-genesys",
        vec![Req {
            body: BodyChoice::Huge(1),
            ..good("POST", "/api/v2/presence/definitions")
        }],
    );
    add(
        "huge-rocketchat",
        vec![Req {
            body: BodyChoice::Huge(0),
            ..good("POST", "/api/v1/users.setStatus")
        }],
    );
    add(
        "huge-oauth",
        vec![Req {
            body: BodyChoice::Huge(2),
            content_type: ContentType::Form,
            ..good("POST", "/oauth/token")
        }],
    );
    add(
        "huge-heartbeat",
        vec![Req {
            body: BodyChoice::Huge(3),
            ..good(
                "POST",
                "/devices/v1/users/{userId}/sessions/{sessionId}/heartbeat",
            )
        }],
    );
    add(
        "rc-message-too-long",
        vec![Req {
            body: json(vec![
                ("status", r(Kind::RcStatus, 1)),
                ("message", Json::Leaf(Leaf::Long(65, false))),
            ]),
            ..good("POST", "/api/v1/users.setStatus")
        }],
    );
    add(
        "genesys-message-wide",
        vec![Req {
            body: json(vec![("message", Json::Leaf(Leaf::Long(40, true)))]),
            ..good("PATCH", "/api/v2/users/{user}/presences/{source}")
        }],
    );
    add(
        "symphony-unknown-category",
        vec![Req {
            body: json(vec![("category", s("SLEEPING"))]),
            ..good("POST", "/pod/v2/user/presence")
        }],
    );
    add(
        "symphony-user-id-text",
        vec![Req {
            body: json(vec![
                (
                    "userId",
                    Json::Leaf(Leaf::RefText(Ref {
                        kind: Kind::SymUser,
                        index: 1,
                    })),
                ),
                ("category", category(Category::Busy)),
            ]),
            ..good("POST", "/pod/v3/user/presence")
        }],
    );
    add(
        "definition-no-labels",
        vec![Req {
            body: json(vec![("systemPresence", s("Nope"))]),
            ..good("POST", "/api/v2/presencedefinitions")
        }],
    );
    add(
        "rc-setting-not-bool",
        vec![Req {
            body: json(vec![("value", s("true"))]),
            ..good("POST", "/api/v1/settings/{setting}")
        }],
    );
    add(
        "duplicate-keys",
        vec![Req {
            body: json(vec![
                ("category", category(Category::Busy)),
                ("category", category(Category::Away)),
            ]),
            ..good("POST", "/pod/v2/user/presence")
        }],
    );

    // Sequences.
    add(
        "feed-create-read-delete",
        vec![
            good("POST", "/pod/v1/presence/feed/create"),
            good("POST", "/pod/v2/user/presence"),
            Req {
                slots: [Slot::Known(1), Slot::Known(0)],
                ..good("GET", "/pod/v1/presence/feed/{feed}/read")
            },
            Req {
                slots: [Slot::Known(1), Slot::Known(0)],
                ..good("POST", "/pod/v1/presence/feed/{feed}/delete")
            },
        ],
    );
    add(
        "rc-logout-then-call",
        vec![
            good("POST", "/api/v1/logout"),
            good("GET", "/api/v1/users.presence"),
        ],
    );
    add(
        "symphony-logout-then-call",
        vec![
            good("POST", "/sessionauth/v1/logout"),
            good("GET", "/pod/v2/users/presence"),
        ],
    );
    add(
        "genesys-logout-then-call",
        vec![
            good("DELETE", "/api/v2/tokens/me"),
            good("GET", "/api/v2/systempresences"),
        ],
    );
    add(
        "rc-login-then-call",
        vec![
            good("POST", "/api/v1/login"),
            Req {
                creds: Creds::Foreign(4),
                ..good("GET", "/api/v1/users.getPresence")
            },
        ],
    );
    add(
        "oauth-then-call",
        vec![
            good("POST", "/oauth/token"),
            Req {
                creds: Creds::Foreign(4),
                ..good("GET", "/api/v2/systempresences")
            },
        ],
    );
    add(
        "symphony-login-then-call",
        vec![
            good("POST", "/login/pubkey/authenticate"),
            Req {
                creds: Creds::Foreign(4),
                ..good("GET", "/pod/v2/sessioninfo")
            },
        ],
    );
    add(
        "definition-create-then-use",
        vec![
            good("POST", "/api/v2/presence/definitions"),
            Req {
                body: json(vec![(
                    "presenceDefinition",
                    obj(vec![("id", r(Kind::Definition, 0))]),
                )]),
                ..good("PATCH", "/api/v2/users/{user}/presences/{source}")
            },
            Req {
                slots: [Slot::Known(0), Slot::Known(0)],
                ..good("DELETE", "/api/v2/presencedefinitions/{definition}")
            },
        ],
    );
    add(
        "source-delete-then-primary",
        vec![
            good("DELETE", "/api/v2/presence/sources/{source}"),
            Req {
                slots: [Slot::Known(2), Slot::Known(0)],
                ..good("GET", "/api/v2/presence/users/{user}/primarysource")
            },
        ],
    );
    add(
        "broadcast-off-then-presence",
        vec![
            good("POST", "/api/v1/settings/{setting}"),
            good("GET", "/api/v1/users.presence"),
            good("GET", "/api/v1/settings/{setting}"),
        ],
    );
    add(
        "heartbeat-disconnect-stream",
        vec![
            good(
                "POST",
                "/devices/v1/users/{userId}/sessions/{sessionId}/heartbeat",
            ),
            Req {
                slots: [Slot::Known(3), Slot::Known(1)],
                ..good("DELETE", "/devices/v1/users/{userId}/sessions/{sessionId}")
            },
            Req {
                upgrade: false,
                ..good("GET", "/devices/v1/stream")
            },
        ],
    );
    seeds
}

fn dir() -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "corpus", "router"]
        .iter()
        .collect()
}

#[test]
fn router_seeds_read_back() {
    for (name, requests) in seeds() {
        let data = encode(&requests);
        assert_eq!(
            format!("{:?}", decode(&data)),
            format!("{requests:?}"),
            "seed {name}"
        );
    }
}

#[test]
#[ignore]
fn write_router_seeds() {
    let dir = dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (name, requests) in seeds() {
        std::fs::write(dir.join(format!("seed-{name}")), encode(&requests)).unwrap();
    }
}
