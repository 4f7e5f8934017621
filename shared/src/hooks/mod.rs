//! Hooks: the app's own functions asked whether a subscribe or a publish goes through, in the shapes
//! of AppSync Events' direct Lambda integration, so that a function written for it (with Powertools'
//! AppSync Events resolver, say) works here unchanged.
//!
//! [`port`] is how a function is invoked ([`Hooks`]: Lambda's `Invoke`, what it answers, or an
//! `Event` invocation for an event hook); [`shapes`] the request a hook receives and how its answer
//! is read ([`SubscribeVerdict`], [`PublishVerdict`]); [`lambda`] the adapter over the Lambda SDK, on AWS or, locally, against any
//! Invoke API (`cargo lambda watch`, `sam local start-lambda`).

pub mod lambda;
pub mod port;
pub mod shapes;

pub use lambda::LambdaHooks;
pub use port::{HookError, Hooks, Invoked};
pub use shapes::{Asked, Caller, HookFailure, PublishVerdict, SubscribeVerdict};
