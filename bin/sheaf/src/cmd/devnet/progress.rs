//! Watching a devnet run: bars per tree level and a line per prover until every sequence is
//! proved, then a bar of sequences finalized on chain. Without a terminal (output to a file or
//! a pipe), a plain line every [`PLAIN_PROGRESS_INTERVAL`] instead of bars.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::bail;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use sheaf_coordinator::Coordinator;
use sheaf_store::{JobFilter, JobStatus};

use super::provers::{check_provers, ProverProcess};
use super::Display;
use super::{PROGRESS_INTERVAL, SETTLE_TIMEOUT};
use crate::cmd::devnet_chain::DevnetChain;

/// How often a plain progress line is printed when there is no terminal.
pub const PLAIN_PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// Bars per level and a line per prover until every sequence is proved; fails if a prover
/// process exits on its own (not killed with SIGKILL, see [`check_provers`]) or a job dies.
pub async fn watch_progress(
    coordinator: &Coordinator,
    provers: &mut [ProverProcess],
    total_jobs: usize,
    display: Display,
) -> anyhow::Result<()> {
    let store = coordinator.store();
    let multi = MultiProgress::new();
    if display != Display::Bars {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template("{prefix:>12} {bar:30} {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut level_bars: HashMap<u32, ProgressBar> = HashMap::new();
    let prover_lines: Vec<ProgressBar> = provers
        .iter()
        .map(|p| {
            let line = multi.add(ProgressBar::new_spinner());
            line.set_style(
                ProgressStyle::with_template("{prefix:>12} {spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            line.set_prefix(p.name.clone());
            line
        })
        .collect();
    let started = Instant::now();
    let mut last_plain: Option<Instant> = None;
    loop {
        let jobs = store.list_jobs(JobFilter::default()).await?;
        let mut by_level: HashMap<u32, (u64, u64)> = HashMap::new();
        let mut by_prover: HashMap<&str, u64> = HashMap::new();
        for job in &jobs {
            let entry = by_level.entry(job.id.level).or_default();
            entry.1 += 1;
            if job.status == JobStatus::Proved {
                entry.0 += 1;
                if let Some(p) = job.proved_by.as_deref() {
                    *by_prover.entry(p).or_default() += 1;
                }
            }
            if job.status == JobStatus::Dead {
                bail!("job {} is dead after {} attempts", job.id, job.attempts);
            }
        }
        let mut levels: Vec<_> = by_level.into_iter().collect();
        levels.sort();
        for (level, (done, total)) in levels {
            let bar = level_bars.entry(level).or_insert_with(|| {
                let bar = multi.insert(level as usize, ProgressBar::new(total));
                bar.set_style(style.clone());
                bar.set_prefix(format!("level {level}"));
                bar
            });
            bar.set_length(total);
            bar.set_position(done);
        }
        for (line, prover) in prover_lines.iter().zip(provers.iter()) {
            let leased = jobs
                .iter()
                .filter(|j| {
                    j.status == JobStatus::Leased && j.lease_holder.as_deref() == Some(&prover.id)
                })
                .map(|j| j.id.to_string())
                .collect::<Vec<_>>();
            line.set_message(format!(
                "{} proofs accepted{}",
                by_prover.get(prover.id.as_str()).copied().unwrap_or(0),
                if leased.is_empty() {
                    String::new()
                } else {
                    format!(", proving {}", leased.join(", "))
                }
            ));
            line.tick();
        }
        let sequences = store.list_sequences().await?;
        let done = !sequences.is_empty() && sequences.iter().all(|s| s.proved_ms.is_some());
        if display == Display::Plain
            && (done || last_plain.is_none_or(|at| at.elapsed() >= PLAIN_PROGRESS_INTERVAL))
        {
            last_plain = Some(Instant::now());
            let per_prover: Vec<String> = provers
                .iter()
                .map(|p| {
                    let accepted = by_prover.get(p.id.as_str()).copied().unwrap_or(0);
                    format!("{} {accepted}", p.name)
                })
                .collect();
            let proved = jobs
                .iter()
                .filter(|j| j.status == JobStatus::Proved)
                .count();
            eprintln!(
                "proved {proved}/{} jobs ({:.0} s; accepted per prover: {})",
                jobs.len(),
                started.elapsed().as_secs_f64(),
                per_prover.join(", ")
            );
        }
        if done {
            break;
        }
        check_provers(provers)?;
        let proved = jobs
            .iter()
            .filter(|j| j.status == JobStatus::Proved)
            .count();
        tracing::debug!(target: "sheaf::devnet", proved, total_jobs, elapsed = ?started.elapsed(), "progress");
        tokio::time::sleep(PROGRESS_INTERVAL).await;
    }
    for bar in level_bars.values() {
        bar.finish();
    }
    for line in &prover_lines {
        line.finish();
    }
    Ok(())
}

/// A bar of sequences finalized on chain until all are; fails after [`SETTLE_TIMEOUT`].
pub async fn watch_settlement(
    chain: &DevnetChain,
    sequences: u64,
    display: Display,
) -> anyhow::Result<()> {
    let bar = ProgressBar::new(sequences);
    if display != Display::Bars {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix("on chain");
    bar.set_message("finalized (hash, then reveal)");
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut last_plain: Option<Instant> = None;
    loop {
        let finalized = chain.finalized(sequences).await?;
        bar.set_position(finalized);
        let done = finalized >= sequences;
        if display == Display::Plain
            && (done || last_plain.is_none_or(|at| at.elapsed() >= PLAIN_PROGRESS_INTERVAL))
        {
            last_plain = Some(Instant::now());
            eprintln!("on chain: {finalized}/{sequences} sequences finalized");
        }
        if done {
            // The bar gives way to a whole line, so what follows starts on a line of its own.
            bar.finish_and_clear();
            if display == Display::Bars {
                eprintln!(
                    "{:>12} {finalized}/{sequences} sequences finalized",
                    "on chain"
                );
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{finalized} of {sequences} sequences finalized on chain after {} s; see the \
                 coordinator's log (sheaf::sender)",
                SETTLE_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(PROGRESS_INTERVAL).await;
    }
}
