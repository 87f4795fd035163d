//! `GET /openapi.json`: the document is OpenAPI 3.1 and whole (every `$ref` resolves, every
//! path parameter is declared, every operation has responses and security), it lists every
//! endpoint the issue names, and it matches the live router: every documented operation is
//! served, and a documented path answers no method the document leaves out.

mod server;

use reqwest::Method;
use serde_json::Value;

/// The methods an OpenAPI path item may hold that this server could serve.
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// What the server must serve, from the issue: (method, path as the document writes it).
const EXPECTED: &[(&str, &str)] = &[
    // Symphony
    ("get", "/pod/v2/users/presence"),
    ("get", "/pod/v2/user/presence"),
    ("post", "/pod/v2/user/presence"),
    ("get", "/pod/v3/user/{uid}/presence"),
    ("post", "/pod/v3/user/presence"),
    ("post", "/pod/v1/presence/feed/create"),
    ("get", "/pod/v1/presence/feed/{id}/read"),
    ("post", "/pod/v1/presence/feed/{id}/delete"),
    ("post", "/login/pubkey/authenticate"),
    ("post", "/relay/pubkey/authenticate"),
    // Rocket.Chat
    ("get", "/api/v1/users.presence"),
    ("post", "/api/v1/login"),
    ("get", "/api/v1/users.getPresence"),
    ("post", "/api/v1/users.setStatus"),
    // Genesys
    ("get", "/api/v2/presence/definitions"),
    ("post", "/api/v2/presence/definitions"),
    ("get", "/api/v2/presence/definitions/{definitionId}"),
    ("put", "/api/v2/presence/definitions/{definitionId}"),
    ("delete", "/api/v2/presence/definitions/{definitionId}"),
    ("get", "/api/v2/presencedefinitions"),
    ("post", "/api/v2/presencedefinitions"),
    ("get", "/api/v2/presencedefinitions/{presenceId}"),
    ("put", "/api/v2/presencedefinitions/{presenceId}"),
    ("delete", "/api/v2/presencedefinitions/{presenceId}"),
    ("get", "/api/v2/systempresences"),
    ("get", "/api/v2/presence/sources"),
    ("post", "/api/v2/presence/sources"),
    ("get", "/api/v2/presence/sources/{sourceId}"),
    ("put", "/api/v2/presence/sources/{sourceId}"),
    ("delete", "/api/v2/presence/sources/{sourceId}"),
    ("get", "/api/v2/presence/users/{userId}/primarysource"),
    ("put", "/api/v2/presence/users/{userId}/primarysource"),
    ("get", "/api/v2/users/{userId}/presences/{sourceId}"),
    ("patch", "/api/v2/users/{userId}/presences/{sourceId}"),
    ("get", "/api/v2/users/{userId}/presences/purecloud"),
    ("patch", "/api/v2/users/{userId}/presences/purecloud"),
    ("get", "/api/v2/users/presences/{sourceId}/bulk"),
    ("get", "/api/v2/users/presences/purecloud/bulk"),
    ("put", "/api/v2/users/presences/bulk"),
    ("get", "/api/v2/presence/settings"),
    ("put", "/api/v2/presence/settings"),
    ("post", "/oauth/token"),
    // The server's own
    (
        "post",
        "/devices/v1/users/{userId}/sessions/{sessionId}/heartbeat",
    ),
    ("delete", "/devices/v1/users/{userId}/sessions/{sessionId}"),
    ("get", "/devices/v1/stream"),
    ("get", "/openapi.json"),
];

async fn document(s: &server::TestServer) -> Value {
    let r = s.client.get(s.url("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().await.unwrap()
}

/// Every (path, method, operation) of the document.
fn operations(doc: &Value) -> Vec<(String, &'static str, &Value)> {
    let paths = doc["paths"].as_object().unwrap();
    let mut out = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((path.clone(), method, op));
            }
        }
    }
    out
}

/// `path` with each `{param}` replaced by a value of the parameter's type.
fn concrete(path: &str, op: &Value) -> String {
    let mut out = path.to_string();
    for p in op["parameters"].as_array().into_iter().flatten() {
        if p["in"] == "path" {
            let name = p["name"].as_str().unwrap();
            let value = if p["schema"]["type"] == "integer" {
                "1"
            } else {
                "x"
            };
            out = out.replace(&format!("{{{name}}}"), value);
        }
    }
    out
}

fn path_templates(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_whole() {
    let s = server::start(5).await;
    let doc = document(&s).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 100);
    for r in all {
        let pointer = r.strip_prefix('#').expect("a local $ref");
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }

    let schemes = &doc["components"]["securitySchemes"];
    let header_key = |name: &str| {
        schemes
            .as_object()
            .unwrap()
            .values()
            .any(|s| s["type"] == "apiKey" && s["in"] == "header" && s["name"] == name)
    };
    assert!(header_key("sessionToken"));
    assert!(header_key("X-Auth-Token"));
    assert!(header_key("X-User-Id"));
    assert!(schemes
        .as_object()
        .unwrap()
        .values()
        .any(|s| s["type"] == "http" && s["scheme"] == "bearer"));

    for (path, method, op) in operations(&doc) {
        let here = format!("{method} {path}");
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{here}"
        );
        let security = op["security"].as_array().expect(&here);
        for requirement in security {
            for scheme in requirement.as_object().unwrap().keys() {
                assert!(schemes.get(scheme).is_some(), "{here}: {scheme}");
            }
        }
        let declared: Vec<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        let mut templated = path_templates(&path);
        templated.sort_unstable();
        let mut declared = declared;
        declared.sort_unstable();
        assert_eq!(declared, templated, "{here}: path parameters");
        assert!(op["operationId"].is_string(), "{here}");
    }
    let ids: std::collections::HashSet<_> = operations(&doc)
        .iter()
        .map(|(_, _, op)| op["operationId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), operations(&doc).len(), "operationIds are unique");
}

#[tokio::test]
async fn the_document_lists_every_endpoint_of_the_issue() {
    let s = server::start(5).await;
    let doc = document(&s).await;
    for (method, path) in EXPECTED {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let s = server::start(5).await;
    let doc = document(&s).await;
    for (path, method, op) in operations(&doc) {
        let url = s.url(&concrete(&path, op));
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        // No credentials: a served route answers 401 (or 400, 415 for a login without a body,
        // 200 for this document); only an unserved one answers 404 or 405.
        let r = s.client.request(method.clone(), &url).send().await.unwrap();
        assert!(
            ![404, 405].contains(&r.status().as_u16()),
            "{method} {path} ({url}) answered {}",
            r.status()
        );
    }
}

#[tokio::test]
async fn documented_paths_serve_no_undocumented_method() {
    let s = server::start(5).await;
    let doc = document(&s).await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let some_op = METHODS.iter().find_map(|m| item.get(*m)).unwrap();
        let url = s.url(&concrete(path, some_op));
        for method in METHODS.iter().filter(|m| item.get(**m).is_none()) {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = s.client.request(m, &url).send().await.unwrap();
            assert_eq!(
                r.status(),
                405,
                "{method} {path} is served but not documented"
            );
        }
    }
}

#[tokio::test]
async fn every_route_of_the_authorization_table_is_documented() {
    let s = server::start(3).await;
    let doc = document(&s).await;
    for route in presence_server::authz::ROUTES {
        let method = route.method.to_ascii_lowercase();
        let documented = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .any(|(p, item)| same_template(p, route.path) && item.get(&method).is_some());
        assert!(
            documented,
            "{} {} is not in openapi.json",
            route.method, route.path
        );
    }
}

/// Whether two path templates are the same but for their placeholders' names.
fn same_template(a: &str, b: &str) -> bool {
    let shape = |p: &str| -> Vec<String> {
        p.split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "{}".to_owned()
                } else {
                    seg.to_owned()
                }
            })
            .collect()
    };
    shape(a) == shape(b)
}
