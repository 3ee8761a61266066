//! `sheaf export-key`, `sheaf verify` and `sheaf key show`.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use sheaf_circuits::limits::MAX_PROOF_BYTES;
use sheaf_circuits::{CircuitError, FinalKey, FINAL_KEY_MAGIC};
use sheaf_prover::{KeyFileError, ProverKey};

use crate::circuit_args::CircuitArgs;
use crate::progress::spinner;

/// Arguments of `export-key`.
#[derive(Args, Debug)]
pub struct ExportKeyArgs {
    /// Where to write the key.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub circuits: CircuitArgs,
}

/// Write the final verifier key of the selected circuits.
pub fn export_key(args: ExportKeyArgs) -> anyhow::Result<()> {
    let spin = spinner("loading or building circuits", false);
    let circuits = args.circuits.circuits()?;
    spin.finish_and_clear();
    let key = circuits.aggregation.final_key();
    key.write(&args.out)?;
    println!(
        "wrote {}: key {} whitelist root {} ({} circuits), root circuit 2^{} rows",
        args.out.display(),
        key.id(),
        key.whitelist_root(),
        circuits.aggregation.whitelist().keys().len(),
        key.degree_bits()
    );
    Ok(())
}

/// Arguments of `verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The final verifier key (from `export-key`).
    #[arg(long)]
    pub key: PathBuf,
    /// The root proof.
    #[arg(long)]
    pub proof: PathBuf,
}

/// Exit codes of `verify`, one per kind of failure.
mod exit {
    pub const INVALID_PROOF: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const BAD_KEY: u8 = 3;
}

/// Verify a root proof; the exit code says why it failed.
pub fn verify(args: VerifyArgs) -> ExitCode {
    let key = match FinalKey::read(&args.key) {
        Ok(key) => key,
        Err(e) => {
            eprintln!("invalid: cannot use key {}: {e}", args.key.display());
            return ExitCode::from(exit::BAD_KEY);
        }
    };
    let bytes = match read_bounded(&args.proof) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("invalid: cannot read proof {}: {e}", args.proof.display());
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
    match key.verify_bytes(&bytes) {
        Ok(root) => {
            let h = root.header;
            println!(
                "valid: {} leaves, {} aggregations, {} work units; commitment {} statement {} ({:.2} ms; {} bytes, {} bits of conjectured security)",
                h.stats.leaf_jobs,
                h.stats.aggregation_jobs,
                h.stats.work_units,
                h.commitment,
                h.statement,
                root.verify_ms,
                bytes.len(),
                key.security_bits()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let reason = match &e {
                CircuitError::WhitelistMismatch => "wrong key: ".to_string(),
                CircuitError::VerificationFailed(_) => "failed verification: ".to_string(),
                _ => "bad proof bytes: ".to_string(),
            };
            eprintln!("invalid: {reason}{e}");
            ExitCode::from(exit::INVALID_PROOF)
        }
    }
}

fn read_bounded(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_PROOF_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// What to do with a key file.
#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Say what a key file is, without its secrets: a prover key (from `keygen`; also what a
    /// coordinator or sender signs with) shows its public request key, chain address,
    /// worker_pk and provers-file entry; a final key (from `export-key`) its id and whitelist
    /// root.
    Show {
        /// The key file.
        file: PathBuf,
        /// The name to put in a prover key's provers-file entry (a key file holds no name).
        #[arg(long, default_value = "prover")]
        name: String,
    },
}

/// Runs `key`.
pub fn run_key(command: KeyCommand) -> anyhow::Result<()> {
    let KeyCommand::Show { file, name } = command;
    let mut out = std::io::stdout().lock();
    if starts_with_final_key_magic(&file)? {
        let key = FinalKey::read(&file)
            .with_context(|| format!("{} is not a usable final key", file.display()))?;
        writeln!(
            out,
            "{}: final verifier key (from `sheaf export-key`)",
            file.display()
        )?;
        writeln!(out, "  key id          {}", key.id())?;
        writeln!(out, "  whitelist root  {}", key.whitelist_root())?;
        writeln!(out, "  root circuit    2^{} rows", key.degree_bits())?;
        return Ok(());
    }
    let key = match ProverKey::read(&file) {
        Ok(key) => key,
        Err(KeyFileError::Json { .. } | KeyFileError::TooLarge { .. }) => bail!(
            "{} is not a Sheaf key file: neither a prover key (JSON, from `sheaf keygen`) nor a \
             final key (from `sheaf export-key`)",
            file.display()
        ),
        Err(e) => return Err(e.into()),
    };
    writeln!(
        out,
        "{}: prover key (from `sheaf keygen`; a coordinator or sender key is one too)",
        file.display()
    )?;
    writeln!(
        out,
        "  name            none stored (the provers file names a prover)"
    )?;
    writeln!(
        out,
        "  public key      {}  (signs its requests)",
        key.public_key_hex()
    )?;
    writeln!(
        out,
        "  chain address   {}  (its account on the base chain)",
        key.public_key_hex()
    )?;
    writeln!(
        out,
        "  worker_pk       {}  (in its proofs; its membership id)",
        key.worker_pk()
    )?;
    writeln!(out)?;
    writeln!(out, "provers-file entry:")?;
    write!(out, "{}", key.registry_entry(&name))?;
    Ok(())
}

/// Whether the file begins as a final key does; an unreadable file is an error naming it.
fn starts_with_final_key_magic(path: &Path) -> anyhow::Result<bool> {
    let mut head = Vec::with_capacity(FINAL_KEY_MAGIC.len());
    std::fs::File::open(path)
        .and_then(|file| {
            file.take(FINAL_KEY_MAGIC.len() as u64)
                .read_to_end(&mut head)
        })
        .with_context(|| format!("reading key file {}", path.display()))?;
    Ok(head == FINAL_KEY_MAGIC)
}
