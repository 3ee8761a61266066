//! `sheaf rollup status` and `sheaf rollup genesis`: a running rollup node's tips, and the
//! genesis file a node starts from, funding wallets' accounts.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use sheaf_circuits::Digest;
use sheaf_rollup::{AccountId, Genesis, GenesisAccount};
use sheaf_types::clock::now_ms;
use sheaf_types::Amount;
use sheaf_wallet::{RollupStatusView, WalletFile};

use super::member::parse_tokens;
use super::wallet::NodeArgs;

/// Arguments of `rollup status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Print the node's answer as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Print the node's published, proven and settled tips and the transactions waiting.
pub fn status(args: StatusArgs) -> anyhow::Result<()> {
    let client = args.node.client()?;
    let status = tokio::runtime::Runtime::new()?.block_on(client.status())?;
    if args.json {
        println!("{}", serde_json::to_string(&status)?);
    } else {
        print_status(&status);
    }
    Ok(())
}

fn print_status(status: &RollupStatusView) {
    let tip =
        |tip: Option<i64>| tip.map_or_else(|| "none yet".to_owned(), |n| format!("block {n}"));
    println!("published tip  {}", tip(status.published_tip));
    println!("proven tip     {}", tip(status.proven_tip));
    println!("settled tip    {}", tip(status.settled_tip));
    println!("pending        {} transaction(s)", status.pending);
}

/// One `--fund` of `rollup genesis`: whose keys, how many tokens.
#[derive(Clone, Debug)]
pub struct Funding {
    /// The auth commitment funded.
    pub auth_commitment: Digest,
    /// The wallet file it was read from, if any.
    pub wallet: Option<PathBuf>,
    /// Its starting balance.
    pub amount: Amount,
}

fn parse_funding(text: &str) -> Result<Funding, String> {
    let (who, tokens) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("{text:?} is not WALLET=TOKENS"))?;
    let amount = parse_tokens(tokens)?;
    if let Ok(auth_commitment) = who.parse::<Digest>() {
        return Ok(Funding {
            auth_commitment,
            wallet: None,
            amount,
        });
    }
    let wallet = WalletFile::load(Path::new(who)).map_err(|e| e.to_string())?;
    Ok(Funding {
        auth_commitment: wallet.auth_commitment,
        wallet: Some(PathBuf::from(who)),
        amount,
    })
}

/// Arguments of `rollup genesis`.
#[derive(Args, Debug)]
pub struct GenesisArgs {
    /// A funded account, `WALLET=TOKENS` (repeatable): WALLET a wallet file (`sheaf wallet
    /// new`) or its auth commitment in hex. Accounts are numbered 1, 2, … in this order.
    #[arg(long = "fund", value_name = "WALLET=TOKENS", value_parser = parse_funding, required = true)]
    pub funds: Vec<Funding>,
    /// Block 0's time, Unix milliseconds (default: now).
    #[arg(long, env = "SHEAF_ROLLUP_GENESIS_TIMESTAMP")]
    pub timestamp: Option<u64>,
    /// Where to write the genesis file (for `sheaf coordinator --rollup-genesis`).
    #[arg(long, env = "SHEAF_ROLLUP_GENESIS_OUT")]
    pub out: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
}

/// Write a rollup genesis funding the named wallets and print each account.
pub fn genesis(args: GenesisArgs) -> anyhow::Result<()> {
    if args.out.exists() && !args.force {
        anyhow::bail!("{} exists; pass --force to replace it", args.out.display());
    }
    let genesis = Genesis {
        timestamp: args.timestamp.unwrap_or_else(|| now_ms().max(0) as u64),
        accounts: args
            .funds
            .iter()
            .zip(1..)
            .map(|(funding, id)| GenesisAccount {
                id: AccountId(id),
                balance: funding.amount,
                auth_commitment: funding.auth_commitment,
            })
            .collect(),
    };
    // Refuse what a node would refuse: two accounts with one key, a supply out of range.
    if let Some(twice) = genesis.accounts.iter().enumerate().find_map(|(i, a)| {
        genesis.accounts[..i]
            .iter()
            .any(|b| b.auth_commitment == a.auth_commitment)
            .then_some(a.auth_commitment)
    }) {
        anyhow::bail!("the keys {twice} are funded twice: one wallet, one account");
    }
    genesis
        .build()
        .context("the genesis is not one a node accepts")?;
    let json = serde_json::to_string_pretty(&genesis).expect("a genesis serializes to JSON");
    std::fs::write(&args.out, json + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("wrote {}", args.out.display());
    for (account, funding) in genesis.accounts.iter().zip(&args.funds) {
        let who = funding.wallet.as_ref().map_or_else(
            || account.auth_commitment.to_string(),
            |w| w.display().to_string(),
        );
        println!("{}: {} ({who})", account.id, account.balance);
    }
    Ok(())
}
