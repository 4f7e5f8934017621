//! The port: one more message from a connection and its user, allowed or refused with how long to
//! wait; and the limits, as the template's parameters and the gateway's flags set them.

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::ConnectionId;
use crate::environment::Env;
use crate::error::BoxError;

/// A sustained rate with its burst: `per_second` tokens a second, at most `burst` saved up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Rate {
    /// `per_second` with a burst of two seconds' worth: a client that paused may catch up at once.
    pub fn per_second(per_second: u32) -> Option<Self> {
        (per_second > 0).then(|| Self { per_second, burst: per_second.saturating_mul(2) })
    }
}

/// The limits on clients' `publish` and `broadcast` messages; `None` is no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaSettings {
    /// `PUBLISH_RATE_PER_CONNECTION` (25 by default; 0: none).
    pub per_connection: Option<Rate>,
    /// `PUBLISH_RATE_PER_USER` (50 by default; 0: none): all of a token's connections together.
    pub per_user: Option<Rate>,
}

impl QuotaSettings {
    /// A chat's typist sends a message or two a second and a live cursor about twenty: these leave
    /// both untouched, and hold a client sending as fast as its socket allows (thousands a second)
    /// to a trickle.
    pub const DEFAULT_PER_CONNECTION: u32 = 25;
    pub const DEFAULT_PER_USER: u32 = 50;

    /// No limit at all.
    pub const UNLIMITED: Self = Self { per_connection: None, per_user: None };

    pub fn new(per_connection: u32, per_user: u32) -> Self {
        Self { per_connection: Rate::per_second(per_connection), per_user: Rate::per_second(per_user) }
    }

    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        Self::new(
            env.optional("PUBLISH_RATE_PER_CONNECTION", Self::DEFAULT_PER_CONNECTION),
            env.optional("PUBLISH_RATE_PER_USER", Self::DEFAULT_PER_USER),
        )
    }
}

impl Default for QuotaSettings {
    fn default() -> Self {
        Self::new(Self::DEFAULT_PER_CONNECTION, Self::DEFAULT_PER_USER)
    }
}

/// A namespace's own quotas (`namespaces.toml`'s `publish_rate_per_connection` and
/// `publish_rate_per_user`), each in place of the stack's where given: its channels are counted in
/// buckets of their own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaOverride {
    pub per_connection: Option<u32>,
    pub per_user: Option<u32>,
}

impl QuotaOverride {
    /// The quotas this namespace's channels have over the stack's `defaults`.
    pub fn over(self, defaults: QuotaSettings) -> QuotaSettings {
        QuotaSettings {
            per_connection: self.per_connection.map_or(defaults.per_connection, Rate::per_second),
            per_user: self.per_user.map_or(defaults.per_user, Rate::per_second),
        }
    }
}

/// What one more message was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    Allowed,
    /// Refused: the connection's or the user's quota is spent; one more fits after `retry_after`.
    /// `flooding`: the connection has gone on sending after being refused, [`FLOOD_FACTOR`] times
    /// its quota and more — not a client that waits as it is told: the ingress closes it.
    Limited {
        retry_after: Duration,
        per_user: bool,
        flooding: bool,
    },
}

/// How many times its quota a connection may go on sending after being refused before it counts as
/// flooding: a client that waits `retryAfterMs` is refused about once a wait, never this often.
pub const FLOOD_FACTOR: u32 = 4;

/// How long a user whose connection was closed for flooding is refused a new one (`$connect`
/// answered 429): a flooder that reconnects to go on would otherwise spend the stage's shared bucket
/// again, a quota's burst and four times it in refusals per connection. A minute makes that not
/// worth it, and a client whose user fixed it is back soon.
pub const BARRED_FOR: Duration = Duration::from_secs(60);

/// Why the counts could not be read or kept.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// The store behind them failed: the ingress lets the message through (fails open) — quotas
    /// guard the bill and the others' share, and a message refused for a store's fault would be lost
    /// for nothing.
    #[error("the quota store is unavailable: {0}")]
    Unavailable(#[source] BoxError),
}

/// Counts clients' messages against their quotas.
#[async_trait]
pub trait Quotas: Send + Sync {
    /// Takes one message from `connection` (and from `user`, when it has one) if both quotas allow:
    /// the stack's, or those of `namespace` when it has its own.
    async fn take(
        &self,
        connection: &ConnectionId,
        user: Option<&str>,
        namespace: Option<(&str, QuotaOverride)>,
    ) -> Result<Taken, QuotaError>;

    /// Refuses `user`'s new connections (their token's `sub`) for `period`. Only users are barred:
    /// an anonymous client is known by its address alone, which a whole office or a carrier's NAT
    /// may share, and the local gateway's every client too.
    async fn bar(&self, user: &str, period: Duration) -> Result<(), QuotaError>;

    /// How much longer `user`'s new connections are refused, if they are.
    async fn barred(&self, user: &str) -> Result<Option<Duration>, QuotaError>;
}
