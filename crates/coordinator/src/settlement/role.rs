//! The sender role: one replica per key sends, the others stand by; the holder runs the
//! manager and the three cache tasks while it holds the role.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sheaf_chain::settlement::SequenceId;
use sheaf_store::RoleFence;
use sheaf_types::clock::{millis, now_ms};
use tokio::task::JoinHandle;

use super::{ProofSender, Result, TARGET};
use crate::metrics::{SENDER_ROLE_HELD, SEQUENCES_UNSETTLED, SETTLEMENT_LAG};

/// Tasks aborted when dropped.
#[derive(Debug, Default)]
pub(super) struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The running sender; dropping it stops its tasks (the outbox keeps their state) and gives
/// the sender role up in the background.
#[derive(Debug)]
pub struct SenderHandle {
    sender: Arc<ProofSender>,
    tasks: Tasks,
}

impl SenderHandle {
    /// Stop the tasks now and give the sender role up, so a standby replica takes it at once.
    /// Whatever was stored is picked up by whoever sends next.
    pub async fn stop(mut self) {
        self.tasks = Tasks::default();
        self.sender.resign().await;
    }

    /// Whether this sender holds the role and works, rather than standing by.
    pub fn is_sending(&self) -> bool {
        self.sender.current_fence().is_some()
    }

    /// The name this sender holds the role under (the store's `roles.holder`).
    pub fn holder(&self) -> &str {
        &self.sender.holder
    }
}

impl Drop for SenderHandle {
    fn drop(&mut self) {
        self.tasks = Tasks::default();
        if self.sender.current_fence().is_some() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let sender = self.sender.clone();
                runtime.spawn(async move { sender.resign().await });
            }
        }
    }
}

impl ProofSender {
    /// Take the sender role (or stand by until it is free), resend what was in flight at the
    /// last stop, then run the manager and the three cache tasks while the role is held,
    /// until the handle is dropped.
    pub fn spawn(self: &Arc<Self>) -> SenderHandle {
        let sender = self.clone();
        SenderHandle {
            sender: self.clone(),
            tasks: Tasks(vec![tokio::spawn(async move { sender.lead().await })]),
        }
    }

    /// Hold the sender role: renew it every third of its lease and run the stages while it is
    /// held; stop them when it is lost (taken over, or not renewed within the lease). See
    /// [`Self::renew`] for why a replica whose chain does not answer lets the role go.
    async fn lead(self: Arc<Self>) {
        let ttl = self.config.role_ttl;
        let mut stages: Option<Tasks> = None;
        let mut renewed = Instant::now();
        // Until it takes the role, this replica stands by, and says so on /metrics.
        metrics::gauge!(SENDER_ROLE_HELD).set(0.0);
        let mut said_standby = false;
        loop {
            let acquired = self.renew(ttl).await;
            match acquired {
                Ok(Some(fence)) => {
                    renewed = Instant::now();
                    let token = self.current_fence().map(|f| f.token);
                    if stages.is_some() && token != Some(fence.token) {
                        // Lost and retaken while this replica stalled: start afresh.
                        stages = None;
                    }
                    if stages.is_none() {
                        said_standby = false;
                        tracing::info!(target: TARGET, role = %self.role, holder = %self.holder,
                            token = fence.token, "took the sender role: sending");
                        self.begin_term(fence);
                        stages = Some(self.spawn_stages());
                    }
                }
                Ok(None) => {
                    if stages.take().is_some() {
                        tracing::warn!(target: TARGET, role = %self.role,
                            "another replica took the sender role over: standing by");
                        self.end_term();
                    } else if !said_standby {
                        tracing::info!(target: TARGET, role = %self.role,
                            "another replica holds the sender role: standing by, not sending");
                    } else {
                        tracing::debug!(target: TARGET, role = %self.role, "standing by");
                    }
                    said_standby = true;
                }
                Err(e) => {
                    tracing::warn!(target: TARGET, role = %self.role, error = %e,
                        "renewing (or taking) the sender role failed");
                    if stages.is_some() && renewed.elapsed() >= ttl {
                        tracing::warn!(target: TARGET, role = %self.role,
                            "the sender role's lease ran out: standing by");
                        stages = None;
                        self.end_term();
                    }
                }
            }
            tokio::time::sleep(ttl / 3).await;
        }
    }

    /// Renew the role (or take it, if free), but only after the chain answered a call: a replica
    /// that cannot reach the chain cannot settle, so it neither keeps the role nor takes it.
    ///
    /// A holder whose chain connection hangs sees this call time out (every chain call is bounded
    /// by the client's timeout) and stops renewing; once its lease runs out it stops its stages,
    /// and a standby that does reach the chain takes the role over and settles from the outbox.
    /// A chain that is down for everyone leaves the role free until it is back. The same rule
    /// for holder and standby, at the one place the role is renewed, so the stages need no
    /// watchdog of their own.
    async fn renew(&self, ttl: Duration) -> Result<Option<RoleFence>> {
        self.chain.height().await?;
        self.chain_contact.answered();
        // The database's clock where replicas share one: a standby whose clock runs ahead
        // must not see the holder's lease run out early.
        let now = self.store.shared_clock_ms().await?.unwrap_or_else(now_ms);
        Ok(self
            .store
            .role_acquire(&self.role, &self.holder, now, millis(ttl))
            .await?)
    }

    /// Start working under `fence`, from what the store and the chain say: nothing of an
    /// earlier term (this sender's or another replica's) is trusted from memory.
    fn begin_term(&self, fence: RoleFence) {
        self.final_proofs.clear();
        self.hashes.clear();
        self.reveals.clear();
        self.last_sent_lock().clear();
        *self.lock_next_fetch() = SequenceId(0);
        *self.lock_settled_below() = SequenceId(0);
        *self.fence_lock() = Some(fence);
        metrics::gauge!(SENDER_ROLE_HELD).set(1.0);
    }

    fn end_term(&self) {
        *self.fence_lock() = None;
        stand_by_gauges();
    }

    /// Give the role up if held, so a standby replica takes it without waiting for the lease.
    async fn resign(&self) {
        if self.fence_lock().take().is_none() {
            return;
        }
        stand_by_gauges();
        match self.store.role_release(&self.role, &self.holder).await {
            Ok(_) => tracing::info!(target: TARGET, role = %self.role, "gave the sender role up"),
            Err(e) => tracing::warn!(target: TARGET, role = %self.role, error = %e,
                "giving the sender role up failed: a standby takes it when its lease runs out"),
        }
    }

    fn fence_lock(&self) -> std::sync::MutexGuard<'_, Option<RoleFence>> {
        self.fence.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn current_fence(&self) -> Option<RoleFence> {
        self.fence_lock().clone()
    }

    fn spawn_stages(self: &Arc<Self>) -> Tasks {
        Tasks(
            [
                Stage::Manager,
                Stage::Hashes,
                Stage::Monitor,
                Stage::Reveals,
            ]
            .into_iter()
            .map(|stage| {
                let sender = self.clone();
                tokio::spawn(async move { sender.run(stage).await })
            })
            .collect(),
        )
    }

    /// Run passes of `stage` every poll interval (or sooner when its cache is fed).
    async fn run(&self, stage: Stage) {
        if stage == Stage::Manager {
            while let Err(e) = self.resend_in_flight().await {
                tracing::warn!(target: TARGET, error = %e, "resending in-flight transactions failed; retrying");
                tokio::time::sleep(self.config.poll_interval).await;
            }
        }
        loop {
            let pass = match stage {
                Stage::Manager => self.manage().await,
                Stage::Hashes => self.send_hashes().await,
                Stage::Monitor => self.monitor_hashes().await,
                Stage::Reveals => self.reveal_proofs().await,
            };
            if let Err(e) = pass {
                tracing::warn!(target: TARGET, stage = ?stage, error = %e, "pass failed; retrying");
            }
            let fed = match stage {
                Stage::Manager => None,
                Stage::Hashes => Some(&self.final_proofs.wake),
                Stage::Monitor => Some(&self.hashes.wake),
                Stage::Reveals => Some(&self.reveals.wake),
            };
            match fed {
                Some(wake) => {
                    let _ = tokio::time::timeout(self.config.poll_interval, wake.notified()).await;
                }
                None => tokio::time::sleep(self.config.poll_interval).await,
            }
        }
    }
}

/// A replica that stands by reports no settlement lag: the one that sends does.
fn stand_by_gauges() {
    metrics::gauge!(SENDER_ROLE_HELD).set(0.0);
    metrics::gauge!(SETTLEMENT_LAG).set(0.0);
    metrics::gauge!(SEQUENCES_UNSETTLED).set(0.0);
}

/// The sender's tasks: the manager and one per cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Manager,
    Hashes,
    Monitor,
    Reveals,
}

/// A holder name unique to this sender: host, process id, start time and a counter (several
/// senders may run in one process, as in tests). Readable in the store's `roles` table.
pub(super) fn holder_name() -> String {
    static SENDERS: AtomicU64 = AtomicU64::new(0);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    format!(
        "{host}/{}/{}/{}",
        std::process::id(),
        now_ms(),
        SENDERS.fetch_add(1, Ordering::Relaxed)
    )
}
