//! The accept loop and the serving of one connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::Service;

use crate::refusal::{raw, respond};
use crate::{
    BoxError, Refusal, ServeLimits, Shape, TimedBody, ACCEPT_ERROR_BACKOFF, MAX_HEADER_BYTES,
    MAX_LINGERING_REFUSALS, MAX_URI_BYTES, REFUSAL_LINGER,
};

const TARGET: &str = "sheaf::net";

/// Serve HTTP/1.1 on `listener` with a service from `make_service` per connection, within
/// `limits`, until `shutdown` resolves; then stop accepting, let every connection finish its
/// request in flight, and return. Refusals of the loop itself are worded by `shape`.
pub async fn serve<M, S, B>(
    listener: TcpListener,
    limits: ServeLimits,
    shape: Shape,
    mut make_service: M,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    M: FnMut() -> S,
    S: Service<Request<TimedBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let slots = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let connections = Arc::new(Semaphore::new(slots));
    let lingering = Arc::new(Semaphore::new(MAX_LINGERING_REFUSALS));
    let (stopping, stop) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors (EMFILE, ENFILE) or buffers: wait for some to be freed
                // rather than spin; the loop never dies of it.
                tracing::warn!(target: TARGET, error = %e, "accept failed; backing off");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => continue,
                }
            }
        };
        match connections.clone().try_acquire_owned() {
            Ok(slot) => {
                let service = make_service();
                tokio::spawn(serve_connection(
                    stream,
                    service,
                    limits.clone(),
                    shape.clone(),
                    stop.clone(),
                    slot,
                ));
            }
            Err(_) => {
                tracing::debug!(target: TARGET, max_connections = slots, "connection refused over the cap");
                refuse(stream, &shape, &lingering);
            }
        }
    }
    drop(listener);
    stopping.send_replace(true);
    // Every connection holds a slot until it is closed: all slots back means all are done.
    let _all = connections.acquire_many(slots as u32).await;
    Ok(())
}

/// Answer a connection over the cap with a 503 and close it, lingering briefly so the answer is
/// not lost to a reset; with too many lingering already, just close it.
fn refuse(stream: TcpStream, shape: &Shape, lingering: &Arc<Semaphore>) {
    let answer = raw(shape, Refusal::Overloaded);
    let Ok(linger) = lingering.clone().try_acquire_owned() else {
        let _ = stream.try_write(&answer);
        return;
    };
    tokio::spawn(async move {
        let mut stream = stream;
        let _ = tokio::time::timeout(REFUSAL_LINGER, async {
            stream.write_all(&answer).await?;
            stream.shutdown().await?;
            // Drain what the client still sends until it closes.
            let mut sink = [0u8; 4096];
            loop {
                stream.readable().await?;
                match stream.try_read(&mut sink) {
                    Ok(0) => return Ok::<_, io::Error>(()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        })
        .await;
        drop(linger);
    });
}

/// A request over the loop's own size limits, if it is.
fn oversized(request: &Request<Incoming>) -> Option<Refusal> {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return Some(Refusal::UriTooLong);
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    (headers > MAX_HEADER_BYTES).then_some(Refusal::HeadersTooLarge)
}

async fn serve_connection<S, B>(
    stream: TcpStream,
    service: S,
    limits: ServeLimits,
    shape: Shape,
    mut stop: watch::Receiver<bool>,
    slot: OwnedSemaphorePermit,
) where
    S: Service<Request<TimedBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let handler = Handler {
        service,
        shape,
        body_timeout: limits.body_timeout,
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let connection = builder.serve_connection(TokioIo::new(stream), handler);
    let mut connection = std::pin::pin!(connection);
    let stopping = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopping => {
            connection.as_mut().graceful_shutdown();
            connection.as_mut().await
        }
    };
    if let Err(e) = result {
        tracing::debug!(target: TARGET, error = %e, "connection ended with an error");
    }
    drop(slot);
}

/// A body's error, boxed.
fn boxed<E: Into<BoxError>>(error: E) -> BoxError {
    error.into()
}

/// The body of every response the loop sends.
type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// hyper's service for one connection: the loop's own checks, then the server's service with
/// the body under its deadline.
struct Handler<S> {
    service: S,
    shape: Shape,
    body_timeout: Duration,
}

impl<S, B> hyper::service::Service<Request<Incoming>> for Handler<S>
where
    S: Service<Request<TimedBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, BoxError>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        if let Some(refusal) = oversized(&request) {
            let response = respond(&self.shape, refusal)
                .map(|body| body.map_err(|never| match never {}).boxed_unsync());
            return Box::pin(std::future::ready(Ok(response)));
        }
        let request = request.map(|body| TimedBody::new(body, self.body_timeout));
        let mut service = self.service.clone();
        Box::pin(async move {
            std::future::poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(boxed)?;
            let response = service.call(request).await.map_err(boxed)?;
            Ok(response.map(|body| body.map_err(boxed).boxed_unsync()))
        })
    }
}
