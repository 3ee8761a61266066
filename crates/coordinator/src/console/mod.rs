//! The live console: a read-only web page at `/ui` that draws every shown sequence's proof tree
//! filling in, the provers and the settlement, pushed to the browser as server-sent events.
//!
//! ```text
//!  store ──(≤ every interval, only after this process wrote, or every CONSOLE_IDLE_REFRESH)──▶
//!  publisher: one snapshot (sequences, trees or per-level counts, provers, settlement, events)
//!     │ serialized and formatted as one event once, only sent when it differs from the last
//!     ▼
//!  watch channel ──▶ GET /ui/events (SSE), one stream per viewer writing the same shared bytes
//!
//!  chain (when the coordinator settles) ──(≤ once a second, bounded)──▶ windows, members
//! ```
//!
//! What it costs: the publisher reads the store a few queries per snapshot whatever the number
//! of viewers, and builds nothing while nobody watches; a viewer costs a connection and the
//! bytes of each snapshot sent to it. Trees of [`CoordinatorConfig::console_collapse_jobs`] jobs
//! or more are sent as counts per level and state; the page asks
//! `GET /ui/api/sequences/{id}/levels/{level}?offset=N` for a page of one level's jobs when an
//! operator expands it (one store read per click).
//!
//! What it shows is what the store and the chain already make public to provers and operators:
//! prover names, public keys, worker keys, job states, transaction hashes. No secret is held
//! here to leak: no worker secret, no signing key, no admin token, no database URL. The page
//! is static HTML, CSS and JavaScript compiled into the binary (no toolchain, no CDN), served
//! with a Content-Security-Policy that allows only same-origin scripts, styles and connections.
//!
//! [`CoordinatorConfig::console_collapse_jobs`]: crate::CoordinatorConfig::console_collapse_jobs

mod publisher;
mod snapshot;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use sheaf_api::ErrorCode;
use sheaf_chain::{Address, ChainClient};
use sheaf_types::SequenceId;
use tokio::sync::{watch, Semaphore};

pub use publisher::publish_forever;
pub use snapshot::{job_kind, JobView, Snapshot};

use crate::api::ApiError;
use crate::coordinator::Coordinator;
use crate::error::InternalError;

/// The page.
pub const PATH_UI: &str = "/ui";
/// The snapshot stream (server-sent events, event `snapshot`, data: the snapshot's JSON).
pub const PATH_UI_EVENTS: &str = "/ui/events";
/// A page of one level's jobs.
pub const PATH_UI_LEVEL: &str = "/ui/api/sequences/{sequence}/levels/{level}";

/// The Content-Security-Policy of every console response: nothing but same-origin scripts,
/// styles and connections (the event stream), no inline script, no framing, no forms.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Jobs per page of an expanded level.
pub const LEVEL_PAGE_JOBS: u32 = 500;
/// Events (leases expired, jobs dead) the snapshot carries, newest last.
pub const CONSOLE_EVENTS_KEPT: usize = 64;
/// How often an idle event stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

const INDEX_HTML: &str = include_str!("assets/index.html");
const CONSOLE_JS: &str = include_str!("assets/console.js");
const CONSOLE_CSS: &str = include_str!("assets/console.css");

/// Something the console was told of rather than read: the sweeper took a lease back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConsoleEvent {
    /// When (ms).
    pub at_ms: i64,
    /// `requeued` (the lease expired, the job is ready again) or `dead`.
    pub kind: &'static str,
    /// The job.
    pub job: String,
}

/// Where the console reads settlement and membership, when the coordinator settles.
#[derive(Clone, Debug)]
pub struct ConsoleChain {
    /// The chain.
    pub client: ChainClient,
    /// The proof sender's address.
    pub sender: Address,
}

/// The console's shared state, one per coordinator.
pub struct Console {
    /// The latest snapshot as one server-sent event, formatted once for every viewer (each
    /// stream sends the same shared bytes); `None` until the first is built.
    frames: watch::Sender<Option<Bytes>>,
    events: Mutex<VecDeque<ConsoleEvent>>,
    chain: OnceLock<ConsoleChain>,
    viewers: Arc<Semaphore>,
    /// Snapshots built (each one set of store reads), for tests and operators.
    builds: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("viewers", &self.viewers())
            .finish()
    }
}

impl Console {
    /// A console serving at most `max_viewers` event streams at once.
    pub fn new(max_viewers: usize) -> Self {
        Console {
            frames: watch::channel(None).0,
            events: Mutex::new(VecDeque::new()),
            chain: OnceLock::new(),
            viewers: Arc::new(Semaphore::new(max_viewers)),
            builds: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Event streams open now.
    pub fn viewers(&self) -> usize {
        self.frames.receiver_count()
    }

    /// Snapshots built so far: each is one set of store reads, shared by every viewer.
    pub fn builds(&self) -> u64 {
        self.builds.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Read settlement and memberships from `chain` (only the first call counts).
    pub fn watch_chain(&self, chain: ConsoleChain) {
        let _ = self.chain.set(chain);
    }

    /// Note an event for the next snapshot.
    pub fn record(&self, kind: &'static str, job: String, at_ms: i64) {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        if events.len() == CONSOLE_EVENTS_KEPT {
            events.pop_front();
        }
        events.push_back(ConsoleEvent { at_ms, kind, job });
    }

    fn events(&self) -> Vec<ConsoleEvent> {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.iter().cloned().collect()
    }
}

/// The console's routes, served on the prover API's port.
pub fn routes() -> Router<Arc<Coordinator>> {
    Router::new()
        .route(PATH_UI, get(index))
        .route("/ui/", get(|| async { Redirect::permanent(PATH_UI) }))
        .route("/ui/console.js", get(script))
        .route("/ui/console.css", get(style))
        .route(PATH_UI_EVENTS, get(events))
        .route(PATH_UI_LEVEL, get(level))
        .layer(axum::middleware::from_fn(security_headers))
}

/// Every console response: the CSP, no sniffing, no framing, no referrer, no caching of
/// snapshots.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", CONSOLE_JS)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", CONSOLE_CSS)
}

/// `GET /ui/events`: the snapshot now (if one was built), then each new one, until the
/// viewer leaves or the coordinator shuts down. 503 `overloaded` beyond the viewer cap.
async fn events(State(c): State<Arc<Coordinator>>) -> Response {
    let console = c.console();
    let Ok(permit) = console.viewers.clone().try_acquire_owned() else {
        return ApiError::new(
            ErrorCode::Overloaded,
            format!(
                "the console serves {} viewers at once; try again later",
                c.config().console_max_viewers
            ),
        )
        .into_response();
    };
    let mut frames = console.frames.subscribe();
    // The current snapshot first, even if it is not new to this receiver.
    frames.mark_changed();
    let shutdown = c.shutdown_watch();
    let mut keep_alive =
        tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    keep_alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stream = futures::stream::unfold(
        (frames, shutdown, keep_alive, permit),
        |(mut frames, mut shutdown, mut keep_alive, permit)| async move {
            loop {
                let frame = tokio::select! {
                    changed = frames.changed() => match changed {
                        Ok(()) => frames.borrow_and_update().clone(),
                        Err(_) => return None,
                    },
                    _ = keep_alive.tick() => Some(Bytes::from_static(b":\n\n")),
                    _ = shutdown.wait_for(|stopping| *stopping) => return None,
                };
                if let Some(frame) = frame {
                    let state = (frames, shutdown, keep_alive, permit);
                    return Some((Ok::<_, Infallible>(frame), state));
                }
            }
        },
    );
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// `json` as one server-sent event named `snapshot` (JSON has no raw newline to split).
pub(crate) fn snapshot_event(json: &str) -> Bytes {
    let mut frame = Vec::with_capacity(json.len() + 24);
    frame.extend_from_slice(b"event: snapshot\ndata: ");
    frame.extend_from_slice(json.as_bytes());
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}

/// A page of one level's jobs.
#[derive(Debug, Serialize)]
struct LevelPage {
    sequence: SequenceId,
    level: u32,
    offset: u64,
    jobs: Vec<JobView>,
    /// Whether jobs follow this page.
    more: bool,
}

/// `GET /ui/api/sequences/{sequence}/levels/{level}?offset=N`: up to [`LEVEL_PAGE_JOBS`] jobs
/// of one level from index `N` (default 0), for a level the snapshot sent as counts.
async fn level(
    State(c): State<Arc<Coordinator>>,
    Path((sequence, level)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    let page = async {
        let number = |what: &str, text: &str| {
            text.parse::<u64>().map_err(|_| {
                ApiError::new(
                    ErrorCode::BadRequest,
                    format!("{what} {text:?} is not a number"),
                )
            })
        };
        let sequence = SequenceId(number("sequence", &sequence)?);
        let level = u32::try_from(number("level", &level)?)
            .map_err(|_| ApiError::new(ErrorCode::BadRequest, "level out of range"))?;
        let mut offset = 0;
        for pair in uri.query().unwrap_or("").split('&') {
            if let Some(value) = pair.strip_prefix("offset=") {
                offset = number("offset", value)?;
            }
        }
        let rows = c
            .store()
            .console_level(sequence, level, offset, LEVEL_PAGE_JOBS + 1)
            .await
            .map_err(InternalError::Store)?;
        let more = rows.len() > LEVEL_PAGE_JOBS as usize;
        let jobs = rows
            .iter()
            .take(LEVEL_PAGE_JOBS as usize)
            .map(JobView::of)
            .collect();
        Ok::<_, ApiError>(Json(LevelPage {
            sequence,
            level,
            offset,
            jobs,
            more,
        }))
    };
    match page.await {
        Ok(page) => page.into_response(),
        Err(e) => e.into_response(),
    }
}
