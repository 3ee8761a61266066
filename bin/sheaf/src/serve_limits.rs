//! The serving limits `sheaf coordinator` and `sheaf chain` take as flags, checked once.

use std::time::Duration;

use sheaf_net::ServeLimits;

/// The limits the serving flags select: a positive connection cap and timeouts, and a body
/// budget that holds at least one body of the largest size.
pub fn serve_limits(
    max_connections: usize,
    max_connections_per_address: usize,
    header_timeout_ms: u64,
    body_timeout_ms: u64,
    body_budget_bytes: usize,
    max_body_bytes: usize,
) -> anyhow::Result<ServeLimits> {
    if max_connections == 0 || header_timeout_ms == 0 || body_timeout_ms == 0 {
        anyhow::bail!(
            "--max-connections, --header-timeout-ms and --body-timeout-ms must be positive"
        );
    }
    if body_budget_bytes < max_body_bytes {
        anyhow::bail!(
            "--body-budget-bytes ({body_budget_bytes}) must hold one body of --max-body-bytes \
             ({max_body_bytes})"
        );
    }
    Ok(ServeLimits {
        max_connections,
        max_connections_per_address,
        header_timeout: Duration::from_millis(header_timeout_ms),
        body_timeout: Duration::from_millis(body_timeout_ms),
    })
}
