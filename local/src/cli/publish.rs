//! `local publish`: what a backend does to publish, one call to the server API's `POST /api/publish`
//! — the local gateway's, or a deployed stack's (its `ServerApiUrl` output) — answered with the
//! message's id and, on a channel that keeps history, its offset and epoch. Signed with SigV4
//! (`/iam/api/publish`) unless given a `--token`: with the gateway's key pair for any URL but AWS's,
//! with your usual AWS credentials for `*.amazonaws.com`. The body is checked as the server API will
//! check it before anything is sent.

use anyhow::{Context, bail};
use aws_credential_types::provider::ProvideCredentials;
use local::{Credentials, Settings};

/// The local gateway's server API, at its default address.
fn local_url() -> String {
    format!("http://127.0.0.1:{}", local::settings::DEFAULT_PORT)
}

#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// The channel: `user/<sub>` reaches every connection of one user.
    #[arg(long)]
    pub(crate) channel: String,
    /// The message's `data`: any JSON.
    #[arg(long)]
    data: String,
    /// A UUID to give the message: publishing it again is answered with the same offset and
    /// delivered no second time.
    #[arg(long)]
    id: Option<String>,
    /// The server API: the local gateway (default) or a deployed stack's ServerApiUrl output.
    #[arg(long, env = "SERVER_API_URL", default_value_t = local_url())]
    url: String,
    /// A bearer token carrying the server scope (`local token --server`); without one the call is
    /// signed with SigV4.
    #[arg(long, env = "SERVER_API_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// For SigV4 to anything but AWS: the gateway's --access-key-id, --secret-access-key and --region.
    #[arg(long, default_value_t = Credentials::default().access_key_id)]
    access_key_id: String,
    #[arg(long, default_value_t = Credentials::default().secret_access_key)]
    secret_access_key: String,
    #[arg(long, default_value_t = Settings::default().api.region)]
    region: String,
}

/// The server API's body, checked as it will check it.
fn publish_body(args: &PublishArgs) -> anyhow::Result<String> {
    let data = serde_json::value::RawValue::from_string(args.data.clone())
        .with_context(|| format!("--data is not JSON: {}", args.data))?;
    shared::Channel::parse(&args.channel).with_context(|| format!("--channel {:?}", args.channel))?;
    let mut body = serde_json::json!({ "channel": args.channel, "data": data });
    if let Some(id) = &args.id {
        uuid::Uuid::parse_str(id).with_context(|| format!("--id {id:?} is not a UUID"))?;
        body["id"] = serde_json::Value::from(id.as_str());
    }
    Ok(body.to_string())
}

/// The region of an AWS endpoint's host (`<api>.execute-api.<region>.amazonaws.com`), or `None`
/// for any other host.
fn aws_region(url: &reqwest::Url) -> Option<String> {
    let host = url.host_str()?.to_ascii_lowercase();
    if !(host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn")) {
        return None;
    }
    let labels: Vec<&str> = host.split('.').collect();
    labels
        .iter()
        .position(|label| *label == "execute-api")
        .and_then(|at| labels.get(at + 1))
        .map(|r| (*r).to_owned())
}

/// Publishes; the server API's answer for the message, `{"channel","id","offset","epoch"}`.
pub async fn run(args: &PublishArgs) -> anyhow::Result<serde_json::Value> {
    let body = publish_body(args)?;
    let base =
        reqwest::Url::parse(&args.url).with_context(|| format!("--url {:?} is not a URL", args.url))?;
    if !matches!(base.scheme(), "http" | "https") {
        bail!("--url {:?} is not an http(s) URL", args.url);
    }
    let path = if args.token.is_some() { "api/publish" } else { "iam/api/publish" };
    let url = base.join(path)?;
    let client = reqwest::Client::new();
    let mut request =
        client.post(url.clone()).header("content-type", "application/json").body(body).build()?;
    match &args.token {
        Some(token) => {
            let value = format!("Bearer {token}").parse().context("--token is not a header value")?;
            request.headers_mut().insert(reqwest::header::AUTHORIZATION, value);
        }
        None => {
            let (credentials, region) = match aws_region(&url) {
                Some(region) => {
                    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                        .region(aws_config::Region::new(region.clone()))
                        .load()
                        .await;
                    let provider = sdk.credentials_provider().context("no AWS credentials are configured")?;
                    (provider.provide_credentials().await.context("no AWS credentials could be had")?, region)
                }
                None => (
                    aws_credential_types::Credentials::new(
                        &args.access_key_id,
                        &args.secret_access_key,
                        None,
                        None,
                        "local-gateway",
                    ),
                    args.region.clone(),
                ),
            };
            local::signing::sign(&mut request, credentials, &region)?;
        }
    }
    let response = client.execute(request).await.with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("POST {url} answered {status}: {text}");
    }
    let answer: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("the answer is not JSON: {text}"))?;
    answer["published"].get(0).cloned().with_context(|| format!("the answer names no message: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(channel: &str, data: &str, id: Option<&str>) -> PublishArgs {
        PublishArgs {
            channel: channel.into(),
            data: data.into(),
            id: id.map(str::to_owned),
            url: local_url(),
            token: None,
            access_key_id: String::new(),
            secret_access_key: String::new(),
            region: String::new(),
        }
    }

    #[test]
    fn a_publish_is_checked_before_it_is_sent() {
        let body = publish_body(&args("user/alice", r#"{"text":"shipped"}"#, None)).expect("a body");
        assert_eq!(body, r#"{"channel":"user/alice","data":{"text":"shipped"}}"#);
        assert!(publish_body(&args("chat/*", "1", None)).is_err(), "a wildcard");
        assert!(publish_body(&args("chat", "{not json", None)).is_err(), "not JSON");
        assert!(publish_body(&args("chat", "1", Some("7"))).is_err(), "an id that is no UUID");
        let id = "0b6f3d2e-6a43-4a57-9d4e-0d4f5b1f7a10";
        assert!(publish_body(&args("chat", "1", Some(id))).expect("a body").contains(id));
    }

    #[test]
    fn an_aws_endpoint_is_told_from_any_other_by_its_host_with_its_region() {
        let url = |text: &str| reqwest::Url::parse(text).expect("url");
        assert_eq!(
            aws_region(&url("https://abc123.execute-api.eu-west-1.amazonaws.com/")).as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(aws_region(&url("http://127.0.0.1:3001")), None);
        assert_eq!(aws_region(&url("https://realtime.example.com")), None, "a custom domain is no AWS host");
    }
}
