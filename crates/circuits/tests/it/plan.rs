//! Tree shapes.

use sheaf_circuits::tree::MAX_TREE_LEAVES;
use sheaf_circuits::{CircuitError, TreePlan};

#[test]
fn plan_levels_shrink_by_the_arity_and_end_in_one_universal_root() {
    let plan = TreePlan::new(5, 2).unwrap();
    assert_eq!(plan.level_sizes(), &[5, 3, 2, 1]);
    assert_eq!(plan.children(1, 2), 4..5);
    assert_eq!(plan.aggregation_nodes(), 6);

    // At most `arity` leaves: a leaf node and a universal root above it.
    assert_eq!(TreePlan::new(1, 2).unwrap().level_sizes(), &[1, 1, 1]);
    assert_eq!(TreePlan::new(4, 4).unwrap().level_sizes(), &[4, 1, 1]);
    assert_eq!(TreePlan::new(5, 4).unwrap().level_sizes(), &[5, 2, 1]);
}

#[test]
fn plan_of_4096_leaves_needs_no_padding_nodes() {
    let plan = TreePlan::new(4096, 4).unwrap();
    assert_eq!(plan.level_sizes(), &[4096, 1024, 256, 64, 16, 4, 1]);
    let odd = TreePlan::new(4097, 4).unwrap();
    assert_eq!(odd.level_sizes(), &[4097, 1025, 257, 65, 17, 5, 2, 1]);
    // Every node has 1 to `arity` children and every child one parent.
    for level in 1..odd.depth() {
        let covered: usize = (0..odd.level_sizes()[level])
            .map(|i| {
                let c = odd.children(level, i);
                assert!((1..=4).contains(&c.len()));
                c.len()
            })
            .sum();
        assert_eq!(covered, odd.level_sizes()[level - 1]);
    }
}

#[test]
fn plan_rejects_empty_and_oversized_trees_and_arity_one() {
    for (leaves, arity) in [(0, 2), (MAX_TREE_LEAVES + 1, 2), (4, 1)] {
        assert!(matches!(
            TreePlan::new(leaves, arity),
            Err(CircuitError::InvalidArgument(_))
        ));
    }
}
