//! The fuzz targets of `fuzz/` over every file of their corpora (`fuzz/corpus/<target>/`), on
//! stable Rust, as part of the crate's own tests: the targets' logic is included from
//! `fuzz/src/` by path, so `cargo test` needs neither nightly nor the fuzz crate. `category`
//! and `ids` need the `serde`
//! feature.
//!
//! The regression tests at the end are inputs the fuzzers found, kept by name.

mod model;

#[cfg(feature = "serde")]
#[path = "../fuzz/src/category.rs"]
mod category;
#[path = "../fuzz/src/cursor.rs"]
mod cursor;
#[cfg(feature = "serde")]
#[path = "../fuzz/src/ids.rs"]
mod ids;
#[path = "../fuzz/src/ops.rs"]
mod ops;
#[path = "../fuzz/src/replay.rs"]
mod replay;

use std::path::PathBuf;

fn corpus(target: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "fuzz", "corpus", target]
        .iter()
        .collect()
}

#[test]
fn ops_corpus() {
    replay::corpus(&corpus("ops"), ops::run);
}

#[test]
fn cursor_corpus() {
    replay::corpus(&corpus("cursor"), cursor::run);
}

#[cfg(feature = "serde")]
#[test]
fn category_corpus() {
    replay::corpus(&corpus("category"), category::run);
}

#[cfg(feature = "serde")]
#[test]
fn ids_corpus() {
    replay::corpus(&corpus("ids"), ids::run);
}

/// `ids` found it at once: a snapshot whose user has version `u64::MAX` overflowed the restored
/// log's next sequence (`newest + 1`) and panicked in `restore`. Now `InvalidSnapshot`.
#[cfg(feature = "serde")]
#[test]
fn restore_of_a_version_at_u64_max_is_refused() {
    let json = br#"{"taken_at":0,"users":[{"user":1,"own":{"category":"BUSY","requested":"BUSY","activity":"ACTIVE","updated_at":18446744073709551615,"version":18446744073709551615,"message":null,"definition":null,"source":null},"sessions":[{"id":1,"last_seen":18446744073709551615,"active":true}],"primary":null,"sources":[]}],"sources":[],"definitions":[]}"#;
    ids::run(json);
    let snapshot = serde_json::from_slice(json).unwrap();
    assert!(matches!(
        presence_store::PresenceStore::<u64>::restore(Default::default(), snapshot),
        Err(presence_store::Error::InvalidSnapshot { .. })
    ));
}
