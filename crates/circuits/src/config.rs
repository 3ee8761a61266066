//! Circuit configurations: which plonky2 parameters leaves and aggregation nodes use.

use std::fmt;
use std::str::FromStr;

use plonky2::fri::{FriConfig, FriReductionStrategy};
use plonky2::plonk::circuit_data::CircuitConfig;
use serde::{Deserialize, Serialize};

/// A named pair of leaf and aggregation-node configurations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// plonky2's standard recursion config (143 wires / 80 routed) for leaves and nodes.
    #[default]
    Standard,
    /// The seed's configuration: leaves 135 wires / 60 routed without zero knowledge,
    /// aggregation with zero knowledge (rate 3, 28 queries, PoW 16).
    Seed,
    /// For tests and demonstrations only, never for proofs that settle value: plonky2's
    /// recursion config with [`TEST_QUERY_ROUNDS`] FRI queries instead of 28, about
    /// [`TEST_SECURITY_BITS`] conjectured bits instead of 100. A node then fits in 2^12 rows
    /// instead of 2^13 and proves in about half the time.
    Test,
}

/// FRI query rounds of the [`Profile::Test`] configurations.
pub const TEST_QUERY_ROUNDS: usize = 10;

/// Conjectured security of the [`Profile::Test`] configurations: rate bits × queries + grinding.
pub const TEST_SECURITY_BITS: usize = 3 * TEST_QUERY_ROUNDS + 16;

impl Profile {
    /// Both profiles, for listings.
    pub const ALL: [Profile; 3] = [Profile::Standard, Profile::Seed, Profile::Test];

    /// The configuration of leaf circuits.
    pub fn leaf_config(self) -> CircuitConfig {
        match self {
            Profile::Standard => CircuitConfig::standard_recursion_config(),
            Profile::Seed => seed_leaf_config(),
            Profile::Test => test_config(),
        }
    }

    /// The configuration of aggregation nodes.
    pub fn node_config(self) -> CircuitConfig {
        match self {
            Profile::Standard => CircuitConfig::standard_recursion_config(),
            Profile::Seed => seed_aggregator_config(),
            Profile::Test => test_config(),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Standard => "standard",
            Profile::Seed => "seed",
            Profile::Test => "test",
        })
    }
}

impl FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "standard" => Ok(Profile::Standard),
            "seed" => Ok(Profile::Seed),
            "test" => Ok(Profile::Test),
            other => Err(format!(
                "unknown profile {other:?}: use standard, seed or test (tests only)"
            )),
        }
    }
}

/// The [`Profile::Test`] configuration: plonky2's recursion config with fewer FRI queries.
pub fn test_config() -> CircuitConfig {
    let mut config = CircuitConfig::standard_recursion_config();
    config.fri_config.num_query_rounds = TEST_QUERY_ROUNDS;
    config.security_bits = TEST_SECURITY_BITS;
    config
}

/// The seed's leaf circuit configuration: 135 wires / 60 routed, no zero knowledge.
pub fn seed_leaf_config() -> CircuitConfig {
    CircuitConfig {
        num_wires: 135,
        num_routed_wires: 60,
        num_constants: 2,
        use_base_arithmetic_gate: true,
        security_bits: 100,
        num_challenges: 2,
        zero_knowledge: false,
        max_quotient_degree_factor: 8,
        fri_config: FriConfig {
            rate_bits: 3,
            cap_height: 4,
            proof_of_work_bits: 16,
            reduction_strategy: FriReductionStrategy::ConstantArityBits(4, 5),
            num_query_rounds: 28,
        },
    }
}

/// The seed's aggregator configuration: as the leaf, with zero knowledge.
pub fn seed_aggregator_config() -> CircuitConfig {
    CircuitConfig {
        zero_knowledge: true,
        ..seed_leaf_config()
    }
}
