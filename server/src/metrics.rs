//! What operators and load balancers read: `/healthz` (the process answers), `/readyz` (the
//! state is restored and the server is not shutting down) and `/metrics` (Prometheus text).
//!
//! `prometheus-client` (the Prometheus project's own Rust client) was chosen over `metrics` with
//! its exporter: typed label sets, no global registry, and the text format written by the same
//! people who parse it. Request counters and the latency histogram move on every request
//! ([`crate::requests`]); the store's figures are read when `/metrics` is scraped, so the
//! write path pays nothing for them.
//!
//! | metric | type | what |
//! | --- | --- | --- |
//! | `presence_http_requests_total{route,method,status}` | counter | requests answered |
//! | `presence_http_request_duration_seconds{route}` | histogram | time to answer |
//! | `presence_users` | gauge | users the store knows |
//! | `presence_online_users` | gauge | users not offline (counted by paging at scrape: O(users)) |
//! | `presence_log_entries` | gauge | change-log entries held |
//! | `presence_subscribers` | gauge | open `/devices/v1/stream` WebSockets |
//! | `presence_lagging_subscribers` | gauge | of the store's subscriptions, those behind now |
//! | `presence_lagged_subscribers_total` | counter | times a stream fell behind and resynced |
//! | `presence_feeds` | gauge | presence feeds |
//! | `presence_live_tokens` | gauge | tokens that are valid now |
//! | `presence_snapshot_age_seconds` | gauge | since the last presence snapshot (-1: none yet) |
//! | `presence_snapshot_duration_seconds` | gauge | how long the last snapshot took |
//! | `presence_replication_lag_milliseconds` | gauge | age of the last cluster entry applied |
//! | `presence_replication_peers` | gauge | other nodes alive at the last liveness check |
//! | `presence_replication_events_published_total` | counter | events this node published |
//! | `presence_replication_events_applied_total` | counter | other nodes' events applied |
//! | `presence_replication_nodes_down_total` | counter | nodes this node declared down |
//! | `presence_replication_republished_total` | counter | times this node republished its state |
//! | `presence_replication_broker_errors_total` | counter | broker calls that failed (retried) |
//!
//! The replication figures stay 0 on a server that runs alone.

use std::borrow::Cow;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use presence_cluster::MetricsSnapshot;
use presence_store::PageQuery;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::authz;
use super::http::json;
use super::App;

/// The health route.
pub const HEALTHZ: &str = "/healthz";
/// The readiness route.
pub const READYZ: &str = "/readyz";
/// The metrics route.
pub const METRICS: &str = "/metrics";

/// The route label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// One request's labels. Borrowed from static tables where they can be, so counting a
/// request allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The matched route (its template, e.g. `/api/v2/presence/sources/{id}`), or `unmatched`.
    pub route: Cow<'static, str>,
    /// The method ([`method_label`]).
    pub method: &'static str,
    /// The status code.
    pub status: u16,
}

/// A route's label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// As in [`RequestLabels::route`].
    pub route: Cow<'static, str>,
}

/// The label of the route a request matched: the authorization table's or a probe's own
/// string, `unmatched` when none matched.
pub fn route_label(matched: Option<&MatchedPath>) -> Cow<'static, str> {
    let Some(path) = matched.map(MatchedPath::as_str) else {
        return Cow::Borrowed(UNMATCHED);
    };
    authz::OPEN
        .into_iter()
        .find(|p| *p == path)
        .or_else(|| authz::listed_path(path))
        .map_or_else(|| Cow::Owned(path.to_owned()), Cow::Borrowed)
}

/// A method as a metric label: the standard ones by name, any other as `OTHER`, so a client
/// inventing methods cannot grow the metrics without bound.
pub fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|m| *m == method)
        .map_or("OTHER", Method::as_str)
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The server's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    users: Gauge,
    online: Gauge,
    log_entries: Gauge,
    /// Open WebSocket streams, read from [`crate::streams::Streams`] at scrape.
    subscribers: Gauge,
    /// Subscriptions behind now, read from the store at scrape.
    lagging: Gauge,
    /// Times a stream fell behind: the stream handler counts them.
    pub lagged: Counter,
    feeds: Gauge,
    tokens: Gauge,
    snapshot_age: Gauge<f64, AtomicU64>,
    snapshot_duration: Gauge<f64, AtomicU64>,
    replication: Replication,
}

/// The cluster's figures, copied from its [`MetricsSnapshot`] at scrape.
#[derive(Debug)]
struct Replication {
    lag_ms: Gauge,
    peers: Gauge,
    published: Counter,
    applied: Counter,
    nodes_down: Counter,
    republished: Counter,
    broker_errors: Counter,
}

impl Replication {
    fn register(registry: &mut Registry) -> Self {
        let mut gauge = |name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let lag_ms = gauge(
            "replication_lag_milliseconds",
            "Age of the last cluster log entry applied when it was applied",
        );
        let peers = gauge(
            "replication_peers",
            "Other nodes alive at the last liveness check",
        );
        let mut counter = |name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        Replication {
            lag_ms,
            peers,
            published: counter("replication_events_published", "Events this node published"),
            applied: counter(
                "replication_events_applied",
                "Other nodes' events this node applied",
            ),
            nodes_down: counter("replication_nodes_down", "Nodes this node declared down"),
            republished: counter(
                "replication_republished",
                "Times this node republished what it holds",
            ),
            broker_errors: counter(
                "replication_broker_errors",
                "Broker calls that failed (each retried)",
            ),
        }
    }

    /// Brings each figure to the cluster's (its counters only ever grow).
    fn follow(&self, m: &MetricsSnapshot) {
        let set = |g: &Gauge, v: u64| g.set(i64::try_from(v).unwrap_or(i64::MAX));
        set(&self.lag_ms, m.lag_ms);
        set(&self.peers, m.peers);
        let follow = |c: &Counter, total: u64| c.inc_by(total.saturating_sub(c.get()));
        follow(&self.published, m.published);
        follow(&self.applied, m.applied);
        follow(&self.nodes_down, m.nodes_down);
        follow(&self.republished, m.republished);
        follow(&self.broker_errors, m.broker_errors);
    }
}

/// Latency buckets: 100 µs to about 3.3 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("presence");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = HistogramFamily::new_with_constructor(latency_histogram);
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            latency.clone(),
        );
        let mut gauge = |name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let users = gauge("users", "Users the store knows");
        let online = gauge("online_users", "Users whose presence is not OFFLINE");
        let log_entries = gauge("log_entries", "Change-log entries held, all shards");
        let subscribers = gauge("subscribers", "Open change streams (WebSockets)");
        let lagging = gauge(
            "lagging_subscribers",
            "Store subscriptions behind now (they resync once they catch up)",
        );
        let feeds = gauge("feeds", "Presence feeds");
        let tokens = gauge("live_tokens", "Tokens valid now");
        let lagged = Counter::default();
        registry.register(
            "lagged_subscribers",
            "Times a change stream fell behind and resynced",
            lagged.clone(),
        );
        let snapshot_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "snapshot_age_seconds",
            "Seconds since the last presence snapshot was written (-1: none yet)",
            snapshot_age.clone(),
        );
        let snapshot_duration = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "snapshot_duration_seconds",
            "How long the last presence snapshot took to take and write",
            snapshot_duration.clone(),
        );
        let replication = Replication::register(&mut registry);
        Metrics {
            registry,
            requests,
            latency,
            users,
            online,
            log_entries,
            subscribers,
            lagging,
            lagged,
            feeds,
            tokens,
            snapshot_age,
            snapshot_duration,
            replication,
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn observe(&self, labels: RequestLabels, latency: Duration) {
        self.latency
            .get_or_create(&RouteLabels {
                route: labels.route.clone(),
            })
            .observe(latency.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    /// The Prometheus text of every metric, the store's read now.
    pub fn render(&self, app: &App) -> Result<String, std::fmt::Error> {
        let gauge = |g: &Gauge, n: usize| {
            g.set(i64::try_from(n).unwrap_or(i64::MAX));
        };
        gauge(&self.users, app.store.len());
        gauge(&self.online, online_users(app));
        gauge(&self.log_entries, app.store.log_len());
        gauge(&self.feeds, app.store.feed_ids().len());
        gauge(&self.tokens, app.tokens.len());
        gauge(&self.subscribers, app.streams.open());
        gauge(&self.lagging, app.store.subscriber_stats().lagged);
        if let Some(cluster) = app.cluster.get() {
            self.replication.follow(&cluster.metrics());
        }
        match &app.data {
            Some(data) if data.last_snapshot_ms.load(Ordering::Relaxed) > 0 => {
                let at = data.last_snapshot_ms.load(Ordering::Relaxed);
                let age = app.clock.now_ms().saturating_sub(at);
                self.snapshot_age.set(age as f64 / 1000.0);
                let micros = data.last_snapshot_micros.load(Ordering::Relaxed);
                self.snapshot_duration.set(micros as f64 / 1e6);
            }
            _ => {
                self.snapshot_age.set(-1.0);
            }
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Users not offline, counted a page at a time (the store keeps no such count).
fn online_users(app: &App) -> usize {
    let limit = app.store.config().max_page;
    let mut query = PageQuery {
        start: Bound::Unbounded,
        limit: Some(limit),
        include_offline: false,
    };
    let mut count = 0;
    while let Ok(page) = app.store.page(&query) {
        count += page.items.len();
        match page.next {
            Some(next) => query.start = Bound::Included(next),
            None => break,
        }
    }
    count
}

/// The routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(HEALTHZ, get(healthz))
        .route(READYZ, get(readyz))
        .route(METRICS, get(metrics))
}

/// `GET /healthz`: the process answers.
async fn healthz() -> Response {
    json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 once the state is restored, 503 before and once shutdown begins.
async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.lifecycle.is_ready() {
        json(StatusCode::OK, &serde_json::json!({ "status": "ready" }))
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({ "status": "not ready" }),
        )
    }
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(app): State<Arc<App>>) -> Response {
    // Paging every user for the online count is O(users): off the async workers.
    let rendered = tokio::task::spawn_blocking(move || app.metrics.render(&app)).await;
    match rendered {
        Ok(Ok(text)) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        _ => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({ "status": 500, "message": "metrics could not be rendered" }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_static_tables_and_unknown_methods_are_one_label() {
        assert_eq!(route_label(None), "unmatched");
        assert_eq!(method_label(&Method::GET), "GET");
        let invented = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&invented), "OTHER");
    }
}
