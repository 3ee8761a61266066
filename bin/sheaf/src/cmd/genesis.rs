//! `sheaf genesis`: write the genesis file of a new chain, naming its coordinator key and
//! funding the named keys, and say what each receives in tokens and base units.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use sheaf_chain::node::{Allocation, Genesis};
use sheaf_chain::{Address, Amount};
use sheaf_types::BASE_UNITS_PER_TOKEN;

use super::member::{parse_address, parse_tokens};

/// Arguments of `genesis`.
#[derive(Args, Debug)]
pub struct GenesisArgs {
    /// The coordinator's key, the only one that registers sequences: a key file (from `sheaf
    /// keygen`) or its public key (64 hex characters).
    #[arg(long, env = "SHEAF_GENESIS_COORDINATOR", value_parser = parse_address)]
    pub coordinator: Address,
    /// A genesis balance, `KEY=TOKENS` (repeatable): KEY a key file or a public key in hex,
    /// TOKENS whole tokens with up to nine decimals. A key named twice gets the sum.
    #[arg(long = "fund", value_name = "KEY=TOKENS", value_parser = parse_fund)]
    pub funds: Vec<(Address, Amount)>,
    /// Where to write the genesis file (JSON, for `sheaf chain --genesis`).
    #[arg(long, env = "SHEAF_GENESIS_OUT")]
    pub out: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
}

fn parse_fund(text: &str) -> Result<(Address, Amount), String> {
    let (key, tokens) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=TOKENS"))?;
    Ok((parse_address(key)?, parse_tokens(tokens)?))
}

/// Write the genesis file and print what it holds.
pub fn run(args: GenesisArgs) -> anyhow::Result<()> {
    if args.out.exists() && !args.force {
        anyhow::bail!("{} exists; pass --force to replace it", args.out.display());
    }
    let genesis = Genesis {
        coordinator: args.coordinator,
        allocations: args
            .funds
            .iter()
            .map(|&(address, balance)| Allocation { address, balance })
            .collect(),
        ..Genesis::default()
    };
    let json = serde_json::to_string_pretty(&genesis).expect("a genesis serializes to JSON");
    std::fs::write(&args.out, json + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "wrote {} (balances in base units: {BASE_UNITS_PER_TOKEN} to a token)",
        args.out.display()
    );
    println!("coordinator {}", genesis.coordinator);
    for a in &genesis.allocations {
        println!("fund {}: {}", a.address, a.balance);
    }
    let membership = &genesis.membership;
    println!(
        "minimum stake {}; provers paid {} per work unit claimed; membership deposit {} per \
         message of rate limit ({} at {})",
        genesis.settlement.min_stake,
        genesis.settlement.prover_reward_per_unit,
        membership.price_per_message,
        membership.deposit_for(membership.max_membership_rate_limit),
        membership.max_membership_rate_limit
    );
    Ok(())
}
