//! A function's bootstrap started as Lambda starts it: a process with nothing but the environment
//! it is given, its standard output (where EMF lines go) kept line by line.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[derive(Debug)]
pub struct Bootstrap {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Bootstrap {
    /// Starts `path` with exactly `env`; it is killed when this is dropped.
    pub fn start(path: &str, env: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut child = Command::new(path)
            .env_clear()
            .envs(env)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("could not start {path}: {err}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let kept = stdout.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(line);
            }
        });
        Self { child, stdout }
    }

    /// The lines written so far that are CloudWatch EMF documents (they carry `_aws`).
    pub fn emf_lines(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line.get("_aws").is_some())
            .collect()
    }

    /// Waits (at most `wait`) for the EMF line `matches` accepts.
    pub async fn emf_line(&self, wait: Duration, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(line) = self.emf_lines().into_iter().find(|line| matches(line)) {
                return line;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no such EMF line; lines: {:?}",
                self.emf_lines()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How the process ended, waiting at most `wait`; `None` if it is still running.
    pub async fn exited(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(wait, self.child.wait()).await.ok().map(|status| status.expect("a status"))
    }
}
