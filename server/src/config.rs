//! How the server is configured: flags (each also a `PRESENCE_*` environment variable), over a
//! TOML file (`--config`), over the defaults; resolved once at start into [`Options`].
//!
//! `clap` (derive) parses the flags and `toml` + `serde` the file, so `--help` documents every
//! flag and a mistake in either stops the start with a message naming the key and the reason.
//! Durations are written as people write them (`10s`, `500ms`, `2m`), read by `humantime`.
//!
//! To add a setting: a field in [`Cli`] (with its `env`), the same in [`FileConfig`], and one
//! line in [`Options::resolve`] that takes the flag, else the file, else the default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use presence_store::StoreConfig;
use serde::Deserialize;

use super::accounts::Accounts;
use super::policy::Policy;
use super::streams::StreamLimits;

/// The flags. Every one is optional here: what is not given comes from the file, then from
/// the defaults ([`Options::default`]).
#[derive(Clone, Debug, Default, Parser)]
#[command(
    name = "presence-server",
    version,
    about = "An HTTP presence service speaking Symphony's, Rocket.Chat's and Genesys Cloud's \
             presence APIs over one presence-store.",
    after_help = "Flags override the config file, which overrides the defaults. \
                  RUST_LOG sets the log level (default: info)."
)]
pub struct Cli {
    /// TOML config file (every key is optional; see the README's operator section).
    #[arg(long, env = "PRESENCE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where to listen [default: 127.0.0.1:8080].
    #[arg(long, env = "PRESENCE_ADDR", value_name = "HOST:PORT")]
    pub addr: Option<SocketAddr>,
    /// Directory for the organization state and the presence snapshot
    /// [default: ./presence-data].
    #[arg(long, env = "PRESENCE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// How often the presence snapshot is written, e.g. `10s` [default: 10s].
    #[arg(long, env = "PRESENCE_SNAPSHOT_INTERVAL", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub snapshot_interval: Option<Duration>,
    /// How long a shutdown waits for requests in flight, e.g. `10s` [default: 10s].
    #[arg(long, env = "PRESENCE_SHUTDOWN_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Option<Duration>,
    /// Log lines as text or JSON [default: text].
    #[arg(long, env = "PRESENCE_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Whether the demo directory and accounts are loaded [default: true].
    #[arg(long, env = "PRESENCE_DEMO", value_name = "BOOL")]
    pub demo: Option<bool>,
    /// How many demo users the directory holds [default: 1000].
    #[arg(long, alias = "users", env = "PRESENCE_DEMO_USERS", value_name = "N")]
    pub demo_users: Option<usize>,
    /// Whether simulated demo devices come online, go idle and drop [default: true].
    #[arg(long, env = "PRESENCE_SIMULATE", value_name = "BOOL")]
    pub simulate: Option<bool>,
    /// JSON file of accounts and tokens (instead of the config file's `[accounts]`).
    #[arg(long, env = "PRESENCE_ACCOUNTS", value_name = "FILE")]
    pub accounts: Option<PathBuf>,
    /// Join the cluster replicated over this Redis, e.g. `redis://10.0.0.5:6379` (with
    /// `--node`).
    #[arg(long, env = "PRESENCE_REDIS", value_name = "URL")]
    pub redis: Option<String>,
    /// This instance's name in the cluster, unique among its nodes (with `--redis`).
    #[arg(long, env = "PRESENCE_NODE", value_name = "NAME")]
    pub node: Option<String>,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The config file: the flags' settings (same names, `snake_case`), the store's limits and the
/// accounts. An unknown key is an error, so a typo never passes silently.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See [`Cli::addr`].
    pub addr: Option<SocketAddr>,
    /// See [`Cli::data_dir`]; relative to the working directory.
    pub data_dir: Option<PathBuf>,
    /// See [`Cli::snapshot_interval`].
    #[serde(default, with = "humantime_serde")]
    pub snapshot_interval: Option<Duration>,
    /// See [`Cli::shutdown_timeout`].
    #[serde(default, with = "humantime_serde")]
    pub shutdown_timeout: Option<Duration>,
    /// See [`Cli::log_format`].
    pub log_format: Option<LogFormat>,
    /// The demo.
    #[serde(default)]
    pub demo: DemoSection,
    /// The store's limits.
    #[serde(default)]
    pub store: StoreSection,
    /// Accounts, their roles and keys (the accounts file's shape, in TOML).
    pub accounts: Option<Accounts>,
    /// `[policy]`: token lifetimes, per-account caps and login throttling (see SECURITY.md).
    #[serde(default)]
    pub policy: Policy,
    /// `[streams]`: how many WebSocket streams may be open (`total`, `per_account`).
    #[serde(default)]
    pub streams: StreamLimits,
    /// `[cluster]`: the Redis to replicate over and this node's name.
    #[serde(default)]
    pub cluster: ClusterSection,
}

/// `[cluster]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// See [`Cli::redis`].
    pub redis: Option<String>,
    /// See [`Cli::node`].
    pub node: Option<String>,
}

/// `[demo]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSection {
    /// See [`Cli::demo`].
    pub enabled: Option<bool>,
    /// See [`Cli::demo_users`].
    pub users: Option<usize>,
    /// See [`Cli::simulate`].
    pub simulate: Option<bool>,
}

/// `[store]`: the store's limits, each defaulting to [`StoreConfig::default`]'s.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// Lock stripes (0: four per core, rounded up to a power of two).
    pub shards: Option<usize>,
    /// How far back a time delta is exact.
    #[serde(default, with = "humantime_serde")]
    pub delta_window: Option<Duration>,
    /// Change-log entries kept per shard.
    pub log_capacity: Option<usize>,
    /// A page's size when the client names none.
    pub default_page: Option<usize>,
    /// The largest page a client may ask for.
    pub max_page: Option<usize>,
    /// When a session with no active heartbeat turns idle.
    #[serde(default, with = "humantime_serde")]
    pub idle_after: Option<Duration>,
    /// When a session with no heartbeat at all ends.
    #[serde(default, with = "humantime_serde")]
    pub session_ttl: Option<Duration>,
    /// The most presence feeds that may exist.
    pub max_feeds: Option<usize>,
    /// When a feed nobody reads is dropped.
    #[serde(default, with = "humantime_serde")]
    pub feed_expiry: Option<Duration>,
    /// The longest status message.
    pub max_message_len: Option<usize>,
}

impl StoreSection {
    /// The store configuration: the defaults, with what this section sets, validated.
    fn config(&self) -> Result<StoreConfig, String> {
        let mut c = StoreConfig::default();
        let s = self;
        c.shards = s.shards.unwrap_or(c.shards);
        c.delta_window = s.delta_window.unwrap_or(c.delta_window);
        c.log_capacity = s.log_capacity.unwrap_or(c.log_capacity);
        c.default_page = s.default_page.unwrap_or(c.default_page);
        c.max_page = s.max_page.unwrap_or(c.max_page);
        c.idle_after = s.idle_after.unwrap_or(c.idle_after);
        c.session_ttl = s.session_ttl.unwrap_or(c.session_ttl);
        c.max_feeds = s.max_feeds.unwrap_or(c.max_feeds);
        c.feed_expiry = s.feed_expiry.unwrap_or(c.feed_expiry);
        c.max_message_len = s.max_message_len.unwrap_or(c.max_message_len);
        c.validate().map_err(|e| format!("[store]: {e}"))?;
        Ok(c)
    }
}

/// Where the server keeps its state when no directory is configured: under the working
/// directory, so a first `cargo run` keeps its state across restarts.
pub const DEFAULT_DATA_DIR: &str = "presence-data";

/// Everything the server runs with, resolved.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Where state is kept; `None` keeps nothing (the in-process tests).
    pub data_dir: Option<PathBuf>,
    /// How often the presence snapshot is written.
    pub snapshot_interval: Duration,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_timeout: Duration,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// Whether the demo directory and accounts are loaded.
    pub demo: bool,
    /// How many demo users the directory holds (with the demo on).
    pub demo_users: usize,
    /// Whether simulated devices come online, go idle and drop (with the demo on).
    pub simulate: bool,
    /// A JSON file of accounts; else [`account_list`](Self::account_list); else the demo's.
    pub accounts: Option<PathBuf>,
    /// Accounts from the config file.
    pub account_list: Option<Accounts>,
    /// The store's limits.
    pub store: StoreConfig,
    /// Token lifetimes, caps and login throttling.
    pub policy: Policy,
    /// How many WebSocket streams may be open, per account and in total.
    pub streams: StreamLimits,
    /// The Redis URL of the cluster to join, if any (with `node`).
    pub redis: Option<String>,
    /// This node's name in the cluster.
    pub node: Option<String>,
}

impl Default for Options {
    /// The embedded default: loopback, the demo with 1000 users, no data directory.
    fn default() -> Self {
        Options {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: None,
            snapshot_interval: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(10),
            log_format: LogFormat::Text,
            demo: true,
            demo_users: 1000,
            simulate: true,
            accounts: None,
            account_list: None,
            store: StoreConfig::default(),
            policy: Policy::default(),
            streams: StreamLimits::default(),
            redis: None,
            node: None,
        }
    }
}

impl Options {
    /// The options of a command line (program name first): flags and environment, over the
    /// file they name, over the defaults. The data directory defaults to
    /// [`DEFAULT_DATA_DIR`]. `Err` carries clap's own error for bad flags (`--help` included,
    /// which `exit()`s with its text) and a message naming the key for a bad file.
    pub fn from_args<I, T>(args: I) -> Result<Options, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let cli = Cli::try_parse_from(args).map_err(ConfigError::Flags)?;
        let file = match &cli.config {
            Some(path) => FileConfig::load(path).map_err(ConfigError::File)?,
            None => FileConfig::default(),
        };
        Options::resolve(cli, file).map_err(ConfigError::File)
    }

    /// The flags over the file over the defaults.
    pub fn resolve(cli: Cli, file: FileConfig) -> Result<Options, String> {
        let d = Options::default();
        let options = Options {
            addr: cli.addr.or(file.addr).unwrap_or(d.addr),
            data_dir: Some(
                cli.data_dir
                    .or(file.data_dir)
                    .unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
            ),
            snapshot_interval: cli
                .snapshot_interval
                .or(file.snapshot_interval)
                .unwrap_or(d.snapshot_interval),
            shutdown_timeout: cli
                .shutdown_timeout
                .or(file.shutdown_timeout)
                .unwrap_or(d.shutdown_timeout),
            log_format: cli.log_format.or(file.log_format).unwrap_or(d.log_format),
            demo: cli.demo.or(file.demo.enabled).unwrap_or(d.demo),
            demo_users: cli.demo_users.or(file.demo.users).unwrap_or(d.demo_users),
            simulate: cli.simulate.or(file.demo.simulate).unwrap_or(d.simulate),
            accounts: cli.accounts,
            account_list: file.accounts,
            store: file.store.config()?,
            policy: file.policy,
            streams: file.streams,
            redis: cli.redis.or(file.cluster.redis),
            node: cli.node.or(file.cluster.node),
        };
        if options.redis.is_some() != options.node.is_some() {
            return Err("redis and node go together (--redis URL --node NAME)".into());
        }
        options
            .policy
            .validate()
            .map_err(|e| format!("[policy]: {e}"))?;
        if options.snapshot_interval.is_zero() {
            return Err("snapshot_interval: must be more than 0".into());
        }
        Ok(options)
    }
}

impl FileConfig {
    /// Reads and checks a config file; the error names the file, the key and the reason.
    pub fn load(path: &Path) -> Result<FileConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        parse_file(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }
}

/// Parses a config file's text. The error names the line, the key and the reason, without
/// quoting the line itself (it may hold a secret).
fn parse_file(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| {
        let Some(span) = e.span() else {
            return e.message().to_owned();
        };
        let before = text.get(..span.start).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let line_text = text.lines().nth(line - 1).unwrap_or_default();
        match line_text.split_once('=') {
            Some((key, _)) => format!("line {line}, key {}: {}", key.trim(), e.message()),
            None => format!("line {line}: {}", e.message()),
        }
    })
}

/// Why the options could not be resolved.
#[derive(Debug)]
pub enum ConfigError {
    /// A bad flag or environment variable, or `--help`/`--version` (clap prints and exits).
    Flags(clap::Error),
    /// A bad config file or value: the message names the key and the reason.
    File(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Result<FileConfig, String> {
        parse_file(text)
    }

    #[test]
    fn flags_override_the_file_which_overrides_the_defaults() {
        let cli = Cli::try_parse_from(["presence-server", "--addr", "127.0.0.1:9000"]).unwrap();
        let f = file("addr = \"127.0.0.1:7000\"\nsnapshot_interval = \"3s\"\n[demo]\nusers = 5")
            .unwrap();
        let o = Options::resolve(cli, f).unwrap();
        assert_eq!(o.addr.port(), 9000);
        assert_eq!(o.snapshot_interval, Duration::from_secs(3));
        assert_eq!(o.demo_users, 5);
        assert_eq!(o.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(o.data_dir.as_deref(), Some(Path::new(DEFAULT_DATA_DIR)));
    }

    #[test]
    fn a_bad_key_or_value_is_named() {
        let e = file("adress = \"x\"").unwrap_err();
        assert!(e.contains("adress"), "{e}");
        let e = file("[store]\nmax_page = \"many\"").unwrap_err();
        assert!(e.contains("max_page"), "{e}");
        let e = file("snapshot_interval = \"soon\"").unwrap_err();
        assert!(e.contains("snapshot_interval"), "{e}");
        let e = file(
            "[[accounts.genesys]]\nclient_id = \"c\"\nclient_secret = \"hunter2\"\n[demo]\nx = 1",
        )
        .unwrap_err();
        assert!(e.contains("line 5, key x") && !e.contains("hunter2"), "{e}");
        let f = file("[store]\nmax_page = 0").unwrap();
        let e = Options::resolve(Cli::default(), f).unwrap_err();
        assert!(e.contains("[store]") && e.contains("page"), "{e}");
    }

    #[test]
    fn the_readmes_example_file_is_valid() {
        let readme = include_str!("../../README.md");
        let example = readme
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("a TOML example in the README");
        let f = file(example).unwrap();
        let accounts = f.accounts.clone().unwrap();
        crate::tokens::Tokens::from_accounts(&accounts).unwrap();
        let o = Options::resolve(Cli::default(), f).unwrap();
        assert_eq!(o.store, StoreConfig::default());
        assert_eq!(o.policy, Policy::default());
        assert_eq!(o.streams, StreamLimits::default());
        assert_eq!(o.log_format, LogFormat::Json);
    }

    #[test]
    fn accounts_read_from_toml() {
        let f = file(
            "[[accounts.genesys]]\nclient_id = \"c\"\nclient_secret = \"s\"\n\
             [[accounts.tokens]]\ndialect = \"genesys\"\naccount = \"c\"\ntoken = \"t\"",
        )
        .unwrap();
        let accounts = f.accounts.unwrap();
        assert_eq!(accounts.genesys[0].client_id, "c");
        assert_eq!(accounts.tokens.len(), 1);
    }
}
