//! The accept loop and the serving of one connection.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tower::Service;

use crate::refusal::{raw, respond};
use crate::reword::Reworded;
use crate::{
    BoxError, Refusal, ServeLimits, Shape, TimedBody, ACCEPT_ERROR_BACKOFF, MAX_HEADER_BYTES,
    MAX_LINGERING_REFUSALS, MAX_URI_BYTES, REFUSAL_LINGER,
};

const TARGET: &str = "sheaf::net";

/// Longest a connection admitted by evicting an idle one waits for the evicted one's slot.
const EVICTION_WAIT: Duration = Duration::from_millis(500);

/// The connections not in a request (waiting for their first header, or idle between
/// keep-alive requests), by when they became so: at the cap, a new connection takes the slot
/// of the one idle longest, among those that have not been in a request first. A
/// slow-header flood then evicts itself, an honest client, whose header follows its connect at
/// once, is served however many stalled sockets there are, and its keep-alive connection,
/// idle while it works, is not closed under it as long as a stalled socket is left.
#[derive(Default)]
struct Idle {
    next_id: std::sync::atomic::AtomicU64,
    waiting: Mutex<BTreeMap<IdleKey, Arc<Notify>>>,
}

/// A connection's order of eviction: whether it has been in a request (those that have not go
/// first), since when it is idle, and a tie-break.
type IdleKey = (bool, Instant, u64);

impl Idle {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<IdleKey, Arc<Notify>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tell the connection first in the order of eviction to close; whether there was one.
    fn evict_oldest(&self) -> bool {
        match self.lock().pop_first() {
            Some((_, evict)) => {
                evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// The connections each source address holds, for [`ServeLimits::max_connections_per_address`].
#[derive(Default)]
struct Addresses(Mutex<HashMap<IpAddr, usize>>);

impl Addresses {
    /// Count one more connection of `address`, unless it holds `max` already (0: no limit).
    fn admit(self: &Arc<Self>, address: IpAddr, max: usize) -> Option<AddressShare> {
        if max == 0 {
            return Some(AddressShare(None));
        }
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = held.entry(address).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(AddressShare(Some((self.clone(), address))))
    }
}

/// One connection of an address, counted until dropped.
struct AddressShare(Option<(Arc<Addresses>, IpAddr)>);

impl Drop for AddressShare {
    fn drop(&mut self) {
        if let Some((addresses, address)) = self.0.take() {
            let mut held = addresses.0.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(count) = held.get_mut(&address) {
                *count -= 1;
                if *count == 0 {
                    held.remove(&address);
                }
            }
        }
    }
}

/// One connection's place in [`Idle`].
struct IdleEntry {
    idle: Arc<Idle>,
    id: u64,
    evict: Arc<Notify>,
    /// Its key while it is idle.
    key: Mutex<Option<IdleKey>>,
    /// Whether it has been in a request.
    served: std::sync::atomic::AtomicBool,
}

impl IdleEntry {
    fn new(idle: &Arc<Idle>) -> Arc<Self> {
        let entry = Arc::new(IdleEntry {
            idle: idle.clone(),
            id: idle
                .next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            evict: Arc::new(Notify::new()),
            key: Mutex::new(None),
            served: std::sync::atomic::AtomicBool::new(false),
        });
        entry.set_idle(true);
        entry
    }

    /// Mark the connection idle (evictable) or in a request.
    fn set_idle(&self, idle: bool) {
        let mut key = self.key.lock().unwrap_or_else(|e| e.into_inner());
        let mut waiting = self.idle.lock();
        if let Some(old) = key.take() {
            waiting.remove(&old);
        }
        if !idle {
            self.served
                .store(true, std::sync::atomic::Ordering::Relaxed);
        } else {
            let served = self.served.load(std::sync::atomic::Ordering::Relaxed);
            let new = (served, Instant::now(), self.id);
            waiting.insert(new, self.evict.clone());
            *key = Some(new);
        }
    }
}

impl Drop for IdleEntry {
    fn drop(&mut self) {
        self.set_idle(false);
    }
}

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
    let idle = Arc::new(Idle::default());
    let addresses = Arc::new(Addresses::default());
    let over_share = raw(&shape, Refusal::Overloaded);
    let (stopping, stop) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
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
        // An address at its share is refused at once, with no task, timer or slot spent on
        // it, and takes no one's place: the answer is tried once, the socket closed.
        let Some(share) = addresses.admit(peer.ip(), limits.max_connections_per_address) else {
            tracing::debug!(target: TARGET, address = %peer.ip(), "connection refused over its address's share");
            let _ = stream.try_write(&over_share);
            continue;
        };
        let slot = match connections.clone().try_acquire_owned() {
            Ok(slot) => Some(slot),
            // At the cap: an idle connection gives way (see `Idle`), unless every one is in a
            // request (bounded like the refusals: a burst beyond that is refused).
            Err(_) => match lingering.clone().try_acquire_owned() {
                Ok(waiting) if idle.evict_oldest() => {
                    tracing::debug!(target: TARGET, max_connections = slots, "at the cap: the connection idle longest gives way");
                    let service = make_service();
                    let (connections, limits, shape, stop, idle, lingering) = (
                        connections.clone(),
                        limits.clone(),
                        shape.clone(),
                        stop.clone(),
                        idle.clone(),
                        lingering.clone(),
                    );
                    tokio::spawn(async move {
                        let slot =
                            tokio::time::timeout(EVICTION_WAIT, connections.acquire_owned()).await;
                        drop(waiting);
                        match slot {
                            Ok(Ok(slot)) => {
                                serve_connection(
                                    stream,
                                    service,
                                    limits,
                                    shape,
                                    stop,
                                    (slot, share),
                                    IdleEntry::new(&idle),
                                )
                                .await
                            }
                            _ => refuse(stream, &shape, &lingering),
                        }
                    });
                    // Let the evicted connection close and the newcomer take its slot (and
                    // become evictable in turn) before the next accept: in a burst from the
                    // backlog, accepting on at once would find every slot holder evicted and
                    // none of the newcomers in yet, and refuse the rest, an honest one too.
                    tokio::task::yield_now().await;
                    continue;
                }
                _ => None,
            },
        };
        match slot {
            Some(slot) => {
                let service = make_service();
                tokio::spawn(serve_connection(
                    stream,
                    service,
                    limits.clone(),
                    shape.clone(),
                    stop.clone(),
                    (slot, share),
                    // Evictable from its accept, not from when its task first runs: a burst
                    // from the backlog then finds it at the cap.
                    IdleEntry::new(&idle),
                ));
            }
            None => {
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
    slot: (OwnedSemaphorePermit, AddressShare),
    entry: Arc<IdleEntry>,
) where
    S: Service<Request<TimedBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let evicted = entry.evict.clone();
    let handler = Handler {
        service,
        shape,
        body_timeout: limits.body_timeout,
        entry,
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    // hyper answers a head it cannot parse itself; `Reworded` words that answer in `shape`.
    let stream = Reworded::new(stream, handler.shape.clone());
    let connection = builder.serve_connection(TokioIo::new(stream), handler);
    let mut connection = std::pin::pin!(connection);
    let stopping = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = evicted.notified() => {
            tracing::debug!(target: TARGET, "idle connection closed to make room at the cap");
            Ok(())
        }
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

/// A connection in a request, idle again when dropped.
struct InRequest(Arc<IdleEntry>);

impl InRequest {
    fn new(entry: Arc<IdleEntry>) -> Self {
        entry.set_idle(false);
        InRequest(entry)
    }
}

impl Drop for InRequest {
    fn drop(&mut self) {
        self.0.set_idle(true);
    }
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
    /// The connection's place among the idle ones: out of it while a request is served.
    entry: Arc<IdleEntry>,
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
        // In a request until its response is ready (its body is then sent at once), then
        // idle again until the next header.
        let busy = InRequest::new(self.entry.clone());
        Box::pin(async move {
            let _busy = busy;
            std::future::poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(boxed)?;
            let response = service.call(request).await.map_err(boxed)?;
            Ok(response.map(|body| body.map_err(boxed).boxed_unsync()))
        })
    }
}
