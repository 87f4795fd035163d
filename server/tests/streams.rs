//! WebSocket streams at scale: a few hundred streams on a runtime with far fewer blocking
//! threads each receive every change (a thread per stream could not), the caps per account and
//! in total refuse the next stream with a message that says which, and a closed stream gives
//! its place and its subscription back.

mod server;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use presence_store::{Category, SetMode};
use serde_json::Value;
use server::app::streams::StreamLimits;
use server::{
    connect_stream, next_message, stream_request, Socket, TestServer, DEMO_GATEWAY_TOKEN,
    DEMO_ROCKETCHAT_TOKEN,
};
use tokio_tungstenite::tungstenite::Message;

async fn connect(s: &TestServer, token: &str) -> Socket {
    connect_stream(s, token, "").await
}

async fn next(socket: &mut Socket) -> Value {
    next_message(socket).await
}

#[test]
fn hundreds_of_streams_on_few_threads_each_receive_every_change() {
    const STREAMS: usize = 300;
    const CHANGES: usize = 20;
    // Two workers and eight blocking threads: a stream that held a thread could not be served.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let s = server::start(50).await;
        let mut sockets = Vec::with_capacity(STREAMS);
        for _ in 0..STREAMS {
            let mut socket = connect(&s, DEMO_GATEWAY_TOKEN).await;
            assert_eq!(next(&mut socket).await["type"], "hello");
            sockets.push(socket);
        }
        assert_eq!(s.app.store.subscriber_stats().live, STREAMS);
        assert_eq!(s.app.streams.open(), STREAMS);
        let users: Vec<u64> = s.app.directory.users().iter().map(|u| u.id).collect();
        let mut expected = Vec::new();
        for i in 0..CHANGES {
            let user = users[i % users.len()];
            let category = [Category::Busy, Category::Away][i / users.len() % 2];
            s.app.store.set(&user, category, SetMode::Hard).unwrap();
            expected.push((user, category.as_str()));
        }
        let readers = sockets.into_iter().map(|mut socket| {
            tokio::spawn(async move {
                let mut seen = Vec::with_capacity(CHANGES);
                while seen.len() < CHANGES {
                    let change = next(&mut socket).await;
                    assert_eq!(change["type"], "change");
                    let category = change["category"].as_str().unwrap().to_string();
                    seen.push((change["userId"].as_u64().unwrap(), category));
                }
                socket.close(None).await.unwrap();
                seen
            })
        });
        let readers: Vec<_> = readers.collect();
        for reader in readers {
            let seen = reader.await.unwrap();
            let seen: Vec<(u64, &str)> = seen.iter().map(|(u, c)| (*u, c.as_str())).collect();
            assert_eq!(seen, expected);
        }
    });
}

#[tokio::test]
async fn streams_past_a_cap_are_refused_and_closed_ones_give_their_place_back() {
    let options = server::app::Options {
        demo_users: 10,
        simulate: false,
        streams: StreamLimits {
            total: 3,
            per_account: 2,
        },
        ..server::app::Options::default()
    };
    let s = server::start_with(options).await;
    let mut first = connect(&s, DEMO_GATEWAY_TOKEN).await;
    let _second = connect(&s, DEMO_GATEWAY_TOKEN).await;

    let refused = |status: u16, phrase: &'static str, token: &'static str| {
        let s = &s;
        async move {
            let error = tokio_tungstenite::connect_async(stream_request(s, token, ""))
                .await
                .unwrap_err();
            let tokio_tungstenite::tungstenite::Error::Http(response) = error else {
                panic!("expected an HTTP refusal, got {error}");
            };
            assert_eq!(response.status(), status);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["status"], status);
            let message = body["message"].as_str().unwrap();
            assert!(message.contains(phrase), "{message}");
        }
    };
    refused(
        429,
        "this account already has 2 open streams",
        DEMO_GATEWAY_TOKEN,
    )
    .await;
    let _third = connect(&s, DEMO_ROCKETCHAT_TOKEN).await;
    refused(
        503,
        "the server already holds 3 open streams",
        DEMO_ROCKETCHAT_TOKEN,
    )
    .await;
    assert_eq!(s.app.streams.open(), 3);

    // Closing a stream frees its place and unsubscribes it.
    assert_eq!(next(&mut first).await["type"], "hello");
    first.send(Message::Close(None)).await.unwrap();
    while first.next().await.is_some() {}
    let mut again = None;
    for _ in 0..1000 {
        if s.app.streams.open() < 3 {
            again = Some(connect(&s, DEMO_GATEWAY_TOKEN).await);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut again = again.expect("the closed stream's place comes back");
    assert_eq!(next(&mut again).await["type"], "hello");
    assert_eq!(s.app.store.subscriber_stats().live, 3);
}
