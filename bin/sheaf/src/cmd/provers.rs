//! `sheaf provers list`: every prover a coordinator's store knows — its leases, the jobs it
//! proved and their work units, its refused submissions, when it was last seen — and, with
//! `--chain`, its membership on the base chain.

use std::io::Write as _;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use sheaf_chain::membership::MembershipState;
use sheaf_chain::{ChainClient, DEFAULT_CHAIN_TIMEOUT};
use sheaf_circuits::Digest;
use sheaf_store::ProverActivity;
use sheaf_types::clock::now_ms;

use crate::cmd::jobs::{relative, StoreUrl};
use crate::table::{write_table, Align};

/// Arguments of `provers`.
#[derive(Args, Debug)]
pub struct ProversArgs {
    #[command(flatten)]
    pub store: StoreUrl,
    #[command(subcommand)]
    pub command: ProversCommand,
}

/// What to do with the provers.
#[derive(Subcommand, Debug)]
pub enum ProversCommand {
    /// One row per prover the store knows (registered, holding a lease, paid a reward or
    /// refused): live leases, jobs proved, work units, submissions refused for its own fault
    /// (by reason: invalid_proof, stale_lease, …), last seen (its latest lease held, proof
    /// stored or submission refused).
    List {
        /// The base chain's JSON-RPC URL (e.g. `http://127.0.0.1:8545`): add each registered
        /// prover's membership state (active, grace period, expired, or none: never
        /// registered or erased). Without it, on-chain state is not shown.
        #[arg(long, env = "SHEAF_CHAIN")]
        chain: Option<String>,
    },
}

/// Runs `provers`.
pub fn run(args: ProversArgs) -> anyhow::Result<()> {
    let ProversCommand::List { chain } = args.command;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let store = args.store.open().await?;
        let now = now_ms();
        let provers = store.prover_activity(now).await;
        store.close().await;
        let provers = provers?;
        let memberships = match chain {
            Some(url) => Some(memberships(&url, &provers).await?),
            None => None,
        };
        print(&provers, memberships.as_deref(), now)
    })
}

/// The membership state of each prover, in the order of `provers`; `-` for one not in the
/// registry (its worker key is not known).
async fn memberships(url: &str, provers: &[ProverActivity]) -> anyhow::Result<Vec<String>> {
    let client = ChainClient::with_timeout(url, DEFAULT_CHAIN_TIMEOUT)?;
    let mut states = Vec::with_capacity(provers.len());
    for prover in provers {
        let Some(registered) = &prover.registered else {
            states.push("-".to_owned());
            continue;
        };
        let worker_pk = Digest::from_bytes(&registered.worker_pk)
            .with_context(|| format!("prover {:?} has a non-canonical worker_pk", prover.id))?;
        let view = client
            .membership(&worker_pk)
            .await
            .with_context(|| format!("asking the chain at {url}"))?;
        states.push(
            match view.map(|view| view.state) {
                Some(MembershipState::Active) => "active",
                Some(MembershipState::GracePeriod) => "grace period",
                Some(MembershipState::Expired) => "expired",
                None => "none (never registered or erased)",
            }
            .to_owned(),
        );
    }
    Ok(states)
}

fn print(
    provers: &[ProverActivity],
    memberships: Option<&[String]>,
    now: i64,
) -> anyhow::Result<()> {
    let rows: Vec<[String; 8]> = provers
        .iter()
        .enumerate()
        .map(|(i, prover)| {
            [
                prover.id.clone(),
                if prover.registered.is_some() {
                    "yes"
                } else {
                    "no"
                }
                .to_owned(),
                prover.live_leases.to_string(),
                prover.jobs_proved.to_string(),
                prover.work_units.to_string(),
                rejections(&prover.rejections),
                prover
                    .last_seen_ms
                    .map_or_else(|| "never".to_owned(), |ms| relative(ms, now)),
                memberships.map_or_else(|| "-".to_owned(), |states| states[i].clone()),
            ]
        })
        .collect();
    let mut out = std::io::stdout().lock();
    use Align::{Left, Right};
    write_table(
        &mut out,
        [
            "PROVER",
            "REGISTERED",
            "LEASES",
            "PROVED",
            "WORK UNITS",
            "REJECTED",
            "LAST SEEN",
            "MEMBERSHIP",
        ],
        [Left, Left, Right, Right, Right, Left, Left, Left],
        &rows,
    )?;
    let chain = if memberships.is_some() {
        ""
    } else {
        "; membership not shown: pass --chain URL (or SHEAF_CHAIN)"
    };
    writeln!(out, "{} provers{chain}", provers.len())?;
    Ok(())
}

/// `0`, or the total and each reason: `3 (invalid_proof 2, stale_lease 1)`.
fn rejections(by_reason: &[(String, i64)]) -> String {
    let total: i64 = by_reason.iter().map(|(_, count)| count).sum();
    if total == 0 {
        return "0".to_owned();
    }
    let reasons: Vec<String> = by_reason
        .iter()
        .map(|(reason, count)| format!("{reason} {count}"))
        .collect();
    format!("{total} ({})", reasons.join(", "))
}
