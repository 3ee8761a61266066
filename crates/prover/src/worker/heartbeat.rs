//! Keeping a lease alive while its job is proved.

use std::time::{Duration, Instant};

use sheaf_api::{ErrorCode, JobId};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::client::{Client, ClientError};

use super::job::LeaseLost;
use super::{error_chain, TARGET};

/// Heartbeat the lease every `interval` until the coordinator says it is lost; each success
/// moves the lease's local deadline to `ttl` after the heartbeat was sent. Failures that may
/// pass (transport, overload) are logged and retried at the next interval.
pub(super) async fn keep_lease(
    client: Client,
    job: JobId,
    token: i64,
    interval: Duration,
    ttl: Duration,
    deadline: watch::Sender<Instant>,
) -> LeaseLost {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let sent = Instant::now();
        match client.heartbeat(job, token).await {
            Ok(extended) => {
                deadline.send_replace(sent + ttl);
                debug!(target: TARGET, job = %job, token, expires_ms = extended.expires_ms, "lease extended");
            }
            Err(ClientError::Api {
                code:
                    code @ (ErrorCode::StaleLease | ErrorCode::AlreadyProved | ErrorCode::UnknownJob),
                message,
                ..
            }) => return (code, message),
            Err(e) => {
                warn!(target: TARGET, job = %job, token, error = %error_chain(&e), "heartbeat failed");
            }
        }
    }
}

pub(super) fn log_lease_lost(
    job: JobId,
    token: i64,
    lost: Result<LeaseLost, tokio::task::JoinError>,
) {
    match lost {
        Ok((code, message)) => {
            info!(target: TARGET, job = %job, token, code = %code, message = %message, "lease lost; abandoning the job");
        }
        Err(e) => {
            error!(target: TARGET, job = %job, token, error = %e, "heartbeat task failed; abandoning the job");
        }
    }
}
