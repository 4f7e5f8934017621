//! `local index-connections`: the one step of an upgrade from a version before the `Connections`
//! index. Broadcasts list connections from that index, which holds the connection items that carry
//! `Conn`; those written before it do not, and a broadcast would miss them until they reconnect
//! (within API Gateway's two hours). This gives them theirs, with your usual AWS credentials.

#[derive(Debug, clap::Args)]
pub struct IndexArgs {
    /// The stack's connections table: its ConnectionsTableName output.
    #[arg(long, env = "CONNECTIONS_TABLE")]
    table: String,
}

/// Indexes the table's older connections; how many it indexed.
pub async fn run(args: &IndexArgs) -> anyhow::Result<u64> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = shared::store::DynamoStore::from_sdk(&sdk, &args.table);
    Ok(store.index_old_connections().await?)
}
