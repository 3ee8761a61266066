//! hyper's own answer to a request it cannot parse, worded in the server's error shape.
//!
//! hyper answers a request head it cannot parse (a Content-Length that is not a number, a header
//! line that is not one, more than 100 headers, a head over its read buffer, a target over
//! 64 KiB) by itself, before any service sees a request: a bare status line with an empty body,
//! then it closes the connection. It has no hook to word that answer. [`Reworded`] sits between
//! hyper and the socket and replaces exactly that write, a whole response head of status 400,
//! 414 or 431 with `content-length: 0`, by the same status with a body in the server's shape.
//! The services never answer those statuses with an empty body (every refusal carries one), and
//! a response head with an empty body replaced by one with a body is still one whole response,
//! so nothing else on the connection changes.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::refusal::{raw, Refusal, Shape};

/// The longest write looked at: hyper's automatic answer is a status line and two headers.
const LONGEST_AUTOMATIC_ANSWER: usize = 512;

/// A connection's stream, with hyper's automatic answers reworded (see the module).
pub(crate) struct Reworded<T> {
    inner: T,
    shape: Shape,
    /// The worded answer being written in place of hyper's.
    pending: Option<Pending>,
}

struct Pending {
    answer: Vec<u8>,
    written: usize,
    /// The length of hyper's write it stands for, reported written once it is.
    replaces: usize,
}

impl<T> Reworded<T> {
    pub(crate) fn new(inner: T, shape: Shape) -> Self {
        Reworded {
            inner,
            shape,
            pending: None,
        }
    }
}

/// The refusal `write` is hyper's automatic answer for, if it is one.
fn automatic_answer(write: &[u8]) -> Option<Refusal> {
    if write.len() > LONGEST_AUTOMATIC_ANSWER || !write.ends_with(b"\r\n\r\n") {
        return None;
    }
    let head = std::str::from_utf8(write).ok()?;
    let mut lines = head.trim_end().split("\r\n");
    let refusal = match lines.next()?.strip_prefix("HTTP/1.1 ")?.get(..4)? {
        "400 " => Refusal::Malformed,
        "414 " => Refusal::UriTooLong,
        "431 " => Refusal::HeadersTooLarge,
        _ => return None,
    };
    lines
        .any(|line| line.eq_ignore_ascii_case("content-length: 0"))
        .then_some(refusal)
}

impl<T: AsyncWrite + Unpin> Reworded<T> {
    /// Write `write`, or the worded answer in its place if it is hyper's automatic one.
    fn poll_write_whole(&mut self, cx: &mut Context<'_>, write: &[u8]) -> Poll<io::Result<usize>> {
        if self.pending.is_none() {
            let Some(refusal) = automatic_answer(write) else {
                return Pin::new(&mut self.inner).poll_write(cx, write);
            };
            tracing::debug!(target: "sheaf::net", status = %refusal.status(), "unparseable request answered in the server's shape");
            self.pending = Some(Pending {
                answer: raw(&self.shape, refusal),
                written: 0,
                replaces: write.len(),
            });
        }
        let pending = self.pending.as_mut().expect("set above");
        while pending.written < pending.answer.len() {
            let n = ready!(
                Pin::new(&mut self.inner).poll_write(cx, &pending.answer[pending.written..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            pending.written += n;
        }
        let replaces = pending.replaces;
        self.pending = None;
        Poll::Ready(Ok(replaces))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Reworded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Reworded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_whole(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // Only a short write that starts like a 4xx head can be the automatic answer: gather
        // it into one and look; everything else goes through as it came.
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        if self.pending.is_some()
            || (total <= LONGEST_AUTOMATIC_ANSWER && first.starts_with(b"HTTP/1.1 4"))
        {
            let whole: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            return self.poll_write_whole(cx, &whole);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_s_bare_answers_are_recognised_by_status_and_empty_body() {
        let bare = |status: &str| {
            format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 05:00:00 GMT\r\n\r\n")
        };
        assert_eq!(
            automatic_answer(bare("400 Bad Request").as_bytes()),
            Some(Refusal::Malformed)
        );
        assert_eq!(
            automatic_answer(bare("414 URI Too Long").as_bytes()),
            Some(Refusal::UriTooLong)
        );
        assert_eq!(
            automatic_answer(bare("431 Request Header Fields Too Large").as_bytes()),
            Some(Refusal::HeadersTooLarge)
        );
    }

    #[test]
    fn other_writes_are_left_alone() {
        // A 400 with a body (the services' own), another status, a part of a head, a body.
        let with_body = "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 52\r\n\r\n";
        assert_eq!(automatic_answer(with_body.as_bytes()), None);
        assert_eq!(
            automatic_answer(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"),
            None
        );
        assert_eq!(
            automatic_answer(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n"),
            None
        );
        assert_eq!(automatic_answer(b"{\"error\":{}}\r\n\r\n"), None);
    }
}
