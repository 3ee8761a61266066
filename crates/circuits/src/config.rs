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
}

impl Profile {
    /// Both profiles, for listings.
    pub const ALL: [Profile; 2] = [Profile::Standard, Profile::Seed];

    /// The configuration of leaf circuits.
    pub fn leaf_config(self) -> CircuitConfig {
        match self {
            Profile::Standard => CircuitConfig::standard_recursion_config(),
            Profile::Seed => seed_leaf_config(),
        }
    }

    /// The configuration of aggregation nodes.
    pub fn node_config(self) -> CircuitConfig {
        match self {
            Profile::Standard => CircuitConfig::standard_recursion_config(),
            Profile::Seed => seed_aggregator_config(),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Standard => "standard",
            Profile::Seed => "seed",
        })
    }
}

impl FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "standard" => Ok(Profile::Standard),
            "seed" => Ok(Profile::Seed),
            other => Err(format!("unknown profile {other:?}: use standard or seed")),
        }
    }
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
