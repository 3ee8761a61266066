//! The tx kernel: one transaction against the state it runs on, as a leaf circuit of kind
//! [`TX_KERNEL_KIND`]. Its statement is the digest of the transaction's [`Transition`]
//! ([`Transition::of_tx`]); every rule the block producer checks for one transaction at its
//! place in the block is a constraint here, mirroring the native function named beside it.
//!
//! ```text
//!  witness: account (id, balance, nonce, keys) · final balance · expiration
//!           input slots  × MAX_INPUT_NOTES_PER_TX : used · note · authenticated · index ·
//!                          note path · header + chain path · nullifier path
//!           output slots × MAX_OUTPUT_NOTES_PER_TX: used · note · note-tree path
//!           signature (67 chain values, key path) · before-state · chain root · block
//!                                    │
//!  used flags a prefix · amounts < 2^56 · balance + Σ in = final + Σ out
//!  account commitment before/after (nonce + 1), one account-tree update (32 levels)
//!  each used input : id · recipient = account · note path → header's note root (header under
//!                    the chain root, 32 levels) or this block's note root before the tx ·
//!                    nullifier: its slot's path proves empty, then sets it (64 levels)
//!  each used output: id · slot note_count + j proves empty, then set (16 levels)
//!  input/output commitments → tx id → accumulator · block ≤ expiration
//!  Winternitz: id → 64 nibbles + 3 checksum nibbles, 67 chains run to 15, pk under keys
//!                                    ▼
//!  statement = H(Transition ‖ before ‖ after ‖ chain root ‖ block ‖ expiration ‖ 1)
//! ```
//!
//! **Two halves, for local transactions** ([`TxMode`]). Two witness bits choose what a proof
//! checks: the signed half (signature, amounts, value, the notes' owner, the id: no state) and
//! the state half (every tree path, the block, the expiration: no signature); at least one.
//! Both give the statement above; the signed half alone `H(LocalTx ‖ id)` (a client proves it
//! before it knows where its transaction lands), the state half alone
//! `H(AppliedTx ‖ statement above ‖ id)` (the network proves it at the transaction's place).
//! The id is a hash of every field both halves read, so the pair rule, joining two halves of one
//! id, states what one network proof would. A half alone is no transition.
//!
//! Unused slots are all zeros and change nothing: every slot's constraints are gated by its used
//! flag and every running root is selected. Two inputs with one nullifier fail by themselves:
//! the second insertion does not find its slot empty.
//!
//! **Size** (standard config, 16 input and 16 output slots): 5,351 gates, so `2^13` rows. Of
//! them 4,607 are Poseidon rows: 1,055 for the signature (1,005 chain steps, 34 for the public
//! key, 16 for the key path), 183 per input slot (128 of them the nullifier tree's two paths,
//! 32 the chain path, 16 the note path), 33 per output slot, 64 for the account tree; the rest
//! is arithmetic (the chains' selection above all) and bit decomposition. An input slot costs
//! about 194 rows in all, an output slot 37. [`TxKernel::gates`] and [`TxKernel::rows_log2`]
//! give the figures of a built kernel.
//!
//! [`TxKernel::prove`] first re-checks the job natively ([`TxJob::check`]) and names the first
//! broken rule as [`CircuitError::BadInputs`]; [`TxKernel::prove_unchecked`] skips that, so the
//! circuit's own refusal can be seen. Nothing here panics on a malformed job: wrong path lengths,
//! too many notes or witness lists of the wrong length are typed errors.

use std::sync::{Arc, Mutex, Weak};

use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use serde::{Deserialize, Serialize};
use sheaf_circuits::cache::{ArtifactCache, Fingerprint};
use sheaf_circuits::leaf::{LeafCircuit, LeafHeaderBuilder};
use sheaf_circuits::{CircuitError, Digest, Proof, WorkerSecret, C, D, F};

use super::gadgets::{
    assert_le_u32, canonical_bits, connect_hash_if, connect_if, constant_digest, hash_tagged,
    merkle_root, select_hash, Builder,
};
use super::header::BlockHeaderTarget;
use super::transition::{StateRootsTarget, TransitionTarget};
use crate::account::amount_felt;
use crate::chain::BlockHeader;
use crate::hash::{felt, Domain};
use crate::limits::{
    ACCOUNT_TREE_DEPTH, CHAIN_TREE_DEPTH, MAX_AMOUNT, MAX_INPUT_NOTES_PER_TX,
    MAX_OUTPUT_NOTES_PER_TX, NOTE_TREE_DEPTH, NULLIFIER_TREE_DEPTH,
};
use crate::notes::Note;
use crate::signature::{
    self, AUTH_TREE_DEPTH, WOTS_CHAINS, WOTS_CHECKSUM_DIGITS, WOTS_LOG_W, WOTS_MESSAGE_DIGITS,
    WOTS_W,
};
use crate::smt::{verify_path, MerklePath, EMPTY_LEAF};
use crate::transition::{applied_tx_statement, local_tx_statement, Transition};
use crate::tx::Transaction;
use crate::witness::{InputNoteWitness, TreeUpdate, TxWitness};

/// The kind name of tx-kernel leaves.
pub const TX_KERNEL_KIND: &str = "tx";

/// The kind name of the tx kernel's leaves that are halves of local transactions (the same
/// circuit; their leaf node has the pair rule).
pub const TX_PAIR_KIND: &str = "tx-pair";

/// What an unused input slot's header is set to (its checks are off).
const EMPTY_HEADER: BlockHeader = BlockHeader {
    prev_block_commitment: Digest::ZERO,
    number: 0,
    chain_root: Digest::ZERO,
    account_root: Digest::ZERO,
    nullifier_root: Digest::ZERO,
    note_root: Digest::ZERO,
    tx_commitment: Digest::ZERO,
    timestamp: 0,
};

/// Bumped whenever the circuit changes: part of the cache fingerprint.
const TX_KERNEL_VERSION: &str = "tx-kernel/2";

/// The artifact cache's name for the kernel's circuit.
const CACHE_KIND: &str = "tx-kernel";

/// Bits of an amount: every amount is below `2^56` ([`MAX_AMOUNT`]).
const AMOUNT_BITS: usize = 56;
const _: () = assert!(MAX_AMOUNT == (1 << AMOUNT_BITS) - 1);

/// Bits of a block number, a note count and an expiration (`u32`s natively).
const U32_BITS: usize = 32;

/// Where the search for the kernel's size starts.
const FIRST_DEGREE_GUESS: usize = 13;

/// Which of the kernel's two halves a proof checks: the signature (with the rules of the
/// transaction alone) and the application to the state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TxMode {
    /// Both: a network transaction, proved by the network. Statement: the transition's digest.
    #[default]
    Network,
    /// The signed half only, state-independent: what a client proves for a local transaction
    /// before it knows where the transaction lands. Statement: [`local_tx_statement`].
    Local,
    /// The application only, without the signature: the network's half of a local transaction.
    /// Statement: [`applied_tx_statement`], worth nothing until the pair rule joins it to the
    /// local half of the same transaction.
    Apply,
}

impl TxMode {
    /// Whether the signature is checked.
    fn signs(self) -> bool {
        self != TxMode::Apply
    }

    /// Whether the state update is checked.
    fn applies(self) -> bool {
        self != TxMode::Local
    }
}

/// One tx-kernel job: the transaction and its witness from [`crate::produce_block`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TxJob {
    /// The signed transaction.
    pub transaction: Transaction,
    /// Its witness at its place in the block (ignored in [`TxMode::Local`]).
    pub witness: TxWitness,
    /// Which halves the proof checks.
    #[serde(default)]
    pub mode: TxMode,
}

impl TxJob {
    /// The local half of `transaction`, as its client proves it: no state, no witness.
    pub fn local(transaction: Transaction) -> TxJob {
        let account = transaction.body.account;
        let empty = TreeUpdate {
            key: 0,
            path: MerklePath {
                siblings: Vec::new(),
            },
            root_before: Digest::ZERO,
            root_after: Digest::ZERO,
        };
        let witness = TxWitness {
            tx: transaction.id(),
            account_before: account,
            account_after: transaction.body.final_account(),
            account_update: empty,
            input_notes: Vec::new(),
            nullifier_inserts: Vec::new(),
            note_inserts: Vec::new(),
            note_root_before: Digest::ZERO,
            note_root_after: Digest::ZERO,
            note_count_before: 0,
            nullifier_root_before: Digest::ZERO,
            nullifier_root_after: Digest::ZERO,
            tx_accumulator_before: Digest::ZERO,
            block: 0,
            chain_root: Digest::ZERO,
        };
        TxJob {
            transaction,
            witness,
            mode: TxMode::Local,
        }
    }

    /// The transition the job applies: [`Transition::of_tx`] (meaningless in
    /// [`TxMode::Local`]).
    pub fn transition(&self) -> Transition {
        Transition::of_tx(&self.witness, self.transaction.body.expiration)
    }

    /// What a proof of the job states, by its mode.
    pub fn statement(&self) -> Digest {
        match self.mode {
            TxMode::Network => self.transition().digest(),
            TxMode::Local => local_tx_statement(self.transaction.id()),
            TxMode::Apply => applied_tx_statement(&self.transition(), self.transaction.id()),
        }
    }

    /// Every rule the kernel proves, natively, on the job's own values (a nonce or an amount
    /// that the field would reduce is refused here): `Ok` when the circuit accepts the job and
    /// proves [`TxJob::transition`], and the witness's copies the circuit recomputes (the
    /// nullifiers, the roots after, the tx id) agree; otherwise [`CircuitError::BadInputs`]
    /// naming the first broken rule.
    pub fn check(&self) -> Result<(), CircuitError> {
        check_rules(self, SLOTS).map_err(bad_inputs)
    }
}

fn bad_inputs(reason: String) -> CircuitError {
    CircuitError::BadInputs {
        kind: TX_KERNEL_KIND.to_owned(),
        reason,
    }
}

fn prove_error(e: impl std::fmt::Display) -> CircuitError {
    CircuitError::Prove(e.to_string())
}

/// The kernel's fixed numbers of note slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slots {
    inputs: usize,
    outputs: usize,
}

const SLOTS: Slots = Slots {
    inputs: MAX_INPUT_NOTES_PER_TX,
    outputs: MAX_OUTPUT_NOTES_PER_TX,
};

// ----------------------------------------------------------------------------------------------
// The native check.

/// The job has the kernel's shape: no more notes than slots, one witness entry per note, every
/// path of its tree's depth, every signature chain. What a witness cannot even be set without.
fn check_shape(job: &TxJob, slots: Slots) -> Result<(), String> {
    let body = &job.transaction.body;
    let w = &job.witness;
    let signature = &job.transaction.signature;
    let (inputs, outputs) = (body.input_notes.len(), body.output_notes.len());
    if inputs > slots.inputs {
        return Err(format!(
            "{inputs} input notes, the kernel has {} input slots",
            slots.inputs
        ));
    }
    if outputs > slots.outputs {
        return Err(format!(
            "{outputs} output notes, the kernel has {} output slots",
            slots.outputs
        ));
    }
    if signature.chains.len() != WOTS_CHAINS {
        return Err(format!(
            "the signature has {} chains, not {WOTS_CHAINS}",
            signature.chains.len()
        ));
    }
    if signature.key_path.siblings.len() != AUTH_TREE_DEPTH {
        return Err(format!(
            "the signature's key path has {} siblings, its tree is {AUTH_TREE_DEPTH} deep",
            signature.key_path.siblings.len()
        ));
    }
    if !job.mode.applies() {
        // The local half reads no witness: it is set to zeros.
        return Ok(());
    }
    if w.input_notes.len() != inputs || w.nullifier_inserts.len() != inputs {
        return Err(format!(
            "the witness authenticates {} and nullifies {} notes, the transaction consumes {inputs}",
            w.input_notes.len(),
            w.nullifier_inserts.len()
        ));
    }
    if w.note_inserts.len() != outputs {
        return Err(format!(
            "the witness inserts {} notes, the transaction creates {outputs}",
            w.note_inserts.len()
        ));
    }
    let depth = |what: String, path: &MerklePath, depth: usize| {
        if path.siblings.len() == depth {
            Ok(())
        } else {
            Err(format!(
                "{what} has {} siblings, its tree is {depth} deep",
                path.siblings.len()
            ))
        }
    };
    depth(
        "the account path".into(),
        &w.account_update.path,
        ACCOUNT_TREE_DEPTH,
    )?;
    for (i, input) in w.input_notes.iter().enumerate() {
        match input {
            InputNoteWitness::Committed(proof) => {
                depth(
                    format!("input {i}'s note path"),
                    &proof.note_path,
                    NOTE_TREE_DEPTH,
                )?;
                depth(
                    format!("input {i}'s chain path"),
                    &proof.chain_path,
                    CHAIN_TREE_DEPTH,
                )?;
            }
            InputNoteWitness::Unauthenticated { path, .. } => {
                depth(format!("input {i}'s note path"), path, NOTE_TREE_DEPTH)?;
            }
        }
    }
    for (i, (_, update)) in w.nullifier_inserts.iter().enumerate() {
        depth(
            format!("input {i}'s nullifier path"),
            &update.path,
            NULLIFIER_TREE_DEPTH,
        )?;
    }
    for (j, (_, update)) in w.note_inserts.iter().enumerate() {
        depth(
            format!("output {j}'s note path"),
            &update.path,
            NOTE_TREE_DEPTH,
        )?;
    }
    Ok(())
}

/// The kernel's rules, natively, one by one; the first broken one, named.
fn check_rules(job: &TxJob, slots: Slots) -> Result<(), String> {
    check_shape(job, slots)?;
    let tx = &job.transaction;
    let body = &tx.body;
    let w = &job.witness;

    let amounts = [
        ("the balance".to_owned(), body.account.balance),
        ("the final balance".to_owned(), body.final_balance),
    ]
    .into_iter()
    .chain(
        body.input_notes
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("input {i}'s amount"), n.note.amount)),
    )
    .chain(
        body.output_notes
            .iter()
            .enumerate()
            .map(|(j, n)| (format!("output {j}'s amount"), n.amount)),
    );
    for (what, amount) in amounts {
        if amount.base_units() > MAX_AMOUNT {
            return Err(format!(
                "amount out of range: {what} {} is not below 2^{AMOUNT_BITS}",
                amount.base_units()
            ));
        }
    }
    let (inputs, outputs) = (body.value_in(), body.value_out());
    if inputs != outputs {
        return Err(format!(
            "value not conserved: {inputs} in (balance and notes), {outputs} out"
        ));
    }
    let account = body.account;
    let id = tx.id();
    if job.mode.signs()
        && !signature::verify(account.auth_commitment, account.nonce, id.0, &tx.signature)
    {
        return Err(format!(
            "bad signature: it does not sign the transaction with one-time key {} of {}",
            account.nonce, account.id
        ));
    }
    if let Some((i, input)) = body
        .input_notes
        .iter()
        .enumerate()
        .find(|(_, input)| input.note.recipient != account.id)
    {
        return Err(format!(
            "input {i} belongs to {}, not to {}",
            input.note.recipient, account.id
        ));
    }
    if !job.mode.applies() {
        return Ok(());
    }
    if w.block > body.expiration {
        return Err(format!(
            "expired: the transaction expires at block {}, this is block {}",
            body.expiration, w.block
        ));
    }

    let key = account.id.0 as u64;
    let path = &w.account_update.path;
    if !verify_path::<ACCOUNT_TREE_DEPTH>(w.account_root_before(), key, account.commitment(), path)
    {
        return Err(format!(
            "stale initial account commitment: the account path does not prove {} as claimed \
             under the account root before",
            account.id
        ));
    }
    if path.compute_root(key, body.final_account().commitment()) != w.account_root_after() {
        return Err("the account root after is not the account path with the final account".into());
    }

    let mut nullifier_root = w.nullifier_root_before;
    let inputs = body
        .input_notes
        .iter()
        .zip(&w.input_notes)
        .zip(&w.nullifier_inserts);
    for (i, ((input, found_at), (nullifier, update))) in inputs.enumerate() {
        let note = input.note;
        let note_id = note.id();
        let found = match found_at {
            InputNoteWitness::Committed(proof) => proof.verify(w.chain_root, note_id),
            InputNoteWitness::Unauthenticated { index, path } => {
                verify_path::<NOTE_TREE_DEPTH>(w.note_root_before, *index as u64, note_id.0, path)
            }
        };
        if !found {
            let origin = match found_at {
                InputNoteWitness::Committed(proof) => format!(
                    "note {} of block {} under the chain root",
                    proof.index, proof.header.number
                ),
                InputNoteWitness::Unauthenticated { index, .. } => {
                    format!("note {index} of this block's note tree before the transaction")
                }
            };
            return Err(format!("input {i} does not exist: it is not {origin}"));
        }
        let expected = note.nullifier();
        if *nullifier != expected {
            return Err(format!(
                "input {i}: the witness inserts nullifier {:?}, the note's is {:?}",
                nullifier.0, expected.0
            ));
        }
        let slot = expected.slot();
        if !verify_path::<NULLIFIER_TREE_DEPTH>(nullifier_root, slot, EMPTY_LEAF, &update.path) {
            return Err(format!(
                "input {i}: its nullifier's slot is not shown empty under the nullifier root \
                 (already spent, or a stale path)"
            ));
        }
        nullifier_root = update.path.compute_root(slot, expected.0);
    }
    if nullifier_root != w.nullifier_root_after {
        return Err("the nullifier root after is not the one the insertions give".into());
    }

    let mut note_root = w.note_root_before;
    for (j, (note, (_, update))) in body.output_notes.iter().zip(&w.note_inserts).enumerate() {
        let index = w.note_count_before as u64 + j as u64;
        if !verify_path::<NOTE_TREE_DEPTH>(note_root, index, EMPTY_LEAF, &update.path) {
            return Err(format!(
                "output {j}: slot {index} of the block's note tree is not shown empty under the \
                 note root"
            ));
        }
        note_root = update.path.compute_root(index, note.id().0);
    }
    if note_root != w.note_root_after {
        return Err("the note root after is not the one the insertions give".into());
    }
    if w.tx != id {
        return Err(format!(
            "the witness is of transaction {:?}, this one is {:?}",
            w.tx.0, id.0
        ));
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------------
// Targets.

/// A note's fields.
#[derive(Clone, Copy, Debug)]
struct NoteTargets {
    recipient: Target,
    amount: Target,
    serial: HashOutTarget,
}

impl NoteTargets {
    fn add_virtual(b: &mut Builder) -> Self {
        NoteTargets {
            recipient: b.add_virtual_target(),
            amount: b.add_virtual_target(),
            serial: b.add_virtual_hash(),
        }
    }

    /// In-circuit [`Note::id`].
    fn id(&self, b: &mut Builder) -> HashOutTarget {
        let mut fields = vec![self.recipient, self.amount];
        fields.extend(self.serial.elements);
        hash_tagged(b, Domain::Note, &fields)
    }

    fn set(&self, pw: &mut PartialWitness<F>, note: Option<&Note>) -> Result<(), CircuitError> {
        let (recipient, amount, serial) = match note {
            Some(n) => (felt(n.recipient.0 as u64), amount_felt(n.amount), n.serial),
            None => (F::ZERO, F::ZERO, Digest::ZERO),
        };
        set(pw, self.recipient, recipient)?;
        set(pw, self.amount, amount)?;
        set_hash(pw, self.serial, serial)
    }
}

/// One input slot.
#[derive(Clone, Debug)]
struct InputSlot {
    used: BoolTarget,
    note: NoteTargets,
    /// Created in an earlier block (else earlier in this one).
    authenticated: BoolTarget,
    index: Target,
    note_path: Vec<HashOutTarget>,
    header: BlockHeaderTarget,
    chain_path: Vec<HashOutTarget>,
    nullifier_path: Vec<HashOutTarget>,
}

/// One output slot.
#[derive(Clone, Debug)]
struct OutputSlot {
    used: BoolTarget,
    note: NoteTargets,
    path: Vec<HashOutTarget>,
}

/// Every witness target of the kernel.
#[derive(Clone, Debug)]
struct KernelTargets {
    /// The mode's halves: check the signature, check the state update.
    sign: BoolTarget,
    apply: BoolTarget,
    id: Target,
    balance: Target,
    nonce: Target,
    auth_commitment: HashOutTarget,
    final_balance: Target,
    expiration: Target,
    account_path: Vec<HashOutTarget>,
    inputs: Vec<InputSlot>,
    outputs: Vec<OutputSlot>,
    chains: Vec<HashOutTarget>,
    key_path: Vec<HashOutTarget>,
    before: StateRootsTarget,
    chain_root: HashOutTarget,
    block: Target,
}

impl KernelTargets {
    fn add_virtual(b: &mut Builder, slots: Slots) -> Self {
        KernelTargets {
            sign: b.add_virtual_bool_target_safe(),
            apply: b.add_virtual_bool_target_safe(),
            id: b.add_virtual_target(),
            balance: b.add_virtual_target(),
            nonce: b.add_virtual_target(),
            auth_commitment: b.add_virtual_hash(),
            final_balance: b.add_virtual_target(),
            expiration: b.add_virtual_target(),
            account_path: b.add_virtual_hashes(ACCOUNT_TREE_DEPTH),
            inputs: (0..slots.inputs)
                .map(|_| InputSlot {
                    used: b.add_virtual_bool_target_safe(),
                    note: NoteTargets::add_virtual(b),
                    authenticated: b.add_virtual_bool_target_safe(),
                    index: b.add_virtual_target(),
                    note_path: b.add_virtual_hashes(NOTE_TREE_DEPTH),
                    header: BlockHeaderTarget::add_virtual(b),
                    chain_path: b.add_virtual_hashes(CHAIN_TREE_DEPTH),
                    nullifier_path: b.add_virtual_hashes(NULLIFIER_TREE_DEPTH),
                })
                .collect(),
            outputs: (0..slots.outputs)
                .map(|_| OutputSlot {
                    used: b.add_virtual_bool_target_safe(),
                    note: NoteTargets::add_virtual(b),
                    path: b.add_virtual_hashes(NOTE_TREE_DEPTH),
                })
                .collect(),
            chains: b.add_virtual_hashes(WOTS_CHAINS),
            key_path: b.add_virtual_hashes(AUTH_TREE_DEPTH),
            before: StateRootsTarget::add_virtual(b),
            chain_root: b.add_virtual_hash(),
            block: b.add_virtual_target(),
        }
    }

    /// Set every target from `job`, whose shape [`check_shape`] accepted; unused slots are
    /// zeros.
    fn set(&self, pw: &mut PartialWitness<F>, job: &TxJob) -> Result<(), CircuitError> {
        let tx = &job.transaction;
        let body = &tx.body;
        let w = &job.witness;
        set_bool(pw, self.sign, job.mode.signs())?;
        set_bool(pw, self.apply, job.mode.applies())?;
        set(pw, self.id, felt(body.account.id.0 as u64))?;
        set(pw, self.balance, amount_felt(body.account.balance))?;
        set(pw, self.nonce, felt(body.account.nonce))?;
        set_hash(pw, self.auth_commitment, body.account.auth_commitment)?;
        set(pw, self.final_balance, amount_felt(body.final_balance))?;
        set(pw, self.expiration, felt(body.expiration as u64))?;
        set_path(pw, &self.account_path, Some(&w.account_update.path))?;
        for (i, slot) in self.inputs.iter().enumerate() {
            let note = body.input_notes.get(i).map(|n| &n.note);
            set_bool(pw, slot.used, note.is_some())?;
            slot.note.set(pw, note)?;
            let (authenticated, index, note_path, header, chain_path) = match w.input_notes.get(i) {
                Some(InputNoteWitness::Committed(proof)) => (
                    true,
                    proof.index,
                    Some(&proof.note_path),
                    Some(&proof.header),
                    Some(&proof.chain_path),
                ),
                Some(InputNoteWitness::Unauthenticated { index, path }) => {
                    (false, *index, Some(path), None, None)
                }
                None => (false, 0, None, None, None),
            };
            set_bool(pw, slot.authenticated, authenticated)?;
            set(pw, slot.index, felt(index as u64))?;
            set_path(pw, &slot.note_path, note_path)?;
            slot.header
                .set(pw, &header.copied().unwrap_or(EMPTY_HEADER))?;
            set_path(pw, &slot.chain_path, chain_path)?;
            let nullifier_path = w.nullifier_inserts.get(i).map(|(_, u)| &u.path);
            set_path(pw, &slot.nullifier_path, nullifier_path)?;
        }
        for (j, slot) in self.outputs.iter().enumerate() {
            let note = body.output_notes.get(j);
            set_bool(pw, slot.used, note.is_some())?;
            slot.note.set(pw, note)?;
            let path = w.note_inserts.get(j).map(|(_, u)| &u.path);
            set_path(pw, &slot.path, path)?;
        }
        for (target, value) in self.chains.iter().zip(&tx.signature.chains) {
            set_hash(pw, *target, *value)?;
        }
        set_path(pw, &self.key_path, Some(&tx.signature.key_path))?;
        let transition = job.transition();
        self.before.set(pw, &transition.before)?;
        set_hash(pw, self.chain_root, transition.chain_root)?;
        set(pw, self.block, felt(transition.block as u64))
    }
}

fn set(pw: &mut PartialWitness<F>, target: Target, value: F) -> Result<(), CircuitError> {
    pw.set_target(target, value).map_err(prove_error)
}

fn set_bool(
    pw: &mut PartialWitness<F>,
    target: BoolTarget,
    value: bool,
) -> Result<(), CircuitError> {
    pw.set_bool_target(target, value).map_err(prove_error)
}

fn set_hash(
    pw: &mut PartialWitness<F>,
    target: HashOutTarget,
    value: Digest,
) -> Result<(), CircuitError> {
    pw.set_hash_target(target, value.to_hash_out())
        .map_err(prove_error)
}

/// Set a path's siblings, or zeros for an unused slot.
fn set_path(
    pw: &mut PartialWitness<F>,
    targets: &[HashOutTarget],
    path: Option<&MerklePath>,
) -> Result<(), CircuitError> {
    for (i, target) in targets.iter().enumerate() {
        let sibling = path
            .and_then(|p| p.siblings.get(i).copied())
            .unwrap_or(Digest::ZERO);
        set_hash(pw, *target, sibling)?;
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------------
// The circuit.

/// A fresh builder with the kernel's targets and constraints and the leaf header for a circuit
/// of `2^degree_bits` rows.
fn define(
    config: &CircuitConfig,
    slots: Slots,
    degree_bits: usize,
) -> (Builder, KernelTargets, LeafHeaderBuilder) {
    let mut b = Builder::new(config.clone());
    let header = LeafHeaderBuilder::new(&mut b);
    let targets = KernelTargets::add_virtual(&mut b, slots);
    let statement = constrain(&mut b, &targets);
    header.finish(&mut b, statement, degree_bits);
    (b, targets, header)
}

/// Every rule of one transaction; returns the statement, the transition's digest.
fn constrain(b: &mut Builder, t: &KernelTargets) -> HashOutTarget {
    let zero = b.zero();
    let one = b.one();
    let empty = constant_digest(b, EMPTY_LEAF);

    // 0. At least one half: (1 − sign)(1 − apply) = 0.
    let neither = {
        let no_sign = b.not(t.sign);
        let no_apply = b.not(t.apply);
        b.and(no_sign, no_apply)
    };
    b.assert_zero(neither.target);

    // 1. Used slots are a prefix, so the padded lists hash like `hash_padded_list`.
    for slots in [
        t.inputs.iter().map(|s| s.used).collect::<Vec<_>>(),
        t.outputs.iter().map(|s| s.used).collect(),
    ] {
        for pair in slots.windows(2) {
            // used_i · used_{i−1} = used_i: slot i used ⇒ slot i − 1 used.
            let both = b.mul(pair[1].target, pair[0].target);
            b.connect(both, pair[1].target);
        }
    }

    // 2. Amounts below 2^56, so no sum of at most 17 wraps the field; value is conserved.
    let amounts = [t.balance, t.final_balance]
        .into_iter()
        .chain(t.inputs.iter().map(|s| s.note.amount))
        .chain(t.outputs.iter().map(|s| s.note.amount));
    for amount in amounts.collect::<Vec<_>>() {
        b.range_check(amount, AMOUNT_BITS);
    }
    let mut value_in = t.balance;
    for slot in &t.inputs {
        value_in = b.mul_add(slot.used.target, slot.note.amount, value_in);
    }
    let mut value_out = t.final_balance;
    for slot in &t.outputs {
        value_out = b.mul_add(slot.used.target, slot.note.amount, value_out);
    }
    b.connect(value_in, value_out);

    // 3. The account before and after (`Account::commitment`, `Account::next`), and its leaf's
    // update in the account tree.
    let id_bits = b.split_le(t.id, ACCOUNT_TREE_DEPTH);
    let nonce_bits = b.split_le(t.nonce, AUTH_TREE_DEPTH);
    let account = |b: &mut Builder, balance: Target, nonce: Target| {
        let mut fields = vec![t.id, balance, nonce];
        fields.extend(t.auth_commitment.elements);
        hash_tagged(b, Domain::Account, &fields)
    };
    let initial = account(b, t.balance, t.nonce);
    let next_nonce = b.add(t.nonce, one);
    let last = account(b, t.final_balance, next_nonce);
    let account_root = merkle_root(b, initial, &id_bits, &t.account_path);
    connect_hash_if(b, t.apply, account_root, t.before.account_root);
    let account_root_after = merkle_root(b, last, &id_bits, &t.account_path);

    // 4. Inputs: each used one is the account's, exists where it says, and its nullifier goes
    // into an empty slot of the running nullifier tree.
    let mut nullifier_root = t.before.nullifier_root;
    let mut nullifiers = Vec::with_capacity(t.inputs.len());
    let mut input_count = zero;
    for slot in &t.inputs {
        let used = slot.used;
        let id = slot.note.id(b);
        connect_if(b, used, slot.note.recipient, t.id);
        // Where the note is and its nullifier's insertion: the state half.
        let used = b.and(used, t.apply);
        let mut fields = slot.note.serial.elements.to_vec();
        fields.extend(id.elements);
        let nullifier = hash_tagged(b, Domain::Nullifier, &fields);

        let index_bits = b.split_le(slot.index, NOTE_TREE_DEPTH);
        let note_root = merkle_root(b, id, &index_bits, &slot.note_path);
        let expected = select_hash(
            b,
            slot.authenticated,
            slot.header.note_root,
            t.before.note_root,
        );
        connect_hash_if(b, used, note_root, expected);
        let header = slot.header.commitment(b);
        let number_bits = b.split_le(slot.header.number, CHAIN_TREE_DEPTH);
        let chain_root = merkle_root(b, header, &number_bits, &slot.chain_path);
        let used_authenticated = b.and(used, slot.authenticated);
        connect_hash_if(b, used_authenticated, chain_root, t.chain_root);

        let slot_bits = canonical_bits(b, nullifier.elements[0]);
        let unset = merkle_root(b, empty, &slot_bits, &slot.nullifier_path);
        connect_hash_if(b, used, unset, nullifier_root);
        let set = merkle_root(b, nullifier, &slot_bits, &slot.nullifier_path);
        nullifier_root = select_hash(b, used, set, nullifier_root);

        nullifiers.push(masked(b, slot.used, nullifier));
        input_count = b.add(input_count, slot.used.target);
    }

    // 5. Outputs: each used one goes into slot note_count + j of the block's note tree, which
    // was empty.
    b.range_check(t.before.note_count, U32_BITS);
    let mut note_root = t.before.note_root;
    let mut ids = Vec::with_capacity(t.outputs.len());
    let mut output_count = zero;
    for (j, slot) in t.outputs.iter().enumerate() {
        let used = slot.used;
        let id = slot.note.id(b);
        let offset = b.constant(F::from_canonical_usize(j));
        let at = b.add(t.before.note_count, offset);
        // Unused slots sit at 0, so a nearly full block does not overflow their index.
        let index = b.mul(used.target, at);
        let index_bits = b.split_le(index, NOTE_TREE_DEPTH);
        let unset = merkle_root(b, empty, &index_bits, &slot.path);
        let inserted = b.and(used, t.apply);
        connect_hash_if(b, inserted, unset, note_root);
        let set = merkle_root(b, id, &index_bits, &slot.path);
        note_root = select_hash(b, used, set, note_root);
        ids.push(masked(b, used, id));
        output_count = b.add(output_count, used.target);
    }
    let note_count_after = b.add(t.before.note_count, output_count);

    // 6. The note commitments (`hash_padded_list`), the id, the accumulator, the expiration.
    let padded = |b: &mut Builder, domain: Domain, count: Target, list: &[HashOutTarget]| {
        let mut fields = vec![count];
        fields.extend(list.iter().flat_map(|h| h.elements));
        hash_tagged(b, domain, &fields)
    };
    let input_notes = padded(b, Domain::InputNotes, input_count, &nullifiers);
    let output_notes = padded(b, Domain::OutputNotes, output_count, &ids);
    let mut fields = Vec::with_capacity(17);
    for h in [initial, last, input_notes, output_notes] {
        fields.extend(h.elements);
    }
    fields.push(t.expiration);
    let tx_id = hash_tagged(b, Domain::Transaction, &fields);
    let mut fields = t.before.tx_accumulator.elements.to_vec();
    fields.extend(tx_id.elements);
    let tx_accumulator = hash_tagged(b, Domain::TxAccumulator, &fields);
    b.range_check(t.block, U32_BITS);
    b.range_check(t.expiration, U32_BITS);
    assert_le_u32(b, t.block, t.expiration);

    // 7. The signature over the id, with key number `nonce` of the account's keys.
    verify_signature(b, t, &nonce_bits, tx_id);

    let transition = TransitionTarget {
        before: t.before,
        after: StateRootsTarget {
            account_root: account_root_after,
            nullifier_root,
            note_root,
            note_count: note_count_after,
            tx_accumulator,
        },
        chain_root: t.chain_root,
        block: t.block,
        expiration: t.expiration,
        tx_count: one,
    };
    // The statement by mode: the transition (both halves), H(LocalTx ‖ id) (the signed half),
    // H(AppliedTx ‖ transition ‖ id) (the state half).
    let network = transition.digest(b);
    let local = hash_tagged(b, Domain::LocalTx, &tx_id.elements);
    let mut fields = network.elements.to_vec();
    fields.extend(tx_id.elements);
    let applied = hash_tagged(b, Domain::AppliedTx, &fields);
    let both = b.and(t.sign, t.apply);
    let half = select_hash(b, t.apply, applied, local);
    select_hash(b, both, network, half)
}

/// `used ? h : 0`, element-wise.
fn masked(b: &mut Builder, used: BoolTarget, h: HashOutTarget) -> HashOutTarget {
    HashOutTarget {
        elements: h.elements.map(|e| b.mul(used.target, e)),
    }
}

/// In-circuit [`signature::verify`]: the message's digits (`message_digits`), every chain run
/// from the signature's value at its digit to position 15 (`walk_chain`), the public key
/// (`compress_public_key`) and its path under the account's keys.
fn verify_signature(
    b: &mut Builder,
    t: &KernelTargets,
    nonce_bits: &[BoolTarget],
    message: HashOutTarget,
) {
    // The 64 message digits, four bits each, limb by limb, least significant first; each limb
    // canonical, or a limb x could be signed as the digits of x + p.
    let mut digits: Vec<Vec<BoolTarget>> = Vec::with_capacity(WOTS_CHAINS);
    for limb in message.elements {
        let bits = canonical_bits(b, limb);
        digits.extend(bits.chunks(WOTS_LOG_W).map(<[BoolTarget]>::to_vec));
    }
    debug_assert_eq!(digits.len(), WOTS_MESSAGE_DIGITS);
    // Σ d = Σ_j 2^j · (bit j of every digit), so the checksum Σ (15 − d) = 960 − Σ d.
    let mut digit_sum = b.zero();
    for bit in (0..WOTS_LOG_W).rev() {
        let column = b.add_many(digits.iter().map(|d| d[bit].target));
        digit_sum = b.mul_const_add(F::TWO, digit_sum, column);
    }
    let most = b.constant(F::from_canonical_usize(WOTS_MESSAGE_DIGITS * (WOTS_W - 1)));
    let checksum = b.sub(most, digit_sum);
    let checksum_bits = b.split_le(checksum, WOTS_LOG_W * WOTS_CHECKSUM_DIGITS);
    digits.extend(checksum_bits.chunks(WOTS_LOG_W).map(<[BoolTarget]>::to_vec));

    // Chain c: start from the signature's value; after step s take the signature's value again
    // if the digit is s + 1, so position d holds it and every later one is a chain step of it.
    let mut ends = Vec::with_capacity(WOTS_CHAINS);
    for (c, (digit, start)) in digits.iter().zip(&t.chains).enumerate() {
        let chain = b.constant(F::from_canonical_usize(c));
        let mut value = *start;
        // Step s takes position s to s + 1; `digit_is_next` is `d = s + 1`.
        for (step, digit_is_next) in one_hot(b, digit).into_iter().enumerate() {
            let step_target = b.constant(F::from_canonical_usize(step));
            let mut fields = vec![t.nonce, chain, step_target];
            fields.extend(value.elements);
            let next = hash_tagged(b, Domain::WotsChain, &fields);
            value = select_hash(b, digit_is_next, *start, next);
        }
        ends.push(value);
    }
    let mut fields = vec![t.nonce];
    fields.extend(ends.iter().flat_map(|h| h.elements));
    let public_key = hash_tagged(b, Domain::WotsPublicKey, &fields);
    let root = merkle_root(b, public_key, nonce_bits, &t.key_path);
    connect_hash_if(b, t.sign, root, t.auth_commitment);
}

/// `[d = 1, d = 2, …, d = 15]` for the digit `d` whose four bits (least significant first) are
/// `bits`: products of the indicators of its two bit pairs (`d = 0` is never asked).
fn one_hot(b: &mut Builder, bits: &[BoolTarget]) -> Vec<BoolTarget> {
    let low = pair_indicators(b, bits[0], bits[1]);
    let high = pair_indicators(b, bits[2], bits[3]);
    (1..WOTS_W)
        .map(|k| BoolTarget::new_unsafe(b.mul(low[k & 3], high[k >> 2])))
        .collect()
}

/// `[v = 0, v = 1, v = 2, v = 3]` for `v = x + 2y`.
fn pair_indicators(b: &mut Builder, x: BoolTarget, y: BoolTarget) -> [Target; 4] {
    let one = b.one();
    let both = b.mul(x.target, y.target);
    let x_only = b.sub(x.target, both);
    let y_only = b.sub(y.target, both);
    let not_x = b.sub(one, x.target);
    let neither = b.sub(not_x, y_only);
    [neither, x_only, y_only, both]
}

/// The degree the kernel's circuit settles at: its header's weight depends on it, so build
/// (without commitments) until the degree the header was given is the degree it gets.
fn plan_degree(config: &CircuitConfig, slots: Slots) -> Result<usize, CircuitError> {
    let mut guess = FIRST_DEGREE_GUESS;
    for _ in 0..4 {
        let (builder, _, _) = define(config, slots, guess);
        let got = builder.mock_build::<C>().common.degree_bits();
        if got == guess {
            return Ok(got);
        }
        guess = got;
    }
    Err(CircuitError::Build(
        "the tx kernel's degree does not settle".into(),
    ))
}

// ----------------------------------------------------------------------------------------------
// The leaf.

/// The tx kernel's built circuit.
type KernelData = CircuitData<F, C, D>;

/// The built tx kernel.
pub struct TxKernel {
    /// Registered as the pair kind ([`TX_PAIR_KIND`]): the same circuit, whose leaf node joins a
    /// local transaction's two halves.
    pair: bool,
    targets: KernelTargets,
    header: LeafHeaderBuilder,
    gates: usize,
    data: Arc<CircuitData<F, C, D>>,
}

impl std::fmt::Debug for TxKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxKernel")
            .field("input_slots", &self.targets.inputs.len())
            .field("output_slots", &self.targets.outputs.len())
            .field("gates", &self.gates)
            .field("rows_log2", &self.rows_log2())
            .finish()
    }
}

impl TxKernel {
    /// Build the kernel with `config`.
    pub fn build(config: CircuitConfig) -> Result<Self, CircuitError> {
        Self::load_or_build(config, None)
    }

    /// As [`TxKernel::build`], loading the circuit from `cache` when it is there.
    pub fn load_or_build(
        config: CircuitConfig,
        cache: Option<&ArtifactCache>,
    ) -> Result<Self, CircuitError> {
        let description = format!(
            "{TX_KERNEL_VERSION} inputs={} outputs={} {config:?}",
            SLOTS.inputs, SLOTS.outputs
        );
        let fp = Fingerprint::new(TX_KERNEL_KIND, &description);
        let build = || {
            let degree_bits = plan_degree(&config, SLOTS)?;
            let (builder, _, _) = define(&config, SLOTS, degree_bits);
            let data = builder.build::<C>();
            if data.common.degree_bits() != degree_bits {
                return Err(CircuitError::Build(format!(
                    "tx kernel planned for 2^{degree_bits} rows built to 2^{}",
                    data.common.degree_bits()
                )));
            }
            Ok(data)
        };
        // The tx and pair kinds are one circuit: a process holds its prover data once (per
        // cache, so a kernel asked of another cache is stored there; a verifier-only cache's
        // kernel has no prover data, so it is another entry).
        let key = format!(
            "{description} cache={:?}",
            cache.map(|c| (c.dir(), c.is_verifier_only()))
        );
        static LOADED: Mutex<Vec<(String, Weak<KernelData>)>> = Mutex::new(Vec::new());
        let mut loaded = LOADED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        loaded.retain(|(_, data)| data.strong_count() > 0);
        let shared = loaded
            .iter()
            .find(|(loaded_key, _)| *loaded_key == key)
            .and_then(|(_, data)| data.upgrade());
        let data = match shared {
            Some(data) => data,
            None => {
                let data = Arc::new(match cache {
                    Some(cache) => cache.circuit(CACHE_KIND, &fp, build)?.0,
                    None => build()?,
                });
                loaded.push((key, Arc::downgrade(&data)));
                data
            }
        };
        drop(loaded);
        // The targets, as the circuit (built now or loaded) was defined with them.
        let (builder, targets, header) = define(&config, SLOTS, data.common.degree_bits());
        Ok(TxKernel {
            pair: false,
            targets,
            header,
            gates: builder.num_gates(),
            data,
        })
    }

    /// The same kernel registered as the pair kind [`TX_PAIR_KIND`]: its leaves are the two
    /// halves of local transactions, and its leaf node joins them ([`super::PairRule`]).
    pub fn into_pair_kind(self) -> TxKernel {
        TxKernel { pair: true, ..self }
    }

    /// Rows of the circuit, as a power of two.
    pub fn rows_log2(&self) -> usize {
        self.data.common.degree_bits()
    }

    /// Gates the kernel places before plonky2's build adds its public-input hash and constant
    /// gates and pads to [`TxKernel::rows_log2`].
    pub fn gates(&self) -> usize {
        self.gates
    }

    /// Gates and degree of a kernel with `inputs` and `outputs` note slots, built without
    /// commitments: for sizing the slot limits. Such a kernel is not the rollup's unless the
    /// counts are the limits (its note commitments pad to its own slot counts).
    #[doc(hidden)]
    pub fn measure(config: &CircuitConfig, inputs: usize, outputs: usize) -> (usize, usize) {
        let slots = Slots { inputs, outputs };
        let (builder, _, _) = define(config, slots, FIRST_DEGREE_GUESS);
        let gates = builder.num_gates();
        (gates, builder.mock_build::<C>().common.degree_bits())
    }

    /// Prove `input` without the native check: only the job's shape is checked (a witness
    /// cannot be set otherwise), so a broken rule surfaces as the circuit's own refusal.
    #[doc(hidden)]
    pub fn prove_unchecked(
        &self,
        input: &TxJob,
        worker: &WorkerSecret,
    ) -> Result<Proof, CircuitError> {
        if !sheaf_circuits::cache::can_prove(&self.data) {
            return Err(CircuitError::VerifierOnly);
        }
        check_shape(input, SLOTS).map_err(bad_inputs)?;
        let mut pw = PartialWitness::new();
        self.header.set(&mut pw, worker)?;
        self.targets.set(&mut pw, input)?;
        self.data.prove(pw).map_err(prove_error)
    }
}

impl LeafCircuit for TxKernel {
    type Input = TxJob;
    type JobFields = TxJob;

    fn job_input(&self, fields: TxJob) -> TxJob {
        fields
    }

    fn kind(&self) -> &'static str {
        if self.pair {
            TX_PAIR_KIND
        } else {
            TX_KERNEL_KIND
        }
    }

    fn circuit(&self) -> &CircuitData<F, C, D> {
        &self.data
    }

    /// The tx kind's leaf node is the first level of the batch kernel: it merges its
    /// transactions' transitions. The pair kind's joins a local transaction's two halves.
    fn node_rule(&self) -> Option<std::sync::Arc<dyn sheaf_circuits::NodeRule>> {
        if self.pair {
            Some(std::sync::Arc::new(super::pair::PairRule))
        } else {
            Some(std::sync::Arc::new(super::merge::MergeRule))
        }
    }

    fn statement(&self, input: &TxJob) -> Digest {
        input.statement()
    }

    fn prove(&self, input: &TxJob, worker: &WorkerSecret) -> Result<Proof, CircuitError> {
        input.check()?;
        self.prove_unchecked(input, worker)
    }
}
