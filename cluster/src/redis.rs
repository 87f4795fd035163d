//! [`RedisStreams`]: the [`Transport`] over Redis Streams (Redis 7 or Valkey) with the `redis`
//! crate on tokio. Chosen over a home-made protocol because service teams already run Redis, and
//! over pub/sub because a stream keeps what a lagging or joining node has not read yet.
//!
//! Keys, under a prefix (`presence` by default): `{p}:log` the stream (`XADD ... MAXLEN ~`),
//! `{p}:alive:{node}` each node's liveness key (`SET ... PX`), `{p}:members` the nodes alive in the
//! last ten minutes (a sorted set by last refresh), `{p}:epoch` a random value that disappears with the broker's data, and
//! `{p}:snapshot` (a hash: `at`, `data`) the snapshot for joiners when the log was trimmed.
//!
//! Two connections: the blocking `XREAD` gets its own, so it never holds up publishing or
//! liveness. Each is a `ConnectionManager`, which reconnects after the broker comes back.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamRangeReply, StreamReadReply};
use redis::{Client, Value};

use crate::transport::{Position, Transport, TransportError, TransportResult};

/// Replication over one Redis stream.
#[derive(Clone)]
pub struct RedisStreams {
    commands: ConnectionManager,
    reads: ConnectionManager,
    prefix: String,
    max_len: usize,
}

impl std::fmt::Debug for RedisStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreams")
            .field("prefix", &self.prefix)
            .field("max_len", &self.max_len)
            .finish_non_exhaustive()
    }
}

fn err(e: redis::RedisError) -> TransportError {
    TransportError(e.to_string())
}

/// How long a node stays a member after its last refresh: every node checks its peers every
/// second or so, so all have declared it down long before it is forgotten.
const MEMBER_RETENTION: Duration = Duration::from_secs(600);

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How long a command may wait for its reply (a blocking read: this past its block).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

impl RedisStreams {
    /// Connects to `url` (`redis://host:port/db`), keeping the stream near `max_len` entries
    /// under keys starting with `prefix`. Fails if the broker cannot be reached now; once
    /// connected, calls reconnect by themselves.
    pub async fn connect(url: &str, prefix: &str, max_len: usize) -> TransportResult<Self> {
        let client = Client::open(url).map_err(err)?;
        let config = |timeout| {
            ConnectionManagerConfig::new()
                .set_connection_timeout(Duration::from_secs(1))
                .set_response_timeout(timeout)
                .set_number_of_retries(2)
                .set_max_delay(500)
        };
        let commands = ConnectionManager::new_with_config(client.clone(), config(RESPONSE_TIMEOUT))
            .await
            .map_err(err)?;
        let reads = ConnectionManager::new_with_config(client, config(RESPONSE_TIMEOUT * 3))
            .await
            .map_err(err)?;
        Ok(RedisStreams {
            commands,
            reads,
            prefix: prefix.to_owned(),
            max_len,
        })
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    fn alive_key(&self, node: &str) -> String {
        format!("{}:alive:{node}", self.prefix)
    }
}

impl Transport for RedisStreams {
    async fn publish(&self, entry: Vec<u8>) -> TransportResult<Position> {
        let id: String = redis::cmd("XADD")
            .arg(self.key("log"))
            .arg("MAXLEN")
            .arg("~")
            .arg(self.max_len)
            .arg("*")
            .arg("e")
            .arg(entry)
            .query_async(&mut self.commands.clone())
            .await
            .map_err(err)?;
        Ok(Position(id))
    }

    async fn read(
        &self,
        after: &Position,
        max: usize,
        block: Duration,
    ) -> TransportResult<Vec<(Position, Vec<u8>)>> {
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(max)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(self.key("log"))
            .arg(&after.0)
            .query_async(&mut self.reads.clone())
            .await
            .map_err(err)?;
        let mut out = Vec::new();
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in key.ids {
                if let Some(Value::BulkString(bytes)) = entry.map.get("e") {
                    out.push((Position(entry.id.clone()), bytes.clone()));
                }
            }
        }
        Ok(out)
    }

    async fn head(&self) -> TransportResult<Option<Position>> {
        let reply: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.key("log"))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.commands.clone())
            .await
            .map_err(err)?;
        Ok(reply.ids.into_iter().next().map(|e| Position(e.id)))
    }

    async fn trimmed_before(&self) -> TransportResult<Option<Position>> {
        let info: redis::RedisResult<Value> = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(self.key("log"))
            .query_async(&mut self.commands.clone())
            .await;
        let info = match info {
            Ok(info) => info,
            // No stream yet: nothing trimmed.
            Err(e) if e.kind() == redis::ErrorKind::ResponseError => return Ok(None),
            Err(e) => return Err(err(e)),
        };
        let pairs: Vec<(Value, Value)> = match info {
            Value::Map(pairs) => pairs,
            Value::Array(items) => items
                .chunks(2)
                .filter_map(|kv| Some((kv.first()?.clone(), kv.get(1)?.clone())))
                .collect(),
            _ => Vec::new(),
        };
        let field = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| redis::from_redis_value::<String>(k).is_ok_and(|k| k == name))
                .map(|(_, v)| v.clone())
        };
        let number = |name| field(name).and_then(|v| redis::from_redis_value::<u64>(&v).ok());
        // Redis 7 counts every entry ever added; fewer held means some were trimmed.
        let (Some(added), Some(held)) = (number("entries-added"), number("length")) else {
            return Ok(None);
        };
        if added <= held {
            return Ok(None);
        }
        Ok(field("recorded-first-entry-id")
            .and_then(|v| redis::from_redis_value::<String>(&v).ok())
            .map(Position))
    }

    async fn refresh(&self, node: &str, ttl: Duration) -> TransportResult<bool> {
        let mut conn = self.commands.clone();
        let key = self.alive_key(node);
        let ms = ttl.as_millis() as u64;
        let (kept,): (Option<String>,) = redis::pipe()
            .cmd("SET")
            .arg(&key)
            .arg(1)
            .arg("PX")
            .arg(ms)
            .arg("XX")
            .cmd("ZADD")
            .arg(self.key("members"))
            .arg(now_ms())
            .arg(node)
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(err)?;
        if kept.is_some() {
            return Ok(true);
        }
        redis::cmd("SET")
            .arg(&key)
            .arg(1)
            .arg("PX")
            .arg(ms)
            .query_async::<()>(&mut conn)
            .await
            .map_err(err)?;
        Ok(false)
    }

    async fn alive(&self, nodes: &[String]) -> TransportResult<Vec<bool>> {
        if nodes.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = nodes.iter().map(|n| self.alive_key(n)).collect();
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(keys)
            .query_async(&mut self.commands.clone())
            .await
            .map_err(err)?;
        Ok(values.into_iter().map(|v| v.is_some()).collect())
    }

    async fn members(&self) -> TransportResult<Vec<String>> {
        let since = now_ms().saturating_sub(MEMBER_RETENTION.as_millis() as u64);
        let (members,): (Vec<String>,) = redis::pipe()
            .cmd("ZREMRANGEBYSCORE")
            .arg(self.key("members"))
            .arg("-inf")
            .arg(format!("({since}"))
            .ignore()
            .cmd("ZRANGE")
            .arg(self.key("members"))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.commands.clone())
            .await
            .map_err(err)?;
        Ok(members)
    }

    async fn epoch(&self, fresh: &str) -> TransportResult<String> {
        let mut conn = self.commands.clone();
        let (_, epoch): ((), String) = redis::pipe()
            .cmd("SET")
            .arg(self.key("epoch"))
            .arg(fresh)
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(self.key("epoch"))
            .query_async(&mut conn)
            .await
            .map(|e: (String,)| ((), e.0))
            .map_err(err)?;
        Ok(epoch)
    }

    async fn put_snapshot(&self, at: &Position, snapshot: Vec<u8>) -> TransportResult<()> {
        redis::cmd("HSET")
            .arg(self.key("snapshot"))
            .arg("at")
            .arg(&at.0)
            .arg("data")
            .arg(snapshot)
            .query_async::<()>(&mut self.commands.clone())
            .await
            .map_err(err)
    }

    async fn snapshot(&self) -> TransportResult<Option<(Position, Vec<u8>)>> {
        let (at, data): (Option<String>, Option<Vec<u8>>) = redis::cmd("HMGET")
            .arg(self.key("snapshot"))
            .arg("at")
            .arg("data")
            .query_async(&mut self.commands.clone())
            .await
            .map_err(err)?;
        Ok(at.zip(data).map(|(at, data)| (Position(at), data)))
    }
}
