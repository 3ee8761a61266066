//! `sheaf export-key` and `sheaf verify`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use sheaf_circuits::limits::MAX_PROOF_BYTES;
use sheaf_circuits::{CircuitError, FinalKey};

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
                "valid: {} leaves, {} aggregations, {} work units; commitment {} statement {} ({:.2} ms)",
                h.stats.leaf_jobs,
                h.stats.aggregation_jobs,
                h.stats.work_units,
                h.commitment,
                h.statement,
                root.verify_ms
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
