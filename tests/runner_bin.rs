//! `comet` built inside the test crate, so `cargo test` compiles the runner once with the test
//! build's features; identical to `target/release/comet`.

fn main() -> anyhow::Result<()> {
    comet_runner::malloc::limit_malloc_arenas();
    comet_runner::main_entry()
}
