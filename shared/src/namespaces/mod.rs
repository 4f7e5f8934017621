//! Namespaces: options by kind of channel. A channel's namespace is its first segment
//! (`chat/general` → `chat`); the repository's `namespaces.toml` lists namespaces and their options,
//! and a channel in none takes the stack's defaults (the template's parameters, the gateway's flags).
//!
//! [`options`] is what a channel may be given ([`ChannelOptions`]) and the table that answers for a
//! channel ([`Namespaces`]); [`file`] reads the file, naming its line when it is wrong.

pub mod file;
pub mod options;

pub use file::{FILE, NamespacesError, parse};
pub use options::{ChannelOptions, EventHook, Hook, Namespaces, OnFailure, Publishers};
