//! The stamp the swarm puts on what it sends, and recognises in what it receives: who published it,
//! its sequence number and when.
//!
//! It travels as the `data` of `{"action":"broadcast"|"echo","data":…}` and comes back inside the
//! broadcast envelope (or as the echoed message itself), so the swarm can tell loss, duplication and
//! latency without trusting anything the server adds.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The publishing connection's index.
    pub p: u32,
    /// Its sequence number for that publisher.
    pub s: u64,
    /// Microseconds since the swarm started, when it was sent.
    pub t: u64,
    /// Filler up to the requested message size.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pad: String,
}

/// The action a stamp is sent with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Broadcast,
    Echo,
    /// A publish to the swarm's channel with this number ([`channel_name`]).
    Publish(u32),
}

/// The name of the swarm's channel number `n`: `load/c<n>`, all below the wildcard [`ALL_CHANNELS`].
pub fn channel_name(n: u32) -> String {
    format!("load/c{n}")
}

/// The wildcard that matches every channel the swarm publishes to.
pub const ALL_CHANNELS: &str = "load/*";

impl Stamp {
    /// The message to send, padded so that it is at least `size` bytes long.
    pub fn message(&self, action: Action, size: usize) -> String {
        let envelope = |stamp: &Stamp| match action {
            Action::Broadcast => serde_json::json!({ "action": "broadcast", "data": stamp }),
            Action::Echo => serde_json::json!({ "action": "echo", "data": stamp }),
            Action::Publish(n) => {
                serde_json::json!({ "action": "publish", "channel": channel_name(n), "data": stamp })
            }
        };
        let bare = envelope(self).to_string();
        if bare.len() >= size {
            return bare;
        }
        let padded = Stamp { pad: "x".repeat(size - bare.len() - r#","pad":"""#.len()), ..self.clone() };
        envelope(&padded).to_string()
    }

    /// The stamp in a received frame: a broadcast envelope or an echoed message both carry it as `data`.
    pub fn find(frame: &str) -> Option<Self> {
        #[derive(Deserialize)]
        struct Carrier {
            data: Stamp,
        }
        serde_json::from_str::<Carrier>(frame).ok().map(|c| c.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_survives_the_envelope_and_the_echo() {
        let stamp = Stamp { p: 3, s: 17, t: 123_456, pad: String::new() };
        let sent = stamp.message(Action::Echo, 0);
        assert_eq!(Stamp::find(&sent), Some(stamp.clone()));
        let envelope = format!(
            r#"{{"type":"broadcast","id":"x","from":"y","sentAt":1,"data":{}}}"#,
            serde_json::to_string(&stamp).expect("json")
        );
        assert_eq!(Stamp::find(&envelope), Some(stamp));
    }

    #[test]
    fn messages_are_padded_to_the_requested_size() {
        let stamp = Stamp { p: 0, s: 0, t: 0, pad: String::new() };
        for size in [200, 1024, 32 * 1024] {
            let message = stamp.message(Action::Broadcast, size);
            assert!(message.len() >= size && message.len() < size + 4, "{size}: {}", message.len());
            assert!(Stamp::find(&message).is_some());
        }
    }

    #[test]
    fn a_publish_names_its_channel_and_the_message_frame_carries_the_stamp() {
        let stamp = Stamp { p: 1, s: 2, t: 3, pad: String::new() };
        let sent: serde_json::Value =
            serde_json::from_str(&stamp.message(Action::Publish(7), 0)).expect("json");
        assert_eq!((sent["action"].as_str(), sent["channel"].as_str()), (Some("publish"), Some("load/c7")));
        let frame = format!(
            r#"{{"type":"message","channel":"load/c7","id":"x","from":"y","sentAt":1,"data":{}}}"#,
            serde_json::to_string(&stamp).expect("json")
        );
        assert_eq!(Stamp::find(&frame), Some(stamp));
    }

    #[test]
    fn frames_without_a_stamp_are_not_mistaken_for_one() {
        assert_eq!(Stamp::find(r#"{"error":{"code":"invalid_json","message":"x"}}"#), None);
        assert_eq!(Stamp::find("Hello"), None);
    }
}
