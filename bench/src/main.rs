//! `comet-bench`: measures Comet and prints figures (it asserts nothing; tests do that).
//!
//! ```text
//! cargo build --release -p comet-runner && cargo build --release --target wasm32-wasip2 -p comet-probe
//! cargo run --release -p comet-bench -- runner            # held requests, req/s, cold start
//! cargo build --release --target wasm32-wasip2 -p comet-fn-subscribe -p comet-fn-publish
//! cargo run --release -p comet-bench -- state             # publish/s, read/s, wake latency, idle cost
//! cargo run --release -p comet-bench -- versus            # Comet (KV, Redis) against Nchan, one table
//! ```
//! Every server is started by the harness on 127.0.0.1 in its own session (`setsid`), and the
//! harness reports its own CPU time next to each figure: on a 2-core machine the load
//! generator competes with the server.

mod client;
mod kv_engine;
mod loadgen;
mod nchan;
mod proc_stats;
mod runner_bench;
mod server;
mod sockjs_bench;
mod state_bench;
mod versus;

use clap::{Parser, Subcommand};

/// Comet benchmarks.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The runner alone, with the probe component: RSS per held request, trivial req/s,
    /// cold start.
    Runner(runner_bench::Options),
    /// Embedded key-value engines compared: SQLite WAL (normal/full sync) vs redb.
    KvEngine(kv_engine::Options),
    /// The state engine through the real functions (`spin.toml`), per backend (kv, redis):
    /// publish/s single and batched, read/s, publish→wake latency, store ops per idle waiter.
    State(state_bench::Options),
    /// SockJS through the real `sockjs` function: echo round trips over xhr-streaming and Jii
    /// fan-out of `/v1/publish` to subscribed sessions.
    Sockjs(sockjs_bench::Options),
    /// Comet (runner; embedded store and Redis) against Nchan in one run: held connections,
    /// fan-out, latency, publish throughput, reconnect storm; prints one table.
    Versus(versus::Options),
    /// A load-generator worker holding many subscribers; `versus` starts and steers these.
    Loadgen(loadgen::Options),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Loadgen(opts) = cli.command {
        // Its own single-threaded runtime: one core's worth of load per worker process.
        return loadgen::run(opts);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    match cli.command {
        Command::Runner(opts) => rt.block_on(runner_bench::run(opts)),
        Command::KvEngine(opts) => rt.block_on(kv_engine::run(opts)),
        Command::State(opts) => rt.block_on(state_bench::run(opts)),
        Command::Sockjs(opts) => rt.block_on(sockjs_bench::run(opts)),
        Command::Versus(opts) => rt.block_on(versus::run(opts)),
        Command::Loadgen(_) => Ok(()),
    }
}
