//! Flags shared by every command that builds or loads circuits.

use std::path::PathBuf;

use clap::Args;
use sheaf_circuits::{AggregationSettings, ArtifactCache, CircuitSet, Profile, DEFAULT_ARITY};

/// Default size of work leaves: 2^8 rows, like the seed's real leaf.
pub const DEFAULT_LEAF_ROWS_LOG2: usize = 8;

/// Circuit selection and caching.
#[derive(Args, Debug, Clone)]
pub struct CircuitArgs {
    /// Circuit configurations: `standard` (plonky2's recursion config everywhere), `seed`
    /// (leaves 135/60 wires without zero knowledge, aggregation with zero knowledge) or `test`
    /// (the standard config with 10 FRI queries: 46 conjectured bits instead of 100, nodes of
    /// 2^12 rows proved in about half the time; for tests and demonstrations only).
    #[arg(long, env = "SHEAF_PROFILE", default_value_t = Profile::Standard)]
    pub profile: Profile,
    /// Children per aggregation node (2 to 8). Every tree's root verifies with the key of this
    /// arity.
    #[arg(long, env = "SHEAF_ARITY", default_value_t = DEFAULT_ARITY)]
    pub arity: usize,
    /// Wrap the root in one zero-knowledge proof (the `seed` profile's nodes are
    /// zero-knowledge already).
    #[arg(long, env = "SHEAF_FINAL_ZK")]
    pub final_zk: bool,
    /// Wrap the root in the compact final proof: three more recursions ending in a high-rate
    /// configuration (100 conjectured bits at every stage), under half the size of a plain root,
    /// for the chain's calldata; costs one ~45 s, ~4.5 GiB wrap job per sequence. With
    /// `--final-zk` too, its first recursion is zero-knowledge.
    #[arg(long, env = "SHEAF_FINAL_COMPACT")]
    pub final_compact: bool,
    /// Rows of each work leaf, as a power of two (5 to 20).
    #[arg(long = "leaf-rows-log2", env = "SHEAF_LEAF_ROWS_LOG2", default_value_t = DEFAULT_LEAF_ROWS_LOG2,
          value_parser = clap::value_parser!(usize))]
    pub leaf_rows_log2: usize,
    /// Directory of built circuits, reused across runs.
    #[arg(long, env = "SHEAF_CACHE_DIR", default_value_os_t = default_cache_dir())]
    pub cache_dir: PathBuf,
    /// Build circuits fresh and do not touch the cache.
    #[arg(long, env = "SHEAF_NO_CACHE")]
    pub no_cache: bool,
    /// Admit the rollup's kernels too: the tx kernel (leaf kind `tx`) and the merge and block
    /// nodes. The final key then verifies rollup blocks as well as work trees (it is another
    /// key than the work-only set's).
    #[arg(long, env = "SHEAF_ROLLUP")]
    pub rollup: bool,
}

/// `$XDG_CACHE_HOME/sheaf/circuits`, else `~/.cache/sheaf/circuits`, else `./.sheaf-cache`.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|base| base.join("sheaf").join("circuits"))
        .unwrap_or_else(|| PathBuf::from(".sheaf-cache"))
}

impl CircuitArgs {
    /// The cache, unless disabled.
    pub fn cache(&self) -> Option<ArtifactCache> {
        (!self.no_cache).then(|| ArtifactCache::new(&self.cache_dir))
    }

    /// The aggregation settings these flags select.
    pub fn settings(&self) -> AggregationSettings {
        AggregationSettings {
            profile: self.profile,
            arity: self.arity,
            final_zk: self.final_zk,
            final_compact: self.final_compact,
        }
    }

    /// Load or build the work leaf (and with `--rollup` the rollup's kernels) and the
    /// aggregation circuits.
    pub fn circuits(&self) -> anyhow::Result<CircuitSet> {
        self.circuits_from(self.cache())
    }

    /// As [`Self::circuits`], to verify only (a coordinator): every circuit without its prover
    /// data, loaded from the cache's verifier artifacts. When the cache has none, the set is
    /// built whole once, stored, and kept as its verifier sides; with `--no-cache` it stays whole.
    pub fn verifier_circuits(&self) -> anyhow::Result<CircuitSet> {
        self.circuits_from(self.cache().map(ArtifactCache::verifier_only))
    }

    fn circuits_from(&self, cache: Option<ArtifactCache>) -> anyhow::Result<CircuitSet> {
        let (settings, rows, cache) = (self.settings(), self.leaf_rows_log2, cache.as_ref());
        if settings.profile == Profile::Test {
            tracing::warn!(
                "circuit profile `test`: {} conjectured bits of security, for tests only",
                sheaf_circuits::wrap::conjectured_security_bits(&settings.node_config().fri_config)
            );
        }
        Ok(match self.rollup {
            true => sheaf_rollup::kernel::circuit_set(settings, rows, cache)?,
            false => CircuitSet::load_or_build(settings, rows, cache)?,
        })
    }

    /// Load or build the rollup's circuit set: the work leaf, the tx kernel, the merge and block
    /// kernels and the aggregation circuits over them.
    pub fn rollup_circuits(&self) -> anyhow::Result<CircuitSet> {
        Ok(sheaf_rollup::kernel::circuit_set(
            self.settings(),
            self.leaf_rows_log2,
            self.cache().as_ref(),
        )?)
    }
}
