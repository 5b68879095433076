//! The embedded default store: SQLite in WAL mode, one file for every label.
//!
//! Operations are short (tens of microseconds) and run inline under one connection mutex;
//! atomic operations (`increment`, compare-and-swap, batches) are single SQLite transactions,
//! which is what makes concurrent publishers from many guest instances safe.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use super::{KvError, parse_counter};

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// WAL append per commit, fsync at checkpoints: survives process crashes (the default).
    Normal,
    /// fsync per commit: also survives power loss, at a large cost per publish.
    Full,
}

/// A handle on one label of the embedded database.
#[derive(Clone)]
pub struct SqliteKv {
    db: Arc<Mutex<Connection>>,
    label: Arc<str>,
}

/// The opened database file, shared by every label.
#[derive(Clone)]
pub struct SqliteDb {
    db: Arc<Mutex<Connection>>,
}

impl SqliteDb {
    /// Opens (creating if needed) the database file.
    ///
    /// # Errors
    /// The file cannot be opened or initialised.
    pub fn open(path: &Path) -> Result<Self, KvError> {
        Self::open_with(path, Sync::Normal)
    }

    /// Opens with an explicit durability level (benchmarks compare them).
    ///
    /// # Errors
    /// The file cannot be opened or initialised.
    pub fn open_with(path: &Path, sync: Sync) -> Result<Self, KvError> {
        let conn = Connection::open(path)?;
        // WAL + NORMAL: each commit is one append to the WAL file; durable against process
        // crashes (the OS holds the pages), not against power loss. busy_timeout covers a second
        // runner opening the same file.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            match sync {
                Sync::Normal => "NORMAL",
                Sync::Full => "FULL",
            },
        )?;
        conn.pragma_update(None, "busy_timeout", 5000)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (
                store TEXT NOT NULL,
                key TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            ) WITHOUT ROWID;",
        )?;
        Ok(Self {
            db: Arc::new(Mutex::new(conn)),
        })
    }

    /// A handle for one store label.
    pub fn store(&self, label: &str) -> SqliteKv {
        SqliteKv {
            db: self.db.clone(),
            label: label.into(),
        }
    }
}

impl SqliteKv {
    fn conn(&self) -> Result<MutexGuard<'_, Connection>, KvError> {
        self.db
            .lock()
            .map_err(|_| KvError::Worker("embedded store lock poisoned".into()))
    }

    /// See [`super::KvStore::get`].
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let conn = self.conn()?;
        Ok(get_in(&conn, &self.label, key)?)
    }

    /// See [`super::KvStore::set`].
    pub async fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        let conn = self.conn()?;
        set_in(&conn, &self.label, key, value)?;
        Ok(())
    }

    /// See [`super::KvStore::delete`].
    pub async fn delete(&self, key: &str) -> Result<(), KvError> {
        let conn = self.conn()?;
        conn.prepare_cached("DELETE FROM kv WHERE store = ?1 AND key = ?2")?
            .execute(params![&*self.label, key])?;
        Ok(())
    }

    /// See [`super::KvStore::exists`].
    pub async fn exists(&self, key: &str) -> Result<bool, KvError> {
        let conn = self.conn()?;
        let found = conn
            .prepare_cached("SELECT 1 FROM kv WHERE store = ?1 AND key = ?2")?
            .query_row(params![&*self.label, key], |_| Ok(()))
            .optional()?;
        Ok(found.is_some())
    }

    /// See [`super::KvStore::keys`].
    pub async fn keys(&self) -> Result<Vec<String>, KvError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached("SELECT key FROM kv WHERE store = ?1 ORDER BY key")?;
        let keys = stmt
            .query_map(params![&*self.label], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(keys)
    }

    /// See [`super::KvStore::increment`].
    pub async fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let current = parse_counter(key, get_in(&tx, &self.label, key)?.as_deref())?;
        let next = current
            .checked_add(delta)
            .ok_or_else(|| KvError::NotAnInteger(key.to_string()))?;
        set_in(&tx, &self.label, key, next.to_string().as_bytes())?;
        tx.commit()?;
        Ok(next)
    }

    /// See [`super::KvStore::compare_and_swap`].
    pub async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, KvError> {
        let conn = self.conn()?;
        let changed = match expected {
            Some(old) => conn
                .prepare_cached(
                    "UPDATE kv SET value = ?4 WHERE store = ?1 AND key = ?2 AND value = ?3",
                )?
                .execute(params![&*self.label, key, old, new])?,
            None => conn
                .prepare_cached(
                    "INSERT INTO kv (store, key, value) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                )?
                .execute(params![&*self.label, key, new])?,
        };
        Ok(changed == 1)
    }

    /// See [`super::KvStore::get_many`].
    pub async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        let conn = self.conn()?;
        keys.iter()
            .map(|k| get_in(&conn, &self.label, k).map_err(KvError::from))
            .collect()
    }

    /// See [`super::KvStore::set_many`].
    pub async fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        for (k, v) in pairs {
            set_in(&tx, &self.label, k, v)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// See [`super::KvStore::delete_many`].
    pub async fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("DELETE FROM kv WHERE store = ?1 AND key = ?2")?;
            for k in keys {
                stmt.execute(params![&*self.label, k])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

fn get_in(conn: &Connection, label: &str, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT value FROM kv WHERE store = ?1 AND key = ?2")?
        .query_row(params![label, key], |row| row.get(0))
        .optional()
}

fn set_in(conn: &Connection, label: &str, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO kv (store, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![label, key, value])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db() -> (tempfile::TempDir, SqliteDb) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SqliteDb::open(&dir.path().join("kv.db")).expect("open");
        (dir, db)
    }

    #[tokio::test]
    async fn labels_are_separate_and_values_persist_across_reopen() {
        let (dir, db) = temp_db();
        db.store("a").set("k", b"1").await.expect("set");
        assert_eq!(db.store("b").get("k").await.expect("get"), None);
        drop(db);
        let db = SqliteDb::open(&dir.path().join("kv.db")).expect("reopen");
        assert_eq!(
            db.store("a").get("k").await.expect("get"),
            Some(b"1".to_vec())
        );
    }

    #[tokio::test]
    async fn increment_and_compare_and_swap_are_exact() {
        let (_dir, db) = temp_db();
        let s = db.store("default");
        assert_eq!(s.increment("n", 5).await.expect("incr"), 5);
        assert_eq!(s.increment("n", -2).await.expect("incr"), 3);
        assert_eq!(s.get("n").await.expect("get"), Some(b"3".to_vec()));
        assert!(s.compare_and_swap("c", None, b"x").await.expect("cas"));
        assert!(!s.compare_and_swap("c", None, b"y").await.expect("cas"));
        assert!(
            !s.compare_and_swap("c", Some(b"z"), b"y")
                .await
                .expect("cas")
        );
        assert!(
            s.compare_and_swap("c", Some(b"x"), b"y")
                .await
                .expect("cas")
        );
        assert_eq!(s.get("c").await.expect("get"), Some(b"y".to_vec()));
        s.set("bad", b"nope").await.expect("set");
        assert!(matches!(
            s.increment("bad", 1).await,
            Err(KvError::NotAnInteger(_))
        ));
    }
}
