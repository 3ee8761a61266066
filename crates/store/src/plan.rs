//! Planning a sequence: storing its whole job tree at once.

use std::collections::{HashMap, HashSet};

use sheaf_types::JobId;

use crate::error::{Result, StoreError};
use crate::model::{JobStatus, NewJob, NewSequence};
use crate::store::WriteTx;
use crate::Store;

impl Store {
    /// Stores a sequence and its job tree in one transaction: leaves start `ready`, the other
    /// jobs `waiting`. `jobs` must form one tree of this sequence (every child listed once, one
    /// root, no cycle), else [`StoreError::InvalidPlan`].
    ///
    /// Planning the same sequence again (say, a coordinator that crashed after planning) gives
    /// [`StoreError::SequenceExists`] and changes nothing.
    pub async fn insert_sequence(&self, sequence: NewSequence, jobs: &[NewJob]) -> Result<()> {
        let plan = Plan::check(&sequence, jobs)?;
        let mut tx = self.begin_write().await?;
        let stored = plan.store(&mut tx).await;
        tx.finish(stored).await?;
        tracing::info!(
            target: "sheaf::store",
            sequence = %sequence.id,
            jobs = jobs.len(),
            root = %plan.root(),
            "planned sequence"
        );
        Ok(())
    }
}

/// A sequence and its job tree, checked to be one tree of the sequence: what
/// [`Store::insert_sequence`] stores, and [`Store::publish_rollup_block`] with its block.
pub(crate) struct Plan<'a> {
    sequence: &'a NewSequence,
    jobs: &'a [NewJob],
    tree: Tree,
}

impl<'a> Plan<'a> {
    /// Checks that `jobs` form one tree of `sequence`, else [`StoreError::InvalidPlan`].
    pub(crate) fn check(sequence: &'a NewSequence, jobs: &'a [NewJob]) -> Result<Self> {
        let tree = Tree::check(sequence, jobs)?;
        Ok(Plan {
            sequence,
            jobs,
            tree,
        })
    }

    /// The root job.
    pub(crate) fn root(&self) -> JobId {
        self.tree.root
    }

    /// Stores the sequence and its jobs inside the caller's write transaction: leaves `ready`,
    /// the others `waiting`. A sequence stored already is [`StoreError::SequenceExists`].
    pub(crate) async fn store(&self, tx: &mut WriteTx) -> Result<()> {
        store_plan(tx, self.sequence, self.jobs, &self.tree).await
    }
}

/// The body of [`Plan::store`].
async fn store_plan(
    tx: &mut WriteTx,
    sequence: &NewSequence,
    jobs: &[NewJob],
    tree: &Tree,
) -> Result<()> {
    let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM sequences WHERE id = $1")
        .bind(sequence.id)
        .fetch_optional(tx.conn())
        .await?;
    if existing.is_some() {
        return Err(StoreError::SequenceExists(sequence.id));
    }
    sqlx::query("INSERT INTO sequences (id, leaves, root_job, created_ms) VALUES ($1, $2, $3, $4)")
        .bind(sequence.id)
        .bind(sequence.leaves)
        .bind(tree.root)
        .bind(sequence.created_ms)
        .execute(tx.conn())
        .await
        .map_err(|e| match e.as_database_error() {
            // Another coordinator replica planned it between our check and our insert.
            Some(db) if db.is_unique_violation() => StoreError::SequenceExists(sequence.id),
            _ => StoreError::from(e),
        })?;
    for job in jobs {
        let (parent, position) = match tree.parents.get(&job.id) {
            Some((parent, position)) => (Some(*parent), Some(*position)),
            None => (None, None),
        };
        let status = if job.children.is_empty() {
            JobStatus::Ready
        } else {
            JobStatus::Waiting
        };
        sqlx::query(
            "INSERT INTO jobs (id, sequence, level, idx, circuit, inputs, parent, position, \
             status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(job.id)
        .bind(job.id.sequence)
        .bind(tree.level_of(job.id))
        .bind(tree.index_of(job.id))
        .bind(&job.circuit)
        .bind(&job.inputs)
        .bind(parent)
        .bind(position)
        .bind(status.as_str())
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

/// The shape of a checked plan.
struct Tree {
    root: JobId,
    /// Parent and position among its children, for every job but the root.
    parents: HashMap<JobId, (JobId, i64)>,
}

impl Tree {
    /// The stored level of a job of a checked plan (it fits, see [`Tree::check`]).
    fn level_of(&self, id: JobId) -> i32 {
        i32::try_from(id.level).unwrap_or(i32::MAX)
    }

    /// The stored index of a job of a checked plan.
    fn index_of(&self, id: JobId) -> i64 {
        i64::try_from(id.index).unwrap_or(i64::MAX)
    }

    fn check(sequence: &NewSequence, jobs: &[NewJob]) -> Result<Tree> {
        let invalid = |msg: String| Err(StoreError::InvalidPlan(msg));
        if sequence.leaves < 0 || i64::try_from(sequence.id.get()).is_err() {
            return invalid(format!(
                "negative leaf count or sequence id beyond i64 in {sequence:?}"
            ));
        }
        let mut ids = HashSet::with_capacity(jobs.len());
        for job in jobs {
            if job.id.sequence != sequence.id {
                return invalid(format!("job {} is not of sequence {}", job.id, sequence.id));
            }
            if i32::try_from(job.id.level).is_err() || i64::try_from(job.id.index).is_err() {
                return invalid(format!("job {} has a level or index too large", job.id));
            }
            if !ids.insert(job.id) {
                return invalid(format!("job {} is listed twice", job.id));
            }
        }
        let mut parents = HashMap::with_capacity(jobs.len());
        for job in jobs {
            for (position, child) in (0i64..).zip(&job.children) {
                if !ids.contains(child) {
                    return invalid(format!("child {child} of {} is not in the plan", job.id));
                }
                if parents.insert(*child, (job.id, position)).is_some() {
                    return invalid(format!("job {child} has more than one parent"));
                }
            }
        }
        let mut roots = jobs.iter().filter(|job| !parents.contains_key(&job.id));
        let root = match (roots.next(), roots.next()) {
            (Some(root), None) => root,
            (None, _) => return invalid("no root job (empty plan or a cycle)".into()),
            (Some(a), Some(b)) => return invalid(format!("two roots {} and {}", a.id, b.id)),
        };
        // One root and one parent per other job still allows a cycle beside the tree: every job
        // must be reachable from the root.
        let children: HashMap<JobId, &[JobId]> = jobs
            .iter()
            .map(|job| (job.id, job.children.as_slice()))
            .collect();
        let mut reached = 0;
        let mut stack = vec![root.id];
        while let Some(id) = stack.pop() {
            reached += 1;
            stack.extend_from_slice(children[&id]);
        }
        if reached != jobs.len() {
            return invalid("some jobs are not reachable from the root (a cycle)".into());
        }
        Ok(Tree {
            root: root.id,
            parents,
        })
    }
}
