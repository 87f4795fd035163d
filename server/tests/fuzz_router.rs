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

/// The fuzz target picks its requests from a table of routes of its own; it must list every
/// route the server serves (the guard's table), or some go unfuzzed.
#[test]
fn the_fuzz_table_lists_every_route_the_server_serves() {
    // Placeholders are named differently in the two tables (`{id}` here, `{feed}` there).
    let shape = |path: &str| {
        path.split('/')
            .map(|s| if s.starts_with('{') { "{}" } else { s })
            .collect::<Vec<_>>()
            .join("/")
    };
    let fuzzed: std::collections::BTreeSet<(String, String)> = router::ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), shape(r.path)))
        .collect();
    let served: std::collections::BTreeSet<(String, String)> = presence_server::authz::ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), shape(r.path)))
        .collect();
    assert_eq!(
        served.difference(&fuzzed).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "served but not fuzzed"
    );
    assert_eq!(
        fuzzed.difference(&served).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "fuzzed but not served"
    );
    assert_eq!(router::ROUTES.len(), served.len());
}
