//! Replays the committed fuzz corpora and crash reproducers (`fuzz/corpus/<target>/`,
//! `fuzz/regressions/<target>/`) through the fuzz targets' own checks, on stable.

#[path = "../../fuzz/checks/cursor.rs"]
mod cursor;
#[path = "../../fuzz/checks/envelope.rs"]
mod envelope;
#[path = "../../fuzz/checks/replay.rs"]
mod replay;

const FUZZ: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz");

#[test]
fn cursor_corpus() {
    replay::replay(FUZZ, "cursor", cursor::check);
}

#[test]
fn envelope_corpus() {
    replay::replay(FUZZ, "envelope", envelope::check);
}
