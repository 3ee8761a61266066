//! `sheaf keygen`: make a prover key file and print the entry that registers it.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use sheaf_prover::{KeyFileError, ProverKey};

/// Arguments of `keygen`.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Where to write the key file (JSON, readable by its owner only).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing key file; the prover identity it held is lost.
    #[arg(long)]
    pub force: bool,
    /// The prover's name in the coordinator's provers file.
    #[arg(long, default_value = "prover")]
    pub name: String,
}

/// Write a fresh key and print its public key, worker_pk and provers-file entry.
pub fn run(args: KeygenArgs) -> anyhow::Result<()> {
    let key = ProverKey::generate();
    match key.write(&args.out, args.force) {
        Ok(()) => {}
        Err(KeyFileError::Exists(path)) => {
            anyhow::bail!(
                "{} exists; pass --force to replace the key it holds",
                path.display()
            );
        }
        Err(e) => return Err(e).context("cannot write the key file"),
    }
    println!("wrote {}", args.out.display());
    println!("public key: {}", key.public_key_hex());
    println!("worker_pk:  {}", key.worker_pk());
    println!();
    println!("Add this to the coordinator's provers file:");
    println!();
    print!("{}", key.registry_entry(&args.name));
    Ok(())
}
