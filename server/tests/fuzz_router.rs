//! The fuzz target `router` over every file of its corpus (`fuzz/corpus/router/`), on stable
//! Rust: the target's logic is included from `fuzz/src/` by path, so `cargo test` needs neither
//! nightly nor the fuzz crate.

#[path = "../../fuzz/src/replay.rs"]
mod replay;
// `router` also holds the encoder of its inputs (`Encode`, `encode`, `decode`), for the fuzz
// crate's seed writer and for regression tests written as requests; unused here so far.
#[allow(dead_code)]
#[path = "../../fuzz/src/router.rs"]
mod router;

use std::path::PathBuf;

#[test]
fn router_corpus() {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "fuzz", "corpus", "router"]
        .iter()
        .collect();
    replay::corpus(&dir, router::run);
}
