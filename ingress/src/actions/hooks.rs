//! Asking a channel's hooks, as its namespace names them: the subscribe hook about a `subscribe`
//! (a resubscribe with `since` too), a `history` or a `presence`; the publish hook about a client's
//! `publish`, before its message takes an offset. A token's patterns were checked first: a hook can
//! only narrow what a token allows. A hook that decides nothing — too slow, raising anything but
//! `UnauthorizedException`, answering what cannot be read — is what its namespace's `on_failure`
//! says: refused `unavailable` (the default) or let through unchanged.

use shared::hooks::shapes::{self, Asked, Caller, HookFailure, PublishVerdict, SubscribeVerdict};
use shared::namespaces::{Hook, OnFailure};
use shared::{ChannelPattern, Envelope, InputError};

use super::contract::Context;
use super::reply::Refusal;

/// Whether the subscribe hook of `pattern`'s namespace lets this connection `action` it.
pub(super) async fn may_subscribe(
    cx: &Context<'_>,
    pattern: &ChannelPattern,
    action: &'static str,
) -> Result<(), Refusal> {
    let Some(hook) = &cx.ports.namespaces.of_pattern(pattern).subscribe_hook else { return Ok(()) };
    let request = shapes::request(caller(cx), Asked::Subscribe { pattern, action });
    let verdict = match ask(cx, hook, request).await {
        Ok(invoked) => shapes::subscribe_verdict(Ok(invoked)),
        Err(failure) => Err(failure),
    };
    match verdict {
        Ok(SubscribeVerdict::Allow) => Ok(()),
        Ok(SubscribeVerdict::Refuse(message)) => {
            Err(InputError::RefusedByHook { verb: verb(action), channel: pattern.to_string(), message }
                .into())
        }
        Err(failure) => failed(cx, hook, "subscribe", failure),
    }
}

/// What the publish hook of the message's namespace makes of it: the message to publish (its data
/// perhaps changed, still within API Gateway's limit), `None` when the hook dropped it, or a refusal.
pub(super) async fn publish(cx: &Context<'_>, envelope: Envelope) -> Result<Option<Envelope>, Refusal> {
    let Some(channel) = envelope.channel.clone() else { return Ok(Some(envelope)) };
    let Some(hook) = &cx.ports.namespaces.of(&channel).publish_hook else { return Ok(Some(envelope)) };
    let Some(data) = envelope.data.as_deref() else { return Ok(Some(envelope)) };
    let request = shapes::request(caller(cx), Asked::Publish { channel: &channel, id: &envelope.id, data });
    let verdict = match ask(cx, hook, request).await {
        Ok(invoked) => shapes::publish_verdict(Ok(invoked), &envelope.id),
        Err(failure) => Err(failure),
    };
    match verdict {
        Ok(PublishVerdict::Forward(data)) if data.get() == envelope.data.as_deref().map_or("", |d| d.get()) => {
            Ok(Some(envelope))
        }
        Ok(PublishVerdict::Forward(data)) => envelope.with_data(data).map(Some).map_err(|err| {
            tracing::warn!(connection = %cx.connection, channel = %channel, "a publish hook's change passes API Gateway's limit; refused");
            Refusal::from(err)
        }),
        Ok(PublishVerdict::Drop) => Ok(None),
        Ok(PublishVerdict::Refuse(message)) => {
            Err(InputError::RefusedByHook { verb: "publish to", channel: channel.to_string(), message }.into())
        }
        Err(failure) => failed(cx, hook, "publish", failure).map(|()| Some(envelope)),
    }
}

fn caller<'a>(cx: &'a Context<'_>) -> Caller<'a> {
    Caller { connection: cx.connection, identity: cx.identity }
}

async fn ask(cx: &Context<'_>, hook: &Hook, request: Vec<u8>) -> Result<shared::hooks::Invoked, HookFailure> {
    let Some(hooks) = &cx.ports.hooks else {
        return Err(HookFailure::Invoke(shared::hooks::HookError::Refused(
            "no hook endpoint is configured to invoke it".into(),
        )));
    };
    Ok(hooks.invoke(&hook.function, request, hook.timeout).await?)
}

/// A hook that decided nothing: let through, or refused as the store's failures are.
fn failed(cx: &Context<'_>, hook: &Hook, kind: &str, failure: HookFailure) -> Result<(), Refusal> {
    tracing::warn!(connection = %cx.connection, function = %hook.function, error = %failure, "a {kind} hook decided nothing");
    match hook.on_failure {
        OnFailure::Allow => Ok(()),
        OnFailure::Refuse => Err(Refusal::Unavailable(format!(
            "the channel's {kind} hook could not decide ({}); send it again",
            reason(&failure)
        ))),
    }
}

/// Why, in a few words a client may see: not the function's own message, which may say more than it
/// should.
fn reason(failure: &HookFailure) -> &'static str {
    match failure {
        HookFailure::Invoke(shared::hooks::HookError::Timeout(_)) => "it took too long",
        HookFailure::Invoke(_) => "it could not be invoked",
        HookFailure::Raised { .. } => "it failed",
        HookFailure::Malformed(_) => "its answer could not be read",
    }
}

fn verb(action: &str) -> &'static str {
    match action {
        "history" => "read the history of",
        "presence" => "read the presence of",
        _ => "subscribe to",
    }
}
