//! The `comet` binary; see the library docs for the commands.

fn main() -> anyhow::Result<()> {
    comet_runner::main_entry()
}
