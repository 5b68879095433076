//! `comet`: runs a Spin application's `spin.toml` on one machine, the way `spin up` would.
//!
//! The library holds the whole runner so that test crates can ship a binary wrapper built with
//! their own feature set (see `tests/Cargo.toml`); `main.rs` is a one-line wrapper too.
//!
//! ```text
//! cargo run --release -p comet-runner -- up --build        # build the components, then serve
//! comet up -f spin.toml --listen 127.0.0.1:3000 --state-dir .comet
//! ```
//! On start it prints `Serving http://…` and `Admin http://…` on stdout (tests and scripts read
//! these lines), then logs one line per request on stderr.

mod admin;
mod app;
mod build;
mod health;
mod host;
pub mod kv;
pub mod malloc;
mod manifest;
mod metrics;
mod occupancy;
mod outbound;
mod redis_pool;
mod routes;
mod runtime_config;
mod server;
mod token_cmd;
pub mod toolchain;
mod variables;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Local Spin-compatible host for Comet's edge functions.
#[derive(Parser)]
#[command(name = "comet", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the application described by a Spin manifest.
    Up(UpArgs),
    /// Print a subscribe token for private channels (HMAC-SHA256, JWT-shaped).
    Token(token_cmd::TokenArgs),
}

#[derive(Args)]
struct UpArgs {
    /// The application manifest.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    manifest: PathBuf,
    /// Address to serve the application on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Address for `/metrics`, `/healthz` (readiness) and `/livez` (liveness).
    #[arg(long, default_value = "127.0.0.1:9464")]
    admin_listen: SocketAddr,
    /// Run each component's build command before serving.
    #[arg(long)]
    build: bool,
    /// Spin runtime-config file (key-value store engines).
    #[arg(long)]
    runtime_config_file: Option<PathBuf>,
    /// Where the embedded key-value store and the compile cache live
    /// [default: `.comet` beside the manifest].
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Requests one WASIp3 instance serves at once (Spin: 16). Held long-polls are cheap
    /// guest tasks, so the default is higher.
    #[arg(long, default_value_t = 256)]
    max_instance_concurrent_reuse_count: usize,
    /// Requests one instance serves before it is replaced (Spin: 128).
    #[arg(long, default_value_t = 100_000)]
    max_instance_reuse_count: usize,
    /// Seconds an idle instance is kept for reuse.
    #[arg(long, default_value_t = 10)]
    idle_instance_timeout: u64,
    /// Seconds a guest may keep running after its client left before its task is cancelled.
    /// A cancelled task retires its whole instance (wasmtime cannot cancel one task), so the
    /// default outlasts any long-poll, which ends by itself; only runaway guests are cut.
    #[arg(long, default_value_t = 65)]
    cancel_grace: u64,
    /// Longest a request may run, in seconds, streamed body included (0 = no limit).
    #[arg(long, default_value_t = 0)]
    request_timeout: u64,
    /// Seconds to wait for open connections after Ctrl-C/SIGTERM.
    #[arg(long, default_value_t = 10)]
    drain_timeout: u64,
}

/// Parses the command line and runs `comet`; the whole process lives in here.
///
/// # Errors
/// Startup failed (bad manifest, missing `.wasm`, port in use, …); the message says which.
pub fn main_entry() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match Cli::parse().command {
        Command::Token(args) => token_cmd::run(args),
        Command::Up(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?
            .block_on(up(args)),
    }
}

async fn up(args: UpArgs) -> Result<()> {
    let started = Instant::now();
    let manifest = manifest::Manifest::load(&args.manifest)?;
    if args.build {
        build::run_builds(&manifest)?;
    }
    // Absolute, because wasmtime's compile cache refuses relative directories.
    let state_dir = std::path::absolute(
        args.state_dir
            .clone()
            .unwrap_or_else(|| manifest.dir.join(".comet")),
    )
    .context("resolving the state directory")?;
    let stores = Arc::new(
        runtime_config::Stores::open(&state_dir, args.runtime_config_file.as_deref()).await?,
    );
    let engine = app::engine(&state_dir.join("cache"))?;
    let metrics = Arc::new(metrics::Metrics::default());
    let policy = app::InstancePolicy {
        max_reuse: args.max_instance_reuse_count.max(1),
        max_concurrent: args.max_instance_concurrent_reuse_count.max(1),
        idle_timeout: Duration::from_secs(args.idle_instance_timeout),
        request_timeout: (args.request_timeout > 0)
            .then(|| Duration::from_secs(args.request_timeout)),
        cancel_grace: Duration::from_secs(args.cancel_grace),
    };
    let app = app::App::load(&manifest, &engine, stores.clone(), policy, metrics.clone())?;

    let listener = server::bind(args.listen, "application").await?;
    let admin = server::bind(args.admin_listen, "admin").await?;
    let local = listener.local_addr()?;
    let admin_local = admin.local_addr()?;
    println!("Serving http://{local}");
    println!("Admin http://{admin_local}");
    println!("Available Routes ({}):", app.name());
    for (route, component) in app.routes() {
        println!("  {component}: http://{local}{route}");
    }
    for line in stores.describe() {
        println!("Key-value store {line}");
    }
    tracing::info!(ms = started.elapsed().as_millis() as u64, "ready");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let occupancy = Arc::new(occupancy::Occupancy::default());
    let admin_state = Arc::new(admin::Admin {
        metrics: metrics.clone(),
        readiness: health::Readiness::new(stores.clone(), app.dependencies().iter().cloned()),
        occupancy: occupancy.clone(),
        app_url: format!("http://{local}"),
    });
    let admin_task = tokio::spawn(admin::serve(admin, admin_state, stop_rx.clone()));
    let serving = tokio::spawn(server::serve_app(
        listener,
        app,
        metrics,
        occupancy,
        stop_rx,
        Duration::from_secs(args.drain_timeout),
    ));
    server::stop_signal().await;
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    serving.await.context("server task")??;
    admin_task.abort();
    Ok(())
}
