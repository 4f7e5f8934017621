//! `echo`, and plain text: the message goes back to its sender unchanged, through the route response.

use async_trait::async_trait;
use shared::InputError;

use super::contract::{Action, Context};
use super::fields::Fields;
use super::reply::{Refusal, Reply};

pub struct Echo;

/// `{"action":"echo","data":X}`: `data` is required, as for every action that carries one.
pub fn parse(mut fields: Fields) -> Result<Box<dyn Action>, InputError> {
    fields.data()?;
    Ok(Box::new(Echo))
}

#[async_trait]
impl Action for Echo {
    async fn apply(self: Box<Self>, cx: &Context<'_>) -> Result<Reply, Refusal> {
        Ok(Reply::Text(cx.body.to_owned()))
    }
}
