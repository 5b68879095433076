//! `comet token`: mints a subscribe token for private channels, for development and for
//! backends written in shell; any language can mint the same token (see `comet_token`).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use clap::Args;

/// Options of `comet token`.
#[derive(Args)]
pub struct TokenArgs {
    /// The deployment's `token_secret`.
    #[arg(long, env = "SPIN_VARIABLE_TOKEN_SECRET", hide_env_values = true)]
    secret: String,
    /// Channels the token opens: exact names, or prefixes ending in `*` (repeat or comma list).
    #[arg(long = "channel", short = 'c', required = true, value_delimiter = ',')]
    channels: Vec<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// Subject (who the token is for), copied into the claims.
    #[arg(long)]
    sub: Option<String>,
}

/// Prints one token on stdout.
///
/// # Errors
/// An empty secret or channel list, or a lifetime of zero.
pub fn run(args: TokenArgs) -> Result<()> {
    if args.secret.is_empty() {
        bail!("--secret (or SPIN_VARIABLE_TOKEN_SECRET) must not be empty");
    }
    if args.ttl == 0 {
        bail!("--ttl must be at least 1 second");
    }
    let channels: Vec<String> = args
        .channels
        .into_iter()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    if channels.is_empty() {
        bail!("name at least one --channel");
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("system clock before 1970")?
        .as_secs();
    let claims = comet_token::Claims {
        sub: args.sub,
        channels,
        exp: now.saturating_add(args.ttl),
        nbf: None,
    };
    let token = comet_token::mint(args.secret.as_bytes(), &claims)?;
    println!("{token}");
    Ok(())
}
