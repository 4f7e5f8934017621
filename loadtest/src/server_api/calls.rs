//! Calling the server API as a backend does — a bearer token, SigV4, or (as backends did before)
//! SQS `SendMessage` — paced: each call sent when due, whatever became of those before it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use authorizer::token::{DevClaims, mint};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// The development secret the bench's gateway verifies tokens with.
pub const SECRET: &str = "bench-server-api-secret-bench-server-api";

/// A token for `sub`, a server's when `server`.
pub fn token(sub: &str, server: bool) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let scope = server.then(|| shared::identity::SERVER_SCOPE.to_owned());
    Ok(mint(
        SECRET.as_bytes(),
        &DevClaims { sub: sub.into(), scope, exp: now + 3600, ..DevClaims::default() },
    )?)
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Way {
    Token,
    SigV4,
    Sqs,
}

#[derive(Debug)]
pub struct Caller {
    pub http: reqwest::Client,
    pub base: String,
    pub bearer: String,
    /// The gateway's key pair, which SigV4 calls are signed with.
    pub credentials: aws_credential_types::Credentials,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

impl Caller {
    /// Sends one publish; the server API's answer for it (none through SQS).
    pub async fn publish(&self, way: Way, body: &Value) -> anyhow::Result<Option<Value>> {
        if way == Way::Sqs {
            let mut message = body.clone();
            message["action"] = json!("publish");
            self.sqs
                .send_message()
                .queue_url(&self.queue_url)
                .message_body(message.to_string())
                .send()
                .await?;
            return Ok(None);
        }
        let path = if way == Way::Token { "api/publish" } else { "iam/api/publish" };
        let mut request = self.http.post(format!("{}/{path}", self.base)).body(body.to_string()).build()?;
        if way == Way::Token {
            request
                .headers_mut()
                .insert(reqwest::header::AUTHORIZATION, format!("Bearer {}", self.bearer).parse()?);
        } else {
            local::signing::sign(&mut request, self.credentials.clone(), "us-east-1")?;
        }
        let response = self.http.execute(request).await?;
        ensure!(response.status().is_success(), "answered {}", response.status());
        let answer: Value = serde_json::from_str(&response.text().await?)?;
        Ok(answer["published"].get(0).cloned())
    }
}

/// Sends `bodies` at `rate` a second (each one at `due + offset`), at most `concurrency` at once: the
/// answers in order, each timed from when it was due, and how long the whole took.
pub async fn paced(
    caller: &Arc<Caller>,
    way: Way,
    bodies: Vec<(Duration, Value)>,
    concurrency: usize,
) -> anyhow::Result<(Vec<Option<Value>>, Histogram<u64>, Duration)> {
    let gate = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(bodies.len());
    for (at, body) in bodies {
        let due = started + at;
        tokio::time::sleep_until(due).await;
        let permit = gate.clone().acquire_owned().await?;
        let caller = caller.clone();
        tasks.push(tokio::spawn(async move {
            let answer = caller.publish(way, &body).await;
            drop(permit);
            answer.map(|answer| (answer, due.elapsed()))
        }));
    }
    let mut latency = Histogram::<u64>::new(3)?;
    let mut answers = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (answer, took) = task.await??;
        latency.record((took.as_micros() as u64).max(1))?;
        answers.push(answer);
    }
    Ok((answers, latency, started.elapsed()))
}

/// `q` of `h`, in milliseconds.
pub fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}
