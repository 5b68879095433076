//! Spin's runtime-config file (`--runtime-config-file`): which engine backs each store label.
//!
//! The format is Spin's own, so one file configures both hosts:
//! ```toml
//! [key_value_store.default]
//! type = "redis"
//! url = "redis://127.0.0.1:6379"
//!
//! [key_value_store.cache]
//! type = "spin"            # embedded SQLite
//! path = "cache.db"        # relative to this file
//! ```
//! Labels that no file configures use the embedded database under `--state-dir`
//! (`sqlite_key_value.db`). Spin refuses unconfigured labels other than `default`; `comet` is
//! lenient there so test manifests stay short.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::kv::{KvStore, RedisKv, SqliteDb, SqliteKv};

#[derive(Debug, Deserialize, Default)]
struct RawRuntimeConfig {
    #[serde(default)]
    key_value_store: BTreeMap<String, StoreConfig>,
}

/// How one store label is backed.
#[derive(Debug, Deserialize, Clone)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StoreConfig {
    /// The embedded SQLite engine; `path` defaults to the state directory's file.
    Spin {
        /// Database file, relative to the runtime-config file.
        path: Option<PathBuf>,
    },
    /// A Redis server.
    Redis {
        /// `redis://host:port[/db]`.
        url: String,
    },
}

/// Opened stores by label, shared by every component and instance.
pub struct Stores {
    by_label: HashMap<String, KvStore>,
    default_db: SqliteDb,
}

impl Stores {
    /// Opens the embedded database and every configured store.
    ///
    /// # Errors
    /// The config file is invalid, a database cannot be opened, or Redis is unreachable.
    pub async fn open(state_dir: &Path, runtime_config: Option<&Path>) -> Result<Self> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("cannot create state dir {}", state_dir.display()))?;
        let default_path = state_dir.join("sqlite_key_value.db");
        let default_db = SqliteDb::open(&default_path)
            .with_context(|| format!("cannot open {}", default_path.display()))?;
        let mut by_label = HashMap::new();
        if let Some(file) = runtime_config {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read runtime config {}", file.display()))?;
            let raw: RawRuntimeConfig = toml::from_str(&text)
                .with_context(|| format!("{}: invalid runtime config", file.display()))?;
            let base = file.parent().unwrap_or(Path::new("."));
            let mut files: HashMap<PathBuf, SqliteDb> = HashMap::new();
            for (label, cfg) in raw.key_value_store {
                let store = match cfg {
                    StoreConfig::Spin { path: None } => KvStore::Sqlite(default_db.store(&label)),
                    StoreConfig::Spin { path: Some(p) } => {
                        let p = base.join(p);
                        let db = match files.get(&p) {
                            Some(db) => db.clone(),
                            None => {
                                let db = SqliteDb::open(&p)
                                    .with_context(|| format!("cannot open {}", p.display()))?;
                                files.insert(p.clone(), db.clone());
                                db
                            }
                        };
                        KvStore::Sqlite(db.store(&label))
                    }
                    StoreConfig::Redis { url } => {
                        if !url.starts_with("redis://") && !url.starts_with("rediss://") {
                            bail!(
                                "{}: store {label:?}: url must start with redis://",
                                file.display()
                            );
                        }
                        let kv = RedisKv::connect(&url).await.with_context(|| {
                            format!("store {label:?}: cannot connect to Redis at {url}")
                        })?;
                        KvStore::Redis(kv)
                    }
                };
                by_label.insert(label, store);
            }
        }
        Ok(Self {
            by_label,
            default_db,
        })
    }

    /// The store for a label (configured, or a label in the embedded database).
    pub fn get(&self, label: &str) -> KvStore {
        self.by_label
            .get(label)
            .cloned()
            .unwrap_or_else(|| KvStore::Sqlite(self.embedded(label)))
    }

    fn embedded(&self, label: &str) -> SqliteKv {
        self.default_db.store(label)
    }

    /// A one-line description per configured label, for the startup banner.
    pub fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .by_label
            .iter()
            .map(|(label, s)| match s {
                KvStore::Sqlite(_) => format!("{label}: embedded"),
                KvStore::Redis(r) => format!("{label}: redis {}", r.url()),
            })
            .collect();
        lines.sort();
        lines
    }
}
