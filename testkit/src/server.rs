//! An HTTP app served on a loopback port for as long as its owner lives: what the Runtime API and
//! the recording `@connections` endpoint both are.

use std::net::SocketAddr;

/// The running server; dropping it stops the server.
pub(crate) struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Serves `app` on a free loopback port; `what` names it in a panic if serving fails.
    pub async fn start(app: axum::Router, what: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let addr = listener.local_addr().expect("an address");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap_or_else(|err| panic!("{what} stopped serving: {err}"));
        });
        Self { addr, task }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
