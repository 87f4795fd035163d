//! The Genesys Cloud dialect over HTTP: OAuth, every `PresenceApi` route, and every error path
//! with Genesys' error body, the store unchanged after each error.

mod server;

use presence_store::{Category, SetMode, SourceId};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use server::{TestServer, DEMO_GENESYS_TOKEN, DEMO_ROCKETCHAT_TOKEN, DEMO_SYMPHONY_TOKEN};

/// Sends `method path` with the demo bearer token and an optional JSON body.
async fn call(
    s: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = s
        .client
        .request(method, s.url(path))
        .bearer_auth(DEMO_GENESYS_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn get(s: &TestServer, path: &str) -> (StatusCode, Value) {
    call(s, Method::GET, path, None).await
}

/// Asserts `body` is Genesys' error body with `status` (and `code`, when given).
fn assert_error(status: StatusCode, body: &Value, expected: u16, code: Option<&str>) {
    assert_eq!(status.as_u16(), expected, "{body}");
    for key in [
        "message",
        "code",
        "status",
        "messageParams",
        "contextId",
        "details",
        "errors",
    ] {
        assert!(body.get(key).is_some(), "{key} missing from {body}");
    }
    assert_eq!(body["status"], expected);
    if let Some(code) = code {
        assert_eq!(body["code"], code, "{body}");
    }
}

/// Everything an error must leave as it was: users, the log position, definitions, sources.
fn state(s: &TestServer) -> String {
    let store = &s.app.store;
    format!(
        "{} {} {:?} {:?}",
        store.len(),
        store.cursor(),
        store.definitions(),
        store.sources()
    )
}

/// The Genesys id of the `n`th demo user.
fn gid(s: &TestServer, n: usize) -> String {
    s.app.directory.users()[n].genesys_id.clone()
}

/// The Symphony id (store key) of the `n`th demo user.
fn sid(s: &TestServer, n: usize) -> u64 {
    s.app.directory.users()[n].id
}

/// Creates an org definition over `system_presence` and returns its id.
async fn create_definition(s: &TestServer, system_presence: &str, label: &str) -> String {
    let body = json!({"languageLabels": {"en_US": label}, "systemPresence": system_presence});
    let (status, def) = call(s, Method::POST, "/api/v2/presence/definitions", Some(body)).await;
    assert_eq!(status, 200, "{def}");
    def["id"].as_str().unwrap().to_owned()
}

/// Creates a source and returns its id.
async fn create_source(s: &TestServer, name: &str) -> String {
    let (status, src) = call(
        s,
        Method::POST,
        "/api/v2/presence/sources",
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(status, 200, "{src}");
    src["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn oauth_issues_bearer_tokens_by_basic_auth_or_form() {
    let s = server::start(5).await;
    let by_basic: Value = s
        .client
        .post(s.url("/oauth/token"))
        .basic_auth("demo-client", Some("demo-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_basic["token_type"], "bearer");
    assert!(by_basic["expires_in"].as_u64().unwrap() > 0);
    let token = by_basic["access_token"].as_str().unwrap();
    let r = s
        .client
        .get(s.url("/api/v2/systempresences"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let by_form = s
        .client
        .post(s.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(by_form.status(), 200);
}

#[tokio::test]
async fn oauth_errors_are_rfc_6749_bodies() {
    let s = server::start(5).await;
    let post = |form: Vec<(&'static str, &'static str)>,
                basic: Option<(&'static str, &'static str)>| {
        let mut r = s.client.post(s.url("/oauth/token")).form(&form);
        if let Some((id, secret)) = basic {
            r = r.basic_auth(id, Some(secret));
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let grant = vec![("grant_type", "client_credentials")];
    let (status, body) = post(grant.clone(), Some(("demo-client", "wrong"))).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(body["error_description"].is_string() && body["description"].is_string());
    let (status, body) = post(grant.clone(), Some(("nobody", "demo-secret"))).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, _) = post(grant, None).await;
    assert_eq!(status, 401);
    let (status, body) = post(
        vec![("grant_type", "password")],
        Some(("demo-client", "demo-secret")),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, body) = post(vec![], Some(("demo-client", "demo-secret"))).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let r = s
        .client
        .post(s.url("/oauth/token"))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
}

#[tokio::test]
async fn api_routes_need_a_genesys_bearer_token() {
    let s = server::start(5).await;
    let paths = [
        "/api/v2/systempresences",
        "/api/v2/presence/definitions",
        "/api/v2/presencedefinitions",
        "/api/v2/presence/sources",
        "/api/v2/presence/settings",
    ];
    for path in paths {
        let r = s.client.get(s.url(path)).send().await.unwrap();
        let status = r.status();
        assert!(r.headers().contains_key("inin-correlation-id"));
        let body: Value = r.json().await.unwrap();
        assert_error(status, &body, 401, Some("authentication.required"));
        for token in ["not-a-token", DEMO_SYMPHONY_TOKEN, DEMO_ROCKETCHAT_TOKEN] {
            let r = s
                .client
                .get(s.url(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = r.status();
            assert_error(
                status,
                &r.json().await.unwrap(),
                401,
                Some("bad.credentials"),
            );
        }
    }
    let before = state(&s);
    let r = s
        .client
        .patch(s.url(&format!("/api/v2/users/{}/presences/purecloud", gid(&s, 0))))
        .json(&json!({"presenceDefinition": {"id": "BUSY"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(state(&s), before);
}

#[tokio::test]
async fn system_presences_are_the_ten() {
    let s = server::start(5).await;
    let (status, body) = get(&s, "/api/v2/systempresences").await;
    assert_eq!(status, 200);
    let list = body.as_array().unwrap();
    assert_eq!(list.len(), 10);
    assert!(list.contains(&json!({"id": "ON_QUEUE", "name": "On Queue",
        "selfUri": "/api/v2/systempresences/ON_QUEUE"})));
}

#[tokio::test]
async fn definitions_are_created_listed_updated_and_deleted() {
    let s = server::start(5).await;
    let (status, list) = get(&s, "/api/v2/presence/definitions").await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 10);
    let system = &list["entities"][0];
    assert_eq!(system["type"], "System");

    let id = create_definition(&s, "OnQueue", "Phones").await;
    let path = format!("/api/v2/presence/definitions/{id}");
    let (status, def) = get(&s, &path).await;
    assert_eq!(status, 200);
    assert_eq!(def["systemPresence"], "OnQueue");
    assert_eq!(def["type"], "User");
    assert_eq!(def["languageLabels"], json!({"en_US": "Phones"}));
    assert_eq!(get(&s, "/api/v2/presence/definitions").await.1["total"], 11);

    let body = json!({"languageLabels": {"en_US": "Phones", "fr": "Téléphones"},
                      "systemPresence": "Busy", "deactivated": true});
    let (status, def) = call(&s, Method::PUT, &path, Some(body)).await;
    assert_eq!(status, 200, "{def}");
    assert_eq!(
        (def["systemPresence"].as_str(), def["deactivated"].as_bool()),
        (Some("Busy"), Some(true))
    );
    let (_, active) = get(&s, "/api/v2/presence/definitions").await;
    assert_eq!(active["total"], 10);
    let (_, retired) = get(&s, "/api/v2/presence/definitions?deactivated=TRUE").await;
    assert_eq!(retired["entities"][0]["id"], id.as_str());
    let (_, fr) = get(&s, &format!("{path}?localeCode=fr")).await;
    assert_eq!(fr["languageLabels"], json!({"fr": "Téléphones"}));
    let (_, all) = get(
        &s,
        "/api/v2/presence/definitions?deactivated=true&localeCode=ALL",
    )
    .await;
    assert_eq!(
        all["entities"][0]["languageLabels"]
            .as_object()
            .unwrap()
            .len(),
        2
    );

    let (status, _) = call(&s, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    // A soft delete: retired, so no longer among the active ones, but still readable.
    let (status, body) = get(&s, &path).await;
    assert_eq!(
        (status.as_u16(), body["deactivated"].as_bool()),
        (200, Some(true))
    );
    let active = get(&s, "/api/v2/presence/definitions").await.1;
    assert!(!active.to_string().contains(body["id"].as_str().unwrap()));
}

#[tokio::test]
async fn definition_errors_change_nothing() {
    let s = server::start(5).await;
    let before = state(&s);
    let (status, body) = get(&s, "/api/v2/presence/definitions/nope").await;
    assert_error(status, &body, 404, Some("not.found"));
    let valid = json!({"languageLabels": {"en_US": "x"}, "systemPresence": "Busy"});
    let (status, body) = call(
        &s,
        Method::PUT,
        "/api/v2/presence/definitions/AVAILABLE",
        Some(valid.clone()),
    )
    .await;
    assert_error(status, &body, 400, None);
    let (status, body) = call(
        &s,
        Method::DELETE,
        "/api/v2/presence/definitions/AVAILABLE",
        None,
    )
    .await;
    assert_error(status, &body, 400, None);
    let (status, body) = call(&s, Method::DELETE, "/api/v2/presencedefinitions/BUSY", None).await;
    assert_error(status, &body, 400, None);
    let (status, body) = call(
        &s,
        Method::PUT,
        "/api/v2/presence/definitions/nope",
        Some(valid),
    )
    .await;
    assert_error(status, &body, 404, None);
    for bad in [
        json!({"systemPresence": "Busy"}),
        json!({"languageLabels": {"en_US": "x"}}),
        json!({"languageLabels": {"en_US": "x"}, "systemPresence": "Lunch"}),
        json!({"languageLabels": {}, "systemPresence": "Busy"}),
        json!({"languageLabels": "x", "systemPresence": "Busy"}),
    ] {
        let (status, body) = call(
            &s,
            Method::POST,
            "/api/v2/presence/definitions",
            Some(bad.clone()),
        )
        .await;
        assert_error(status, &body, 400, None);
    }
    for query in ["deactivated=maybe", "localeCode=xx"] {
        let (status, body) = get(&s, &format!("/api/v2/presence/definitions?{query}")).await;
        assert_error(status, &body, 400, Some("bad.request"));
    }
    assert_eq!(state(&s), before);
}

#[tokio::test]
async fn the_older_definitions_api_pages_and_edits() {
    let s = server::start(5).await;
    let (status, page) = get(&s, "/api/v2/presencedefinitions?pageSize=4&pageNumber=2").await;
    assert_eq!(status, 200);
    assert_eq!(page["entities"].as_array().unwrap().len(), 4);
    assert_eq!(
        (page["pageSize"].as_u64(), page["pageNumber"].as_u64()),
        (Some(4), Some(2))
    );
    assert_eq!(
        (page["total"].as_u64(), page["pageCount"].as_u64()),
        (Some(10), Some(3))
    );
    let (_, first) = get(&s, "/api/v2/presencedefinitions").await;
    assert_eq!(
        (first["pageSize"].as_u64(), first["pageCount"].as_u64()),
        (Some(25), Some(1))
    );
    let on_queue = first["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "ON_QUEUE")
        .unwrap();
    assert_eq!(
        (
            on_queue["systemPresence"].as_str(),
            on_queue["primary"].as_bool()
        ),
        (Some("On Queue"), Some(true))
    );

    let body = json!({"languageLabels": {"en_US": "Lunch"}, "systemPresence": "Meal"});
    let (status, created) = call(&s, Method::POST, "/api/v2/presencedefinitions", Some(body)).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["primary"], false);
    let path = format!(
        "/api/v2/presencedefinitions/{}",
        created["id"].as_str().unwrap()
    );
    assert_eq!(get(&s, &path).await.1["name"], "Lunch");
    let body = json!({"languageLabels": {"en_US": "Lunch"}, "systemPresence": "Meal", "deactivated": true});
    let (status, updated) = call(&s, Method::PUT, &path, Some(body)).await;
    assert_eq!(
        (status.as_u16(), updated["deactivated"].as_bool()),
        (200, Some(true))
    );
    assert_eq!(
        get(&s, "/api/v2/presencedefinitions?deleted=TRUE").await.1["total"],
        1
    );
    assert_eq!(
        get(&s, "/api/v2/presencedefinitions?deleted=ALL").await.1["total"],
        11
    );
    assert_eq!(call(&s, Method::DELETE, &path, None).await.0, 204);
    // Deleting is a soft delete (seed 004's `deleted`): still readable, listed as deleted.
    let (status, body) = get(&s, &path).await;
    assert_eq!(
        (status.as_u16(), body["deactivated"].as_bool()),
        (200, Some(true))
    );
    assert_eq!(
        get(&s, "/api/v2/presencedefinitions?deleted=TRUE").await.1["total"],
        1
    );

    for query in ["pageSize=0", "pageSize=101", "pageNumber=x", "deleted=SOME"] {
        let (status, body) = get(&s, &format!("/api/v2/presencedefinitions?{query}")).await;
        assert_error(status, &body, 400, None);
    }
}

#[tokio::test]
async fn sources_are_created_listed_updated_and_deleted() {
    let s = server::start(5).await;
    let (status, list) = get(&s, "/api/v2/presence/sources").await;
    assert_eq!(status, 200);
    assert_eq!(list["entities"][0]["id"], "PURECLOUD");
    assert_eq!(list["entities"][0]["type"], "System");
    let id = create_source(&s, "Calendar").await;
    let path = format!("/api/v2/presence/sources/{id}");
    let (status, src) = get(&s, &path).await;
    assert_eq!(
        (status.as_u16(), src["name"].as_str(), src["type"].as_str()),
        (200, Some("Calendar"), Some("User"))
    );
    let (status, src) = call(
        &s,
        Method::PUT,
        &path,
        Some(json!({"name": "Outlook", "deactivated": true})),
    )
    .await;
    assert_eq!(
        (status.as_u16(), src["name"].as_str()),
        (200, Some("Outlook"))
    );
    assert_eq!(get(&s, "/api/v2/presence/sources").await.1["total"], 1);
    assert_eq!(
        get(&s, "/api/v2/presence/sources?deactivated=true").await.1["entities"][0]["id"],
        id.as_str()
    );
    assert_eq!(
        get(&s, "/api/v2/presence/sources/purecloud").await.1["id"],
        "PURECLOUD"
    );
    assert_eq!(call(&s, Method::DELETE, &path, None).await.0, 204);
    let (status, body) = get(&s, &path).await;
    assert_error(status, &body, 404, Some("not.found"));
}

#[tokio::test]
async fn source_errors_change_nothing() {
    let s = server::start(5).await;
    let before = state(&s);
    let (status, body) = call(
        &s,
        Method::DELETE,
        "/api/v2/presence/sources/PURECLOUD",
        None,
    )
    .await;
    assert_error(status, &body, 400, None);
    let (status, body) = call(
        &s,
        Method::PUT,
        "/api/v2/presence/sources/PURECLOUD",
        Some(json!({"deactivated": true})),
    )
    .await;
    assert_error(status, &body, 400, None);
    let (status, body) = call(&s, Method::DELETE, "/api/v2/presence/sources/nope", None).await;
    assert_error(status, &body, 404, None);
    let (status, body) = get(&s, "/api/v2/presence/sources/nope").await;
    assert_error(status, &body, 404, None);
    for bad in [json!({}), json!({"name": "  "}), json!({"name": 7})] {
        let (status, body) = call(&s, Method::POST, "/api/v2/presence/sources", Some(bad)).await;
        assert_error(status, &body, 400, None);
    }
    let (status, body) = get(&s, "/api/v2/presence/sources?deactivated=2").await;
    assert_error(status, &body, 400, None);
    assert_eq!(state(&s), before);
}

#[tokio::test]
async fn a_users_primary_source_is_read_and_set() {
    let s = server::start(5).await;
    let path = format!("/api/v2/presence/users/{}/primarysource", gid(&s, 1));
    let (status, primary) = get(&s, &path).await;
    assert_eq!(
        (status.as_u16(), primary["sourceId"].as_str()),
        (200, Some("PURECLOUD"))
    );
    assert_eq!(primary["registered"], true);
    let id = create_source(&s, "Teams").await;

    let before = state(&s);
    let (status, body) = call(&s, Method::PUT, &path, Some(json!({"sourceId": "nope"}))).await;
    assert_error(status, &body, 404, None);
    let (status, body) = call(&s, Method::PUT, &path, Some(json!({}))).await;
    assert_error(status, &body, 400, None);
    let unknown = "/api/v2/presence/users/00000000-0000-4000-8000-000000000000/primarysource";
    let (status, body) = call(&s, Method::PUT, unknown, Some(json!({"sourceId": id}))).await;
    assert_error(status, &body, 404, None);
    assert_error(
        get(&s, unknown).await.0,
        &get(&s, unknown).await.1,
        404,
        None,
    );
    assert_eq!(state(&s), before);

    let (status, set) = call(&s, Method::PUT, &path, Some(json!({"sourceId": id}))).await;
    assert_eq!(
        (status.as_u16(), set["sourceId"].as_str()),
        (200, Some(id.as_str()))
    );
    assert_eq!(get(&s, &path).await.1["sourceId"], id.as_str());
    assert_eq!(
        s.app.store.primary_source(&sid(&s, 1)).unwrap().as_str(),
        id.as_str()
    );
}

#[tokio::test]
async fn presence_settings_are_read_and_changed() {
    let s = server::start(5).await;
    let (status, settings) = get(&s, "/api/v2/presence/settings").await;
    assert_eq!(status, 200);
    assert_eq!(
        settings["defaultPrimaryPresenceRegisteredSourceId"],
        "PURECLOUD"
    );
    assert_eq!(settings["restorePresenceSettings"]["enabled"], false);
    let (status, body) = call(
        &s,
        Method::PUT,
        "/api/v2/presence/settings",
        Some(json!({"defaultPrimaryPresenceRegisteredSourceId": "nope", "requestingOffQueueEnabled": true})),
    )
    .await;
    assert_error(status, &body, 404, None);
    assert_eq!(get(&s, "/api/v2/presence/settings").await.1, settings);
    let change = json!({"requestingOffQueueEnabled": true,
        "restorePresenceSettings": {"enabled": true, "restoreTimeMilliseconds": 60000}});
    let (status, changed) = call(&s, Method::PUT, "/api/v2/presence/settings", Some(change)).await;
    assert_eq!(status, 200);
    assert_eq!(changed["requestingOffQueueEnabled"], true);
    assert_eq!(
        changed["restorePresenceSettings"]["restoreTimeMilliseconds"],
        60000
    );
    assert_eq!(get(&s, "/api/v2/presence/settings").await.1, changed);
}

#[tokio::test]
async fn a_presence_set_by_definition_reads_back_with_the_same_id() {
    let s = server::start(5).await;
    let user = gid(&s, 2);
    let path = format!("/api/v2/users/{user}/presences/purecloud");
    let (status, unseen) = get(&s, &path).await;
    assert_eq!(status, 200);
    assert_eq!(unseen["presenceDefinition"]["id"], "OFFLINE");
    assert_eq!(
        (unseen["source"].as_str(), unseen["primary"].as_bool()),
        (Some("PURECLOUD"), Some(true))
    );

    let lunch = create_definition(&s, "Meal", "Lunch").await;
    let (status, set) = call(
        &s,
        Method::PATCH,
        &path,
        Some(json!({"presenceDefinition": {"id": lunch}, "message": "back at 2"})),
    )
    .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["presenceDefinition"]["id"], lunch.as_str());
    assert_eq!(set["presenceDefinition"]["systemPresence"], "Meal");
    assert_eq!(set["message"], "back at 2");
    assert_eq!(set["modifiedDate"], "2026-11-23T12:00:00.000Z");
    let (_, read) = get(&s, &format!("/api/v2/users/{user}/presences/PURECLOUD")).await;
    assert_eq!(read, set);
    let p = s.app.store.get(&sid(&s, 2)).unwrap();
    assert_eq!(
        (p.category, p.details.definition().unwrap().as_str()),
        (Category::Away, lunch.as_str())
    );

    // A message alone keeps the definition; a definition alone keeps the message.
    let (_, msg) = call(&s, Method::PATCH, &path, Some(json!({"message": "soon"}))).await;
    assert_eq!(
        (
            msg["presenceDefinition"]["id"].as_str(),
            msg["message"].as_str()
        ),
        (Some(lunch.as_str()), Some("soon"))
    );
    let (_, def) = call(
        &s,
        Method::PATCH,
        &path,
        Some(json!({"presenceDefinition": {"id": "ON_QUEUE"}})),
    )
    .await;
    assert_eq!(
        (
            def["presenceDefinition"]["systemPresence"].as_str(),
            def["message"].as_str()
        ),
        (Some("OnQueue"), Some("soon"))
    );
}

#[tokio::test]
async fn a_presence_set_elsewhere_reads_as_its_system_presence() {
    let s = server::start(5).await;
    let key = sid(&s, 3);
    s.app
        .store
        .set(&key, Category::DoNotDisturb, SetMode::Hard)
        .unwrap();
    let path = format!("/api/v2/users/{}/presences/purecloud", gid(&s, 3));
    let (_, p) = get(&s, &path).await;
    assert_eq!(p["presenceDefinition"]["id"], "BUSY");
    assert_eq!(p["presenceDefinition"]["systemPresence"], "Busy");
    s.app
        .store
        .set(&key, Category::BeRightBack, SetMode::Hard)
        .unwrap();
    assert_eq!(get(&s, &path).await.1["presenceDefinition"]["id"], "BREAK");
}

#[tokio::test]
async fn a_custom_source_sets_presence_and_becomes_primary() {
    let s = server::start(5).await;
    let (user, key) = (gid(&s, 4), sid(&s, 4));
    let source = create_source(&s, "Calendar").await;
    let path = format!("/api/v2/users/{user}/presences/{source}");
    let (status, body) = call(&s, Method::PATCH, &path, Some(json!({"message": "hi"}))).await;
    assert_error(status, &body, 400, None);
    let (status, set) = call(
        &s,
        Method::PATCH,
        &path,
        Some(json!({"presenceDefinition": {"id": "MEETING"}, "primary": true})),
    )
    .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(
        (set["sourceId"].as_str(), set["primary"].as_bool()),
        (Some(source.as_str()), Some(true))
    );
    let p = s.app.store.get(&key).unwrap();
    assert_eq!(p.category, Category::InAMeeting);
    assert_eq!(
        p.details.source().cloned(),
        Some(SourceId::new(&source).unwrap())
    );
    let (_, own) = get(&s, &format!("/api/v2/users/{user}/presences/purecloud")).await;
    assert_eq!(own["primary"], false);
    let (_, msg) = call(
        &s,
        Method::PATCH,
        &path,
        Some(json!({"message": "in a meeting"})),
    )
    .await;
    assert_eq!(
        (
            msg["presenceDefinition"]["id"].as_str(),
            msg["message"].as_str()
        ),
        (Some("MEETING"), Some("in a meeting"))
    );

    // A deactivated source takes no presence.
    call(
        &s,
        Method::PUT,
        &format!("/api/v2/presence/sources/{source}"),
        Some(json!({"deactivated": true})),
    )
    .await;
    let before = state(&s);
    let (status, body) = call(
        &s,
        Method::PATCH,
        &path,
        Some(json!({"presenceDefinition": {"id": "BUSY"}})),
    )
    .await;
    assert_error(status, &body, 400, None);
    assert_eq!(state(&s), before);
}

#[tokio::test]
async fn presence_patch_errors_change_nothing() {
    let s = server::start(5).await;
    let user = gid(&s, 0);
    let path = format!("/api/v2/users/{user}/presences/purecloud");
    call(
        &s,
        Method::PATCH,
        &path,
        Some(json!({"presenceDefinition": {"id": "BUSY"}})),
    )
    .await;
    let retired = create_definition(&s, "Away", "Gone").await;
    call(
        &s,
        Method::PUT,
        &format!("/api/v2/presence/definitions/{retired}"),
        Some(json!({"languageLabels": {"en_US": "Gone"}, "systemPresence": "Away", "deactivated": true})),
    )
    .await;
    let before = state(&s);
    let long = "x".repeat(s.app.store.config().max_message_len + 1);
    let cases = [
        (
            "/api/v2/users/nobody/presences/purecloud".to_owned(),
            json!({"message": "x"}),
            404,
        ),
        (
            format!("/api/v2/users/{user}/presences/nope"),
            json!({"message": "x"}),
            404,
        ),
        (
            path.clone(),
            json!({"presenceDefinition": {"id": "nope"}}),
            404,
        ),
        (
            path.clone(),
            json!({"presenceDefinition": {"id": retired}}),
            400,
        ),
        (path.clone(), json!({"message": long}), 400),
        (path.clone(), json!({}), 400),
        (path.clone(), json!({"primary": false}), 400),
        (path.clone(), json!({"message": 5}), 400),
        (path.clone(), json!([1, 2]), 400),
    ];
    for (path, body, expected) in cases {
        let (status, answer) = call(&s, Method::PATCH, &path, Some(body.clone())).await;
        assert_error(status, &answer, expected, None);
        assert_eq!(state(&s), before, "{body}");
    }
    let (status, body) = get(&s, "/api/v2/users/nobody/presences/purecloud").await;
    assert_error(status, &body, 404, Some("not.found"));

    // What axum rejects gets Genesys' body too.
    let raw = |content_type: &'static str, body: String| {
        s.client
            .patch(s.url(&path))
            .bearer_auth(DEMO_GENESYS_TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let r = raw("application/json", "{not json".into()).await.unwrap();
    assert_error(r.status(), &r.json().await.unwrap(), 400, None);
    let r = raw("text/plain", r#"{"message": "x"}"#.into())
        .await
        .unwrap();
    assert_error(r.status(), &r.json().await.unwrap(), 415, None);
    let big = format!(r#"{{"message": "{}"}}"#, "x".repeat(70 * 1024));
    let r = raw("application/json", big).await.unwrap();
    assert_error(r.status(), &r.json().await.unwrap(), 413, None);
    let r = s
        .client
        .delete(s.url(&path))
        .bearer_auth(DEMO_GENESYS_TOKEN)
        .send()
        .await
        .unwrap();
    let allow = r
        .headers()
        .get("allow")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(allow.contains("GET") && allow.contains("PATCH"), "{allow}");
    assert_error(r.status(), &r.json().await.unwrap(), 405, None);
    assert_eq!(state(&s), before);
}

#[tokio::test]
async fn bulk_get_takes_repeated_or_comma_separated_ids() {
    let s = server::start(60).await;
    s.app
        .store
        .set(&sid(&s, 0), Category::Busy, SetMode::Hard)
        .unwrap();
    let (a, b, c) = (gid(&s, 0), gid(&s, 1), gid(&s, 2));
    for path in [
        format!("/api/v2/users/presences/purecloud/bulk?id={a}&id={b},{c}&id=unknown"),
        format!("/api/v2/users/presences/PURECLOUD/bulk?id={a},{b}&id={c}"),
        format!("/api/v2/users/presences/bulk?id={a}&id={b}&id={c}"),
    ] {
        let (status, list) = get(&s, &path).await;
        assert_eq!(status, 200, "{list}");
        let ids: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["userId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [a.as_str(), b.as_str(), c.as_str()]);
        assert_eq!(list[0]["presenceDefinition"]["id"], "BUSY");
        assert_eq!(list[1]["presenceDefinition"]["id"], "OFFLINE");
    }
    let source = create_source(&s, "Phone").await;
    let (status, list) = get(&s, &format!("/api/v2/users/presences/{source}/bulk?id={a}")).await;
    assert_eq!(
        (status.as_u16(), list[0]["sourceId"].as_str()),
        (200, Some(source.as_str()))
    );
    assert_eq!(get(&s, "/api/v2/users/presences/bulk").await.1, json!([]));

    let fifty_one: Vec<String> = (0..51).map(|n| gid(&s, n)).collect();
    let (status, body) = get(
        &s,
        &format!("/api/v2/users/presences/bulk?id={}", fifty_one.join(",")),
    )
    .await;
    assert_error(status, &body, 400, None);
    let query: Vec<String> = fifty_one[..50]
        .iter()
        .map(|id| format!("id={id}"))
        .collect();
    let (status, list) = get(
        &s,
        &format!("/api/v2/users/presences/bulk?{}", query.join("&")),
    )
    .await;
    assert_eq!((status.as_u16(), list.as_array().unwrap().len()), (200, 50));
    let (status, body) = get(&s, &format!("/api/v2/users/presences/nope/bulk?id={a}")).await;
    assert_error(status, &body, 404, None);
}

#[tokio::test]
async fn bulk_put_checks_every_item_before_applying_any() {
    let s = server::start(60).await;
    let (a, b) = (gid(&s, 0), gid(&s, 1));
    let before = state(&s);
    let bad_batches = [
        (
            json!([{"id": a, "presenceDefinition": {"id": "BUSY"}},
                {"id": b, "presenceDefinition": {"id": "nope"}}]),
            404,
        ),
        (
            json!([{"id": a, "presenceDefinition": {"id": "BUSY"}},
                {"id": "nobody", "presenceDefinition": {"id": "BUSY"}}]),
            404,
        ),
        (
            json!([{"id": a, "presenceDefinition": {"id": "BUSY"}},
                {"presenceDefinition": {"id": "BUSY"}}]),
            400,
        ),
        (
            json!([{"id": a, "sourceId": "nope", "presenceDefinition": {"id": "BUSY"}}]),
            404,
        ),
        (
            json!((0..51)
                .map(|n| json!({"id": gid(&s, n), "message": "x"}))
                .collect::<Vec<_>>()),
            400,
        ),
        (json!({"id": a}), 400),
    ];
    for (batch, expected) in bad_batches {
        let (status, body) =
            call(&s, Method::PUT, "/api/v2/users/presences/bulk", Some(batch)).await;
        assert_error(status, &body, expected, None);
        assert_eq!(state(&s), before);
    }
    let batch = json!([
        {"id": a, "source": "PURECLOUD", "presenceDefinition": {"id": "ON_QUEUE"}, "message": "q"},
        {"id": b, "presenceDefinition": {"id": "AWAY"}},
    ]);
    let (status, list) = call(&s, Method::PUT, "/api/v2/users/presences/bulk", Some(batch)).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list[0]["id"], a.as_str());
    assert_eq!(list[0]["presenceDefinition"]["id"], "ON_QUEUE");
    assert_eq!(list[1]["presenceDefinition"]["systemPresence"], "Away");
    assert_eq!(
        s.app.store.get(&sid(&s, 0)).unwrap().category,
        Category::Busy
    );
    assert_eq!(
        s.app.store.get(&sid(&s, 1)).unwrap().category,
        Category::Away
    );
}

#[tokio::test]
async fn wrong_methods_and_unknown_paths_get_genesys_errors() {
    let s = server::start(5).await;
    let r = s
        .client
        .post(s.url("/api/v2/systempresences"))
        .bearer_auth(DEMO_GENESYS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers().get("allow").unwrap(), "GET,HEAD");
    assert_error(
        r.status(),
        &r.json().await.unwrap(),
        405,
        Some("method.not.allowed"),
    );
    let (status, body) = get(&s, "/api/v2/presence/nowhere").await;
    assert_error(status, &body, 404, Some("not.found"));
    let r = s.client.get(s.url("/oauth/token")).send().await.unwrap();
    assert_eq!(r.status(), 405);
}
