//! What runs inside a session: the Jii-comet protocol, or SockJS's test services.

use comet_edge::access::{Access, is_private, now_secs};
use comet_edge::error::ApiError;
use comet_state::{Channel, Log, NewMessage, Position, SessionId};

use crate::Ctx;
use crate::action;
use crate::jii::{self, Command};
use crate::settings::AppKind;
use crate::store::{Queued, enqueue};

/// Jii's "all channels" pseudo-channel; Comet has no global firehose, so it is refused.
const JII_ALL_CHANNEL: &str = "__allVfcOS7";

/// A session application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    /// Jii-comet commands.
    Jii,
    /// SockJS test service `echo`: every message comes back.
    Echo,
    /// SockJS test service `close`: closes with `3000 "Go away!"` on open.
    Close,
}

impl App {
    /// The application for a route prefix.
    pub fn for_prefix(kind: &AppKind, prefix: &str) -> Self {
        match kind {
            AppKind::Jii => App::Jii,
            AppKind::Test if prefix.ends_with("/close") => App::Close,
            AppKind::Test => App::Echo,
        }
    }

    /// Runs when a receive creates the session, before the open frame goes out.
    ///
    /// # Errors
    /// The store fails.
    pub async fn on_open(&self, ctx: &Ctx, id: &SessionId) -> Result<(), ApiError> {
        if *self == App::Close {
            ctx.sessions.close_with(id, 3000, "Go away!").await?;
        }
        Ok(())
    }

    /// Handles a batch of client messages, in order.
    ///
    /// # Errors
    /// The store fails.
    pub async fn on_messages(
        &self,
        ctx: &Ctx,
        id: &SessionId,
        messages: Vec<String>,
    ) -> Result<(), ApiError> {
        match self {
            App::Echo => {
                let echoes: Vec<Queued> = messages.into_iter().map(Queued::Message).collect();
                enqueue(&ctx.inst.log, id, &echoes).await?;
                Ok(())
            }
            App::Close => Ok(()),
            App::Jii => jii_messages(ctx, id, &messages).await,
        }
    }
}

/// The `error <json>` message Comet sends for a refused command (Jii clients ignore it).
fn refusal(command: &str, e: &ApiError) -> Queued {
    Queued::Message(format!(
        "error {}",
        serde_json::json!({ "command": command, "code": e.code, "message": e.message })
    ))
}

async fn jii_messages(ctx: &Ctx, id: &SessionId, messages: &[String]) -> Result<(), ApiError> {
    let mut replies = Vec::new();
    let mut subscriptions_changed = false;
    for message in messages {
        match jii::parse(message) {
            Command::Subscribe { channel, token } => match subscribable(ctx, channel, token) {
                Ok((channel, valid_until)) => {
                    let info = ctx.inst.log.info(&channel).await?;
                    let head = Position {
                        epoch: info.epoch,
                        seq: info.last_seq,
                    };
                    ctx.sessions
                        .subscribe(id, &[(channel.clone(), head)])
                        .await?;
                    ctx.sessions
                        .set_token_expiry(id, &channel, valid_until)
                        .await?;
                    subscriptions_changed = true;
                }
                Err(e) => replies.push(refusal("subscribe", &e)),
            },
            Command::Unsubscribe(name) => {
                if let Ok(channel) = Channel::new(name) {
                    ctx.sessions.unsubscribe(id, &[channel]).await?;
                    subscriptions_changed = true;
                }
            }
            Command::Publish { channel, data } => match publishable(ctx, channel, data) {
                Ok(message) => {
                    ctx.inst.log.publish(&[message]).await?;
                }
                Err(e) => replies.push(refusal("channel", &e)),
            },
            Command::Action { route, params } => {
                replies.push(Queued::Message(
                    action::call(&ctx.settings, id.as_str(), route, params).await,
                ));
            }
            Command::Unknown => {}
        }
    }
    if subscriptions_changed {
        // Wakes a receiver on any instance so it re-reads the subscriptions now.
        replies.push(Queued::Wake);
    }
    enqueue(&ctx.inst.log, id, &replies).await?;
    Ok(())
}

/// The channel, if this session may read it, and until when (private channels: the token's
/// validity; the receiver drops the subscription after that).
fn subscribable(
    ctx: &Ctx,
    name: &str,
    token: Option<&str>,
) -> Result<(Channel, Option<u64>), ApiError> {
    if name == JII_ALL_CHANNEL {
        return Err(ApiError::new(
            http::StatusCode::FORBIDDEN,
            "channel_forbidden",
            "Comet has no all-channels subscription",
        ));
    }
    let channel = Channel::new(name)?;
    let access = match token {
        Some(t) => Access::from_token(t, &ctx.config, now_secs()),
        None => Access::Anonymous,
    };
    access.check(&channel, &ctx.config)?;
    let valid_until = is_private(&channel, &ctx.config)
        .then(|| access.valid_until())
        .flatten();
    Ok((channel, valid_until))
}

fn publishable(ctx: &Ctx, name: &str, data: &str) -> Result<NewMessage, ApiError> {
    let channel = Channel::new(name)?;
    if !ctx.settings.may_publish(channel.as_str()) {
        return Err(ApiError::new(
            http::StatusCode::FORBIDDEN,
            "publish_forbidden",
            "clients may not publish to this channel (see the client_publish variable)",
        ));
    }
    Ok(NewMessage::new(channel, &jii::stored_data(data), None)?)
}
