//! Every target over every file of its corpus, on stable Rust: `cargo test` in `fuzz/`.

use std::path::PathBuf;

use presence_store_fuzz::{category, cursor, ids, ops, replay, router};

fn corpus(target: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "corpus", target]
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

#[test]
fn category_corpus() {
    replay::corpus(&corpus("category"), category::run);
}

#[test]
fn ids_corpus() {
    replay::corpus(&corpus("ids"), ids::run);
}

#[test]
fn router_corpus() {
    replay::corpus(&corpus("router"), router::run);
}
