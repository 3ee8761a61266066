//! The failpoints `bench chaos` crashes processes at, and how a process arms one. Each is a
//! `fail::fail_point!` line in the code it names; they do nothing unless `sheaf` is built with
//! its `failpoints` feature (its tests turn it on) and one is armed through [`CRASH_AT_ENV`].

/// Environment variable naming the failpoint at which a process aborts (SIGABRT) the first time
/// it gets there: the crash of a process at that step.
pub const CRASH_AT_ENV: &str = "SHEAF_CHAOS_CRASH_AT";

/// The coordinator's failpoints: either side of the commit of the store's lease, submit,
/// requeue and outbox transactions, and either side of the settlement sender's sending of a
/// proof hash (the commit step) and of a proof (the reveal).
pub const COORDINATOR: [&str; 12] = [
    "store::lease::before_commit",
    "store::lease::after_commit",
    "store::submit::before_commit",
    "store::submit::after_commit",
    "store::requeue::before_commit",
    "store::requeue::after_commit",
    "store::outbox::before_commit",
    "store::outbox::after_commit",
    "sender::before_send::proof_hash",
    "sender::after_send::proof_hash",
    "sender::before_send::proof",
    "sender::after_send::proof",
];

/// The coordinator's failpoints reached once per sequence (its settlement), not with every job.
pub const SETTLEMENT: [&str; 6] = [
    "store::outbox::before_commit",
    "store::outbox::after_commit",
    "sender::before_send::proof_hash",
    "sender::after_send::proof_hash",
    "sender::before_send::proof",
    "sender::after_send::proof",
];

/// The prover loop's failpoints: a job leased and not proved, a job proved and not submitted.
pub const PROVER: [&str; 2] = ["prover::after_lease", "prover::before_submit"];

/// Whether this binary has its failpoints compiled in.
pub fn compiled_in() -> bool {
    fail::has_failpoints()
}

/// Arm the failpoint [`CRASH_AT_ENV`] names, if any: the process aborts when it gets there.
/// Called first thing in `main`, so every process the harness starts obeys it.
pub fn arm_from_env() {
    let Ok(name) = std::env::var(CRASH_AT_ENV) else {
        return;
    };
    if !compiled_in() {
        eprintln!("{CRASH_AT_ENV}={name} ignored: this sheaf has no failpoints compiled in");
        return;
    }
    let at = name.clone();
    let armed = fail::cfg_callback(name, move || {
        eprintln!("crashing at failpoint {at} ({CRASH_AT_ENV})");
        std::process::abort();
    });
    if let Err(e) = armed {
        eprintln!("{CRASH_AT_ENV}: {e}");
    }
}
