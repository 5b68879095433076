//! `spin:variables/variables@3.0.0`: a guest reads its component's variables.
//!
//! Values were resolved at startup (defaults, `SPIN_VARIABLE_*`), so a lookup is a map read.

use wasmtime::component::Accessor;

use super::spin_variables_api::{Error, Host, HostWithStore};
use super::{Ctx, SpinHost};

impl Host for Ctx {}

impl<T> HostWithStore<T> for SpinHost {
    async fn get(acc: &Accessor<T, Self>, name: String) -> wasmtime::Result<Result<String, Error>> {
        if crate::variables::validate_name(&name).is_err() {
            return Ok(Err(Error::InvalidName(name)));
        }
        Ok(acc.with(|mut a| {
            let ctx: &mut Ctx = a.get();
            ctx.host
                .variables
                .get(&name)
                .cloned()
                .ok_or(Error::Undefined(name))
        }))
    }
}
