//! Writes the seed inputs of each target's corpus (`corpus/<target>/seed-*`). Ignored: the
//! seeds are committed; run it again only to change them:
//! `cargo test --test seeds -- --ignored`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use presence_store::{
    Activity, Category, ManualClock, PresenceStore, SetMode, SourceId, SourceUpdate, StoreConfig,
    SystemPresence,
};

fn write(target: &str, name: &str, data: &[u8]) {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "corpus", target]
        .iter()
        .collect();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
}

/// xorshift64*: the same bytes every run.
struct Rng(u64);

impl Rng {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
            })
            .collect()
    }
}

/// A store with every layer in use: sessions, sets, a message, a definition, a source with
/// presences and a primary, and a removal.
fn busy_store(shards: usize) -> PresenceStore<u64> {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let config = StoreConfig::default().with_shards(shards);
    let store = PresenceStore::with_clock(config, clock.clone());
    let lunch = store
        .create_definition(
            SystemPresence::Meal,
            BTreeMap::from([
                ("en_US".into(), "Lunch".into()),
                ("fr_FR".into(), "Déjeuner".into()),
            ]),
        )
        .unwrap();
    let teams = store.create_source("Teams").unwrap();
    {
        let created = store.create_source("Calendar").unwrap();
        let retire = SourceUpdate {
            deactivated: Some(true),
            ..Default::default()
        };
        store.update_source(&created.id, retire).unwrap()
    };
    for user in 0..10u64 {
        store.heartbeat(&user, user % 3, Activity::Active).unwrap();
        if user % 2 == 0 {
            store.heartbeat(&user, 100 + user, Activity::Idle).unwrap();
        }
        store
            .set(&user, Category::ALL[user as usize % 11], SetMode::Soft)
            .unwrap();
        clock.advance(Duration::from_millis(250));
    }
    store.set_message(&1, "on leave").unwrap();
    store.set_definition(&2, &lunch.id, SetMode::Hard).unwrap();
    store
        .set_source_presence(&3, &teams.id, &lunch.id, Some("in Teams"))
        .unwrap();
    store.set_primary_source(&3, &teams.id).unwrap();
    store
        .set_source_presence(&4, &SourceId::DEFAULT, &lunch.id, None)
        .unwrap();
    store.remove(&5);
    store.set(&u64::MAX, Category::Busy, SetMode::Hard).unwrap();
    store
}

#[test]
#[ignore]
fn write_seed_corpora() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    // ops: operation sequences of every length.
    for (i, len) in [8, 16, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024]
        .into_iter()
        .enumerate()
    {
        write("ops", &format!("{i:02}"), &rng.bytes(len));
    }

    // cursor: tokens stores print, and malformed ones of every kind.
    let mut tokens: Vec<String> = Vec::new();
    for shards in [1, 4, 16] {
        let store = busy_store(shards);
        tokens.push(store.cursor().to_string());
    }
    tokens.extend(
        [
            "",
            "A",
            "AA",
            "AQ",
            "AQA",
            "AQAB",
            "AQkA",
            "AgEB",
            "====",
            "ab+/",
            "AQ==",
            "_-_-",
            "AQ\u{e9}A",
            "AQkBAQ",
            "AQn_____________AQ",
        ]
        .map(String::from),
    );
    let long = tokens[2].clone();
    tokens.push(format!("{long}AA"));
    tokens.push(long[..long.len() - 1].to_owned());
    for (i, token) in tokens.iter().enumerate() {
        write("cursor", &format!("{i:02}"), token.as_bytes());
    }
    write("cursor", "raw-shards0", &[1, 9, 0]);
    write(
        "cursor",
        "raw-overlong",
        &[
            1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ],
    );

    // category: every name the parsers know, in other cases, and near misses.
    let mut words: Vec<String> = Vec::new();
    for c in Category::ALL {
        words.push(c.as_str().to_owned());
        words.push(c.as_str().to_ascii_lowercase());
    }
    for p in SystemPresence::ALL {
        words.push(p.display_name().to_owned());
    }
    words.extend(
        [
            "",
            " ",
            "AVAILABLE ",
            "DO-NOT-DISTURB",
            "ONLINE",
            "\"AVAILABLE\"",
            "00000000000000ff",
            "+fffffffffffffff",
            "-000000000000001",
            "0123456789ABCDEF",
            "0123456789abcdeg",
            "PURECLOUD",
            "purecloud",
            "8b0f6a3c-2d1e-4f5a-9b7c-1d2e3f4a5b6c",
        ]
        .map(String::from),
    );
    words.push("x".repeat(128));
    words.push("x".repeat(129));
    words.push("é".repeat(65));
    for (i, word) in words.iter().enumerate() {
        write("category", &format!("{i:02}"), word.as_bytes());
    }
    write("category", "invalid-utf8", &[0xff, 0xfe, b'A']);

    // ids: real snapshots as JSON, broken ones, and structured inputs.
    for (i, shards) in [1, 4].into_iter().enumerate() {
        let json = serde_json::to_vec_pretty(&busy_store(shards).snapshot()).unwrap();
        write("ids", &format!("snapshot-{i}"), &json);
    }
    let empty = serde_json::to_vec(&busy_store(1).snapshot()).unwrap();
    let text = String::from_utf8(empty).unwrap();
    let broken = [
        r#"{"taken_at":0,"users":[],"sources":[],"definitions":[]}"#.to_owned(),
        r#"{"taken_at":0,"users":[{"user":1,"own":{"category":"BUSY","requested":"BUSY","activity":"ACTIVE","updated_at":18446744073709551615,"version":18446744073709551615,"message":null,"definition":null,"source":null},"sessions":[{"id":1,"last_seen":18446744073709551615,"active":true}],"primary":null,"sources":[]}],"sources":[],"definitions":[]}"#.to_owned(),
        text.replacen("\"user\":0", "\"user\":1", 1),
        text.replacen("PURECLOUD", "NOPE", 1),
        text.replacen("\"system\":false", "\"system\":true", 1),
        text[..text.len() / 2].to_owned(),
    ];
    for (i, json) in broken.iter().enumerate() {
        write("ids", &format!("json-{i}"), json.as_bytes());
    }
    for (i, len) in [16, 64, 256, 1024].into_iter().enumerate() {
        let mut data = rng.bytes(len);
        if data[0] == b'{' {
            data[0] = 0;
        }
        write("ids", &format!("{i:02}"), &data);
    }
}
