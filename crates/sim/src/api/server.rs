//! Serving the API over TCP with a hand on every connection, so the simulator can fail the way networks do: a
//! handler can drop its own connection without answering (after committing a write), and an outage closes the
//! listener and every open connection for a while (clients get "connection refused"), then listens again on the
//! same address.
//!
//! ```text
//!  accept ─▶ connection task: HTTP/1.1 ─▶ router (request extension: DropConnection)
//!                 │ ends on: the client leaving, DropConnection::now(), an outage, shutdown
//!  outage(10 s): close the listener and every connection ─▶ wait ─▶ bind the same address again
//! ```

use axum::Router;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, oneshot, watch};

/// Lets a request handler close its own connection at once, without an answer.
#[derive(Clone, Debug, Default)]
pub(crate) struct DropConnection(Arc<Notify>);

impl DropConnection {
    /// Closes the connection the request came on.
    pub(crate) fn now(&self) {
        self.0.notify_one();
    }
}

/// A request for an outage of `duration`; the sender hears when the API is down, and when it listens again.
pub(crate) struct Outage {
    pub(crate) duration: Duration,
    pub(crate) down: oneshot::Sender<()>,
    pub(crate) back: oneshot::Sender<()>,
}

/// Serves `router` on `listener` (plain HTTP) and on `secure` (TLS) until `shutdown` turns true.
pub(crate) async fn serve(
    mut listener: TcpListener,
    secure: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
    router: Router,
    shutdown: watch::Receiver<bool>,
    mut outages: mpsc::Receiver<Outage>,
) {
    let Ok(address) = listener.local_addr() else {
        tracing::error!("fledge-sim API listener has no address");
        return;
    };
    let (mut secure_listener, acceptor) = match secure {
        Some((listener, acceptor)) => (Some(listener), Some(acceptor)),
        None => (None, None),
    };
    let secure_address = secure_listener.as_ref().and_then(|listener| listener.local_addr().ok());
    // Bumped to close every open connection (an outage, or shutdown).
    let (close_all, _) = watch::channel(0u64);
    loop {
        let during_outage = shutdown.clone();
        let for_connections = shutdown.clone();
        tokio::select! {
            biased;
            () = stopped(shutdown.clone()) => break,
            Some(outage) = outages.recv() => {
                drop(listener);
                drop(secure_listener.take());
                close_all.send_modify(|generation| *generation += 1);
                let _ = outage.down.send(());
                tokio::select! {
                    () = stopped(during_outage.clone()) => break,
                    () = tokio::time::sleep(outage.duration) => {}
                }
                listener = match rebind(address).await {
                    Some(listener) => listener,
                    None => return,
                };
                if let Some(secure_address) = secure_address {
                    secure_listener = rebind(secure_address).await;
                }
                let _ = outage.back.send(());
            }
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, router.clone(), close_all.subscribe(), for_connections));
            }
            accepted = accept(secure_listener.as_ref()) => {
                let (Ok((stream, _)), Some(acceptor)) = (accepted, acceptor.clone()) else { continue };
                let _ = stream.set_nodelay(true);
                let (router, closing) = (router.clone(), close_all.subscribe());
                tokio::spawn(async move {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream)).await
                    {
                        connection(stream, router, closing, for_connections).await;
                    }
                });
            }
        }
    }
    close_all.send_modify(|generation| *generation += 1);
}

/// The next connection on `listener`, or never without one.
async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Binds `address` again after an outage (the port may take a moment to be free).
async fn rebind(address: SocketAddr) -> Option<TcpListener> {
    for _ in 0..100 {
        match TcpListener::bind(address).await {
            Ok(listener) => return Some(listener),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    tracing::error!(%address, "fledge-sim could not listen again after an outage");
    None
}

async fn connection<S>(stream: S, router: Router, mut close_all: watch::Receiver<u64>, shutdown: watch::Receiver<bool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let drop_connection = DropConnection::default();
    let dropped = drop_connection.0.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(drop_connection.clone());
        let router = router.clone();
        async move {
            let request = request.map(axum::body::Body::new);
            tower::ServiceExt::oneshot(router, request).await
        }
    });
    let serving = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = serving => {}
        () = dropped.notified() => {}
        _ = close_all.changed() => {}
        () = stopped(shutdown) => {}
    }
}

/// Resolves when `shutdown` turns true (or its sender is gone).
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopped| *stopped).await;
}
