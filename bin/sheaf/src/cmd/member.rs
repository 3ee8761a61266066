//! `sheaf member`, `sheaf stake` and `sheaf transfer`: transactions on the base chain, signed
//! with a key file. Amounts on the command line are tokens (up to nine decimals, 10^9 base
//! units to a token); what the chain reports is printed in tokens with the base units beside.
//! Its membership's `id_commitment` is its `worker_pk` (RLN's identity commitment is
//! the hash of a secret, and so is Sheaf's worker key); the holder is its ed25519 request key.
//! Registering proves knowledge of the worker secret for that holder on that chain, so nobody
//! else can register a prover's public `worker_pk`.

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
use sheaf_types::BASE_UNITS_PER_TOKEN;

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
    /// meant. Commands that send a transaction sign it with this key; `show` only reads.
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
        /// Tokens (e.g. 50000 or 0.5).
        #[arg(value_parser = parse_tokens)]
        amount: Amount,
    },
    /// Move `amount` of stake back to the balance.
    Withdraw {
        /// Tokens (e.g. 50000 or 0.5).
        #[arg(value_parser = parse_tokens)]
        amount: Amount,
    },
}

/// Arguments of `transfer`.
#[derive(Args, Debug)]
pub struct TransferArgs {
    #[command(flatten)]
    pub target: ChainTarget,
    /// The recipient: an address (64 hex characters, a key's public key) or a key file.
    #[arg(long, env = "SHEAF_TRANSFER_TO", value_parser = parse_address)]
    pub to: Address,
    /// Tokens to move (e.g. 100 or 0.5).
    #[arg(long, env = "SHEAF_TRANSFER_AMOUNT", value_parser = parse_tokens)]
    pub amount: Amount,
}

/// `TOKENS` as an amount: whole tokens with up to nine decimals (`1.5` is 1,500,000,000 base
/// units).
pub fn parse_tokens(text: &str) -> Result<Amount, String> {
    let invalid = || format!("{text:?} is not an amount of tokens (e.g. 100 or 0.5)");
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 9 {
        return Err(invalid());
    }
    let whole: u128 = whole.parse().map_err(|_| invalid())?;
    let fraction: u128 = format!("{fraction:0<9}").parse().map_err(|_| invalid())?;
    whole
        .checked_mul(BASE_UNITS_PER_TOKEN)
        .and_then(|units| units.checked_add(fraction))
        .map(Amount)
        .ok_or_else(invalid)
}

/// An address given as 64 hex characters (optionally `0x`-prefixed) or as a key file (from
/// `sheaf keygen`), whose ed25519 public key it is.
pub fn parse_address(text: &str) -> Result<Address, String> {
    let hex = text.strip_prefix("0x").unwrap_or(text);
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return hex.parse().map_err(|e| format!("{text:?}: {e}"));
    }
    ProverKey::read(std::path::Path::new(text))
        .map(|key| Address(key.signing.verifying_key().to_bytes()))
        .map_err(|e| format!("{text:?} is neither 64 hex characters nor a readable key file: {e}"))
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
        println!("  {event}");
    }
    tracing::debug!(target: "sheaf::member", %what, "transaction included");
    Ok(())
}

/// The proof that `key` knows its worker secret, for its account on the target chain.
async fn possession_proof(target: &ChainTarget, key: &ProverKey) -> anyhow::Result<Vec<u8>> {
    let client = ChainClient::with_timeout(target.chain.clone(), DEFAULT_CHAIN_TIMEOUT)?;
    let chain_id = client
        .chain_id()
        .await
        .with_context(|| format!("asking the chain at {} for its id", target.chain))?;
    let key = key.clone();
    tokio::task::spawn_blocking(move || key.possession_proof(chain_id))
        .await?
        .context("proving possession of the worker secret")
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
                possession: possession_proof(&args.target, &key).await?,
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
        "  balance {}, stake {}, rewards {}, membership deposits to withdraw {}",
        account.balance, account.stake, account.rewards, account.membership_deposits
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
        StakeCommand::Deposit { amount } => Call::DepositStake { amount },
        StakeCommand::Withdraw { amount } => Call::WithdrawStake { amount },
    };
    tokio::runtime::Runtime::new()?.block_on(transact(&args.target, &key, call))
}

/// Run `transfer`.
pub fn run_transfer(args: TransferArgs) -> anyhow::Result<()> {
    let key = key(&args.target)?;
    let call = Call::Transfer {
        to: args.to,
        amount: args.amount,
    };
    tokio::runtime::Runtime::new()?.block_on(transact(&args.target, &key, call))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_to_base_units() {
        assert_eq!(parse_tokens("50000"), Ok(Amount::tokens(50_000)));
        assert_eq!(parse_tokens("1.5"), Ok(Amount(1_500_000_000)));
        assert_eq!(parse_tokens("0.000000001"), Ok(Amount(1)));
        for bad in ["", ".5", "1.0000000001", "-1", "1e3", "1,5"] {
            assert_eq!(
                parse_tokens(bad),
                Err(format!(
                    "{bad:?} is not an amount of tokens (e.g. 100 or 0.5)"
                ))
            );
        }
    }
}
