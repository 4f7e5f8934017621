//! `local publish`: what a backend does to publish without a WebSocket, one SQS `SendMessage` to the
//! job queue — the local gateway's (signed with its key pair) or a deployed stack's (with your usual
//! AWS credentials). The body is checked as the worker will check it before anything is sent.

use anyhow::Context;
use local::settings::DEFAULT_SQS_PORT;
use local::{Credentials, Settings};

/// The local gateway's queue URL, with its default SQS port and queue name.
fn local_queue_url() -> String {
    let name = Settings::default().queue_name;
    format!("http://127.0.0.1:{DEFAULT_SQS_PORT}/{}/{name}", local::settings::ACCOUNT)
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

/// Where a publish goes, read from `--queue-url`: SQS itself, or an endpoint that speaks its API.
#[derive(Debug, PartialEq, Eq)]
enum QueueUrl {
    /// A host of AWS's (`sqs.<region>.amazonaws.com`): reached with your usual AWS credentials, in
    /// the queue's own region when the host names it.
    Aws { url: String, region: Option<String> },
    /// Any other host — the local gateway, moto, a gateway on another machine: signed with the
    /// key pair given, at the URL's origin.
    Endpoint { url: String, origin: String },
}

impl QueueUrl {
    /// An SQS queue URL is `http(s)://<host>/<account>/<queue name>`; anything else is refused here
    /// rather than sent to the SDK, which takes an unknown string for a queue in AWS and goes
    /// looking for credentials.
    fn parse(raw: &str) -> anyhow::Result<Self> {
        let refuse = |why: &str| {
            anyhow::anyhow!(
                "--queue-url {raw:?} is not a queue URL ({why}): give http(s)://<host>/<account>/<queue name>, \
                 as the gateway prints it ({}) or as a stack's QueueUrl output",
                local_queue_url()
            )
        };
        let uri: axum::http::Uri = raw.parse().map_err(|_| refuse("it does not parse as a URL"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(refuse("its scheme is not http or https"));
        }
        let authority = uri.authority().ok_or_else(|| refuse("it has no host"))?;
        if uri.query().is_some() {
            return Err(refuse("it has a query"));
        }
        let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
        let name_ok = |segment: &str, max: usize| {
            (1..=max).contains(&segment.len())
                && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let [account, name] = segments[..] else {
            return Err(refuse("its path is not /<account>/<queue name>"));
        };
        if !name_ok(account, 64) || !name_ok(name.strip_suffix(".fifo").unwrap_or(name), 80) {
            return Err(refuse("its account or queue name has characters SQS does not allow"));
        }
        let host = authority.host().to_ascii_lowercase();
        let url = raw.to_owned();
        if host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn") {
            // sqs.<region>.amazonaws.com, or the legacy <region>.queue.amazonaws.com.
            let labels: Vec<&str> = host.split('.').collect();
            let region = match labels[..] {
                ["sqs", region, ..] | [region, "queue", ..] => Some(region.to_owned()),
                _ => None,
            };
            return Ok(Self::Aws { url, region });
        }
        let origin = format!("{}://{authority}", uri.scheme_str().unwrap_or("http"));
        Ok(Self::Endpoint { url, origin })
    }
}

/// Sends the publish; the SQS message id.
pub async fn run(args: &PublishArgs) -> anyhow::Result<String> {
    let body = publish_body(args)?;
    let queue = QueueUrl::parse(&args.queue_url)?;
    let (sdk, url) = match queue {
        QueueUrl::Endpoint { url, origin } => {
            let credentials = aws_credential_types::Credentials::new(
                &args.access_key_id,
                &args.secret_access_key,
                None,
                None,
                "local-gateway",
            );
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(args.region.clone()))
                .endpoint_url(origin)
                .credentials_provider(credentials)
                .load()
                .await;
            (sdk, url)
        }
        QueueUrl::Aws { url, region } => {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
            if let Some(region) = region {
                loader = loader.region(aws_config::Region::new(region));
            }
            (loader.load().await, url)
        }
    };
    let sent = aws_sdk_sqs::Client::new(&sdk)
        .send_message()
        .queue_url(&url)
        .message_body(body)
        .send()
        .await
        .map_err(|err| {
            anyhow::anyhow!("SendMessage to {url} failed: {}", aws_sdk_sqs::error::DisplayErrorContext(err))
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
    }

    #[test]
    fn a_queue_url_is_parsed_into_aws_or_an_endpoint_and_anything_else_is_refused() {
        let endpoint =
            |url: &str, origin: &str| QueueUrl::Endpoint { url: url.into(), origin: origin.into() };
        for (url, origin) in [
            ("http://127.0.0.1:9324/000000000000/local-broadcasts", "http://127.0.0.1:9324"),
            ("http://localhost:3002/q/jobs", "http://localhost:3002"),
            ("http://192.168.1.20:9324/000000000000/local-broadcasts", "http://192.168.1.20:9324"),
            ("http://localhost:9324/queue/jobs.fifo", "http://localhost:9324"),
        ] {
            assert_eq!(QueueUrl::parse(url).expect(url), endpoint(url, origin));
        }
        let aws = "https://sqs.eu-west-1.amazonaws.com/123456789012/ws-broadcasts";
        assert_eq!(
            QueueUrl::parse(aws).expect("aws"),
            QueueUrl::Aws { url: aws.into(), region: Some("eu-west-1".into()) }
        );
        let legacy = "https://us-east-2.queue.amazonaws.com/123456789012/q";
        assert!(
            matches!(QueueUrl::parse(legacy), Ok(QueueUrl::Aws { region: Some(r), .. }) if r == "us-east-2")
        );
        for bad in [
            "sqs)",
            "",
            "local-broadcasts",
            "ftp://127.0.0.1/000000000000/q",
            "http:///000000000000/q",
            "http://127.0.0.1:9324",
            "http://127.0.0.1:9324/q",
            "http://127.0.0.1:9324/a/b/c",
            "http://127.0.0.1:9324/000000000000/bad name",
            "http://127.0.0.1:9324/000000000000/q?x=1",
            "https://sqs.us-east-1.amazonaws.com/123456789012/",
        ] {
            let err = QueueUrl::parse(bad).expect_err(bad).to_string();
            assert!(err.contains("is not a queue URL") && err.contains("http(s)://"), "{bad}: {err}");
        }
    }
}
