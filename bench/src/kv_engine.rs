//! `comet-bench kv-engine`: why the embedded store is SQLite in WAL mode.
//!
//! Every guest key-value call is its own commit (no transactions span host calls), so what
//! matters is the cost of a small committed write, an atomic read-modify-write (`increment`,
//! the publish path) and a point read. Candidates: SQLite WAL with `synchronous=NORMAL` (our
//! default; process-crash safe), SQLite WAL with `synchronous=FULL` (fsync per commit) and
//! redb (pure Rust; its only crash-safe commit is an fsync, `Durability::Immediate`).

use std::time::{Duration, Instant};

use anyhow::Result;
use comet_runner::kv::{SqliteDb, Sync};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");

/// Options for `comet-bench kv-engine`.
#[derive(clap::Args)]
pub struct Options {
    /// Operations per measurement.
    #[arg(long, default_value_t = 5_000)]
    ops: usize,
}

fn rate(n: usize, d: Duration) -> String {
    format!("{:>9.0}/s", n as f64 / d.as_secs_f64())
}

/// Runs the comparison and prints one line per engine.
///
/// # Errors
/// A database cannot be created.
pub async fn run(opts: Options) -> Result<()> {
    let dir = tempfile::tempdir()?;
    println!(
        "# embedded key-value engines, {} ops each, one commit per op",
        opts.ops
    );
    println!(
        "{:<28} {:>11} {:>11} {:>11}",
        "engine", "set", "increment", "get"
    );
    for (name, sync) in [
        ("sqlite wal, synchronous=normal", Sync::Normal),
        ("sqlite wal, synchronous=full", Sync::Full),
    ] {
        let db = SqliteDb::open_with(
            &dir.path()
                .join(format!("{name}.db").replace([' ', ',', '='], "_")),
            sync,
        )?;
        let s = db.store("default");
        let t = Instant::now();
        for i in 0..opts.ops {
            s.set(&format!("k{i}"), b"0123456789abcdef0123456789abcdef")
                .await?;
        }
        let set = t.elapsed();
        let t = Instant::now();
        for _ in 0..opts.ops {
            s.increment("counter", 1).await?;
        }
        let incr = t.elapsed();
        let t = Instant::now();
        for i in 0..opts.ops {
            s.get(&format!("k{i}")).await?;
        }
        let get = t.elapsed();
        println!(
            "{name:<28} {} {} {}",
            rate(opts.ops, set),
            rate(opts.ops, incr),
            rate(opts.ops, get)
        );
    }
    let db = Database::create(dir.path().join("redb.db"))?;
    let t = Instant::now();
    for i in 0..opts.ops {
        let tx = db.begin_write()?;
        {
            let mut table = tx.open_table(TABLE)?;
            table.insert(
                format!("k{i}").as_str(),
                b"0123456789abcdef0123456789abcdef".as_slice(),
            )?;
        }
        tx.commit()?;
    }
    let set = t.elapsed();
    let t = Instant::now();
    for _ in 0..opts.ops {
        let tx = db.begin_write()?;
        {
            let mut table = tx.open_table(TABLE)?;
            let current = table
                .get("counter")?
                .and_then(|v| {
                    std::str::from_utf8(v.value())
                        .ok()
                        .and_then(|s| s.parse::<i64>().ok())
                })
                .unwrap_or(0);
            let next = (current + 1).to_string();
            table.insert("counter", next.as_bytes())?;
        }
        tx.commit()?;
    }
    let incr = t.elapsed();
    let t = Instant::now();
    for i in 0..opts.ops {
        let tx = db.begin_read()?;
        let table = tx.open_table(TABLE)?;
        let _ = table.get(format!("k{i}").as_str())?;
    }
    let get = t.elapsed();
    println!(
        "{:<28} {} {} {}",
        "redb, durability=immediate",
        rate(opts.ops, set),
        rate(opts.ops, incr),
        rate(opts.ops, get)
    );
    Ok(())
}
