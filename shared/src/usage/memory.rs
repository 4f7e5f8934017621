//! The counts in the process: exact for the local gateway, whose ingress and workers share it.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::port::Usage;
use crate::error::StoreError;

/// Counts by sender and minute; a minute is forgotten once a later one is counted.
#[derive(Debug, Default)]
pub struct MemoryUsage {
    counts: Mutex<HashMap<(String, i64), u64>>,
}

impl MemoryUsage {
    /// How many (sender, minute) counts are kept.
    pub fn len(&self) -> usize {
        crate::sync::lock(&self.counts).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl Usage for MemoryUsage {
    async fn add(&self, sender: &str, minute: i64, deliveries: u64) -> Result<(), StoreError> {
        let mut counts = crate::sync::lock(&self.counts);
        counts.retain(|(_, counted), _| *counted >= minute - 1);
        *counts.entry((sender.to_owned(), minute)).or_default() += deliveries;
        Ok(())
    }

    async fn used(&self, sender: &str, minute: i64) -> Result<u64, StoreError> {
        Ok(crate::sync::lock(&self.counts).get(&(sender.to_owned(), minute)).copied().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_sender_and_minute_is_counted_apart() {
        let usage = MemoryUsage::default();
        usage.add("user:mallory", 7, 1_000).await.expect("added");
        usage.add("user:mallory", 7, 500).await.expect("added");
        usage.add("user:alice", 7, 3).await.expect("added");
        assert_eq!(usage.used("user:mallory", 7).await.expect("read"), 1_500);
        assert_eq!(usage.used("user:alice", 7).await.expect("read"), 3);
        assert_eq!(usage.used("user:mallory", 8).await.expect("read"), 0, "a new minute starts at 0");
    }
}
