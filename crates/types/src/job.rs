//! Job ids.

use std::fmt;
use std::str::FromStr;

use crate::text::text_form;
use crate::SequenceId;

/// Deterministic id of a job: its place in the job tree of a sequence. Level 0 holds the leaves;
/// the root has the highest level.
///
/// Its text form `s{sequence}-l{level}-i{index}` (e.g. `s7-l2-i0`) is how it is stored (the
/// primary key of `jobs`), sent (JSON strings) and typed by operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId {
    /// Sequence the job belongs to.
    pub sequence: SequenceId,
    /// Height in the tree, 0 for leaves.
    pub level: u32,
    /// Position within its level, from 0.
    pub index: u64,
}

/// A string that is not the canonical form of a [`JobId`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid job id {0:?} (expected s<sequence>-l<level>-i<index>, e.g. s1-l0-i3)")]
pub struct InvalidJobId(pub String);

impl JobId {
    /// The job at `level`, `index` of `sequence`.
    pub const fn new(sequence: SequenceId, level: u32, index: u64) -> Self {
        Self {
            sequence,
            level,
            index,
        }
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}-l{}-i{}", self.sequence, self.level, self.index)
    }
}

impl FromStr for JobId {
    type Err = InvalidJobId;

    /// Parses the canonical form only: `s01-l0-i0` or `s1-l+0-i0` are refused, so a job has
    /// exactly one text id.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidJobId(s.to_owned());
        let rest = s.strip_prefix('s').ok_or_else(invalid)?;
        let (sequence, rest) = rest.split_once("-l").ok_or_else(invalid)?;
        let (level, index) = rest.split_once("-i").ok_or_else(invalid)?;
        let id = JobId {
            sequence: sequence.parse().map_err(|_| invalid())?,
            level: level.parse().map_err(|_| invalid())?,
            index: index.parse().map_err(|_| invalid())?,
        };
        if id.to_string() != s {
            return Err(invalid());
        }
        Ok(id)
    }
}

text_form!(JobId, InvalidJobId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let id = JobId::new(SequenceId(7), 2, 0);
        assert_eq!(id.to_string(), "s7-l2-i0");
        assert_eq!("s7-l2-i0".parse::<JobId>().unwrap(), id);
    }

    #[test]
    fn non_canonical_forms_are_refused() {
        for bad in [
            "s01-l0-i0",
            "s1-l+0-i0",
            "s1-l0",
            "1-l0-i0",
            "s1-l0-i0x",
            "s-1-l0-i0",
            "",
        ] {
            assert_eq!(
                bad.parse::<JobId>(),
                Err(InvalidJobId(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn json_is_the_text_form() {
        let id = JobId::new(SequenceId(3), 1, 4);
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"s3-l1-i4\"");
        assert_eq!(serde_json::from_str::<JobId>("\"s3-l1-i4\"").unwrap(), id);
        assert!(serde_json::from_str::<JobId>("\"s3-l1\"").is_err());
    }
}
