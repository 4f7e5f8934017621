//! Ids in the shapes API Gateway issues them.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use shared::ConnectionId;

/// A fresh connection id: 16 base64 characters like AWS's, from 96 random bits. AWS's own ids are 11
/// bytes and end in `=`; 12 bytes fill all 16 characters with randomness instead. The URL-safe alphabet
/// keeps ids usable verbatim in `@connections/{id}` URLs.
pub fn connection_id() -> ConnectionId {
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    // Always valid: 16 characters of the URL-safe alphabet.
    ConnectionId::parse(&URL_SAFE_NO_PAD.encode(bytes)).unwrap_or_else(|_| unreachable!())
}

/// A request or message id in AWS's shape (`TWegAcC4EowCHnA=`).
pub fn request_id() -> String {
    let mut bytes = [0u8; 11];
    rand::rng().fill_bytes(&mut bytes);
    STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn connection_ids_are_16_base64_characters_and_do_not_repeat() {
        let ids: HashSet<String> = (0..10_000).map(|_| connection_id().to_string()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            assert_eq!(id.len(), 16);
            assert_eq!(URL_SAFE_NO_PAD.decode(id).expect("base64").len(), 12);
        }
    }

    #[test]
    fn request_ids_look_like_aws_ones() {
        let id = request_id();
        assert_eq!(id.len(), 16);
        assert!(id.ends_with('='));
    }
}
