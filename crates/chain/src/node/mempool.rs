//! The mempool: transactions waiting for a block, in arrival order, bounded in count and bytes
//! in total and per sender.
//!
//! Fairness: when a total bound is reached, a transaction still gets in if some other sender
//! holds more of the pool than the newcomer would (in the bound that is reached): that sender's
//! newest transactions are dropped to make room (its nonces stay contiguous; it resends them).
//! So a flood from a few funded accounts, each held to the per-sender caps, cannot keep an
//! honest sender out.

use std::collections::{HashMap, VecDeque};

use super::{ChainError, Result};
use crate::settlement::Address;
use crate::tx::{SignedTx, TxHash};

/// The mempool's bounds (from [`ChainConfig`](super::ChainConfig)).
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub max_txs: usize,
    pub max_bytes: usize,
    pub max_txs_per_sender: usize,
    pub max_bytes_per_sender: usize,
}

/// What one sender has pending.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Pending {
    txs: usize,
    bytes: usize,
}

/// A pending transaction and its size (its JSON encoding, as it arrived).
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub hash: TxHash,
    pub tx: SignedTx,
    pub bytes: usize,
}

/// Pending transactions, in order, and what each sender and the whole pool hold.
#[derive(Clone, Debug, Default)]
pub(super) struct Mempool {
    entries: VecDeque<Entry>,
    senders: HashMap<Address, Pending>,
    bytes: usize,
}

/// Which total bound a newcomer runs into.
#[derive(Clone, Copy)]
enum Bound {
    Count,
    Bytes,
}

impl Mempool {
    /// Transactions pending.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Transactions `sender` has pending.
    pub fn pending_of(&self, sender: &Address) -> usize {
        self.senders.get(sender).map_or(0, |p| p.txs)
    }

    /// Queue `entry` within `limits`, dropping the newest transactions of the sender that holds
    /// the most when a total bound is reached (see the module docs); refuses with
    /// [`ChainError::SenderLimit`] or [`ChainError::MempoolFull`] and changes nothing otherwise.
    pub fn admit(&mut self, entry: Entry, limits: &Limits) -> Result<()> {
        let from = entry.tx.from;
        self.check_sender_room(&from, entry.bytes, limits)?;
        let mine = self.senders.get(&from).copied().unwrap_or_default();
        let after = Pending {
            txs: mine.txs + 1,
            bytes: mine.bytes + entry.bytes,
        };
        if over(self.entries.len(), self.bytes, &entry, limits).is_some() {
            self.make_room(&entry, after, limits)?;
        }
        self.bytes += entry.bytes;
        let p = self.senders.entry(from).or_default();
        p.txs += 1;
        p.bytes += entry.bytes;
        self.entries.push_back(entry);
        Ok(())
    }

    /// Whether `sender` may queue one more transaction of `bytes` within the per-sender caps;
    /// [`ChainError::SenderLimit`] if not.
    pub fn check_sender_room(&self, sender: &Address, bytes: usize, limits: &Limits) -> Result<()> {
        let mine = self.senders.get(sender).copied().unwrap_or_default();
        if mine.txs + 1 > limits.max_txs_per_sender
            || mine.bytes + bytes > limits.max_bytes_per_sender
        {
            return Err(ChainError::SenderLimit {
                txs: mine.txs,
                bytes: mine.bytes,
                max_txs: limits.max_txs_per_sender,
                max_bytes: limits.max_bytes_per_sender,
            });
        }
        Ok(())
    }

    /// Drop the newest transactions of the largest holders until `entry` fits, if each holds
    /// more than its sender would (`after`); otherwise refuse and drop nothing.
    fn make_room(&mut self, entry: &Entry, after: Pending, limits: &Limits) -> Result<()> {
        let from = entry.tx.from;
        // Plan the evictions on a copy of the counts, so a refusal changes nothing.
        let mut evict = HashMap::<Address, usize>::new();
        let mut plan = self.senders.clone();
        let (mut txs, mut bytes) = (self.entries.len(), self.bytes);
        while let Some(bound) = over(txs, bytes, entry, limits) {
            let Some(victim) = heaviest(&plan, &from, bound, after) else {
                return Err(ChainError::MempoolFull {
                    txs: self.entries.len(),
                    bytes: self.bytes,
                });
            };
            let skip = evict.get(&victim).copied().unwrap_or(0);
            let newest = self
                .newest_of(&victim, skip)
                .expect("a sender with pending transactions has a newest one");
            let p = plan
                .get_mut(&victim)
                .expect("the victim has pending transactions");
            p.txs -= 1;
            p.bytes -= newest.bytes;
            txs -= 1;
            bytes -= newest.bytes;
            *evict.entry(victim).or_default() += 1;
        }
        for (victim, n) in evict {
            for _ in 0..n {
                self.drop_newest(&victim);
            }
        }
        Ok(())
    }

    /// Every pending transaction, in order; the pool is left empty.
    pub fn take(&mut self) -> Vec<Entry> {
        self.senders.clear();
        self.bytes = 0;
        self.entries.drain(..).collect()
    }

    /// The next block's transactions, at most `max_bytes` of them (at least one, whatever its
    /// size): senders take turns, one transaction each per round, in the order of their oldest
    /// pending one, so a flood from some senders fills the block only after every other sender
    /// got a place. A sender whose next transaction does not fit waits for the next block with
    /// all its others (its nonces stay in order). The block keeps arrival order; the rest stays
    /// pending, in order.
    pub fn take_block(&mut self, max_bytes: usize) -> Vec<Entry> {
        if self.bytes <= max_bytes {
            return self.take();
        }
        let mut queues: Vec<VecDeque<usize>> = Vec::new();
        let mut queue_of = HashMap::<Address, usize>::new();
        for (i, entry) in self.entries.iter().enumerate() {
            let q = *queue_of.entry(entry.tx.from).or_insert_with(|| {
                queues.push(VecDeque::new());
                queues.len() - 1
            });
            queues[q].push_back(i);
        }
        let mut chosen = vec![false; self.entries.len()];
        let mut used = 0usize;
        let mut progress = true;
        while progress {
            progress = false;
            for queue in &mut queues {
                let Some(&i) = queue.front() else { continue };
                let size = self.entries[i].bytes;
                if used > 0 && used + size > max_bytes {
                    queue.clear();
                    continue;
                }
                queue.pop_front();
                chosen[i] = true;
                used += size;
                progress = true;
            }
        }
        let (mut block, mut rest) = (Vec::new(), VecDeque::new());
        for (entry, chosen) in self.entries.drain(..).zip(chosen) {
            if chosen {
                block.push(entry);
            } else {
                rest.push_back(entry);
            }
        }
        self.entries = rest;
        self.recount();
        block
    }

    /// Put back `entries` taken by [`Mempool::take_block`] (a block that could not be
    /// written), in order, before what stayed pending.
    pub fn restore(&mut self, entries: Vec<Entry>) {
        for entry in entries.into_iter().rev() {
            self.entries.push_front(entry);
        }
        self.recount();
    }

    /// What each sender and the whole pool hold, counted again from the entries.
    fn recount(&mut self) {
        self.senders.clear();
        self.bytes = 0;
        for entry in &self.entries {
            self.bytes += entry.bytes;
            let p = self.senders.entry(entry.tx.from).or_default();
            p.txs += 1;
            p.bytes += entry.bytes;
        }
    }

    /// The `skip`-th newest pending transaction of `sender` (0: the newest).
    fn newest_of(&self, sender: &Address, skip: usize) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .filter(|e| e.tx.from == *sender)
            .nth(skip)
    }

    fn drop_newest(&mut self, sender: &Address) {
        let Some(i) = self.entries.iter().rposition(|e| e.tx.from == *sender) else {
            return;
        };
        let dropped = self.entries.remove(i).expect("the position is in range");
        tracing::info!(
            target: "sheaf_chain::node",
            hash = %dropped.hash, from = %dropped.tx.from, nonce = dropped.tx.nonce,
            "mempool full: the newest transaction of its largest sender dropped"
        );
        self.bytes -= dropped.bytes;
        let p = self
            .senders
            .get_mut(sender)
            .expect("a pending sender is counted");
        p.txs -= 1;
        p.bytes -= dropped.bytes;
        if p.txs == 0 {
            self.senders.remove(sender);
        }
    }
}

/// The total bound `entry` would exceed on a pool of `txs` transactions and `bytes` bytes.
fn over(txs: usize, bytes: usize, entry: &Entry, limits: &Limits) -> Option<Bound> {
    if txs + 1 > limits.max_txs {
        Some(Bound::Count)
    } else if bytes + entry.bytes > limits.max_bytes {
        Some(Bound::Bytes)
    } else {
        None
    }
}

/// The sender other than `newcomer` that holds the most of `bound`, if it holds more than the
/// newcomer would after admission (`after`).
fn heaviest(
    senders: &HashMap<Address, Pending>,
    newcomer: &Address,
    bound: Bound,
    after: Pending,
) -> Option<Address> {
    let measure = |p: &Pending| match bound {
        Bound::Count => p.txs,
        Bound::Bytes => p.bytes,
    };
    senders
        .iter()
        .filter(|(a, p)| *a != newcomer && p.txs > 0)
        .max_by_key(|(a, p)| (measure(p), **a))
        .filter(|(_, p)| measure(p) > measure(&after))
        .map(|(a, _)| *a)
}
