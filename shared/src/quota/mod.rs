//! Quotas: how many messages one connection, and one user, may publish or broadcast a second. API
//! Gateway's stage throttle is one bucket for every client; these keep one client from spending
//! everyone's share of the queue, the fan-out and the bill.
//!
//! [`port`] is what the ingress asks ([`Quotas`]: may this connection, of this user, send one more?)
//! and the settings ([`QuotaSettings`]); [`memory`] keeps the counts in the process — the local
//! gateway's, and each ingress Lambda instance's own (see [`memory`] for what that allows).

pub mod memory;
pub mod port;

pub use memory::MemoryQuotas;
pub use port::{BARRED_FOR, FLOOD_FACTOR, QuotaError, QuotaOverride, QuotaSettings, Quotas, Rate, Taken};
