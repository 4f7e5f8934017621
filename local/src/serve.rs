//! The HTTP server under the gateway: HTTP/1.1 only, with a time limit on every request's headers.
//!
//! API Gateway WebSocket speaks HTTP/1.1 (the upgrade) and nothing else, so an HTTP/2 preface gets no
//! HTTP/2 here either. A connection that sends no complete request head within the request timeout —
//! an idle socket, a slowloris — is closed, and none of them holds up shutdown: once it begins, every
//! connection gets [`SHUTDOWN_GRACE`] to finish the request it is serving and is then dropped.
//! Upgraded WebSocket connections are not this module's: they close through their own tasks.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Each accepted socket's kernel send buffer (Linux doubles it). A fixed size rather than the
/// kernel's autotuning, which lets a client that does not read hold up to 4 MB of kernel memory on
/// loopback: with it, such a client holds at most this, its outbox and one message in its writer.
pub const SOCKET_SEND_BUFFER: usize = 128 * 1024;

/// How long a request in progress may still take once shutdown has begun.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Accepts connections on `listener` and serves `app` on each until `shutdown`, then waits (at most
/// [`SHUTDOWN_GRACE`]) for the requests in progress.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, say: waiting lets other connections close.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        if let Err(err) = socket2::SockRef::from(&stream).set_send_buffer_size(SOCKET_SEND_BUFFER) {
            tracing::debug!(error = %err, "could not size a socket's send buffer");
        }
        connections.spawn(connection(stream, peer, app.clone(), header_timeout, shutdown.clone()));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    header_timeout: Duration,
    shutdown: CancellationToken,
) {
    let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(request)
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(SHUTDOWN_GRACE, connection.as_mut()).await {
                Ok(served) => served,
                Err(_) => return,
            }
        }
    };
    if let Err(err) = served {
        tracing::debug!(%peer, error = %err, "an HTTP connection ended with an error");
    }
}
