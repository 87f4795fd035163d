//! Replays a target's corpus on stable Rust: runs the target over every file of a directory and
//! names each file that fails.

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

/// Runs `run` over every file in `dir` (sorted by name); panics naming each file that panics.
/// Returns how many files it ran.
pub fn corpus(dir: &Path, run: fn(&[u8])) -> usize {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    let mut failed = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if panic::catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} inputs of {} fail (their panics are printed above):\n{}",
        failed.len(),
        files.len(),
        dir.display(),
        failed.join("\n")
    );
    files.len()
}
