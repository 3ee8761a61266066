//! `sheaf wallet`: a rollup account's wallet, a client of a rollup node's HTTP API. The wallet
//! file holds the account's key seed and what the wallet read of the published blocks
//! (`sheaf_wallet`); every command but `new` first reads the blocks published since.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use sheaf_circuits::{Digest, Profile};
use sheaf_rollup::{AccountId, NoteId};
use sheaf_types::Amount;
use sheaf_wallet::{
    wait_for_block, LocalProver, LocalStage, RollupClient, Sent, SyncReport, WaitFor, WalletFile,
    WalletLock, DEFAULT_WAIT_TIMEOUT, DEFAULT_WALLET_KEYS,
};

use super::member::parse_tokens;
use crate::table::{write_table, Align};

/// The coordinator a wallet talks to unless told otherwise: `sheaf coordinator`'s default
/// address on this machine.
pub const DEFAULT_COORDINATOR_URL: &str = "http://127.0.0.1:7878";

/// The wallet file unless told otherwise: in the working directory.
pub const DEFAULT_WALLET_FILE: &str = "wallet.json";

/// The coordinator running the rollup node, for `wallet` and `rollup status`.
#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// URL of the coordinator running the rollup node (`sheaf coordinator --rollup-genesis`).
    #[arg(long, env = "SHEAF_COORDINATOR", default_value = DEFAULT_COORDINATOR_URL, global = true)]
    pub coordinator: String,
}

impl NodeArgs {
    /// A client of the node's API.
    pub fn client(&self) -> anyhow::Result<RollupClient> {
        Ok(RollupClient::new(&self.coordinator)?)
    }
}

/// Arguments of `wallet`.
#[derive(Args, Debug)]
pub struct WalletArgs {
    /// The wallet file: the account's key seed (its only secret: keep it, mode 0600) and what
    /// the wallet has read of the rollup.
    #[arg(long, env = "SHEAF_WALLET", default_value = DEFAULT_WALLET_FILE, global = true)]
    pub wallet: PathBuf,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(subcommand)]
    pub command: WalletCommand,
}

/// `sheaf wallet …`.
#[derive(Subcommand, Debug)]
pub enum WalletCommand {
    /// Make a new wallet: a random key seed and its one-time keys; prints the auth commitment a
    /// rollup genesis funds (`sheaf rollup genesis --fund WALLET=TOKENS`). Never overwrites.
    New(NewArgs),
    /// Print the wallet's account id (what others send to), found in the node's genesis.
    Address(JsonArg),
    /// Read the published blocks and print the account's balance, its notes and their total.
    Balance(JsonArg),
    /// Read the published blocks and list the notes addressed to the account, not yet spent.
    Notes(JsonArg),
    /// Send tokens to an account in a note (the change stays in the balance; notes are
    /// consumed when the balance is short); returns once a published block includes it.
    Send(SendArgs),
    /// Consume the notes addressed to the account (up to 16 a transaction) into its balance.
    Consume(ConsumeArgs),
}

/// `--json`.
#[derive(Args, Debug)]
pub struct JsonArg {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `wallet new`.
#[derive(Args, Debug)]
pub struct NewArgs {
    /// One-time keys to make: the account can sign this many transactions; each signature
    /// regenerates them from the seed (about 1.7 ms a key), 1 to 65536.
    #[arg(long, env = "SHEAF_WALLET_KEYS", default_value_t = DEFAULT_WALLET_KEYS)]
    pub keys: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// How far `send` and `consume` follow their transaction.
#[derive(Args, Debug)]
pub struct WaitArgs {
    /// Return once the transaction's block is published (its balances count), proven, or
    /// settled on the base chain.
    #[arg(long, env = "SHEAF_WALLET_WAIT", value_enum, default_value_t = WaitLevel::Published)]
    pub wait: WaitLevel,
    /// Longest wait for each of publication and the proof (or settlement), in seconds.
    #[arg(long, env = "SHEAF_WALLET_TIMEOUT_S", default_value_t = DEFAULT_WAIT_TIMEOUT.as_secs())]
    pub timeout_s: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `wallet send`.
#[derive(Args, Debug)]
pub struct SendArgs {
    /// The recipient's account id (`sheaf wallet address` prints it).
    #[arg(long, env = "SHEAF_WALLET_TO")]
    pub to: u32,
    /// Tokens to send, with up to nine decimals.
    #[arg(long, env = "SHEAF_WALLET_AMOUNT", value_parser = parse_tokens)]
    pub amount: Amount,
    #[command(flatten)]
    pub local: LocalArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// Arguments of `wallet consume`.
#[derive(Args, Debug)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub local: LocalArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// Whether the wallet proves its transaction itself.
#[derive(Args, Debug)]
pub struct LocalArgs {
    /// Send a local transaction: prove its signed half (signature and value rules, the tx
    /// kernel) on this machine and send the proof with it; the network then proves only its
    /// application to the state. Takes seconds and about 330 MiB; the circuit is cached.
    #[arg(long, env = "SHEAF_WALLET_LOCAL")]
    pub local: bool,
    /// Circuit profile of the coordinator's tx kernel, for `--local` (its `--profile`).
    #[arg(long, env = "SHEAF_PROFILE", default_value_t = Profile::Standard)]
    pub profile: Profile,
    /// Directory of built circuits, reused across runs (the tx kernel for `--local`).
    #[arg(long, env = "SHEAF_CACHE_DIR", default_value_os_t = crate::circuit_args::default_cache_dir())]
    pub cache_dir: PathBuf,
    /// Build the tx kernel fresh and do not touch the cache.
    #[arg(long, env = "SHEAF_NO_CACHE")]
    pub no_cache: bool,
}

impl LocalArgs {
    /// The local prover, when `--local`: the tx kernel built or loaded, with a spinner on
    /// stderr while it builds and while it proves (none with `--json`).
    async fn prover(&self, seed: Digest, quiet: bool) -> anyhow::Result<Option<Arc<LocalProver>>> {
        if !self.local {
            return Ok(None);
        }
        let cache = (!self.no_cache).then(|| self.cache_dir.clone());
        let building =
            crate::progress::spinner("building the tx kernel (cached after the first run)", quiet);
        let profile = self.profile;
        let prover = tokio::task::spawn_blocking(move || {
            LocalProver::build(seed, profile, cache.as_deref())
        })
        .await
        .context("building the tx kernel")??;
        building.finish_and_clear();
        let proving = crate::progress::spinner("", true);
        let prover = prover.on_stage(move |stage| match stage {
            LocalStage::Proving if !quiet => {
                proving.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                proving.set_message("proving the transaction locally");
            }
            LocalStage::Proving => {}
            LocalStage::Proved(took) => {
                proving.finish_and_clear();
                if !quiet {
                    eprintln!(
                        "proved the transaction locally in {:.1} s",
                        took.as_secs_f64()
                    );
                }
            }
        });
        Ok(Some(Arc::new(prover)))
    }
}

/// `--wait`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitLevel {
    /// A published block includes it.
    Published,
    /// That block and all before it are proved.
    Proven,
    /// That block is settled on the base chain.
    Settled,
}

impl From<WaitLevel> for WaitFor {
    fn from(level: WaitLevel) -> WaitFor {
        match level {
            WaitLevel::Published => WaitFor::Published,
            WaitLevel::Proven => WaitFor::Proven,
            WaitLevel::Settled => WaitFor::Settled,
        }
    }
}

/// Runs `wallet …`.
pub fn run(args: WalletArgs) -> anyhow::Result<()> {
    if let WalletCommand::New(new) = &args.command {
        return create(&args.wallet, new);
    }
    let client = args.node.client()?;
    let path = args.wallet.as_path();
    // Held until the command ends: no other command signs with these keys meanwhile.
    let _lock = WalletLock::acquire(path)?;
    let mut wallet = WalletFile::load(path)?;
    tokio::runtime::Runtime::new()?.block_on(async {
        match &args.command {
            WalletCommand::New(_) => unreachable!("handled above"),
            WalletCommand::Address(json) => address(path, &client, &mut wallet, json.json).await,
            WalletCommand::Balance(json) => balance(path, &client, &mut wallet, json.json).await,
            WalletCommand::Notes(json) => notes(path, &client, &mut wallet, json.json).await,
            WalletCommand::Send(send) => {
                let local = send.local.prover(wallet.seed, send.wait.json).await?;
                let sent = wallet
                    .transfer(
                        path,
                        &client,
                        AccountId(send.to),
                        send.amount,
                        Duration::from_secs(send.wait.timeout_s),
                        local,
                    )
                    .await?;
                report_sent(&client, &wallet, &sent, &send.wait).await
            }
            WalletCommand::Consume(consume) => {
                let timeout = Duration::from_secs(consume.wait.timeout_s);
                let local = consume.local.prover(wallet.seed, consume.wait.json).await?;
                match wallet.consume(path, &client, timeout, local).await? {
                    Some(sent) => report_sent(&client, &wallet, &sent, &consume.wait).await,
                    None => {
                        eprintln!("no notes to consume");
                        if consume.wait.json {
                            println!("{}", serde_json::json!({ "consumed": 0 }));
                        }
                        Ok(())
                    }
                }
            }
        }
    })
}

fn create(path: &Path, args: &NewArgs) -> anyhow::Result<()> {
    if path.exists() {
        anyhow::bail!(
            "{} exists; a wallet holds its account's only key, so it is never overwritten",
            path.display()
        );
    }
    eprintln!("making {} one-time keys…", args.keys);
    let wallet = WalletFile::generate(args.keys)?;
    wallet.create(path)?;
    eprintln!(
        "wrote {}: fund its account in a rollup genesis with `sheaf rollup genesis --fund {}=TOKENS`",
        path.display(),
        path.display()
    );
    if args.json {
        let json = serde_json::json!({
            "wallet": path,
            "auth_commitment": wallet.auth_commitment,
            "keys": wallet.key_count,
        });
        println!("{json}");
    } else {
        println!("auth commitment {}", wallet.auth_commitment);
    }
    Ok(())
}

async fn address(
    path: &Path,
    client: &RollupClient,
    wallet: &mut WalletFile,
    json: bool,
) -> anyhow::Result<()> {
    let id = match wallet.account_id() {
        Some(id) => id,
        None => {
            let id = wallet.find_account(client).await?;
            wallet.save(path)?;
            id
        }
    };
    if json {
        let json = serde_json::json!({ "account": id, "auth_commitment": wallet.auth_commitment });
        println!("{json}");
    } else {
        println!("{}", id.0);
    }
    Ok(())
}

/// Read the blocks published since the wallet's cursor, saying on stderr what changed.
async fn sync(
    path: &Path,
    client: &RollupClient,
    wallet: &mut WalletFile,
) -> anyhow::Result<SyncReport> {
    let report = wallet.sync_and_save(path, client).await?;
    if report.blocks_read > 0 {
        eprintln!(
            "read {} block(s): {} note(s) received",
            report.blocks_read, report.notes_received
        );
    }
    if let Some(tx) = report.dropped {
        eprintln!(
            "transaction {} expired without being included: nothing was spent",
            tx.0
        );
    }
    Ok(report)
}

/// What `balance --json` prints (amounts in base units).
#[derive(Serialize)]
struct BalanceReport {
    account: AccountId,
    block: u32,
    balance: Amount,
    notes: Amount,
    note_count: usize,
    total: Amount,
    pending: Option<sheaf_rollup::TxId>,
}

async fn balance(
    path: &Path,
    client: &RollupClient,
    wallet: &mut WalletFile,
    json: bool,
) -> anyhow::Result<()> {
    sync(path, client, wallet).await?;
    let account = wallet.account.context("a synced wallet has its account")?;
    let total = wallet.total();
    let report = BalanceReport {
        account: account.id,
        block: wallet.cursor.map_or(0, |c| c.block),
        balance: account.balance,
        notes: Amount(total.base_units() - account.balance.base_units()),
        note_count: wallet.notes.len(),
        total,
        pending: wallet.pending.as_ref().map(|tx| tx.id()),
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!("{} as of block {}", report.account, report.block);
    println!("balance  {}", report.balance);
    println!("notes    {} in {} note(s)", report.notes, report.note_count);
    println!("total    {}", report.total);
    if let Some(tx) = report.pending {
        println!("pending  transaction {}", tx.0);
    }
    Ok(())
}

/// One note of `notes --json`.
#[derive(Serialize)]
struct NoteReport {
    id: NoteId,
    amount: Amount,
    block: u32,
    index: u32,
    serial: Digest,
}

async fn notes(
    path: &Path,
    client: &RollupClient,
    wallet: &mut WalletFile,
    json: bool,
) -> anyhow::Result<()> {
    sync(path, client, wallet).await?;
    let notes: Vec<NoteReport> = wallet
        .notes
        .iter()
        .map(|n| NoteReport {
            id: n.note.id(),
            amount: n.note.amount,
            block: n.block,
            index: n.index,
            serial: n.note.serial,
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string(&notes)?);
        return Ok(());
    }
    if notes.is_empty() {
        eprintln!("no notes");
        return Ok(());
    }
    let rows: Vec<[String; 4]> = notes
        .iter()
        .map(|n| {
            [
                n.block.to_string(),
                n.index.to_string(),
                n.amount.to_string(),
                n.id.0.to_string(),
            ]
        })
        .collect();
    write_table(
        &mut std::io::stdout(),
        ["block", "index", "amount", "note id"],
        [Align::Right, Align::Right, Align::Right, Align::Left],
        &rows,
    )?;
    Ok(())
}

/// What `send --json` and `consume --json` print (amounts in base units).
#[derive(Serialize)]
struct SentReport {
    tx: sheaf_rollup::TxId,
    block: u32,
    to: Option<AccountId>,
    amount: Amount,
    consumed: usize,
    balance: Amount,
    wait: &'static str,
}

async fn report_sent(
    client: &RollupClient,
    wallet: &WalletFile,
    sent: &Sent,
    wait: &WaitArgs,
) -> anyhow::Result<()> {
    let body = &sent.body;
    let consumed = body.input_notes.len();
    let note = body.output_notes.first();
    match note {
        Some(note) => eprintln!(
            "transaction {} (nonce {}): {} to {}, {consumed} note(s) consumed, published in block {}",
            sent.tx.0, body.account.nonce, note.amount, note.recipient, sent.block
        ),
        None => eprintln!(
            "transaction {} (nonce {}): {consumed} note(s) consumed, published in block {}",
            sent.tx.0, body.account.nonce, sent.block
        ),
    }
    let level = WaitFor::from(wait.wait);
    if level > WaitFor::Published {
        let what = if level == WaitFor::Proven {
            "proven"
        } else {
            "settled"
        };
        eprintln!("waiting for block {} to be {what}…", sent.block);
        wait_for_block(
            client,
            sent.tx,
            sent.block,
            level,
            Duration::from_secs(wait.timeout_s),
        )
        .await?;
        eprintln!("block {} {what}", sent.block);
    }
    let report = SentReport {
        tx: sent.tx,
        block: sent.block,
        to: note.map(|n| n.recipient),
        amount: note.map_or(Amount::ZERO, |n| n.amount),
        consumed,
        balance: wallet.account.map_or(body.final_balance, |a| a.balance),
        wait: match wait.wait {
            WaitLevel::Published => "published",
            WaitLevel::Proven => "proven",
            WaitLevel::Settled => "settled",
        },
    };
    if wait.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{} in block {}", report.tx.0, report.block);
    }
    Ok(())
}
