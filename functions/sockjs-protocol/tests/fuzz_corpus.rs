//! Replays the committed `jii` and `sockjs_send` fuzz corpora and crash reproducers
//! (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`) through the fuzz targets' own
//! checks, on stable.

#[path = "../../../fuzz/checks/jii.rs"]
mod jii;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;
#[path = "../../../fuzz/checks/sockjs_send.rs"]
mod sockjs_send;

const FUZZ: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz");

#[test]
fn jii_corpus() {
    replay::replay(FUZZ, "jii", jii::check);
}

#[test]
fn sockjs_send_corpus() {
    replay::replay(FUZZ, "sockjs_send", sockjs_send::check);
}
