//! Replays the committed `token` fuzz corpus and crash reproducers (`fuzz/corpus/token/`,
//! `fuzz/regressions/token/`) through the fuzz target's own check, on stable.

#[path = "../../../fuzz/checks/replay.rs"]
mod replay;
#[path = "../../../fuzz/checks/token.rs"]
mod token;

#[test]
fn token_corpus() {
    replay::replay(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz"),
        "token",
        token::check,
    );
}
