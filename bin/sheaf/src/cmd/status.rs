//! `sheaf status`: where each sequence stands — its jobs by state, the dead and cancelled ones
//! that hold their ancestors back, whether its root is proved and, with `--chain`, its
//! settlement on the base chain. Only reads the store and the chain.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use sheaf_chain::node::SequenceView;
use sheaf_chain::{ChainClient, WindowPhase, DEFAULT_CHAIN_TIMEOUT};
use sheaf_store::{JobFilter, JobStatus, Sequence, SequenceId, Store};
use sheaf_types::clock::now_ms;

use crate::cmd::jobs::StoreUrl;
use crate::table::{write_table, Align};

/// How often `status --watch` redraws unless told otherwise: often enough to follow a
/// sequence being proved, rarely enough that the store's readers do not notice.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Arguments of `status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub store: StoreUrl,
    /// The base chain's JSON-RPC URL (e.g. `http://127.0.0.1:8545`): show each sequence's
    /// settlement window phase and whether it is finalized. Without it, on-chain state is not
    /// shown.
    #[arg(long, env = "SHEAF_CHAIN")]
    pub chain: Option<String>,
    /// Redraw every `--interval-ms` until Ctrl-C (the screen is cleared on a terminal; a pipe
    /// gets one report after another, each under a timestamped separator).
    #[arg(long)]
    pub watch: bool,
    /// Milliseconds between two reports of `--watch` (without `--watch` there is one report).
    #[arg(long, env = "SHEAF_STATUS_INTERVAL_MS", default_value_t = DEFAULT_WATCH_INTERVAL.as_millis() as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval_ms: u64,
}

/// Runs `status`.
pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let store = args.store.open().await?;
        let chain = args
            .chain
            .as_deref()
            .map(|url| ChainClient::with_timeout(url, DEFAULT_CHAIN_TIMEOUT))
            .transpose()?;
        let result = if args.watch {
            watch(
                &store,
                chain.as_ref(),
                Duration::from_millis(args.interval_ms),
            )
            .await
        } else {
            report(&store, chain.as_ref()).await
        };
        store.close().await;
        result
    })
}

/// One report every `interval` until Ctrl-C.
async fn watch(
    store: &Store,
    chain: Option<&ChainClient>,
    interval: Duration,
) -> anyhow::Result<()> {
    let terminal = std::io::stdout().is_terminal();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let text = report_text(store, chain).await?;
        let mut out = std::io::stdout().lock();
        if terminal {
            // Clear the screen and home the cursor, so the report stays in place.
            write!(out, "\x1b[2J\x1b[H")?;
        } else {
            writeln!(out, "--- {} ---", utc_timestamp(now_ms()))?;
        }
        out.write_all(text.as_bytes())?;
        out.flush()?;
        drop(out);
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            stopped = &mut ctrl_c => return stopped.context("waiting for Ctrl-C"),
        }
    }
}

/// One report.
async fn report(store: &Store, chain: Option<&ChainClient>) -> anyhow::Result<()> {
    let text = report_text(store, chain).await?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// The report, built whole before it is written so a redraw does not flicker.
async fn report_text(store: &Store, chain: Option<&ChainClient>) -> anyhow::Result<String> {
    let sequences = store.list_sequences().await?;
    let mut counts: HashMap<(SequenceId, JobStatus), i64> = HashMap::new();
    for count in store.counts_by_sequence().await? {
        counts.insert((count.sequence, count.status), count.count);
    }
    let (mut settlement, chain_line) = match chain {
        Some(client) => settlement(client, &sequences).await?,
        None => (
            BTreeMap::new(),
            "on-chain state not shown: pass --chain URL (or SHEAF_CHAIN)".to_owned(),
        ),
    };
    let rows: Vec<[String; 10]> = sequences
        .iter()
        .map(|sequence| {
            let of = |status| counts.get(&(sequence.id, status)).copied().unwrap_or(0);
            let total: i64 = JobStatus::ALL.into_iter().map(of).sum();
            let [waiting, ready, leased, proved, dead, cancelled] =
                JobStatus::ALL.map(|status| of(status).to_string());
            let root = match sequence.proved_ms {
                Some(_) => "proved",
                None => "not proved",
            };
            let on_chain = settlement.remove(&sequence.id);
            [
                sequence.id.to_string(),
                total.to_string(),
                waiting,
                ready,
                leased,
                proved,
                dead,
                cancelled,
                root.to_owned(),
                on_chain.unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    let mut out = Vec::new();
    use Align::{Left, Right};
    write_table(
        &mut out,
        // The states in the order of `JobStatus::ALL`, as the rows destructure them.
        [
            "SEQUENCE",
            "JOBS",
            "WAITING",
            "READY",
            "LEASED",
            "PROVED",
            "DEAD",
            "CANCELLED",
            "ROOT",
            "CHAIN",
        ],
        [
            Right, Right, Right, Right, Right, Right, Right, Right, Left, Left,
        ],
        &rows,
    )?;
    writeln!(out, "{} sequences; {chain_line}", sequences.len())?;
    write_blocked(&mut out, store).await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Each sequence's settlement in a few words, and a line naming the chain and its height.
async fn settlement(
    client: &ChainClient,
    sequences: &[Sequence],
) -> anyhow::Result<(BTreeMap<SequenceId, String>, String)> {
    let asking = || format!("asking the chain at {}", client.url());
    let height = client.height().await.with_context(asking)?;
    let mut states = BTreeMap::new();
    for sequence in sequences {
        let view = client.sequence(sequence.id).await.with_context(asking)?;
        states.insert(sequence.id, on_chain(view.as_ref()));
    }
    Ok((states, format!("chain {} at height {height}", client.url())))
}

/// The dead and cancelled jobs: never leased again on their own, so every ancestor waits.
async fn write_blocked(out: &mut Vec<u8>, store: &Store) -> anyhow::Result<()> {
    let mut blocked = Vec::new();
    for status in [JobStatus::Dead, JobStatus::Cancelled] {
        let filter = JobFilter {
            sequence: None,
            status: Some(status),
        };
        blocked.extend(store.list_jobs(filter).await?);
    }
    if blocked.is_empty() {
        return Ok(());
    }
    blocked.sort_by_key(|job| job.id);
    writeln!(
        out,
        "\nblocked: {} dead or cancelled jobs (their ancestors wait; `sheaf jobs requeue`)",
        blocked.len()
    )?;
    let rows: Vec<[String; 3]> = blocked
        .iter()
        .map(|job| {
            [
                job.id.to_string(),
                job.status.to_string(),
                job.attempts.to_string(),
            ]
        })
        .collect();
    write_table(
        out,
        ["JOB", "STATUS", "ATTEMPTS"],
        [Align::Left, Align::Left, Align::Right],
        &rows,
    )?;
    Ok(())
}

/// A sequence's settlement in a few words.
fn on_chain(view: Option<&SequenceView>) -> String {
    let Some(view) = view else {
        return "not registered".to_owned();
    };
    if let Some(finalized) = &view.finalized {
        return format!("finalized in block {}", finalized.block);
    }
    match (&view.window, view.phase) {
        (Some(window), Some(phase)) => {
            let phase = match phase {
                WindowPhase::Hash => "hash phase",
                WindowPhase::Proof => "proof phase",
                WindowPhase::Closed => "window closed",
            };
            format!("{phase} (window opened at block {})", window.opened_at)
        }
        _ => "registered, no window opened".to_owned(),
    }
}

/// `ms` (Unix milliseconds) as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc_timestamp(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_timestamp(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_timestamp(1_798_761_599_999), "2026-12-31 23:59:59 UTC");
    }
}
