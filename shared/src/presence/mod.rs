//! The presence port: who is a member of each channel, and the exact count that tells when a
//! channel gains its first member or loses its last, with its adapters beside it — [`memory`] for
//! the local gateway and tests, [`dynamodb`] for Lambda (the same table as the connections).

//! [`membership`] is what every join and leave sets off (the frame for the watchers, the events for
//! the backend); [`settings`] whether presence is on and where events go.

mod dynamodb;
mod membership;
mod memory;
mod port;
mod settings;

pub use dynamodb::DynamoPresence;
pub use membership::Membership;
pub use memory::MemoryPresence;
pub use port::{Change, Member, Presence, Roster};
pub use settings::PresenceSettings;
