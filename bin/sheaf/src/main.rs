//! `sheaf`: the command line of the Sheaf proving network.

mod circuit_args;
mod cmd;
mod process_stats;
mod progress;
mod serve_limits;
mod table;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// plonky2 allocates and frees large buffers for every proof; with glibc's allocator the
/// process keeps growing over hundreds of proofs (its mmap threshold adapts upward and freed
/// heap memory is not returned). mimalloc returns it, so peak memory stays flat with the tree's
/// size.
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// Sheaf binds many zero-knowledge proofs into one: recursive plonky2 aggregation with
/// attribution, verified by one final key.
#[derive(Parser, Debug)]
#[command(name = "sheaf", version, about, long_about = None)]
struct Cli {
    /// Log lines as text (coloured on a terminal only) or as one JSON object each, for log
    /// collectors. Which lines: the filter in SHEAF_LOG (e.g. `SHEAF_LOG=sheaf=debug`; default
    /// `warn`, for coordinator, prover and chain `warn,sheaf=info`). Logs go to stderr.
    #[arg(long, env = "SHEAF_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Prove N work leaves and aggregate them into one root proof.
    ProveTree(cmd::prove_tree::ProveTreeArgs),
    /// Write the final verifier key (universal node key and whitelist root).
    ExportKey(cmd::keys::ExportKeyArgs),
    /// Verify a root proof with a final key; exit 0 when valid.
    Verify(cmd::keys::VerifyArgs),
    /// Run a whole proving network on this machine: a chain, a coordinator on an embedded
    /// SQLite data directory and N prover processes over loopback; prove and settle the blocks
    /// of a rollup fed with transfers (or, `--workload work`, S sequences) and verify the roots.
    Devnet(cmd::devnet::DevnetArgs),
    /// Serve the prover API: plan sequences, lease jobs, verify and store proofs.
    Coordinator(cmd::coordinator::CoordinatorArgs),
    /// Pull jobs from a coordinator, prove them and submit the proofs.
    Prover(cmd::prover::ProverArgs),
    /// Make a prover key file (ed25519 request key and worker secret) and print its provers-file
    /// entry.
    Keygen(cmd::keygen::KeygenArgs),
    /// Run the base chain: the settlement contract and the membership registry over JSON-RPC.
    Chain(cmd::chain::ChainArgs),
    /// Redeem the rewards of the jobs a key proved in finalized sequences: prove a claim per
    /// job on this machine, aggregate them in batches, one chain transaction per batch.
    Claim(cmd::claim::ClaimArgs),
    /// A prover's membership on the chain: register, extend, erase, withdraw, show.
    Member(cmd::member::MemberArgs),
    /// A sender's settlement stake on the chain: deposit, withdraw (amounts in tokens).
    Stake(cmd::member::StakeArgs),
    /// Move tokens from the key's balance to another address on the chain.
    Transfer(cmd::member::TransferArgs),
    /// Write a new chain's genesis file: its coordinator key and the keys it funds, in tokens.
    Genesis(cmd::genesis::GenesisArgs),
    /// Inspect, requeue and cancel jobs in a coordinator's store.
    Jobs(cmd::jobs::JobsArgs),
    /// Where each sequence stands: jobs by state, blocked jobs, root proved, and (with
    /// --chain) its settlement on the chain.
    Status(cmd::status::StatusArgs),
    /// The provers a coordinator's store knows: leases, proved jobs, work units, last seen.
    Provers(cmd::provers::ProversArgs),
    /// Root proofs in a coordinator's store: export one for `sheaf verify`.
    Proof(cmd::proof::ProofArgs),
    /// Key files: show what one is, without its secrets.
    #[command(subcommand)]
    Key(cmd::keys::KeyCommand),
    /// The rollup: a node's status, a genesis funding wallets, proving a block with its kernels.
    #[command(subcommand)]
    Rollup(cmd::rollup::RollupCommand),
    /// A rollup account's wallet over a rollup node's API: new, address, balance, notes, send,
    /// consume.
    Wallet(cmd::wallet::WalletArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
}

fn main() -> ExitCode {
    cmd::bench_chaos::failpoints::arm_from_env();
    let cli = Cli::parse();
    // Services log what they do; one-shot commands only warnings (their output is the report).
    let default_filter = match cli.command {
        Command::Coordinator(_) | Command::Prover(_) | Command::Chain(_) => "warn,sheaf=info",
        _ => "warn",
    };
    let filter =
        EnvFilter::try_from_env("SHEAF_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => logs.json().init(),
        // Colour codes only for a terminal: a log file or a pipe gets plain text.
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    let result = match cli.command {
        Command::ProveTree(args) => cmd::prove_tree::run(args),
        Command::Rollup(command) => cmd::rollup::run(command),
        Command::Wallet(args) => cmd::wallet::run(args),
        Command::ExportKey(args) => cmd::keys::export_key(args),
        Command::Verify(args) => return cmd::keys::verify(args),
        Command::Devnet(args) => cmd::devnet::run(args),
        Command::Coordinator(args) => cmd::coordinator::run(args),
        Command::Prover(args) => cmd::prover::run(args),
        Command::Keygen(args) => cmd::keygen::run(args),
        Command::Jobs(args) => cmd::jobs::run(args),
        Command::Status(args) => cmd::status::run(args),
        Command::Provers(args) => cmd::provers::run(args),
        Command::Proof(args) => cmd::proof::run(args),
        Command::Key(command) => cmd::keys::run_key(command),
        Command::Chain(args) => cmd::chain::run(args),
        Command::Member(args) => cmd::member::run_member(args),
        Command::Claim(args) => cmd::claim::run(args),
        Command::Stake(args) => cmd::member::run_stake(args),
        Command::Transfer(args) => cmd::member::run_transfer(args),
        Command::Genesis(args) => cmd::genesis::run(args),
        Command::Bench(cmd::bench::BenchCommand::Aggregate(args)) => cmd::bench::aggregate(args),
        Command::Bench(cmd::bench::BenchCommand::Store(args)) => cmd::bench_store::run(args),
        Command::Bench(cmd::bench::BenchCommand::Scale(args)) => cmd::bench_scale::run(args),
        Command::Bench(cmd::bench::BenchCommand::Console(args)) => cmd::bench_console::run(args),
        Command::Bench(cmd::bench::BenchCommand::ConsoleViewers(args)) => {
            cmd::bench_console::viewers(args)
        }
        Command::Bench(cmd::bench::BenchCommand::Side(args)) => cmd::bench::side(args),
        Command::Bench(cmd::bench::BenchCommand::Claims(args)) => cmd::bench_claims::run(args),
        Command::Bench(cmd::bench::BenchCommand::Abuse(args)) => cmd::bench_abuse::run(args),
        Command::Bench(cmd::bench::BenchCommand::Chaos(args)) => cmd::bench_chaos::run(args),
        Command::Bench(cmd::bench::BenchCommand::ClaimsSide(args)) => cmd::bench_claims::side(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stopped reading (`| head`) is not a failure of the command.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error on one line: each context, then the root cause, each text once. Libraries often
/// repeat their source's text in their own (`writing x: No such file or directory` over
/// `No such file or directory`); a cause already said is left out.
fn one_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if text.is_empty() || parts.iter().any(|said| said.contains(&text)) {
            continue;
        }
        // A cause that repeats the previous part and adds to it replaces it.
        if let Some(last) = parts.last_mut() {
            if text.contains(last.as_str()) {
                *last = text;
                continue;
            }
        }
        parts.push(text);
    }
    parts.join(": ")
}

/// Whether the error comes from writing to a closed pipe.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
