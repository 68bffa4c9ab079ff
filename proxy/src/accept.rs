//! The accept loop the hand-written frontends (MySQL, RESP) share.

use std::future::Future;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Accepts connections on `listener` until `cancel` fires and runs `serve` for each on a task
/// of its own. A failed accept (out of descriptors …) is logged and retried after a pause; a
/// connection that ends with an error is logged at debug level.
pub(crate) async fn accept_loop<F, Fut>(
    listener: TcpListener,
    cancel: &CancellationToken,
    protocol: &'static str,
    serve: F,
) -> std::io::Result<()>
where
    F: Fn(TcpStream, std::net::SocketAddr) -> Fut,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "{protocol} frontend listening");
    }
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "{protocol} accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let connection = serve(stream, peer);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "{protocol} connection ended with an error");
            }
        });
    }
}
