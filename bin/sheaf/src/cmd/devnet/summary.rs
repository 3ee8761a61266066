//! Printing a devnet's summary for people (`--json` prints the same summary as one object).

use crate::process_stats::mib;

use super::rollup::Percentiles;
use super::{DevnetSummary, RollupReport};

/// Base units as tokens, to three decimals.
fn tokens(amount: sheaf_chain::settlement::Amount) -> String {
    let (amount, unit) = (amount.0, sheaf_chain::settlement::UNIT.0);
    format!("{}.{:03}", amount / unit, amount % unit * 1000 / unit)
}

fn percentiles(p: &Percentiles) -> String {
    format!("p50 {:.2} s, p99 {:.2} s, max {:.2} s", p.p50, p.p99, p.max)
}

fn print_rollup(r: &RollupReport) {
    println!(
        "rollup: {} blocks published, {} proven, {} settled; {} transactions ({} network, {} local) over {} accounts, {} consuming a note ({} in its creator's block)",
        r.blocks_published,
        r.blocks_proven,
        r.blocks_settled,
        r.transactions,
        r.network_transactions,
        r.local_transactions,
        r.accounts,
        r.notes_consumed,
        r.notes_consumed_in_block
    );
    println!("  proven throughput: {:.2} transactions/s", r.proven_tps);
    println!(
        "  latency to published: {}",
        percentiles(&r.latency_published)
    );
    println!("  latency to proven:    {}", percentiles(&r.latency_proven));
    println!(
        "  latency to settled:   {}",
        percentiles(&r.latency_settled)
    );
    println!(
        "  proven-tip lag: {} (at most {} blocks behind)",
        percentiles(&r.proven_tip_lag),
        r.proven_tip_lag_blocks
    );
    if r.balances_match {
        println!(
            "  balances: all {} accounts equal a native replay of the settled blocks",
            r.balances_matching
        );
    } else {
        println!("  balances: {} DIFFER:", r.mismatches.len());
        for m in &r.mismatches {
            println!("    {m}");
        }
    }
}

pub fn print_summary(s: &DevnetSummary) {
    if let Some(rollup) = &s.rollup {
        print_rollup(rollup);
    }
    println!(
        "devnet: {} of {} sequences proved by {} provers, {} jobs; {} root proofs verified with the final key {}",
        s.sequences_proved, s.sequences, s.provers, s.jobs, s.roots_verified, s.final_key_id
    );
    println!(
        "time: setup {:.1} s, proving wall {:.1} s, {:.1} s spent proving (all provers)",
        s.setup_seconds, s.wall_seconds, s.proving_seconds
    );
    println!(
        "critical path: {} jobs, {:.2} s, {:.2} s proving, {:.3} s overhead → coordinator overhead {:.2}%",
        s.critical_path.jobs,
        s.critical_path.seconds,
        s.critical_path.proving_seconds,
        s.critical_path.overhead_seconds,
        100.0 * s.coordinator_overhead_fraction
    );
    let memory: Vec<String> = s
        .peak_rss
        .iter()
        .map(|p| match p.peak_rss_bytes {
            Some(bytes) => format!("{} {:.0} MiB", p.process, mib(bytes)),
            None => format!("{} ?", p.process),
        })
        .collect();
    println!("peak RSS: {}", memory.join(", "));
    println!(
        "chain: {} of {} sequences finalized in {} blocks, settled {:.1} s after the last proof",
        s.sequences_finalized, s.sequences, s.chain.height, s.settle_seconds
    );
    for f in &s.chain.finalized {
        println!(
            "  sequence {} finalized in block {} by {}… ({} jobs, {} work units)",
            f.sequence,
            f.block,
            &f.sender[..16],
            f.jobs,
            f.work_units
        );
    }
    for a in &s.chain.senders {
        println!(
            "rewards: sender {}… earned {} tokens ({} transactions, stake {} tokens)",
            &a.sender[..16],
            tokens(a.rewards),
            a.transactions,
            tokens(a.stake)
        );
    }
    for p in &s.chain.provers {
        println!(
            "work: {} proved {} jobs, {} work units",
            p.prover, p.jobs, p.work_units
        );
    }
    let c = &s.claims;
    println!(
        "prover rewards: chain owed {}, paid {}, still owes {}",
        c.owed, c.paid, c.remaining
    );
    for r in &c.claimants {
        println!(
            "  {:<10} {:>4} jobs {:>6} units  owed {}  claimed {} ({} claims, {} batches, claim peak RSS {:.0} MiB, {:.1} s)",
            r.name,
            r.jobs,
            r.work_units,
            r.owed,
            r.claimed,
            r.claims,
            r.claim_batches,
            mib(r.claim_peak_rss_bytes),
            r.claim_seconds
        );
    }
    println!("members:");
    for m in &s.chain.members {
        println!(
            "  {:<10} index {:>3}  rate {:>4}/epoch  {:?}  id {}…",
            m.prover,
            m.index,
            m.rate_limit,
            m.state,
            &m.id_commitment[..16]
        );
    }
    if let Some(dir) = &s.data_dir {
        println!("data directory: {}", dir.display());
    }
}
