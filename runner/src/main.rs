//! The `comet` binary; see the library docs for the commands.

fn main() -> anyhow::Result<()> {
    comet_runner::malloc::limit_malloc_arenas();
    comet_runner::main_entry()
}
