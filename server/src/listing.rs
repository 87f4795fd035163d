//! Big answers without big memory: a JSON list written to the socket a chunk at a time as it is
//! serialized, and one shared serialization of an answer that only changes when the store does.
//!
//! A list of 100,000 users is 7 MB of JSON; built whole per request (a `Vec` of rows, then a
//! `String` of it) 64 concurrent requests held nearly half a GiB. [`streamed`] reads the store
//! [`CHUNK_ROWS`] rows at a time and hands each chunk to hyper as soon as it is serialized, so a
//! request holds one chunk. [`SharedAnswer`] makes a whole answer once for every request
//! waiting for it, and keeps it with the store's [`Cursor`] at which it was made: while the
//! cursor has not moved, nothing changed, and every request gets the same bytes (a reference
//! count, no copy).

use std::convert::Infallible;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use presence_store::{Cursor, Page, PageQuery};
use serde::Serialize;

use super::http::own_error;
use super::{App, Store};

/// Rows read from the store and serialized per chunk of a streamed answer.
pub const CHUNK_ROWS: usize = 1000;

/// A `200 application/json` response of `head`, the rows of every batch `rows` yields (as a
/// JSON array's elements), then `tail`, written a batch at a time.
pub fn streamed<T, I>(head: &'static str, rows: I, tail: &'static str) -> Response
where
    T: Serialize + Send + 'static,
    I: Iterator<Item = Vec<T>> + Send + 'static,
{
    let chunks = chunks(head, rows, tail).map(Ok::<Bytes, Infallible>);
    json_response(Body::from_stream(futures_util::stream::iter(chunks)))
}

/// The chunks of a streamed answer: `head`, each batch of rows joined by commas, `tail`.
fn chunks<T, I>(head: &'static str, rows: I, tail: &'static str) -> impl Iterator<Item = Bytes>
where
    T: Serialize,
    I: Iterator<Item = Vec<T>>,
{
    let mut first = true;
    let body = rows.filter(|batch| !batch.is_empty()).map(move |batch| {
        let mut out = Vec::with_capacity(batch.len() * 96);
        for row in &batch {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            // Rows are plain structs of strings and numbers: they always serialize.
            let _ = serde_json::to_writer(&mut out, row);
        }
        Bytes::from(out)
    });
    std::iter::once(Bytes::from_static(head.as_bytes()))
        .chain(body)
        .chain(std::iter::once(Bytes::from_static(tail.as_bytes())))
}

fn json_response(body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The store's pages from `start`, [`CHUNK_ROWS`] users at a time, at most `limit` users in
/// all, each page mapped to rows by `rows` (which may leave users out). Each page is read when
/// the body wants its chunk.
pub fn pages<T>(
    app: Arc<App>,
    start: Bound<u64>,
    limit: usize,
    include_offline: bool,
    mut rows: impl FnMut(&App, &Page<u64>) -> Vec<T> + Send + 'static,
) -> impl Iterator<Item = Vec<T>> + Send + 'static {
    let mut next = Some(start);
    let mut left = limit;
    std::iter::from_fn(move || {
        let start = next.take().filter(|_| left > 0)?;
        let chunk = CHUNK_ROWS.min(left).min(app.store.config().max_page);
        let query = PageQuery {
            start,
            limit: Some(chunk),
            include_offline,
        };
        let page = app.store.page(&query).ok()?;
        left -= page.items.len();
        next = page.next.map(Bound::Included);
        Some(rows(&app, &page))
    })
}

/// One serialization of an answer shared by every request: the store's pages are read and
/// serialized by one request at a time, and every request that arrived before that began gets
/// its bytes (so does any later one while the store's cursor has not moved).
#[derive(Debug, Default)]
pub struct SharedAnswer {
    /// How many answers were begun: a request is served by one begun after it arrived.
    begun: AtomicU64,
    /// The last answer made.
    last: Mutex<Option<Made>>,
    /// Held by the one request making an answer; the others wait without a thread.
    making: tokio::sync::Mutex<()>,
}

/// An answer made whole.
#[derive(Debug)]
struct Made {
    /// Its number in [`SharedAnswer::begun`].
    number: u64,
    /// The store's cursor while it was made; `None` if the store changed meanwhile.
    cursor: Option<Cursor>,
    bytes: Bytes,
}

impl SharedAnswer {
    /// The answer to a request now: `head`, the rows of `rows()`, `tail`, as one JSON body.
    /// Made on the blocking pool by one request at a time; each made answer serves every
    /// request that arrived before it was begun, so under any load one making is under way
    /// and a whole answer exists at most twice (the last one and the one being made).
    pub async fn answer<I, T>(
        &self,
        store: &Store,
        head: &'static str,
        rows: impl FnOnce() -> I + Send + 'static,
        tail: &'static str,
    ) -> Response
    where
        T: Serialize,
        I: Iterator<Item = Vec<T>>,
    {
        let arrived = self.begun.load(Ordering::Acquire);
        if let Some(bytes) = self.made_since(arrived, store) {
            return json_response(Body::from(bytes));
        }
        let _making = self.making.lock().await;
        if let Some(bytes) = self.made_since(arrived, store) {
            return json_response(Body::from(bytes));
        }
        let number = self.begun.fetch_add(1, Ordering::AcqRel) + 1;
        let start = store.cursor();
        let make = move || {
            let mut whole = BytesMut::new();
            for chunk in chunks(head, rows(), tail) {
                whole.extend_from_slice(&chunk);
            }
            whole.freeze()
        };
        let Ok(bytes) = tokio::task::spawn_blocking(make).await else {
            return own_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the answer could not be made",
            );
        };
        let cursor = (store.cursor() == start).then_some(start);
        *self.last.lock() = Some(Made {
            number,
            cursor,
            bytes: bytes.clone(),
        });
        json_response(Body::from(bytes))
    }

    /// The last answer, if it was begun after `arrived` or the store has not changed since
    /// it was made.
    fn made_since(&self, arrived: u64, store: &Store) -> Option<Bytes> {
        let last = self.last.lock();
        let made = last.as_ref()?;
        let fresh =
            made.number > arrived || made.cursor.as_ref().is_some_and(|c| *c == store.cursor());
        fresh.then(|| made.bytes.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_join_rows_into_one_json_document() {
        let batches = vec![vec![1, 2], vec![], vec![3]].into_iter();
        let body: Vec<u8> = chunks("{\"a\":[", batches, "],\"b\":true}")
            .flat_map(|c| c.to_vec())
            .collect();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value, serde_json::json!({"a": [1, 2, 3], "b": true}));
        let empty: Vec<u8> = chunks("[", std::iter::empty::<Vec<u8>>(), "]")
            .flat_map(|c| c.to_vec())
            .collect();
        assert_eq!(empty, b"[]");
    }
}
