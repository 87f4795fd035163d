//! The server starts, and what no dialect handles gets the server's own error body.

mod server;

#[tokio::test]
async fn unknown_paths_get_an_error_body_of_their_dialect() {
    let s = server::start(10).await;
    let r = s.client.get(s.url("/nowhere")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], 404);
}
