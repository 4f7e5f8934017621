//! Wall-clock time in the units API Gateway and SQS use.

/// Epoch milliseconds now, like API Gateway's `connectedAt` and `requestTimeEpoch`.
pub fn epoch_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
