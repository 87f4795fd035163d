//! The real binary, as an operator runs it: in a temporary data directory, configured by a
//! file, flags and `PRESENCE_*` variables, stopped by SIGTERM or `kill -9`, started again.
//! What each dialect changed must come back; a bad file must stop the start, naming it.

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures_util::StreamExt;
use openmetrics_parser::OpenMetricsValue;
use presence_server::directory::User;
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_presence-server");
/// How long the server gets to start or stop before the test gives up (a hang, not a timing
/// assertion).
const PATIENCE: Duration = Duration::from_secs(60);

/// A running `presence-server`.
struct Server {
    child: Child,
    base: String,
    /// Its log lines (JSON) before the start line.
    startup: Vec<String>,
    /// Its log lines (JSON) after the start line, as they come.
    logs: mpsc::Receiver<String>,
    /// The demo tokens its banner printed (fresh at every start), as they come.
    banner: mpsc::Receiver<(String, String)>,
    /// The demo tokens read so far, by banner label (`Symphony`, `Rocket.Chat`, ...).
    tokens: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// The demo token in a banner line: `  Symphony    (bot):  curl -H 'sessionToken: TOKEN' ...`
/// gives `("Symphony", "TOKEN")`.
fn banner_token(line: &str) -> Option<(String, String)> {
    let label = line.split_whitespace().next()?.to_owned();
    for marker in ["sessionToken: ", "X-Auth-Token: ", "Bearer "] {
        if let Some((_, rest)) = line.split_once(marker) {
            let token = rest.split('\'').next()?.to_owned();
            return Some((label, token));
        }
    }
    None
}

/// Starts the binary in `dir` (its working directory, so the default data directory is
/// inside it) with `args` and `env`, and waits for its start line.
fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut child = spawn(dir, args, env);
    let (tx, banner) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(token) = banner_token(&line) {
                if tx.send(token).is_err() {
                    break;
                }
            }
        }
    });
    let (tx, logs) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        let line = match logs.recv_timeout(PATIENCE) {
            Ok(line) => line,
            Err(_) => panic!(
                "no start line; logs: {seen:#?}, exit: {:?}",
                child.try_wait()
            ),
        };
        if let Ok(event) = serde_json::from_str::<Value>(&line) {
            if event["message"] == "presence-server started" {
                let addr = event["addr"].as_str().expect("addr").to_owned();
                return Server {
                    child,
                    base: format!("http://{addr}"),
                    startup: seen,
                    logs,
                    banner,
                    tokens: Default::default(),
                };
            }
        }
        seen.push(line);
    }
}

/// The binary with the test's usual flags: loopback on a free port, JSON logs, 20 demo
/// users, no simulation.
fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new(BIN)
        .current_dir(dir)
        .args(["--addr", "127.0.0.1:0", "--log-format", "json"])
        .args(["--demo-users", "20", "--simulate", "false"])
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn presence-server")
}

/// Runs the binary to its end (it must not start); its exit status and stderr.
fn run_to_end(dir: &Path, args: &[&str]) -> (ExitStatus, String) {
    let out = Command::new(BIN)
        .current_dir(dir)
        .args(["--addr", "127.0.0.1:0", "--log-format", "json"])
        .args(args)
        .stdout(Stdio::null())
        .output()
        .expect("run presence-server");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The demo token the banner printed for `label` (`Symphony`, `Rocket.Chat`, `Genesys`,
    /// `Gateway`).
    fn token(&self, label: &str) -> String {
        let mut tokens = self.tokens.lock().unwrap();
        while !tokens.contains_key(label) {
            let (l, token) = self
                .banner
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("no {label} token in the banner"));
            tokens.insert(l, token);
        }
        tokens[label].clone()
    }

    /// Sends `signal` (`TERM`, `KILL`) to the process.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit; its status and the log lines it wrote meanwhile.
    fn wait(mut self) -> (ExitStatus, Vec<String>) {
        let status = self.child.wait().expect("wait");
        // The reader thread ends at the pipe's end, once the process has exited.
        let logs = self.logs.iter().collect();
        (status, logs)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request with each dialect's demo credentials set, and its status and JSON body.
async fn call(s: &Server, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let first = User::demo(0);
    let mut request = reqwest::Client::new()
        .request(method, s.url(path))
        .header("sessionToken", s.token("Symphony"))
        .header("X-User-Id", first.rc_id.as_str());
    request = if path.starts_with("/api/v1") {
        request.header("X-Auth-Token", s.token("Rocket.Chat"))
    } else if path.starts_with("/devices") {
        request.header("Authorization", format!("Bearer {}", s.token("Gateway")))
    } else {
        request.header("Authorization", format!("Bearer {}", s.token("Genesys")))
    };
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `call` that must answer 2xx; its body.
async fn ok(s: &Server, method: Method, path: &str, body: Option<Value>) -> Value {
    let (status, body) = call(s, method.clone(), path, body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {body}"
    );
    body
}

/// Changes through every dialect: presence (Symphony, Rocket.Chat, Genesys, devices) and the
/// organization (a definition, a source, both dialects' settings, a feed). The feed's id.
async fn change_everything(s: &Server) -> String {
    let (a, b, c, d) = (User::demo(1), User::demo(2), User::demo(3), User::demo(4));
    let body = json!({"userId": a.id, "category": "BUSY"});
    ok(s, Method::POST, "/pod/v3/user/presence", Some(body)).await;
    let feed = ok(s, Method::POST, "/pod/v1/presence/feed/create", None).await;
    let feed = feed["id"].as_str().expect("feed id").to_owned();
    let body = json!({"status": "away", "message": "back at 3"});
    ok(s, Method::POST, "/api/v1/users.setStatus", Some(body)).await;
    let body = json!({"value": true});
    ok(
        s,
        Method::POST,
        "/api/v1/settings/Presence_broadcast_disabled",
        Some(body),
    )
    .await;
    let body = json!({"languageLabels": {"en_US": "Deep work"}, "systemPresence": "Busy"});
    let def = ok(s, Method::POST, "/api/v2/presence/definitions", Some(body)).await;
    let source = ok(
        s,
        Method::POST,
        "/api/v2/presence/sources",
        Some(json!({"name": "calendar"})),
    )
    .await;
    let body = json!({"requestingOffQueueEnabled": true});
    ok(s, Method::PUT, "/api/v2/presence/settings", Some(body)).await;
    let body = json!({"presenceDefinition": {"id": def["id"]}, "message": "focus"});
    let path = format!("/api/v2/users/{}/presences/purecloud", b.genesys_id);
    ok(s, Method::PATCH, &path, Some(body)).await;
    let body = json!({"presenceDefinition": {"id": def["id"]}});
    let path = format!(
        "/api/v2/users/{}/presences/{}",
        c.genesys_id,
        source["id"].as_str().unwrap()
    );
    ok(s, Method::PATCH, &path, Some(body)).await;
    let path = format!("/devices/v1/users/{}/sessions/7/heartbeat", d.id);
    ok(s, Method::POST, &path, None).await;
    feed
}

/// What the server shows of everything `change_everything` touches.
async fn everything(s: &Server) -> Vec<Value> {
    let (b, c) = (User::demo(2), User::demo(3));
    let paths = [
        "/pod/v2/users/presence?limit=100".to_owned(),
        "/api/v1/settings/Presence_broadcast_disabled".to_owned(),
        "/api/v2/presence/definitions".to_owned(),
        "/api/v2/presence/sources".to_owned(),
        "/api/v2/presence/settings".to_owned(),
        format!("/api/v2/users/{}/presences/purecloud", b.genesys_id),
        format!(
            "/api/v2/users/presences/purecloud/bulk?id={},{}",
            b.genesys_id, c.genesys_id
        ),
    ];
    let mut out = Vec::new();
    for path in paths {
        out.push(ok(s, Method::GET, &path, None).await);
    }
    out
}

#[tokio::test]
async fn everything_changed_through_each_dialect_survives_sigterm_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("presence.toml"),
        "data_dir = \"state\"\nshutdown_timeout = \"5s\"\n[store]\nmax_feeds = 10\n",
    )
    .unwrap();
    let env = [("PRESENCE_CONFIG", "presence.toml")];
    let s = start(dir.path(), &[], &env);
    assert_eq!(
        ok(&s, Method::GET, "/readyz", None).await["status"],
        "ready"
    );
    let feed = change_everything(&s).await;
    let before = everything(&s).await;

    // A stream is open at shutdown: it gets a close frame.
    let ws_url = format!("{}/devices/v1/stream", s.base.replace("http", "ws"));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url)
            .unwrap();
    let bearer = format!("Bearer {}", s.token("Gateway")).parse().unwrap();
    request.headers_mut().insert("Authorization", bearer);
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let hello = ws.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("hello"));

    s.signal("TERM");
    let close = loop {
        match ws.next().await {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(close.map(|f| f.code), Some(CloseCode::Away));
    let _ = ws.close(None).await;
    let (status, logs) = s.wait();
    assert!(status.success(), "{status:?}: {logs:#?}");
    assert!(
        logs.iter().any(|l| l.contains("presence-server stopped")),
        "{logs:#?}"
    );
    assert!(dir.path().join("state/presence.json").exists());
    assert!(dir.path().join("state/organization.json").exists());

    let s = start(dir.path(), &[], &env);
    assert_eq!(everything(&s).await, before);
    // The feed is back; its first read after the restart is the full list.
    let read = format!("/pod/v1/presence/feed/{feed}/read");
    let (status, _) = call(&s, Method::GET, &read, None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_request_still_in_flight_at_the_deadline_does_not_hold_up_the_exit() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &["--shutdown-timeout", "200ms"], &[]);
    // A request whose headers never end: the server waits for it until the deadline.
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut stuck = tokio::net::TcpStream::connect(addr).await.unwrap();
    stuck
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    ok(&s, Method::GET, "/healthz", None).await;
    s.signal("TERM");
    let (status, logs) = s.wait();
    assert!(status.success(), "{status:?}: {logs:#?}");
    assert!(
        logs.iter().any(|l| l.contains("shutdown deadline")),
        "{logs:#?}"
    );
    assert!(
        logs.iter().any(|l| l.contains("presence-server stopped")),
        "{logs:#?}"
    );
    assert!(dir.path().join("presence-data/presence.json").exists());
}

#[tokio::test]
async fn an_organization_change_acknowledged_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &["--snapshot-interval", "1h"], &[]);
    let source = ok(
        &s,
        Method::POST,
        "/api/v2/presence/sources",
        Some(json!({"name": "phone"})),
    )
    .await;
    s.signal("KILL");
    let (status, _) = s.wait();
    assert!(!status.success());

    let s = start(dir.path(), &[], &[]);
    let path = format!(
        "/api/v2/presence/sources/{}",
        source["id"].as_str().unwrap()
    );
    assert_eq!(ok(&s, Method::GET, &path, None).await, source);
}

#[tokio::test]
async fn a_source_deleted_after_the_last_snapshot_stays_deleted_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[], &[]);
    let body = Some(json!({"name": "calendar"}));
    let source = ok(&s, Method::POST, "/api/v2/presence/sources", body).await;
    let source = source["id"].as_str().unwrap().to_owned();
    let user = User::demo(6);
    let path = format!("/api/v2/users/{}/presences/{source}", user.genesys_id);
    let body = json!({"presenceDefinition": {"id": "BUSY"}});
    ok(&s, Method::PATCH, &path, Some(body)).await;
    // The snapshot at this stop holds the user's presence from the source.
    s.signal("TERM");
    assert!(s.wait().0.success());

    let s = start(dir.path(), &[], &[]);
    let source_path = format!("/api/v2/presence/sources/{source}");
    ok(&s, Method::DELETE, &source_path, None).await;
    s.signal("KILL");
    s.wait();

    let s = start(dir.path(), &[], &[]);
    assert_eq!(call(&s, Method::GET, &source_path, None).await.0, 404);
    let own = format!("/api/v2/users/{}/presences/purecloud", user.genesys_id);
    ok(&s, Method::GET, &own, None).await;
}

/// A token issued in advance comes back from the config at every start; its logout must not.
#[tokio::test]
async fn a_logout_of_a_token_issued_in_advance_outlives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let token = "q3Zt0bW8rJ5nK2xYv7LmQa";
    let config = format!(
        "[demo]\nenabled = false\n\n[[accounts.genesys]]\nclient_id = \"reporting\"\n\
         client_secret = \"a-secret-of-enough-length\"\n\n[[accounts.tokens]]\n\
         dialect = \"genesys\"\naccount = \"reporting\"\ntoken = \"{token}\"\n"
    );
    std::fs::write(dir.path().join("presence.toml"), config).unwrap();
    let args = ["--config", "presence.toml"];
    let get = |s: &Server, method: Method, path: &str| {
        reqwest::Client::new()
            .request(method, s.url(path))
            .header("Authorization", format!("Bearer {token}"))
            .send()
    };
    let s = start(dir.path(), &args, &[]);
    let definitions = "/api/v2/presencedefinitions";
    assert_eq!(
        get(&s, Method::GET, definitions).await.unwrap().status(),
        200
    );
    let logout = get(&s, Method::DELETE, "/api/v2/tokens/me").await.unwrap();
    assert!(logout.status().is_success(), "{}", logout.status());
    assert_eq!(
        get(&s, Method::GET, definitions).await.unwrap().status(),
        401
    );
    // Killed, not stopped: the revocation was written before the logout was answered.
    s.signal("KILL");
    s.wait();

    let s = start(dir.path(), &args, &[]);
    assert_eq!(
        get(&s, Method::GET, definitions).await.unwrap().status(),
        401
    );
}

#[tokio::test]
async fn a_truncated_snapshot_falls_back_to_the_previous_one_and_garbage_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let a = User::demo(5);
    // Two clean stops: the second snapshot's write keeps the first as the previous one.
    for category in ["BUSY", "AWAY"] {
        let s = start(dir.path(), &[], &[]);
        let body = json!({"userId": a.id, "category": category});
        ok(&s, Method::POST, "/pod/v3/user/presence", Some(body)).await;
        s.signal("TERM");
        assert!(s.wait().0.success());
    }
    let data = dir.path().join("presence-data");
    let latest = data.join("presence.json");
    let bytes = std::fs::read(&latest).unwrap();
    std::fs::write(&latest, &bytes[..bytes.len() / 2]).unwrap();

    let s = start(dir.path(), &[], &[]);
    let presence = ok(
        &s,
        Method::GET,
        &format!("/pod/v3/user/{}/presence", a.id),
        None,
    )
    .await;
    assert_eq!(
        presence["category"], "BUSY",
        "the previous snapshot's state"
    );
    let warned = s
        .startup
        .iter()
        .any(|l| l.contains("presence.json") && l.contains("previous snapshot"));
    assert!(warned, "{:#?}", s.startup);
    drop(s);

    // Garbage with no previous snapshot: the start stops and names the file.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("presence-data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("presence.json"), b"\x00\x13garbage{").unwrap();
    let (status, stderr) = run_to_end(dir.path(), &[]);
    assert!(!status.success());
    assert!(stderr.contains("presence.json"), "{stderr}");
    // The same for a truncated organization file: acknowledged changes are never dropped.
    std::fs::remove_file(data.join("presence.json")).unwrap();
    std::fs::write(data.join("organization.json"), b"{\"definitions\": [").unwrap();
    let (status, stderr) = run_to_end(dir.path(), &[]);
    assert!(!status.success());
    assert!(stderr.contains("organization.json"), "{stderr}");
}

#[test]
fn a_config_file_with_a_bad_key_or_value_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "adress = \"127.0.0.1:1\"\n").unwrap();
    let (status, stderr) = run_to_end(dir.path(), &["--config", "bad.toml"]);
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.contains("bad.toml") && stderr.contains("adress"),
        "{stderr}"
    );

    std::fs::write(&config, "[store]\nmax_page = 0\n").unwrap();
    let (status, stderr) = run_to_end(dir.path(), &["--config", "bad.toml"]);
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("[store]"), "{stderr}");

    let (status, stderr) = run_to_end(dir.path(), &["--snapshot-interval", "soon"]);
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("--snapshot-interval"), "{stderr}");
}

#[tokio::test]
async fn metrics_parse_as_openmetrics_text_and_move_with_requests() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[], &[]);
    let before = scrape(&s).await;
    let users = gauge(&before, "presence_users");
    let route = "/pod/v3/user/{uid}/presence";
    for n in 0..3 {
        let body = json!({"userId": User::demo(n).id, "category": "BUSY"});
        ok(&s, Method::POST, "/pod/v3/user/presence", Some(body)).await;
        let path = format!("/pod/v3/user/{}/presence", User::demo(n).id);
        ok(&s, Method::GET, &path, None).await;
    }
    let unknown = call(&s, Method::GET, "/pod/v3/user/1/presence", None).await;
    assert_eq!(unknown.0, 404);
    ok(&s, Method::POST, "/pod/v1/presence/feed/create", None).await;
    let after = scrape(&s).await;
    let moved = |route: &str, status: &str| {
        requests(&after, route, status) - requests(&before, route, status)
    };
    assert_eq!(moved(route, "200"), 3.0);
    assert_eq!(moved(route, "404"), 1.0);
    assert_eq!(moved("/pod/v3/user/presence", "200"), 3.0);
    assert_eq!(moved("/metrics", "200"), 1.0);
    assert_eq!(gauge(&after, "presence_users") - users, 3.0);
    assert_eq!(gauge(&after, "presence_feeds"), 1.0);
    assert!(gauge(&after, "presence_log_entries") >= 3.0);
    assert!(gauge(&after, "presence_live_tokens") >= 3.0);
    assert_eq!(gauge(&after, "presence_subscribers"), 0.0);
    let latency = after.families["presence_http_request_duration_seconds"]
        .iter_samples()
        .find(|x| label(x, "route").as_deref() == Some(route))
        .map(|x| match &x.value {
            OpenMetricsValue::Histogram(h) => h.count,
            other => panic!("not a histogram: {other:?}"),
        });
    assert_eq!(latency, Some(Some(4)), "a latency histogram for {route}");
}

type Exposition =
    openmetrics_parser::MetricsExposition<openmetrics_parser::OpenMetricsType, OpenMetricsValue>;

/// `/metrics`, parsed as OpenMetrics text (what `prometheus-client` writes and Prometheus reads).
async fn scrape(s: &Server) -> Exposition {
    let text = reqwest::get(s.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    openmetrics_parser::openmetrics::parse_openmetrics(&text).expect("OpenMetrics text")
}

/// A sample's label.
fn label(sample: &openmetrics_parser::Sample<OpenMetricsValue>, name: &str) -> Option<String> {
    let labels = sample.get_labelset().ok()?;
    labels.get_label_value(name).map(str::to_owned)
}

/// Requests counted for `route` and `status` (0 if none yet).
fn requests(e: &Exposition, route: &str, status: &str) -> f64 {
    let Some(family) = e.families.get("presence_http_requests") else {
        return 0.0;
    };
    family
        .iter_samples()
        .filter(|x| label(x, "route").as_deref() == Some(route))
        .filter(|x| label(x, "status").as_deref() == Some(status))
        .map(|x| match &x.value {
            OpenMetricsValue::Counter(c) => c.value.as_f64(),
            other => panic!("not a counter: {other:?}"),
        })
        .sum()
}

/// A gauge's value.
fn gauge(e: &Exposition, name: &str) -> f64 {
    let family = e.families.get(name).unwrap_or_else(|| panic!("no {name}"));
    match family.iter_samples().next().map(|x| &x.value) {
        Some(OpenMetricsValue::Gauge(n)) => n.as_f64(),
        other => panic!("{name} is not a gauge: {other:?}"),
    }
}

/// One log line per request: its route, status and the account the guard authenticated (also
/// on a 403), `-` without one; never a token.
#[tokio::test]
async fn each_request_logs_one_line_naming_its_account_and_never_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[], &[]);
    let user = User::demo(0).id;
    let heartbeat = format!("/devices/v1/users/{user}/sessions/1/heartbeat");
    let send = |method: Method, path: &str, header: (&str, String)| {
        reqwest::Client::new()
            .request(method, s.url(path))
            .header(header.0, header.1)
            .send()
    };
    let (symphony, genesys) = (s.token("Symphony"), s.token("Genesys"));
    let bearer = |t: &str| ("Authorization", format!("Bearer {t}"));
    let answers = [
        send(
            Method::GET,
            "/pod/v2/users/presence",
            ("sessionToken", symphony.clone()),
        )
        .await,
        send(Method::POST, &heartbeat, bearer(&genesys)).await,
        send(
            Method::GET,
            "/api/v2/presencedefinitions",
            bearer("not-a-token"),
        )
        .await,
        send(Method::GET, "/healthz", ("X-Nothing", String::new())).await,
    ];
    let statuses: Vec<u16> = answers
        .into_iter()
        .map(|a| a.expect("request").status().as_u16())
        .collect();
    assert_eq!(statuses, [200, 403, 401, 200]);
    s.signal("TERM");
    let (status, logs) = s.wait();
    assert!(status.success(), "{status:?}");
    let lines: Vec<Value> = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "request")
        .collect();
    let seen: Vec<(String, u64, String)> = lines
        .iter()
        .map(|l| {
            let text = |k: &str| l[k].as_str().unwrap_or_default().to_owned();
            (
                text("route"),
                l["status"].as_u64().unwrap_or(0),
                text("account"),
            )
        })
        .collect();
    let expected = [
        ("/pod/v2/users/presence", 200, "symphony:presence-bot"),
        (
            "/devices/v1/users/{userId}/sessions/{sessionId}/heartbeat",
            403,
            "genesys:demo-client",
        ),
        ("/api/v2/presencedefinitions", 401, "-"),
        ("/healthz", 200, "-"),
    ]
    .map(|(r, s, a)| (r.to_owned(), s, a.to_owned()));
    assert_eq!(seen, expected, "{logs:#?}");
    for token in [&symphony, &genesys] {
        assert!(
            !logs.iter().any(|l| l.contains(token.as_str())),
            "{logs:#?}"
        );
    }
}
