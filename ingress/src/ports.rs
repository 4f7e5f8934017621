//! The ports the ingress uses, as one value: a port added later touches the struct and the places
//! that build it, not every call of [`crate::Ingress::new`]. They are exactly the ports the stack
//! makes ([`shared::stack::StackPorts`]): the connection store, the queue, and, when on, a channel's
//! history, its members and where lifecycle events go.

/// Where connections and subscriptions are kept, where each channel's messages are numbered and kept,
/// and where jobs are queued for the worker.
pub type Ports = shared::stack::StackPorts;
