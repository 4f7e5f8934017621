//! What both Lambda bootstraps do once per cold start before the runtime loop: logging and the SDK
//! configuration.
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
pub fn sdk_config(region: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new()))
        .build()
}

/// The instant Lambda ends the invocation, from the context's deadline in epoch milliseconds.
pub fn deadline(deadline_epoch_ms: u64) -> tokio::time::Instant {
    let now_ms = u64::try_from(crate::clock::epoch_ms()).unwrap_or(0);
    tokio::time::Instant::now() + std::time::Duration::from_millis(deadline_epoch_ms.saturating_sub(now_ms))
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

    #[tokio::test]
    async fn the_sdk_configuration_reads_credentials_from_the_environment() {
        let config = sdk_config("eu-west-1");
        assert_eq!(config.region().map(Region::as_ref), Some("eu-west-1"));
        assert!(config.credentials_provider().is_some());
        // Building a client from it must not need anything `load_defaults` would have provided.
        let _client = aws_sdk_sqs::Client::new(&config);
    }
}
