//! What a job proves from.

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::sql::stored_as;

/// The `kind` of the benchmark work leaf's inputs.
const WORK: &str = "work";
/// The `kind` of an aggregation job's inputs.
const AGGREGATE: &str = "aggregate";

/// What a job proves from, besides its children's proofs. Stored (`jobs.inputs`) and sent as
/// one JSON object tagged by `kind`: `{"kind":"work","seed":5,"index":9}`,
/// `{"kind":"aggregate"}`, or any other leaf kind's fields, `{"kind":"<kind>",…}`.
///
/// The work leaf keeps a typed variant: it is the workload the coordinator plans itself, and its
/// stored form (`seed` before `index`) is kept byte for byte. Every other kind's fields are an
/// open JSON object that only the kind's circuits interpret (see [`JobInputs::leaf_fields`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobInputs {
    /// A work leaf: input `work_input(seed, index)`.
    Work {
        /// Seed of the sequence's inputs.
        seed: u64,
        /// The leaf's index.
        index: u64,
    },
    /// A leaf of another kind, with the fields its kind reads.
    Leaf(LeafInputs),
    /// An aggregation job: everything is in the children.
    Aggregate,
}

/// The inputs of a leaf of a kind other than `work`: its kind and its fields. Built by
/// [`JobInputs::leaf`] or by parsing, so that its kind is never `work` nor `aggregate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafInputs {
    kind: String,
    fields: Map<String, Value>,
}

impl LeafInputs {
    /// The leaf kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The fields besides `kind`.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }
}

impl JobInputs {
    /// The inputs of a leaf of `kind` with `fields` (a JSON object without `kind`). A `work`
    /// leaf comes out as [`JobInputs::Work`], so one value has one form.
    pub fn leaf(kind: &str, fields: Value) -> Result<Self, serde_json::Error> {
        let Value::Object(mut object) = fields else {
            return Err(serde_json::Error::custom(
                "leaf fields must be a JSON object",
            ));
        };
        if kind == AGGREGATE {
            return Err(serde_json::Error::custom(
                "\"aggregate\" is not a leaf kind",
            ));
        }
        object.insert("kind".into(), Value::String(kind.into()));
        serde_json::from_value(Value::Object(object))
    }

    /// The leaf kind these inputs are for; `None` for an aggregation job.
    pub fn leaf_kind(&self) -> Option<&str> {
        match self {
            JobInputs::Work { .. } => Some(WORK),
            JobInputs::Leaf(leaf) => Some(&leaf.kind),
            JobInputs::Aggregate => None,
        }
    }

    /// A leaf's fields besides `kind`, as its kind decodes them into its typed inputs; `None`
    /// for an aggregation job.
    pub fn leaf_fields(&self) -> Option<Value> {
        match self {
            JobInputs::Work { seed, index } => {
                Some(serde_json::json!({ "seed": seed, "index": index }))
            }
            JobInputs::Leaf(leaf) => Some(Value::Object(leaf.fields.clone())),
            JobInputs::Aggregate => None,
        }
    }

    /// The stored form (JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Integers and JSON values always serialize.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses the stored form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

impl Serialize for JobInputs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            JobInputs::Work { seed, index } => {
                let mut map = serializer.serialize_map(Some(3))?;
                map.serialize_entry("kind", WORK)?;
                map.serialize_entry("seed", seed)?;
                map.serialize_entry("index", index)?;
                map.end()
            }
            JobInputs::Leaf(leaf) => {
                let mut map = serializer.serialize_map(Some(1 + leaf.fields.len()))?;
                map.serialize_entry("kind", &leaf.kind)?;
                for (name, value) in &leaf.fields {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
            JobInputs::Aggregate => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("kind", AGGREGATE)?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for JobInputs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct WorkFields {
            seed: u64,
            index: u64,
        }
        let mut fields = Map::<String, Value>::deserialize(deserializer)?;
        let kind = match fields.remove("kind") {
            Some(Value::String(kind)) => kind,
            Some(_) => return Err(D::Error::custom("`kind` must be a string")),
            None => return Err(D::Error::missing_field("kind")),
        };
        match kind.as_str() {
            WORK => {
                let WorkFields { seed, index } =
                    serde_json::from_value(Value::Object(fields)).map_err(D::Error::custom)?;
                Ok(JobInputs::Work { seed, index })
            }
            AGGREGATE => Ok(JobInputs::Aggregate),
            _ if kind.is_empty() || kind.contains(':') => Err(D::Error::custom(format!(
                "invalid leaf kind {kind:?} (non-empty, no ':')"
            ))),
            _ => Ok(JobInputs::Leaf(LeafInputs { kind, fields })),
        }
    }
}

stored_as!(
    JobInputs,
    Vec<u8>,
    |i: &JobInputs| Ok::<_, serde_json::Error>(i.to_bytes()),
    |b: Vec<u8>| JobInputs::from_bytes(&b)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_round_trips() {
        let other =
            JobInputs::leaf("preimage", serde_json::json!({ "preimage": [1, 2, 3, 4] })).unwrap();
        for inputs in [
            JobInputs::Work { seed: 5, index: 9 },
            JobInputs::Aggregate,
            other,
        ] {
            assert_eq!(JobInputs::from_bytes(&inputs.to_bytes()).unwrap(), inputs);
        }
    }

    #[test]
    fn stored_form_of_work_and_aggregate_is_unchanged() {
        assert_eq!(
            JobInputs::Work { seed: 5, index: 9 }.to_bytes(),
            br#"{"kind":"work","seed":5,"index":9}"#
        );
        assert_eq!(JobInputs::Aggregate.to_bytes(), br#"{"kind":"aggregate"}"#);
        assert_eq!(
            JobInputs::from_bytes(br#"{"index":9,"kind":"work","seed":5}"#).unwrap(),
            JobInputs::Work { seed: 5, index: 9 }
        );
    }

    /// The closed enum this type replaced, as it was derived: the stored and sent bytes of work
    /// and aggregation jobs must not change.
    #[derive(Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum ClosedJobInputs {
        Work { seed: u64, index: u64 },
        Aggregate,
    }

    #[test]
    fn stored_form_matches_the_closed_enum_it_replaced() {
        for (seed, index) in [(0, 0), (5, 9), (u64::MAX, 1 << 20), (7, u64::MAX)] {
            let old = serde_json::to_vec(&ClosedJobInputs::Work { seed, index }).unwrap();
            let new = JobInputs::Work { seed, index };
            assert_eq!(new.to_bytes(), old);
            assert_eq!(JobInputs::from_bytes(&old).unwrap(), new);
        }
        let old = serde_json::to_vec(&ClosedJobInputs::Aggregate).unwrap();
        assert_eq!(JobInputs::Aggregate.to_bytes(), old);
        assert_eq!(JobInputs::from_bytes(&old).unwrap(), JobInputs::Aggregate);
        let work = JobInputs::Work { seed: 3, index: 4 }.to_bytes();
        assert!(matches!(
            serde_json::from_slice(&work).unwrap(),
            ClosedJobInputs::Work { seed: 3, index: 4 }
        ));
    }

    #[test]
    fn other_kinds_keep_their_fields() {
        let inputs = JobInputs::from_bytes(br#"{"kind":"preimage","preimage":[1,2,3,4]}"#).unwrap();
        assert_eq!(inputs.leaf_kind(), Some("preimage"));
        assert_eq!(
            inputs.leaf_fields(),
            Some(serde_json::json!({ "preimage": [1, 2, 3, 4] }))
        );
        assert_eq!(
            inputs.to_bytes(),
            br#"{"kind":"preimage","preimage":[1,2,3,4]}"#
        );
    }

    #[test]
    fn a_work_leaf_has_one_form() {
        assert_eq!(
            JobInputs::leaf("work", serde_json::json!({ "seed": 1, "index": 2 })).unwrap(),
            JobInputs::Work { seed: 1, index: 2 }
        );
        assert_eq!(
            JobInputs::Work { seed: 1, index: 2 }.leaf_fields(),
            Some(serde_json::json!({ "seed": 1, "index": 2 }))
        );
    }

    #[test]
    fn malformed_inputs_are_refused() {
        for bad in [
            &br#"{"seed":5,"index":9}"#[..],
            br#"{"kind":7}"#,
            br#"{"kind":"work","seed":5}"#,
            br#"{"kind":""}"#,
            br#"{"kind":"leaf:x"}"#,
            br#"[]"#,
        ] {
            assert!(
                JobInputs::from_bytes(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(JobInputs::leaf("aggregate", serde_json::json!({})).is_err());
        assert!(JobInputs::leaf("x", serde_json::json!(3)).is_err());
    }
}
