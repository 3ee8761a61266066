//! Reward claims: a prover proves, without revealing its secret, that it proved a job of a
//! finalized sequence, and names the account its reward goes to (seed 000, REFERENCE §5).
//!
//! ```text
//!  private   secret s; the claimed job's commitment path: its children's commitments (none for
//!            a leaf), then per level up to the root the commitments of the parent's children
//!            (this one's at `slot`) and the parent's worker key
//!  proves    pk = H(s); c = pk (a leaf) or H(inner(children), pk) (a node); per level
//!            c ← H(inner(siblings), pk_parent) with siblings[slot] = c, slot < children;
//!            inner(one) = c_1, inner(c_1 … c_k) = H(c_1 … c_k): the commitment rules of
//!            `node.rs`, so the path ends at the sequence's root commitment
//!  public    statement H(tag ‖ root ‖ sequence ‖ depth ‖ index ‖ nullifier ‖ exit), with
//!            nullifier = H(tag ‖ s ‖ sequence ‖ depth ‖ index)
//! ```
//!
//! A job's **position** is its place in the tree read from the root: `depth` levels below the
//! root and `index`, the slots from the root as digits base `arity` (the first slot most
//! significant). For a work tree this is the job's `(level, index)` with
//! `level = root level − depth`; the rollup's trees are not regular, and the path is what the
//! circuit can see, so the chain keys what it owes by this position. The nullifier binds the
//! secret to (sequence, position), so each position of each sequence is paid once whatever
//! exit account a claim names.
//!
//! Claims are a leaf kind ([`CLAIM_KIND`]) of every network's circuit set: a claimant proves its
//! claims and aggregates them with Sheaf's tree under the one final key, and the chain
//! recomputes the batch's statement from the listed claims ([`batch_statement`]).

use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use serde::{Deserialize, Serialize};
use sheaf_types::{Address, SequenceId};

use crate::cache::{ArtifactCache, Fingerprint};
use crate::digest::{Digest, WorkerSecret};
use crate::error::{CircuitError, Result};
use crate::header::Header;
use crate::leaf::{leaf_header, LeafCircuit, LeafHeaderBuilder};
use crate::node::one_hot_select;
use crate::tree::TreePlan;
use crate::{Proof, C, D, F};

/// The kind name of claim leaves.
pub const CLAIM_KIND: &str = "claim";

/// Most levels a claim's path may climb: a tree of the largest size
/// ([`crate::tree::MAX_TREE_LEAVES`]) at arity 2 is 21 levels deep; the rollup's are shallower.
pub const MAX_CLAIM_DEPTH: usize = 24;

/// Domain tags, so a nullifier is never a statement and neither is a worker key.
const NULLIFIER_TAG: u64 = 0x6e75_6c6c; // "null"
const STATEMENT_TAG: u64 = 0x636c_616d; // "clam"

/// The deepest path a claim circuit of `arity` holds: [`MAX_CLAIM_DEPTH`], less where the
/// index (`arity^depth`) would not fit in 63 bits.
pub fn max_claim_depth(arity: usize) -> usize {
    let bits = usize::BITS - (arity.max(2) - 1).leading_zeros();
    MAX_CLAIM_DEPTH.min(63 / bits as usize)
}

/// A job's place in its tree, read from the root.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Position {
    /// Levels below the root (0: the root).
    pub depth: u32,
    /// The slots from the root, base arity, the first most significant.
    pub index: u64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "depth {} index {}", self.depth, self.index)
    }
}

/// One level of a commitment path: the parent's real children and the parent's worker key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStep {
    /// The commitments of the parent's children, in order (1 to arity).
    pub siblings: Vec<Digest>,
    /// Where the path's node sits among them.
    pub slot: usize,
    /// The parent's worker key.
    pub worker_pk: Digest,
}

/// The public data that ties a job to its sequence's root commitment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentPath {
    /// The job's worker key (`H(secret)` of whoever proved it).
    pub worker_pk: Digest,
    /// The commitments of the job's children, in order; empty for a leaf.
    pub children: Vec<Digest>,
    /// From the job's parent up to the root.
    pub steps: Vec<PathStep>,
}

/// Why a commitment path is not one a claim circuit of some arity can prove.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// A node with no children or more than the arity.
    #[error("a node has {got} children; the arity is {arity}")]
    ChildCount {
        /// The arity.
        arity: usize,
        /// Children given.
        got: usize,
    },
    /// A slot past the parent's children.
    #[error("slot {slot} of a parent with {children} children")]
    Slot {
        /// The slot.
        slot: usize,
        /// The parent's children.
        children: usize,
    },
    /// The commitment at the slot is not the path's.
    #[error("level {level}: the parent's child at slot {slot} is not the path's node")]
    Broken {
        /// Levels above the job.
        level: usize,
        /// The slot.
        slot: usize,
    },
    /// More levels than the circuit holds.
    #[error("a path of {depth} levels; claims hold at most {max}")]
    TooDeep {
        /// Levels.
        depth: usize,
        /// The most.
        max: usize,
    },
}

/// `inner(c_1 … c_k)`: the single child's commitment, or the hash of them all.
fn inner(commitments: &[Digest]) -> Digest {
    match commitments {
        [only] => *only,
        many => Digest::hash_digests(many),
    }
}

impl CommitmentPath {
    /// The job's own commitment: its worker key for a leaf, `H(inner(children), pk)` for a node.
    pub fn commitment(&self) -> Digest {
        if self.children.is_empty() {
            self.worker_pk
        } else {
            Digest::two_to_one(inner(&self.children), self.worker_pk)
        }
    }

    /// Check the path's shape for `arity` and return the root commitment it climbs to.
    pub fn root(&self, arity: usize) -> std::result::Result<Digest, PathError> {
        let max = max_claim_depth(arity);
        if self.steps.len() > max {
            return Err(PathError::TooDeep {
                depth: self.steps.len(),
                max,
            });
        }
        if self.children.len() > arity {
            return Err(PathError::ChildCount {
                arity,
                got: self.children.len(),
            });
        }
        let mut c = self.commitment();
        for (level, step) in self.steps.iter().enumerate() {
            let k = step.siblings.len();
            if k == 0 || k > arity {
                return Err(PathError::ChildCount { arity, got: k });
            }
            if step.slot >= k {
                return Err(PathError::Slot {
                    slot: step.slot,
                    children: k,
                });
            }
            if step.siblings[step.slot] != c {
                return Err(PathError::Broken {
                    level,
                    slot: step.slot,
                });
            }
            c = Digest::two_to_one(inner(&step.siblings), step.worker_pk);
        }
        Ok(c)
    }

    /// The job's position: its depth and its slots read from the root, base `arity`.
    pub fn position(&self, arity: usize) -> Position {
        let index = self.steps.iter().rev().fold(0u64, |index, step| {
            index
                .wrapping_mul(arity as u64)
                .wrapping_add(step.slot as u64)
        });
        Position {
            depth: self.steps.len() as u32,
            index,
        }
    }
}

/// `H(tag ‖ secret ‖ sequence ‖ depth ‖ index)`: spent when the claim is paid, so a position is
/// paid once; only the secret's holder can compute it, so it tells nobody who claimed.
pub fn nullifier(secret: &WorkerSecret, sequence: SequenceId, position: Position) -> Digest {
    let mut fields = vec![F::from_canonical_u64(NULLIFIER_TAG)];
    fields.extend(secret.expose().to_fields());
    fields.extend(position_fields(sequence, position));
    Digest::hash(&fields)
}

fn position_fields(sequence: SequenceId, position: Position) -> [F; 3] {
    [
        F::from_noncanonical_u64(sequence.0),
        F::from_canonical_u64(position.depth as u64),
        F::from_noncanonical_u64(position.index),
    ]
}

/// An account as eight 32-bit field elements (little-endian words), each range-checked in the
/// circuit, so one account has one encoding.
fn exit_fields(exit: &Address) -> [F; 8] {
    std::array::from_fn(|i| {
        let mut word = [0u8; 4];
        word.copy_from_slice(&exit.0[4 * i..4 * i + 4]);
        F::from_canonical_u32(u32::from_le_bytes(word))
    })
}

/// What one claim states publicly, and what the chain recomputes it from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimStatement {
    /// The sequence's root commitment (the chain's record of it).
    pub root: Digest,
    /// The sequence.
    pub sequence: SequenceId,
    /// The claimed job's position.
    pub position: Position,
    /// The claim's nullifier.
    pub nullifier: Digest,
    /// The account paid.
    pub exit: Address,
}

impl ClaimStatement {
    /// The statement hash a claim proof carries.
    pub fn digest(&self) -> Digest {
        let mut fields = vec![F::from_canonical_u64(STATEMENT_TAG)];
        fields.extend(self.root.to_fields());
        fields.extend(position_fields(self.sequence, self.position));
        fields.extend(self.nullifier.to_fields());
        fields.extend(exit_fields(&self.exit));
        Digest::hash(&fields)
    }
}

/// The statement of the root of a claim tree of `arity` over `claims` in order: what a batch's
/// proof must carry.
pub fn batch_statement(claims: &[ClaimStatement], arity: usize) -> Result<Digest> {
    let plan = TreePlan::new(claims.len(), arity)?;
    let leaves: Vec<Header> = claims
        .iter()
        .map(|claim| leaf_header(0, claim.digest(), Digest::ZERO))
        .collect();
    Ok(plan
        .expected_root_header(&leaves, 0, |_, _| Digest::ZERO)
        .statement)
}

/// The witness of one claim: all public data; the secret is the prover's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimInput {
    /// The sequence.
    pub sequence: SequenceId,
    /// The claimed job's path to the root.
    pub path: CommitmentPath,
    /// Its nullifier ([`nullifier`] of the claimant's secret).
    pub nullifier: Digest,
    /// The account paid.
    pub exit: Address,
}

impl ClaimInput {
    /// The claim of the job at the end of `path` in `sequence` by `secret`'s holder, paid to
    /// `exit`.
    pub fn new(
        secret: &WorkerSecret,
        sequence: SequenceId,
        path: CommitmentPath,
        exit: Address,
        arity: usize,
    ) -> Self {
        let nullifier = nullifier(secret, sequence, path.position(arity));
        ClaimInput {
            sequence,
            path,
            nullifier,
            exit,
        }
    }

    /// Its public statement, with the root its path climbs to (unchecked: see
    /// [`CommitmentPath::root`]).
    pub fn statement(&self, arity: usize) -> ClaimStatement {
        // A malformed path has no root; its statement can match nothing a proof carries.
        let root = self.path.root(arity).unwrap_or(Digest::ZERO);
        ClaimStatement {
            root,
            sequence: self.sequence,
            position: self.path.position(arity),
            nullifier: self.nullifier,
            exit: self.exit,
        }
    }
}

/// One node's composition in-circuit: `count` one-hot over `1..=arity` real children.
struct Fold {
    children: Vec<HashOutTarget>,
    /// `active[i]`: slot i holds a real child (a prefix; `active[0]` always).
    active: Vec<BoolTarget>,
}

impl Fold {
    fn new(b: &mut CircuitBuilder<F, D>, arity: usize) -> Self {
        let children = (0..arity).map(|_| b.add_virtual_hash()).collect();
        let mut active = vec![b._true()];
        for i in 1..arity {
            let flag = b.add_virtual_bool_target_safe();
            let violates = b.mul_sub(flag.target, active[i - 1].target, flag.target);
            b.assert_zero(violates);
            active.push(flag);
        }
        Fold { children, active }
    }

    /// `H(inner(children), pk)` over the real children.
    fn commitment(&self, b: &mut CircuitBuilder<F, D>, pk: HashOutTarget) -> HashOutTarget {
        let arity = self.children.len();
        let exactly: Vec<BoolTarget> = (0..arity)
            .map(|j| match self.active.get(j + 1) {
                Some(next) => BoolTarget::new_unsafe(b.sub(self.active[j].target, next.target)),
                None => self.active[j],
            })
            .collect();
        let mut candidates = vec![self.children[0]];
        for j in 2..=arity {
            let fields: Vec<Target> = self.children[..j].iter().flat_map(|c| c.elements).collect();
            candidates.push(b.hash_n_to_hash_no_pad::<PoseidonHash>(fields));
        }
        let inner = one_hot_select(b, &exactly, &candidates);
        b.hash_n_to_hash_no_pad::<PoseidonHash>([inner.elements, pk.elements].concat())
    }

    fn set(&self, pw: &mut PartialWitness<F>, commitments: &[Digest]) -> Result<()> {
        let err = |e: anyhow::Error| CircuitError::Prove(e.to_string());
        for (i, target) in self.children.iter().enumerate() {
            // Padding slots repeat the first child, as a node's do; they affect nothing.
            let value = commitments.get(i).or(commitments.first()).copied();
            pw.set_hash_target(*target, value.unwrap_or_default().to_hash_out())
                .map_err(err)?;
        }
        for (i, flag) in self.active.iter().enumerate().skip(1) {
            pw.set_bool_target(*flag, i < commitments.len())
                .map_err(err)?;
        }
        Ok(())
    }
}

/// One level of the path in-circuit.
struct StepTargets {
    /// This level is part of the path (a prefix of levels is).
    active: BoolTarget,
    fold: Fold,
    /// One-hot slot of the path's node among the parent's children.
    slot: Vec<BoolTarget>,
    worker_pk: HashOutTarget,
}

/// A built claim circuit for trees of one arity.
pub struct ClaimLeaf {
    targets: ClaimTargets,
    data: CircuitData<F, C, D>,
}

/// The claim circuit's witness targets, for trees of one arity.
struct ClaimTargets {
    arity: usize,
    header: LeafHeaderBuilder,
    is_node: BoolTarget,
    own: Fold,
    steps: Vec<StepTargets>,
    sequence: Target,
    exit: [Target; 8],
}

impl std::fmt::Debug for ClaimLeaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimLeaf")
            .field("arity", &self.targets.arity)
            .field("rows_log2", &self.data.common.degree_bits())
            .finish()
    }
}

impl ClaimLeaf {
    /// Load (or build and cache) the claim circuit for trees of `arity`.
    pub fn load_or_build(
        config: CircuitConfig,
        arity: usize,
        cache: Option<&ArtifactCache>,
    ) -> Result<Self> {
        if !(2..=16).contains(&arity) {
            return Err(CircuitError::InvalidArgument(format!(
                "claims are built for arity 2 to 16, got {arity}"
            )));
        }
        // The weight in the header depends on the final size: build at a guess, and again at
        // the size it came to if that differs.
        let mut rows_log2 = 10;
        for _ in 0..3 {
            let (builder, targets) = Self::body(config.clone(), arity, rows_log2);
            let fp = Fingerprint::new(
                CLAIM_KIND,
                &format!("arity={arity} rows=2^{rows_log2} depth={MAX_CLAIM_DEPTH} {config:?}"),
            );
            let data = match cache {
                Some(cache) => {
                    cache
                        .circuit("claim-leaf", &fp, || Ok(builder.build::<C>()))?
                        .0
                }
                None => builder.build::<C>(),
            };
            let built = data.common.degree_bits();
            if built == rows_log2 {
                return Ok(ClaimLeaf { targets, data });
            }
            rows_log2 = built;
        }
        Err(CircuitError::Build(format!(
            "the claim circuit does not settle on a size (last built 2^{rows_log2})"
        )))
    }

    fn body(
        config: CircuitConfig,
        arity: usize,
        rows_log2: usize,
    ) -> (CircuitBuilder<F, D>, ClaimTargets) {
        let mut builder = CircuitBuilder::<F, D>::new(config);
        let b = &mut builder;
        let header = LeafHeaderBuilder::new(b);
        let secret = header.secret();
        let pk = b.hash_n_to_hash_no_pad::<PoseidonHash>(secret.to_vec());

        let is_node = b.add_virtual_bool_target_safe();
        let own = Fold::new(b, arity);
        let as_node = own.commitment(b, pk);
        let mut c = select_hash(b, is_node, as_node, pk);

        let sequence = b.add_virtual_target();
        let mut depth = b.zero();
        let mut index = b.zero();
        let mut weight = F::ONE; // arity^level, the weight of this level's slot in the index
        let mut steps: Vec<StepTargets> = Vec::with_capacity(max_claim_depth(arity));
        for _ in 0..max_claim_depth(arity) {
            let active = b.add_virtual_bool_target_safe();
            if let Some(previous) = steps.last() {
                let violates = b.mul_sub(active.target, previous.active.target, active.target);
                b.assert_zero(violates);
            }
            let fold = Fold::new(b, arity);
            let slot: Vec<BoolTarget> = (0..arity)
                .map(|_| b.add_virtual_bool_target_safe())
                .collect();
            let slot_targets: Vec<Target> = slot.iter().map(|s| s.target).collect();
            let one_hot = b.add_many(slot_targets);
            let one = b.one();
            b.connect(one_hot, one);
            // The slot holds a real child: slot i needs active[i].
            for (s, real) in slot.iter().zip(&fold.active) {
                let violates = b.mul_sub(s.target, real.target, s.target);
                b.assert_zero(violates);
            }
            // siblings[slot] = c, when the level is active.
            let at_slot = one_hot_select(b, &slot, &fold.children);
            for (x, y) in at_slot.elements.iter().zip(c.elements) {
                let difference = b.sub(*x, y);
                let gated = b.mul(active.target, difference);
                b.assert_zero(gated);
            }
            let worker_pk = b.add_virtual_hash();
            let parent = fold.commitment(b, worker_pk);
            c = select_hash(b, active, parent, c);

            let mut slot_value = b.zero();
            for (i, s) in slot.iter().enumerate() {
                slot_value = b.mul_const_add(F::from_canonical_usize(i), s.target, slot_value);
            }
            let gated_slot = b.mul(active.target, slot_value);
            index = b.mul_const_add(weight, gated_slot, index);
            depth = b.add(depth, active.target);
            weight *= F::from_canonical_usize(arity);
            steps.push(StepTargets {
                active,
                fold,
                slot,
                worker_pk,
            });
        }

        let tag = b.constant(F::from_canonical_u64(NULLIFIER_TAG));
        let mut fields = vec![tag];
        fields.extend(secret);
        fields.extend([sequence, depth, index]);
        let nullifier = b.hash_n_to_hash_no_pad::<PoseidonHash>(fields);

        let exit: [Target; 8] = std::array::from_fn(|_| b.add_virtual_target());
        for word in exit {
            b.range_check(word, 32);
        }
        let tag = b.constant(F::from_canonical_u64(STATEMENT_TAG));
        let mut fields = vec![tag];
        fields.extend(c.elements);
        fields.extend([sequence, depth, index]);
        fields.extend(nullifier.elements);
        fields.extend(exit);
        let statement = b.hash_n_to_hash_no_pad::<PoseidonHash>(fields);
        header.finish(b, statement, rows_log2);
        (
            builder,
            ClaimTargets {
                arity,
                header,
                is_node,
                own,
                steps,
                sequence,
                exit,
            },
        )
    }

    /// Arity of the trees this circuit climbs.
    pub fn arity(&self) -> usize {
        self.targets.arity
    }

    /// Rows of the circuit, as a power of two.
    pub fn rows_log2(&self) -> usize {
        self.data.common.degree_bits()
    }

    /// Prove `input` without checking it natively first: what a claimant who does not hold the
    /// job's secret would have to do. Fails in the prover when the claim is false.
    pub fn prove_unchecked(&self, input: &ClaimInput, worker: &WorkerSecret) -> Result<Proof> {
        let err = |e: anyhow::Error| CircuitError::Prove(e.to_string());
        let mut pw = PartialWitness::new();
        self.targets.header.set(&mut pw, worker)?;
        let path = &input.path;
        pw.set_bool_target(self.targets.is_node, !path.children.is_empty())
            .map_err(err)?;
        let own: &[Digest] = if path.children.is_empty() {
            &[Digest::ZERO]
        } else {
            &path.children
        };
        self.targets.own.set(&mut pw, own)?;
        for (i, step) in self.targets.steps.iter().enumerate() {
            match path.steps.get(i) {
                Some(s) => {
                    pw.set_bool_target(step.active, true).map_err(err)?;
                    step.fold.set(&mut pw, &s.siblings)?;
                    for (j, flag) in step.slot.iter().enumerate() {
                        pw.set_bool_target(*flag, j == s.slot).map_err(err)?;
                    }
                    pw.set_hash_target(step.worker_pk, s.worker_pk.to_hash_out())
                        .map_err(err)?;
                }
                None => {
                    pw.set_bool_target(step.active, false).map_err(err)?;
                    step.fold.set(&mut pw, &[Digest::ZERO])?;
                    for (j, flag) in step.slot.iter().enumerate() {
                        pw.set_bool_target(*flag, j == 0).map_err(err)?;
                    }
                    pw.set_hash_target(step.worker_pk, Digest::ZERO.to_hash_out())
                        .map_err(err)?;
                }
            }
        }
        pw.set_target(
            self.targets.sequence,
            F::from_noncanonical_u64(input.sequence.0),
        )
        .map_err(err)?;
        for (target, value) in self.targets.exit.iter().zip(exit_fields(&input.exit)) {
            pw.set_target(*target, value).map_err(err)?;
        }
        self.data.prove(pw).map_err(err)
    }
}

/// `flag ? a : b`, element-wise.
fn select_hash(
    b: &mut CircuitBuilder<F, D>,
    flag: BoolTarget,
    a: HashOutTarget,
    other: HashOutTarget,
) -> HashOutTarget {
    HashOutTarget {
        elements: std::array::from_fn(|i| b.select(flag, a.elements[i], other.elements[i])),
    }
}

impl LeafCircuit for ClaimLeaf {
    type Input = ClaimInput;
    type JobFields = ClaimInput;

    fn job_input(&self, fields: ClaimInput) -> ClaimInput {
        fields
    }

    fn kind(&self) -> &'static str {
        CLAIM_KIND
    }

    fn circuit(&self) -> &CircuitData<F, C, D> {
        &self.data
    }

    fn statement(&self, input: &ClaimInput) -> Digest {
        input.statement(self.targets.arity).digest()
    }

    /// Prove the claim of `input` as `worker`: refused natively, before any proving, when the
    /// path is malformed, the job is not the worker's, or the nullifier is not the worker's.
    fn prove(&self, input: &ClaimInput, worker: &WorkerSecret) -> Result<Proof> {
        let bad = |reason: String| CircuitError::BadInputs {
            kind: CLAIM_KIND.to_owned(),
            reason,
        };
        input
            .path
            .root(self.targets.arity)
            .map_err(|e| bad(e.to_string()))?;
        if input.path.worker_pk != worker.worker_pk() {
            return Err(bad(format!(
                "the job was proved by worker key {}, not this one ({})",
                input.path.worker_pk,
                worker.worker_pk()
            )));
        }
        let position = input.path.position(self.targets.arity);
        if input.nullifier != nullifier(worker, input.sequence, position) {
            return Err(bad(
                "the nullifier is not this worker's for this position".into()
            ));
        }
        self.prove_unchecked(input, worker)
    }
}

/// The commitment path of job `(level, index)` of a tree of `plan` in which job
/// `(level, index)` was proved by the worker key `worker(level, index)` (leaves at level 0):
/// what a coordinator serves from its stored proofs, computed from the plan alone.
pub fn plan_path(
    plan: &TreePlan,
    level: usize,
    index: usize,
    worker: impl Fn(usize, usize) -> Digest,
) -> Result<CommitmentPath> {
    if level > plan.root_level() || index >= plan.level_sizes()[level] {
        return Err(CircuitError::InvalidArgument(format!(
            "no job ({level}, {index}) in a tree of {} levels",
            plan.depth()
        )));
    }
    // Every job's commitment, level by level.
    let mut commitments: Vec<Vec<Digest>> =
        vec![(0..plan.leaves()).map(|i| worker(0, i)).collect()];
    for l in 1..plan.depth() {
        let below = &commitments[l - 1];
        let row = (0..plan.level_sizes()[l])
            .map(|i| Digest::two_to_one(inner(&below[plan.children(l, i)]), worker(l, i)))
            .collect();
        commitments.push(row);
    }
    let children = if level == 0 {
        Vec::new()
    } else {
        commitments[level - 1][plan.children(level, index)].to_vec()
    };
    let mut steps = Vec::new();
    let (mut l, mut i) = (level, index);
    while l < plan.root_level() {
        let parent = i / plan.arity();
        let range = plan.children(l + 1, parent);
        steps.push(PathStep {
            siblings: commitments[l][range.clone()].to_vec(),
            slot: i - range.start,
            worker_pk: worker(l + 1, parent),
        });
        (l, i) = (l + 1, parent);
    }
    Ok(CommitmentPath {
        worker_pk: worker(level, index),
        children,
        steps,
    })
}
