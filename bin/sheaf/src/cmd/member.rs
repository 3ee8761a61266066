//! `sheaf member` and `sheaf stake`: a prover's transactions on the base chain, signed with its
//! key file. Its membership's `id_commitment` is its `worker_pk` (RLN's identity commitment is
//! the hash of a secret, and so is Sheaf's worker key); the holder is its ed25519 request key.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use sheaf_chain::client::{ChainClient, DEFAULT_CHAIN_TIMEOUT};
use sheaf_chain::membership::DEFAULT_MIN_MEMBERSHIP_RATE_LIMIT;
use sheaf_chain::tx::Call;
use sheaf_chain::{Address, Amount};
use sheaf_circuits::Digest;
use sheaf_prover::ProverKey;

/// The chain a command talks to unless told otherwise (`sheaf chain`'s default address).
pub const DEFAULT_CHAIN_URL: &str = "http://127.0.0.1:8545";
/// How long a command waits for its transaction's block by default.
pub const DEFAULT_RECEIPT_WAIT: Duration = Duration::from_secs(60);

/// Where and as whom.
#[derive(Args, Debug)]
pub struct ChainTarget {
    /// The chain's JSON-RPC URL.
    #[arg(long, env = "SHEAF_CHAIN", default_value = DEFAULT_CHAIN_URL, global = true)]
    pub chain: String,
    /// The prover key file (from `sheaf keygen`): the prover whose membership and account are
    /// meant; it signs the transactions.
    #[arg(long, env = "SHEAF_KEY", global = true)]
    pub key: Option<PathBuf>,
    /// Seconds to wait for the transaction's block.
    #[arg(long, env = "SHEAF_RECEIPT_WAIT_S", default_value_t = DEFAULT_RECEIPT_WAIT.as_secs(), global = true)]
    pub wait_s: u64,
}

/// Arguments of `member`.
#[derive(Args, Debug)]
pub struct MemberArgs {
    #[command(flatten)]
    pub target: ChainTarget,
    #[command(subcommand)]
    pub command: MemberCommand,
}

/// Membership transactions.
#[derive(Subcommand, Debug)]
pub enum MemberCommand {
    /// Register this prover (id_commitment = its worker_pk), paying the deposit for its rate.
    Register {
        /// Leases per epoch the membership allows.
        #[arg(long, default_value_t = DEFAULT_MIN_MEMBERSHIP_RATE_LIMIT)]
        rate_limit: u32,
        /// Expired memberships (id commitments, hex) to erase and reuse the rate of.
        #[arg(long, value_delimiter = ',')]
        erase: Vec<Digest>,
    },
    /// Extend this prover's membership (only in its grace period).
    Extend,
    /// Erase this prover's membership (in grace or expired); `--cleanup` zeroes its leaf.
    Erase {
        /// Zero the tree leaf too.
        #[arg(long)]
        cleanup: bool,
    },
    /// Withdraw the deposits of erased memberships.
    Withdraw,
    /// Show this prover's membership and account (no transaction).
    Show,
}

/// Arguments of `stake`.
#[derive(Args, Debug)]
pub struct StakeArgs {
    #[command(flatten)]
    pub target: ChainTarget,
    #[command(subcommand)]
    pub command: StakeCommand,
}

/// Settlement stake transactions.
#[derive(Subcommand, Debug)]
pub enum StakeCommand {
    /// Move `amount` from the balance to the settlement stake.
    Deposit {
        /// Base units.
        amount: u128,
    },
    /// Move `amount` of stake back to the balance.
    Withdraw {
        /// Base units.
        amount: u128,
    },
}

fn key(target: &ChainTarget) -> anyhow::Result<ProverKey> {
    let path = target
        .key
        .as_ref()
        .context("--key FILE (or SHEAF_KEY) is required: the prover key that signs")?;
    ProverKey::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Sign `call`, send it, wait for its block; fail with the chain's reason when it was refused.
async fn transact(target: &ChainTarget, key: &ProverKey, call: Call) -> anyhow::Result<()> {
    let client = ChainClient::with_timeout(target.chain.clone(), DEFAULT_CHAIN_TIMEOUT)?;
    let what = format!("{call:?}");
    let hash = client
        .send(&key.signing, call)
        .await
        .with_context(|| format!("sending to {}", target.chain))?;
    let receipt = client
        .wait_for_receipt(&hash, Duration::from_secs(target.wait_s))
        .await
        .with_context(|| format!("waiting for transaction {hash}"))?;
    if let Some(error) = receipt.error {
        bail!("refused in block {}: {error}", receipt.block);
    }
    println!("included in block {} ({hash})", receipt.block);
    for event in receipt.events {
        println!("  {event:?}");
    }
    tracing::debug!(target: "sheaf::member", %what, "transaction included");
    Ok(())
}

/// Run `member`.
pub fn run_member(args: MemberArgs) -> anyhow::Result<()> {
    let key = key(&args.target)?;
    let id = key.worker_pk();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let call = match args.command {
            MemberCommand::Register { rate_limit, erase } => Call::Register {
                id_commitment: id,
                rate_limit,
                erase_list: erase,
            },
            MemberCommand::Extend => Call::Extend { ids: vec![id] },
            MemberCommand::Erase { cleanup } => Call::Erase {
                ids: vec![id],
                cleanup,
            },
            MemberCommand::Withdraw => Call::Withdraw,
            MemberCommand::Show => return show(&args.target, &key).await,
        };
        transact(&args.target, &key, call).await
    })
}

async fn show(target: &ChainTarget, key: &ProverKey) -> anyhow::Result<()> {
    let client = ChainClient::with_timeout(target.chain.clone(), DEFAULT_CHAIN_TIMEOUT)?;
    let address = Address(key.signing.verifying_key().to_bytes());
    let asking = || format!("asking the chain at {}", target.chain);
    let account = client.account(&address).await.with_context(asking)?;
    let membership = client
        .membership(&key.worker_pk())
        .await
        .with_context(asking)?;
    // Written, not printed: a reader that closes the pipe (`| head -1`) ends the command
    // quietly instead of panicking.
    let mut out = std::io::stdout().lock();
    writeln!(out, "account {address}")?;
    writeln!(
        out,
        "  balance {}, stake {}, rewards {}",
        account.balance.0, account.stake.0, account.rewards.0
    )?;
    match membership {
        Some(view) => writeln!(
            out,
            "membership {}: {:?}, rate limit {}, index {}",
            key.worker_pk(),
            view.state,
            view.info.rate_limit,
            view.info.index
        )?,
        None => writeln!(out, "membership {}: none", key.worker_pk())?,
    }
    Ok(())
}

/// Run `stake`.
pub fn run_stake(args: StakeArgs) -> anyhow::Result<()> {
    let key = key(&args.target)?;
    let call = match args.command {
        StakeCommand::Deposit { amount } => Call::DepositStake {
            amount: Amount(amount),
        },
        StakeCommand::Withdraw { amount } => Call::WithdrawStake {
            amount: Amount(amount),
        },
    };
    tokio::runtime::Runtime::new()?.block_on(transact(&args.target, &key, call))
}
