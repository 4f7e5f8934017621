//! What every Lambda bootstrap does once per cold start before the runtime loop: logging, the SDK
//! configuration, and telling Lambda why the start failed when it does; and, for a function that
//! two APIs invoke, telling their events apart ([`ByVersion`]).
//!
//! Both are built here from the environment Lambda gives every function, rather than through
//! `lambda_runtime`'s default subscriber and `aws_config::load_defaults`. The default subscriber
//! filters with `EnvFilter`, which links a regex engine; the default credential chain links profile
//! files, SSO, IMDS, ECS and STS web identity, none of which a Lambda function uses: its role's
//! credentials are in environment variables. Leaving both out makes each bootstrap about a megabyte
//! smaller and skips the chain's probing at cold start (BENCHMARKS.md).

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use tracing::level_filters::LevelFilter;

/// Logs to stdout (CloudWatch) at the level Lambda's advanced logging controls set
/// (`AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `INFO`), as JSON when `AWS_LAMBDA_LOG_FORMAT` is
/// `JSON`. CloudWatch stamps every line, so lines carry no time of their own.
pub fn init_tracing() {
    let level = log_level(|name| std::env::var(name).ok());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let subscriber =
        tracing_subscriber::fmt().with_max_level(level).with_target(false).with_ansi(false).without_time();
    if json {
        subscriber.json().init();
    } else {
        subscriber.init();
    }
}

fn log_level(lookup: impl Fn(&str) -> Option<String>) -> LevelFilter {
    lookup("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|| lookup("RUST_LOG"))
        .and_then(|level| level.trim().parse().ok())
        .unwrap_or(LevelFilter::INFO)
}

/// The SDK configuration for a function in `region`, signing with the credentials Lambda puts in
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`. The service clients add the
/// SDK's defaults for everything else (HTTPS client, retries, timeouts, sleep and time sources).
///
/// Endpoints follow the SDK's standard variables, as `load_defaults` would read them: a service's
/// own `AWS_ENDPOINT_URL_<SERVICE>` (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SQS`), else
/// `AWS_ENDPOINT_URL`, and neither when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is `true`. On Lambda
/// none is set; they point a bootstrap at DynamoDB Local, moto or the local gateway's SQS.
pub fn sdk_config(region: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new()))
        .service_config(EnvSettings::from_process())
        .build()
}

/// Per-service settings from environment variables, the way the SDK names them: the setting's
/// variable with the service id appended (upper case, spaces as `_`), else the variable alone.
#[derive(Debug)]
struct EnvSettings {
    vars: std::collections::HashMap<String, String>,
}

impl EnvSettings {
    fn from_process() -> Self {
        Self::from_vars(std::env::vars().filter(|(name, _)| name.starts_with("AWS_")))
    }

    fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self { vars: vars.into_iter().filter(|(_, value)| !value.trim().is_empty()).collect() }
    }
}

impl LoadServiceConfig for EnvSettings {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        let ignored =
            |name: &str| self.vars.get(name).is_some_and(|value| value.eq_ignore_ascii_case("true"));
        if key.env() == "AWS_ENDPOINT_URL" && ignored("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") {
            return None;
        }
        let service = key.service_id().to_ascii_uppercase().replace(' ', "_");
        self.vars.get(&format!("{}_{service}", key.env())).or_else(|| self.vars.get(key.env())).cloned()
    }
}

/// The `errorType` of a function that cannot start because of its environment.
pub const INVALID_CONFIGURATION: &str = "InvalidConfiguration";

/// The `errorType` of a function built with a namespace file that is wrong (its message names the
/// file's line); a function never starts with part of one.
pub const INVALID_NAMESPACES: &str = "InvalidNamespaces";

/// Tells Lambda that the function could not start, and why, through the Runtime API's
/// `/runtime/init/error`: the invocation's error then carries `error_type` (say,
/// [`INVALID_CONFIGURATION`]) and `message` instead of `Runtime.ExitError`. Returns the error for
/// `main` to return, which ends the process. Outside Lambda (no `AWS_LAMBDA_RUNTIME_API`) it only
/// returns it.
pub async fn init_failed(
    error_type: &str,
    message: impl std::fmt::Display,
) -> lambda_runtime_api_client::BoxError {
    let message = message.to_string();
    tracing::error!(error_type, error = %message, "the function could not start");
    if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API")
        && let Err(err) = report_init_error(&api, error_type, &message).await
    {
        tracing::error!(error = %err, "could not report the error to the Runtime API");
    }
    format!("{error_type}: {message}").into()
}

/// The deployment `read` from the environment, or, when it is wrong, the error [`init_failed`]
/// reported as [`INVALID_CONFIGURATION`] ([`start`] does both).
pub async fn configured<T>(
    read: Result<T, crate::environment::EnvError>,
) -> Result<T, lambda_runtime_api_client::BoxError> {
    match read {
        Ok(deployment) => Ok(deployment),
        Err(err) => Err(init_failed(INVALID_CONFIGURATION, err).await),
    }
}

/// What every bootstrap's `main` does first: logging, then its deployment read from the
/// environment (or the start failed as [`configured`] reports it).
pub async fn start<T: crate::environment::FromEnv>() -> Result<T, lambda_runtime_api_client::BoxError> {
    init_tracing();
    configured(T::from_env()).await
}

async fn report_init_error(
    api: &str,
    error_type: &str,
    message: &str,
) -> Result<(), lambda_runtime_api_client::BoxError> {
    let client = lambda_runtime_api_client::Client::builder()
        .with_endpoint(format!("http://{api}").parse()?)
        .build()?;
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message, "stackTrace": [] });
    let request = lambda_runtime_api_client::build_request()
        .method(http::Method::POST)
        .uri("/2018-06-01/runtime/init/error")
        .header("Lambda-Runtime-Function-Error-Type", error_type)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(lambda_runtime_api_client::body::Body::from(body.to_string()))?;
    let response = client.call(request).await?;
    if !response.status().is_success() {
        return Err(format!("the Runtime API answered {}", response.status()).into());
    }
    Ok(())
}

/// The instant Lambda ends the invocation, from the context's deadline in epoch milliseconds.
pub fn deadline(deadline_epoch_ms: u64) -> tokio::time::Instant {
    let now_ms = u64::try_from(crate::clock::epoch_ms()).unwrap_or(0);
    tokio::time::Instant::now() + std::time::Duration::from_millis(deadline_epoch_ms.saturating_sub(now_ms))
}

/// An event of either kind a function invoked by both an HTTP API and the WebSocket API gets (the
/// ingress: a server API request or a route's event; the authorizer: a server API call or a
/// `$connect`), told apart by the one field only payload format 2.0 carries: `"version":"2.0"`.
/// The event is read once as raw JSON, peeked at, then parsed as the kind it is, so a malformed
/// event of either kind is reported with that kind's own error.
#[derive(Debug)]
pub enum ByVersion<V2, Other> {
    /// Payload format 2.0: an HTTP API request or an HTTP API authorizer's event.
    V2(V2),
    /// Anything else: the WebSocket API's events say no version.
    Other(Other),
}

impl<'de, V2: serde::de::DeserializeOwned, Other: serde::de::DeserializeOwned> serde::Deserialize<'de>
    for ByVersion<V2, Other>
{
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(serde::Deserialize)]
        struct Peek<'a> {
            #[serde(borrow)]
            version: Option<std::borrow::Cow<'a, str>>,
        }
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        // What is not an object with a string `version` is not 2.0, and fails below as the other kind.
        let peek = serde_json::from_str::<Peek<'_>>(raw.get());
        if peek.is_ok_and(|peek| peek.version.as_deref() == Some("2.0")) {
            serde_json::from_str(raw.get()).map(Self::V2).map_err(D::Error::custom)
        } else {
            serde_json::from_str(raw.get()).map(Self::Other).map_err(D::Error::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_level_follows_lambdas_controls_then_rust_log_then_info() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        assert_eq!(
            log_level(env(&[("AWS_LAMBDA_LOG_LEVEL", "DEBUG"), ("RUST_LOG", "error")])),
            LevelFilter::DEBUG
        );
        assert_eq!(log_level(env(&[("RUST_LOG", "warn")])), LevelFilter::WARN);
        assert_eq!(log_level(env(&[])), LevelFilter::INFO);
        assert_eq!(log_level(env(&[("AWS_LAMBDA_LOG_LEVEL", "chatty")])), LevelFilter::INFO);
    }

    #[test]
    fn an_event_is_parsed_as_payload_format_2_0_only_when_it_says_so() {
        type Either = ByVersion<serde_json::Value, std::collections::BTreeMap<String, u8>>;
        assert!(matches!(
            serde_json::from_str::<Either>(r#"{"version":"2.0","a":"x"}"#),
            Ok(ByVersion::V2(_))
        ));
        let other = serde_json::from_str::<Either>(r#"{"a":1,"b":2}"#);
        assert!(matches!(other, Ok(ByVersion::Other(map)) if map.len() == 2));
        // Another version, or none an object could have, is the other kind and fails as that kind.
        for event in [r#"{"version":"1.0"}"#, r#"{"version":2.0}"#, "[1]", "not json"] {
            assert!(serde_json::from_str::<Either>(event).is_err(), "{event}");
        }
        let err = serde_json::from_str::<Either>(r#"{"version":"1.0"}"#).expect_err("a string is no u8");
        assert!(err.to_string().contains("expected u8"), "{err}");
    }

    fn endpoint_of(settings: &EnvSettings, service_id: &str) -> Option<String> {
        let key = ServiceConfigKey::builder()
            .service_id(service_id)
            .env("AWS_ENDPOINT_URL")
            .profile("endpoint_url");
        settings.load_config(key.build().expect("a key"))
    }

    #[test]
    fn a_services_own_endpoint_variable_wins_over_the_global_one_unless_endpoints_are_ignored() {
        let vars = |pairs: &[(&str, &str)]| {
            EnvSettings::from_vars(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
        };
        let both = vars(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"),
        ]);
        assert_eq!(endpoint_of(&both, "DynamoDB").as_deref(), Some("http://127.0.0.1:8000"));
        assert_eq!(endpoint_of(&both, "SQS").as_deref(), Some("http://127.0.0.1:5000"));
        let spaced = vars(&[("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI", "http://127.0.0.1:3001")]);
        assert_eq!(endpoint_of(&spaced, "ApiGatewayManagementApi").as_deref(), Some("http://127.0.0.1:3001"));
        assert_eq!(endpoint_of(&vars(&[]), "SQS"), None);
        assert_eq!(endpoint_of(&vars(&[("AWS_ENDPOINT_URL", " ")]), "SQS"), None, "blank is unset");
        let ignored = vars(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]);
        assert_eq!(endpoint_of(&ignored, "SQS"), None);
    }

    #[tokio::test]
    async fn a_client_built_from_the_configuration_sends_to_its_services_endpoint() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "test",
            )))
            .service_config(EnvSettings::from_vars([("AWS_ENDPOINT_URL_SQS".to_owned(), endpoint)]))
            .build();
        let request = tokio::spawn(async move {
            aws_sdk_sqs::Client::new(&sdk).list_queues().send().await.ok();
        });
        let (mut socket, _) = tokio::time::timeout(std::time::Duration::from_secs(10), listener.accept())
            .await
            .expect("a request")
            .expect("accept");
        let mut head = vec![0; 1024];
        let read = socket.read(&mut head).await.expect("read");
        let head = String::from_utf8_lossy(&head[..read]).to_ascii_lowercase();
        assert!(
            head.starts_with("post / http/1.1") && head.contains("x-amz-target: amazonsqs.listqueues"),
            "{head}"
        );
        drop(socket);
        request.abort();
    }

    #[tokio::test]
    async fn a_start_that_fails_is_reported_to_the_runtime_api_with_its_error_type() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let api = listener.local_addr().expect("address").to_string();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = Vec::new();
            let mut buffer = [0; 4096];
            // Until the JSON body has ended.
            while !request.ends_with(b"}") {
                let read = socket.read(&mut buffer).await.expect("read");
                if read == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..read]);
            }
            socket.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n").await.expect("write");
            String::from_utf8(request).expect("utf-8")
        });

        report_init_error(&api, INVALID_CONFIGURATION, "missing environment variables: QUEUE_URL")
            .await
            .expect("reported");

        let request = server.await.expect("the request");
        let lower = request.to_ascii_lowercase();
        assert!(lower.starts_with("post /2018-06-01/runtime/init/error http/1.1"), "{request}");
        assert!(lower.contains("lambda-runtime-function-error-type: invalidconfiguration"), "{request}");
        let body: serde_json::Value =
            serde_json::from_str(request.split("\r\n\r\n").nth(1).expect("a body")).expect("json");
        assert_eq!(body["errorType"], "InvalidConfiguration");
        assert_eq!(body["errorMessage"], "missing environment variables: QUEUE_URL");
    }

    #[tokio::test]
    async fn the_sdk_configuration_reads_credentials_from_the_environment() {
        let config = sdk_config("eu-west-1");
        assert_eq!(config.region().map(Region::as_ref), Some("eu-west-1"));
        assert!(config.credentials_provider().is_some());
        // Building a client from it must not need anything `load_defaults` would have provided.
        let _client = aws_sdk_sqs::Client::new(&config);
    }
}
