//! Where the gateway keeps connections and queues its jobs (`--backend`): in memory, or through the
//! AWS SDK against moto, DynamoDB Local or AWS, the table and both lanes' queues made with `--create`.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::ValueEnum;
use local::Backend;
use local::settings::DEFAULT_TABLE;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    Memory,
    Aws,
}

/// The flags that choose the backend.
#[derive(Debug, clap::Args)]
pub struct BackendArgs {
    /// Where connections and broadcasts are kept: in this process, or DynamoDB and SQS through the
    /// AWS SDK at the endpoints its usual configuration names (AWS_ENDPOINT_URL, AWS_REGION, ...).
    #[arg(long, value_enum, default_value_t = BackendKind::Memory)]
    pub(crate) backend: BackendKind,
    /// With --backend aws: the DynamoDB table of connections.
    #[arg(long, env = "CONNECTIONS_TABLE", default_value = DEFAULT_TABLE)]
    pub(crate) table: String,
    /// With --backend aws: the SQS queue of broadcasts.
    #[arg(long, env = "QUEUE_URL")]
    pub(crate) queue_url: Option<String>,
    /// With --backend aws: the bulk lane's queue (the template's BulkQueue); without it (and
    /// without --create), one queue serves everything.
    #[arg(long, env = "BULK_QUEUE_URL")]
    pub(crate) bulk_queue_url: Option<String>,
    /// With --backend aws: create the table, and the queues `local-broadcasts` and
    /// `local-broadcasts-bulk` with their dead-letter queues, if they do not exist (for moto or
    /// DynamoDB Local; on AWS, deploy the template instead).
    #[arg(long)]
    pub(crate) create: bool,
}

/// What `--create` makes the queues with.
pub(crate) struct Queues<'a> {
    pub name: &'a str,
    pub visibility_timeout: Duration,
    pub max_receive_count: u32,
    /// `--one-queue`: no bulk queue.
    pub one_queue: bool,
}

/// The backend the flags ask for, its table and queues made first with `--create`.
pub(crate) async fn backend(args: &BackendArgs, queues: Queues<'_>) -> anyhow::Result<Backend> {
    if args.backend == BackendKind::Memory {
        return Ok(Backend::Memory);
    }
    if args.queue_url.is_none() && !args.create {
        bail!("--backend aws needs --queue-url (or QUEUE_URL), or --create to make the queue");
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let mut queue_url = args.queue_url.clone();
    let mut bulk_queue_url = args.bulk_queue_url.clone();
    if args.create {
        shared::aws::provision::ensure_table(&sdk, &args.table)
            .await
            .map_err(|err| anyhow::anyhow!("could not create table {}: {err}", args.table))?;
        let (url, _dlq) = shared::aws::provision::ensure_queue(
            &sdk,
            queues.name,
            queues.visibility_timeout,
            queues.max_receive_count,
        )
        .await
        .map_err(|err| anyhow::anyhow!("could not create the queue: {err}"))?;
        queue_url.get_or_insert(url);
        if !queues.one_queue {
            let (url, _dlq) = shared::aws::provision::ensure_queue(
                &sdk,
                &format!("{}-bulk", queues.name),
                queues.visibility_timeout,
                queues.max_receive_count,
            )
            .await
            .map_err(|err| anyhow::anyhow!("could not create the bulk queue: {err}"))?;
            bulk_queue_url.get_or_insert(url);
        }
    }
    let queue_url = queue_url.context("no queue URL")?;
    let bulk_queue_url = bulk_queue_url.filter(|_| !queues.one_queue);
    Ok(Backend::Aws { sdk: Box::new(sdk), table: args.table.clone(), queue_url, bulk_queue_url })
}
