//! The logic of the fuzz targets, one module per target, each with `run(data: &[u8])`.
//!
//! `fuzz_targets/<target>.rs` hands libFuzzer's input to `run`; `tests/replay.rs` (and the main
//! crate's `tests/fuzz_replay.rs`, which includes these modules by path) runs it over every file
//! of `corpus/<target>/` on stable Rust. `run` panics on any finding.

/// The naive reference model and its per-step reads, shared with the main crate's proptests.
#[path = "../../tests/model/mod.rs"]
mod model;

pub mod category;
pub mod cursor;
pub mod ids;
pub mod ops;
pub mod replay;
pub mod router;
