//! `local publish`: what a backend does to publish without a WebSocket, one SQS `SendMessage` to the
//! job queue — the local gateway's (signed with its key pair) or a deployed stack's (with your usual
//! AWS credentials). The body is checked as the worker will check it before anything is sent.

use std::net::IpAddr;

use anyhow::Context;
use local::settings::DEFAULT_SQS_PORT;
use local::{Credentials, Settings};

/// The local gateway's queue URL, with its default SQS port and queue name.
fn local_queue_url() -> String {
    let name = Settings::default().queue_name;
    format!("http://127.0.0.1:{DEFAULT_SQS_PORT}/{}/{name}", local::sqs::ACCOUNT)
}

#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// The channel: `user/<sub>` reaches every connection of one user.
    #[arg(long)]
    pub(crate) channel: String,
    /// The message's `data`: any JSON.
    #[arg(long)]
    data: String,
    /// A UUID to give the message, so that subscribers recognise a retried publish as a duplicate.
    #[arg(long)]
    id: Option<String>,
    /// The queue: the local gateway's (printed at its start), or a deployed stack's QueueUrl output,
    /// which is reached with your usual AWS credentials.
    #[arg(long, env = "QUEUE_URL", default_value_t = local_queue_url())]
    queue_url: String,
    /// For a local queue: the gateway's --access-key-id, --secret-access-key and --region.
    #[arg(long, default_value_t = Credentials::default().access_key_id)]
    access_key_id: String,
    #[arg(long, default_value_t = Credentials::default().secret_access_key)]
    secret_access_key: String,
    #[arg(long, default_value_t = Settings::default().api.region)]
    region: String,
}

/// The SQS message body of a backend's publish, checked as the worker will check it.
fn publish_body(args: &PublishArgs) -> anyhow::Result<String> {
    let data = serde_json::value::RawValue::from_string(args.data.clone())
        .with_context(|| format!("--data is not JSON: {}", args.data))?;
    let mut body = serde_json::json!({ "action": "publish", "channel": args.channel, "data": data });
    if let Some(id) = &args.id {
        body["id"] = serde_json::Value::from(id.as_str());
    }
    let body = body.to_string();
    shared::Job::from_queue(&body, "00000000-0000-4000-8000-000000000000", 0)
        .map_err(|err| anyhow::anyhow!("the worker would refuse this publish: {}", err.0))?;
    Ok(body)
}

/// Whether a queue URL is on this machine (the local gateway's) rather than AWS's.
fn is_local(queue_url: &str) -> bool {
    let host = queue_url.split_once("://").map_or(queue_url, |(_, rest)| rest);
    let host = host.split(['/', ':']).next().unwrap_or_default();
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Sends the publish; the SQS message id.
pub async fn run(args: &PublishArgs) -> anyhow::Result<String> {
    let body = publish_body(args)?;
    let sdk = if is_local(&args.queue_url) {
        let origin: String = {
            let (scheme, rest) = args.queue_url.split_once("://").context("the queue URL has no scheme")?;
            format!("{scheme}://{}", rest.split('/').next().unwrap_or_default())
        };
        let credentials = aws_credential_types::Credentials::new(
            &args.access_key_id,
            &args.secret_access_key,
            None,
            None,
            "local-gateway",
        );
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(args.region.clone()))
            .endpoint_url(origin)
            .credentials_provider(credentials)
            .load()
            .await
    } else {
        // sqs.<region>.amazonaws.com/<account>/<name>: the queue's own region, whatever the profile's.
        let region =
            args.queue_url.split("sqs.").nth(1).and_then(|rest| rest.split('.').next()).map(str::to_owned);
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = region {
            loader = loader.region(aws_config::Region::new(region));
        }
        loader.load().await
    };
    let sent = aws_sdk_sqs::Client::new(&sdk)
        .send_message()
        .queue_url(&args.queue_url)
        .message_body(body)
        .send()
        .await
        .map_err(|err| {
            anyhow::anyhow!(
                "SendMessage to {} failed: {}",
                args.queue_url,
                aws_sdk_sqs::error::DisplayErrorContext(err)
            )
        })?;
    Ok(sent.message_id.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_is_checked_before_it_is_sent_and_local_queues_are_told_from_aws_ones() {
        let args = |channel: &str, data: &str| PublishArgs {
            channel: channel.into(),
            data: data.into(),
            id: None,
            queue_url: String::new(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            region: String::new(),
        };
        let body = publish_body(&args("user/alice", r#"{"text":"shipped"}"#)).expect("a body");
        assert_eq!(body, r#"{"action":"publish","channel":"user/alice","data":{"text":"shipped"}}"#);
        assert!(publish_body(&args("chat/*", "1")).is_err(), "a wildcard");
        assert!(publish_body(&args("chat", "{not json")).is_err(), "not JSON");
        assert!(is_local("http://127.0.0.1:9324/000000000000/local-broadcasts"));
        assert!(is_local("http://localhost:3002/q"));
        assert!(!is_local("https://sqs.eu-west-1.amazonaws.com/123456789012/ws-broadcasts"));
    }
}
