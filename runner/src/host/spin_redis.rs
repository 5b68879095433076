//! `spin:redis/redis@3.0.0`: outbound Redis for guests, checked against
//! `allowed_outbound_hosts`.
//!
//! Replies are flattened the way Spin flattens them (`redis-result` has no array case), so a
//! guest sees the same list from `comet` and from `spin up`.

use redis::Value;
use redis::aio::MultiplexedConnection;
use wasmtime::component::{Accessor, Resource};

use super::spin_redis_api::{
    Error, Host, HostConnection, HostConnectionWithStore, RedisParameter, RedisResult,
};
use super::{Ctx, SpinHost};
use crate::redis_pool::{self, RedisPool};

/// A guest's open connection: the shared pipe, plus a private one made on demand for
/// blocking commands.
pub struct OpenConnection {
    address: String,
    shared: MultiplexedConnection,
    dedicated: Option<MultiplexedConnection>,
}

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

fn flatten(value: Value, out: &mut Vec<RedisResult>) {
    match value {
        Value::Nil => out.push(RedisResult::Nil),
        Value::Int(i) => out.push(RedisResult::Int64(i)),
        Value::BulkString(b) => out.push(RedisResult::Binary(b)),
        Value::SimpleString(s) => out.push(RedisResult::Status(s)),
        Value::Okay => out.push(RedisResult::Status("OK".into())),
        Value::Array(items) | Value::Set(items) => {
            items.into_iter().for_each(|v| flatten(v, out));
        }
        Value::Map(pairs) => {
            for (k, v) in pairs {
                flatten(k, out);
                flatten(v, out);
            }
        }
        Value::Boolean(b) => out.push(RedisResult::Int64(i64::from(b))),
        Value::Double(d) => out.push(RedisResult::Binary(d.to_string().into_bytes())),
        Value::VerbatimString { text, .. } => out.push(RedisResult::Binary(text.into_bytes())),
        Value::BigNumber(n) => out.push(RedisResult::Binary(n)),
        Value::Attribute { data, .. } => flatten(*data, out),
        Value::Push { data, .. } => data.into_iter().for_each(|v| flatten(v, out)),
        Value::ServerError(e) => out.push(RedisResult::Status(format!("ERR {e:?}"))),
        _ => out.push(RedisResult::Nil),
    }
}

/// Which connection a command should use, plus the pool for reconnects.
fn connection<T>(
    acc: &Accessor<T, SpinHost>,
    handle: &Resource<OpenConnection>,
) -> Result<
    (
        String,
        MultiplexedConnection,
        Option<MultiplexedConnection>,
        RedisPool,
    ),
    Error,
> {
    acc.with(|mut a| {
        let ctx: &mut Ctx = a.get();
        let pool = ctx.host.redis.clone();
        let c = ctx.table().get(handle).map_err(other)?;
        Ok((
            c.address.clone(),
            c.shared.clone(),
            c.dedicated.clone(),
            pool,
        ))
    })
}

async fn run<T>(
    acc: &Accessor<T, SpinHost>,
    handle: &Resource<OpenConnection>,
    cmd: redis::Cmd,
    blocking: bool,
) -> Result<Value, Error> {
    let (address, shared, dedicated, pool) = connection(acc, handle)?;
    let mut conn = if blocking {
        match dedicated {
            Some(c) => c,
            None => {
                let c = redis_pool::connect(&address).await.map_err(other)?;
                acc.with(|mut a| {
                    let ctx: &mut Ctx = a.get();
                    if let Ok(open) = ctx.table().get_mut(handle) {
                        open.dedicated = Some(c.clone());
                    }
                });
                c
            }
        }
    } else {
        shared
    };
    match cmd.query_async::<Value>(&mut conn).await {
        Ok(v) => Ok(v),
        Err(e) => {
            if e.is_io_error() || e.is_connection_dropped() {
                pool.forget(&address).await;
            }
            Err(other(e))
        }
    }
}

impl Host for Ctx {}
impl HostConnection for Ctx {}

impl<T> HostConnectionWithStore<T> for SpinHost {
    async fn open(
        acc: &Accessor<T, Self>,
        address: String,
    ) -> wasmtime::Result<Result<Resource<OpenConnection>, Error>> {
        let (allowed, pool, component) = acc.with(|mut a| {
            let ctx: &mut Ctx = a.get();
            (
                ctx.host.allowed_hosts.allows_url(&address),
                ctx.host.redis.clone(),
                ctx.host.id.clone(),
            )
        });
        if !allowed {
            tracing::warn!(%component, %address, "redis open denied: not in allowed_outbound_hosts");
            return Ok(Err(Error::InvalidAddress));
        }
        let shared = match pool.shared(&address).await {
            Ok(c) => c,
            Err(e) if e.kind() == redis::ErrorKind::InvalidClientConfig => {
                return Ok(Err(Error::InvalidAddress));
            }
            Err(e) => return Ok(Err(other(e))),
        };
        Ok(acc.with(|mut a| {
            let ctx: &mut Ctx = a.get();
            ctx.table()
                .push(OpenConnection {
                    address,
                    shared,
                    dedicated: None,
                })
                .map_err(|_| Error::TooManyConnections)
        }))
    }

    async fn publish(
        acc: &Accessor<T, Self>,
        this: Resource<OpenConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(channel).arg(payload);
        Ok(run(acc, &this, cmd, false).await.map(|_| ()))
    }

    async fn get(
        acc: &Accessor<T, Self>,
        this: Resource<OpenConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        Ok(run(acc, &this, cmd, false).await.and_then(|v| match v {
            Value::Nil => Ok(None),
            Value::BulkString(b) => Ok(Some(b)),
            _ => Err(Error::TypeError),
        }))
    }

    async fn set(
        acc: &Accessor<T, Self>,
        this: Resource<OpenConnection>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value);
        Ok(run(acc, &this, cmd, false).await.map(|_| ()))
    }

    async fn incr(
        acc: &Accessor<T, Self>,
        this: Resource<OpenConnection>,
        key: String,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let mut cmd = redis::cmd("INCR");
        cmd.arg(key);
        Ok(run(acc, &this, cmd, false).await.and_then(|v| match v {
            Value::Int(i) => Ok(i),
            _ => Err(Error::TypeError),
        }))
    }

    async fn del(
        acc: &Accessor<T, Self>,
        this: Resource<OpenConnection>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(keys);
        Ok(run(acc, &this, cmd, false).await.and_then(count))
    }

    async fn sadd(
        acc: &Accessor<T, Self>,
        this: Resource<OpenConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let mut cmd = redis::cmd("SADD");
        cmd.arg(key).arg(values);
        Ok(run(acc, &this, cmd, false).await.and_then(count))
    }

    async fn smembers(
        acc: &Accessor<T, Self>,
        this: Resource<OpenConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(key);
        Ok(run(acc, &this, cmd, false)
            .await
            .and_then(|v| redis::from_redis_value::<Vec<String>>(v).map_err(|_| Error::TypeError)))
    }

    async fn srem(
        acc: &Accessor<T, Self>,
        this: Resource<OpenConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let mut cmd = redis::cmd("SREM");
        cmd.arg(key).arg(values);
        Ok(run(acc, &this, cmd, false).await.and_then(count))
    }

    async fn execute(
        acc: &Accessor<T, Self>,
        this: Resource<OpenConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
        let args: Vec<Vec<u8>> = arguments
            .into_iter()
            .map(|a| match a {
                RedisParameter::Int64(i) => i.to_string().into_bytes(),
                RedisParameter::Binary(b) => b,
            })
            .collect();
        let blocking = redis_pool::is_blocking(&command, &args);
        let mut cmd = redis::cmd(&command);
        for a in &args {
            cmd.arg(a.as_slice());
        }
        Ok(run(acc, &this, cmd, blocking).await.map(|v| {
            let mut out = Vec::new();
            flatten(v, &mut out);
            out
        }))
    }

    async fn drop(acc: &Accessor<T, Self>, rep: Resource<OpenConnection>) -> wasmtime::Result<()> {
        acc.with(|mut a| {
            let ctx: &mut Ctx = a.get();
            ctx.table().delete(rep)?;
            Ok(())
        })
    }
}

fn count(v: Value) -> Result<u32, Error> {
    match v {
        Value::Int(i) => u32::try_from(i).map_err(|_| Error::TypeError),
        _ => Err(Error::TypeError),
    }
}
