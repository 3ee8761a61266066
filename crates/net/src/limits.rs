//! The serving loop's limits, each with a named default and its trade-off.

use std::time::Duration;

/// Connections served at once. Below a typical 1,024-descriptor limit with room for the store's
/// connections, the chain client and log files, so the cap and not the descriptor table is what
/// a flood of connections meets.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Connections one source address may hold at once (0: no limit). Off by default, because
/// behind a proxy (TLS, a load balancer) every client has the proxy's address, and the proxy is
/// where each client is limited. A server facing its clients directly should set it: a flood of
/// sockets from one address then holds its share and no more, and the rest of its connections
/// are closed at accept, before anything is spent on them, instead of taking the slots of
/// other clients' idle connections.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 0;
/// Longest wait for a request's header, from when the connection starts waiting for one (so
/// also the longest a keep-alive connection may stay idle). An honest client sends its header
/// in one packet; ten seconds covers a congested link.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a whole request body, from its header. A 2 MiB proof in 30 s is 70 kB/s:
/// any working link, while a client trickling bytes holds its connection no longer.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of request bodies held at once, across connections: 32 bodies of the 2 MiB default
/// limit. Bounds the memory a flood of large bodies can take, whoever sends them.
pub const DEFAULT_BODY_BUDGET_BYTES: usize = 64 * 1024 * 1024;
/// Longest a body waits for room in the budget before it is refused (503 `overloaded`): long
/// enough to ride out a burst, short enough that a client retries rather than hangs.
pub const BODY_BUDGET_WAIT: Duration = Duration::from_secs(1);
/// Longest request target (path and query) served; longer is refused with 414. The API's
/// longest paths are under 200 bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most bytes of request headers (names and values) served; more is refused with 431. A signed
/// request carries under 1 KiB of headers.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Pause after a failed accept (descriptors exhausted, say) before the next: the loop neither
/// spins nor dies, and connections closing in the meantime free descriptors.
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);
/// How long a connection refused over the cap is kept to deliver its 503 (the client may still
/// be sending; closing with unread data would reset the connection and lose the answer).
pub const REFUSAL_LINGER: Duration = Duration::from_millis(500);
/// Refused connections lingering at once; beyond, a refused connection is closed without an
/// answer, so refusing costs a bounded number of descriptors.
pub const MAX_LINGERING_REFUSALS: usize = 64;

/// The limits of one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections served at once; above, a new connection is answered 503 and closed.
    pub max_connections: usize,
    /// Connections one source address may hold at once; above, a new one is closed at accept
    /// (0: no limit).
    pub max_connections_per_address: usize,
    /// Longest wait for a request header (and longest idle keep-alive).
    pub header_timeout: Duration,
    /// Longest wait for a whole request body, from its header.
    pub body_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}
