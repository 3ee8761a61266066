//! `sheaf proof export`: a sequence's root proof from the store, in the bytes `sheaf verify`
//! reads (the coordinator stores a proof as its prover encoded it).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use sheaf_store::SequenceId;

use crate::cmd::jobs::StoreUrl;

/// Arguments of `proof`.
#[derive(Args, Debug)]
pub struct ProofArgs {
    #[command(flatten)]
    pub store: StoreUrl,
    #[command(subcommand)]
    pub command: ProofCommand,
}

/// What to do with proofs.
#[derive(Subcommand, Debug)]
pub enum ProofCommand {
    /// Write a proved sequence's root proof to a file, for `sheaf verify --proof FILE`.
    Export {
        /// The sequence whose root proof to write.
        #[arg(long)]
        sequence: SequenceId,
        /// The file to write; it must not exist yet.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs `proof`.
pub fn run(args: ProofArgs) -> anyhow::Result<()> {
    let ProofCommand::Export { sequence, out } = args.command;
    let runtime = tokio::runtime::Runtime::new()?;
    let bytes = runtime.block_on(async {
        let store = args.store.open().await?;
        let bytes = root_proof(&store, sequence).await;
        store.close().await;
        bytes
    })?;
    write_new(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "wrote the root proof of sequence {sequence} to {} ({} bytes)",
        out.display(),
        bytes.len()
    );
    Ok(())
}

/// The root proof of `sequence`; an error when it is unknown or not proved yet.
async fn root_proof(store: &sheaf_store::Store, sequence: SequenceId) -> anyhow::Result<Vec<u8>> {
    let Some(stored) = store.get_sequence(sequence).await? else {
        bail!("unknown sequence {sequence}");
    };
    match store.proof_of(stored.root).await? {
        Some(bytes) => Ok(bytes),
        None => bail!(
            "sequence {sequence} is not proved yet (its root {} has no proof; see `sheaf status`)",
            stored.root
        ),
    }
}

/// Writes `bytes` to `path`, which must not exist; a partly written file is removed.
fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("the file exists; refusing to overwrite it")
        }
        Err(e) => return Err(e.into()),
    };
    if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(e.into());
    }
    Ok(())
}
