//! Big answers: the Rocket.Chat full list and Symphony pages over 1,000 rows are streamed or
//! shared, and still say exactly what the store holds; a change is seen by the next request;
//! gzip and brotli come when asked for, and decode to the same JSON.

mod server;

use std::io::Read;

use presence_store::{Activity, Category, PageQuery, SetMode};
use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING};
use serde_json::Value;
use server::{TestServer, DEMO_ROCKETCHAT_TOKEN, DEMO_SYMPHONY_TOKEN};

const USERS: usize = 3000;

async fn started() -> TestServer {
    let s = server::start(USERS).await;
    for (n, user) in s.app.directory.users().iter().enumerate() {
        if n % 3 != 0 {
            s.app
                .store
                .heartbeat(&user.id, 1, Activity::Active)
                .unwrap();
        }
    }
    s
}

fn full_list(s: &TestServer) -> reqwest::RequestBuilder {
    s.client
        .get(s.url("/api/v1/users.presence"))
        .header("X-Auth-Token", DEMO_ROCKETCHAT_TOKEN)
        .header("X-User-Id", s.app.directory.users()[0].rc_id.clone())
}

fn symphony_page(s: &TestServer, query: &str) -> reqwest::RequestBuilder {
    s.client
        .get(s.url(&format!("/pod/v2/users/presence{query}")))
        .header("sessionToken", DEMO_SYMPHONY_TOKEN)
}

async fn json(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The full list the store holds: every directory user not offline, by Symphony id.
fn expected_full_list(s: &TestServer) -> Vec<(String, String)> {
    let mut users = Vec::new();
    let mut start = std::ops::Bound::Unbounded;
    loop {
        let query = PageQuery {
            start,
            limit: Some(5000),
            include_offline: false,
        };
        let page = s.app.store.page(&query).unwrap();
        for (id, presence) in &page.items {
            let user = s.app.directory.get(*id).unwrap();
            let status = match presence.category {
                Category::Available => "online",
                _ => "other",
            };
            users.push((user.rc_id.clone(), status.to_string()));
        }
        match page.next {
            Some(next) => start = std::ops::Bound::Included(next),
            None => return users,
        }
    }
}

fn listed(body: &Value) -> Vec<(String, String)> {
    assert_eq!(body["full"], true);
    assert_eq!(body["success"], true);
    body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let status = match u["status"].as_str().unwrap() {
                "online" => "online",
                _ => "other",
            };
            (u["_id"].as_str().unwrap().to_string(), status.to_string())
        })
        .collect()
}

#[tokio::test]
async fn the_full_list_is_the_store_and_the_next_request_sees_a_change() {
    let s = started().await;
    let first = json(full_list(&s)).await;
    assert_eq!(listed(&first), expected_full_list(&s));
    assert_eq!(listed(&first).len(), USERS - USERS.div_ceil(3));
    // Nothing changed: the same answer (the shared one).
    assert_eq!(json(full_list(&s)).await, first);

    let quiet = s.app.directory.users()[0].id;
    s.app.store.heartbeat(&quiet, 1, Activity::Active).unwrap();
    let busy = s.app.directory.users()[1].id;
    s.app
        .store
        .set(&busy, Category::Busy, SetMode::Hard)
        .unwrap();
    let after = json(full_list(&s)).await;
    assert_ne!(after, first);
    assert_eq!(listed(&after), expected_full_list(&s));
    assert_eq!(json(full_list(&s)).await, after);
}

#[tokio::test]
async fn many_concurrent_full_lists_all_answer_the_store() {
    let s = started().await;
    let expected = expected_full_list(&s);
    let requests: Vec<_> = (0..16).map(|_| json(full_list(&s))).collect();
    for body in futures_util::future::join_all(requests).await {
        assert_eq!(listed(&body), expected);
    }
}

#[tokio::test]
async fn a_page_over_a_chunk_is_exactly_the_stores_page() {
    let s = started().await;
    let second = s.app.directory.users()[1000].id;
    for query in [
        "?limit=5000".to_string(),
        format!("?limit=2500&lastUserId={second}"),
        "?limit=1001".to_string(),
        "?limit=1000".to_string(),
    ] {
        let body = json(symphony_page(&s, &query)).await;
        let ids: Vec<u64> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["userId"].as_u64().unwrap())
            .collect();
        let limit: usize = query[7..].split('&').next().unwrap().parse().unwrap();
        let start = if query.contains("lastUserId") {
            std::ops::Bound::Included(second)
        } else {
            std::ops::Bound::Unbounded
        };
        let page = s
            .app
            .store
            .page(&PageQuery {
                start,
                limit: Some(limit),
                include_offline: true,
            })
            .unwrap();
        let expected: Vec<u64> = page.items.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, expected, "{query}");
        assert_eq!(body[0]["category"], page.items[0].1.category.as_str());
    }
    let refused = symphony_page(&s, "?limit=5001").send().await.unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("5001"));
}

#[tokio::test]
async fn big_answers_are_compressed_when_asked_and_decode_to_the_same_json() {
    let s = started().await;
    let plain = json(full_list(&s)).await;
    for encoding in ["gzip", "br"] {
        let response = full_list(&s)
            .header(ACCEPT_ENCODING, encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[CONTENT_ENCODING], encoding);
        let bytes = response.bytes().await.unwrap();
        let mut decoded = Vec::new();
        match encoding {
            "gzip" => flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut decoded)
                .unwrap(),
            _ => brotli::Decompressor::new(&bytes[..], 4096)
                .read_to_end(&mut decoded)
                .unwrap(),
        };
        assert!(
            bytes.len() * 2 < decoded.len(),
            "{encoding} compresses: {} of {}",
            bytes.len(),
            decoded.len()
        );
        assert_eq!(serde_json::from_slice::<Value>(&decoded).unwrap(), plain);
    }
    // A small answer and the WebSocket routes are left alone.
    let one = s
        .client
        .get(s.url("/pod/v2/user/presence"))
        .header("sessionToken", DEMO_SYMPHONY_TOKEN)
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    assert!(one.headers().get(CONTENT_ENCODING).is_none());
}

#[tokio::test]
async fn healthz_answers_ok() {
    let s = server::start(1).await;
    let response = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}
