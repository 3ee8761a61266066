//! Request bodies under a deadline ([`TimedBody`]) and read within a byte budget shared by
//! every connection ([`BodyBudget`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use thiserror::Error;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use crate::BoxError;

/// The error a [`TimedBody`] fails with when its deadline passes.
#[derive(Debug, Error)]
#[error("the request body was not received within {} ms", .0.as_millis())]
pub struct BodyTimedOut(pub Duration);

/// A request body that fails with [`BodyTimedOut`] once the whole of it has not arrived within
/// its timeout of the request's header: a client trickling its body cannot hold the handler.
pub struct TimedBody {
    inner: hyper::body::Incoming,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
}

impl TimedBody {
    /// `inner`, cut `timeout` from now.
    pub fn new(inner: hyper::body::Incoming, timeout: Duration) -> Self {
        TimedBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.timeout)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Why a body could not be read.
#[derive(Debug, Error)]
pub enum BodyError {
    /// The body is (or declares to be) larger than the limit.
    #[error("request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The body did not arrive within the body timeout.
    #[error(transparent)]
    TimedOut(BodyTimedOut),
    /// The budget of bodies in flight had no room for this one within its wait.
    #[error("too many request bodies in flight; retry later")]
    Overloaded,
    /// The connection failed while the body was read (closed early, malformed chunking, a
    /// length that does not match the declared one).
    #[error("reading the request body: {0}")]
    Read(#[source] BoxError),
}

/// A body read within the budget: its bytes, and the budget's room they hold until dropped.
#[derive(Debug)]
pub struct BudgetedBytes {
    bytes: Bytes,
    _room: OwnedSemaphorePermit,
}

impl BudgetedBytes {
    /// The body.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

impl std::ops::Deref for BudgetedBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Room for request bodies in flight, in bytes, shared by every connection of a server: a body
/// reserves its declared length (or the limit, when it declares none) before it is read, and
/// holds it until the request is answered.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    room: Arc<Semaphore>,
    total: usize,
    wait: Duration,
}

impl BodyBudget {
    /// A budget of `total` bytes; a body waits up to `wait` for room.
    pub fn new(total: usize, wait: Duration) -> Self {
        let total = total.clamp(1, u32::MAX as usize);
        BodyBudget {
            room: Arc::new(Semaphore::new(total)),
            total,
            wait,
        }
    }

    /// Bytes of the budget free now.
    pub fn available(&self) -> usize {
        self.room.available_permits()
    }

    /// Read `body` (which declares `declared` bytes, if it does) up to `limit` bytes, holding
    /// room in the budget for it. A declared length over the limit is refused before anything is
    /// read.
    pub async fn read<B>(
        &self,
        body: B,
        declared: Option<u64>,
        limit: usize,
    ) -> Result<BudgetedBytes, BodyError>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let limit = limit.min(self.total);
        let reserve = match declared {
            Some(n) if n > limit as u64 => return Err(BodyError::TooLarge { limit }),
            Some(n) => n as usize,
            None => limit,
        };
        let room = tokio::time::timeout(
            self.wait,
            self.room.clone().acquire_many_owned(reserve as u32),
        )
        .await
        .map_err(|_| BodyError::Overloaded)?
        .map_err(|_| BodyError::Overloaded)?;
        let mut bytes = BytesMut::with_capacity(reserve.min(64 * 1024));
        let mut body = std::pin::pin!(body);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| classify(e.into()))?;
            if let Ok(data) = frame.into_data() {
                if bytes.len() + data.len() > reserve {
                    return Err(BodyError::TooLarge { limit });
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(BudgetedBytes {
            bytes: bytes.freeze(),
            _room: room,
        })
    }
}

/// A body's read error: the deadline's (found down the source chain, as frameworks wrap body
/// errors) or the connection's.
fn classify(error: BoxError) -> BodyError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(e) = cause {
        if let Some(timed_out) = e.downcast_ref::<BodyTimedOut>() {
            return BodyError::TimedOut(BodyTimedOut(timed_out.0));
        }
        cause = e.source();
    }
    BodyError::Read(error)
}

/// Whether `error` (from reading a body) is, somewhere down its sources, a [`BodyTimedOut`].
pub fn is_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        cause = e.source();
    }
    false
}
