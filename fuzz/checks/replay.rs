//! Replays `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through a check on stable
//! (included by the crates' `tests/fuzz_corpus.rs` with `#[path]`).

use std::path::Path;

/// Runs `check` on every file; fails on any panic, or if the corpus holds no file.
pub fn replay(fuzz_dir: &str, target: &str, check: fn(&[u8])) {
    let mut corpus = 0;
    let mut failed = Vec::new();
    for sub in ["corpus", "regressions"] {
        let dir = Path::new(fuzz_dir).join(sub).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden || !path.is_file() {
                continue;
            }
            let data = std::fs::read(&path).expect("readable input");
            corpus += usize::from(sub == "corpus");
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                failed.push(path);
            }
        }
    }
    assert!(
        corpus >= 1,
        "no corpus files for `{target}` under {fuzz_dir}/corpus"
    );
    assert!(
        failed.is_empty(),
        "inputs failing the `{target}` check: {failed:#?}"
    );
}
