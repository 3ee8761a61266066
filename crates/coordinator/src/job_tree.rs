//! Planning a sequence: its leaves → the job tree the store inserts, with the arity of the proving core.
//!
//! Leaves are level 0, the leaf nodes that verify them level 1, universal nodes above; the root
//! is always a universal node, and when the circuits wrap the final proof, one wrap job sits on
//! top. Planning only counts leaves: which kind of leaf a job proves is in its circuit name.

use sheaf_api::JobInputs;
use sheaf_circuits::{JobCircuit, TreePlan};
use sheaf_store::{JobId, NewJob, NewSequence, SequenceId};

/// A planned sequence, ready for [`sheaf_store::Store::insert_sequence`].
#[derive(Clone, Debug)]
pub struct SequencePlan {
    /// The sequence row.
    pub sequence: NewSequence,
    /// Its jobs, leaves first.
    pub jobs: Vec<NewJob>,
}

/// Plan sequence `id` of `leaves` leaves of kind `leaf_kind` at `arity`, the leaves' inputs
/// seeded by `seed`; `wrap` adds the zero-knowledge wrap of the root.
pub fn plan_sequence(
    id: SequenceId,
    leaves: usize,
    arity: usize,
    leaf_kind: &str,
    seed: u64,
    wrap: bool,
    created_ms: i64,
) -> Result<SequencePlan, sheaf_circuits::CircuitError> {
    let tree = TreePlan::new(leaves, arity)?;
    let mut jobs = Vec::with_capacity(leaves + tree.aggregation_nodes() + 1);
    for (level, &size) in tree.level_sizes().iter().enumerate() {
        for index in 0..size {
            let id_of = |level: usize, index: usize| JobId::new(id, level as u32, index as u64);
            let (circuit, inputs, children) = match level {
                0 => (
                    JobCircuit::Leaf {
                        kind: leaf_kind.to_owned(),
                    },
                    JobInputs::Work {
                        seed,
                        index: index as u64,
                    },
                    Vec::new(),
                ),
                _ => (
                    if level == 1 {
                        JobCircuit::LeafNode {
                            kind: leaf_kind.to_owned(),
                        }
                    } else {
                        JobCircuit::Universal
                    },
                    JobInputs::Aggregate,
                    tree.children(level, index)
                        .map(|child| id_of(level - 1, child))
                        .collect(),
                ),
            };
            jobs.push(NewJob {
                id: id_of(level, index),
                circuit,
                inputs,
                children,
            });
        }
    }
    if wrap {
        let root = tree.root_level() as u32;
        jobs.push(NewJob {
            id: JobId::new(id, root + 1, 0),
            circuit: JobCircuit::Wrap,
            inputs: JobInputs::Aggregate,
            children: vec![JobId::new(id, root, 0)],
        });
    }
    Ok(SequencePlan {
        sequence: NewSequence {
            id,
            leaves: leaves as i64,
            created_ms,
        },
        jobs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_leaves_at_arity_two_make_eleven_jobs() {
        let plan = plan_sequence(SequenceId(7), 5, 2, "work", 7, false, 0).unwrap();
        // 5 leaves, 3 leaf nodes, 2 universal, 1 root.
        assert_eq!(plan.jobs.len(), 11);
        let root = plan.jobs.last().unwrap();
        assert_eq!(root.id, JobId::new(SequenceId(7), 3, 0));
        assert_eq!(root.circuit, JobCircuit::Universal);
        assert_eq!(
            root.children,
            vec![
                JobId::new(SequenceId(7), 2, 0),
                JobId::new(SequenceId(7), 2, 1)
            ]
        );
        let last_leaf_node = &plan.jobs[7];
        assert_eq!(last_leaf_node.circuit.to_string(), "node:work");
        assert_eq!(
            last_leaf_node.children,
            vec![JobId::new(SequenceId(7), 0, 4)]
        );
        assert_eq!(plan.jobs[4].inputs, JobInputs::Work { seed: 7, index: 4 });
    }

    #[test]
    fn wrap_sits_on_the_root() {
        let plan = plan_sequence(SequenceId(1), 1, 2, "work", 1, true, 0).unwrap();
        let circuits: Vec<String> = plan.jobs.iter().map(|j| j.circuit.to_string()).collect();
        assert_eq!(circuits, ["leaf:work", "node:work", "universal", "wrap"]);
        assert_eq!(plan.jobs[3].children, vec![JobId::new(SequenceId(1), 2, 0)]);
    }

    #[test]
    fn zero_leaves_are_refused() {
        assert!(plan_sequence(SequenceId(1), 0, 2, "work", 1, false, 0).is_err());
    }
}
