//! Which circuit proves a job.

use std::fmt;
use std::str::FromStr;

use crate::text::text_form;

/// The circuit of a job. Its text form is how it is stored (`jobs.circuit`) and sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum JobCircuit {
    /// A leaf of kind `kind` (`leaf:work`).
    Leaf {
        /// The leaf kind.
        kind: String,
    },
    /// The node that verifies leaves of kind `kind` (`node:work`), at level 1.
    LeafNode {
        /// The leaf kind.
        kind: String,
    },
    /// The universal aggregation node (`universal`), at level 2 and above.
    Universal,
    /// A kernel node (`kernel:merge`): a node of the universal shape whose statement is its
    /// rule's (a rollup's merge or block kernel).
    Kernel {
        /// The rule's name.
        name: String,
    },
    /// The zero-knowledge wrap of a root (`wrap`).
    Wrap,
}

/// A circuit name that is none of [`JobCircuit`]'s forms.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "unknown job circuit {0:?} (expected leaf:<kind>, node:<kind>, kernel:<rule>, universal or wrap)"
)]
pub struct UnknownCircuit(pub String);

impl fmt::Display for JobCircuit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobCircuit::Leaf { kind } => write!(f, "leaf:{kind}"),
            JobCircuit::LeafNode { kind } => write!(f, "node:{kind}"),
            JobCircuit::Universal => f.write_str("universal"),
            JobCircuit::Kernel { name } => write!(f, "kernel:{name}"),
            JobCircuit::Wrap => f.write_str("wrap"),
        }
    }
}

impl FromStr for JobCircuit {
    type Err = UnknownCircuit;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let kind = |k: &str| {
            (!k.is_empty() && !k.contains(':'))
                .then(|| k.to_owned())
                .ok_or_else(|| UnknownCircuit(s.to_owned()))
        };
        match s.split_once(':') {
            Some(("leaf", k)) => Ok(JobCircuit::Leaf { kind: kind(k)? }),
            Some(("node", k)) => Ok(JobCircuit::LeafNode { kind: kind(k)? }),
            Some(("kernel", k)) => Ok(JobCircuit::Kernel { name: kind(k)? }),
            None if s == "universal" => Ok(JobCircuit::Universal),
            None if s == "wrap" => Ok(JobCircuit::Wrap),
            _ => Err(UnknownCircuit(s.to_owned())),
        }
    }
}

text_form!(JobCircuit, UnknownCircuit);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_round_trips() {
        for text in [
            "leaf:work",
            "node:work",
            "kernel:merge",
            "universal",
            "wrap",
        ] {
            assert_eq!(text.parse::<JobCircuit>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn other_names_are_refused() {
        for bad in [
            "leaf:",
            "node:a:b",
            "kernel:",
            "leaf",
            "root",
            "Universal",
            "",
        ] {
            assert_eq!(
                bad.parse::<JobCircuit>(),
                Err(UnknownCircuit(bad.to_owned()))
            );
        }
    }
}
