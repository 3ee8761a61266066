//! `sheaf` as its users run it: each module runs real `sheaf` processes (or the store and
//! chain under them) for one part of the system. They are one test binary, linked once, whose
//! test threads overlap one test's waits (for a lease to expire, a block, a killed process)
//! with another's proving, where separate binaries ran one after the other.

mod bench_store;
mod chain;
mod chaos;
mod claim;
mod cli;
mod common;
mod console;
mod deploy;
mod devnet;
mod help;
mod jobs;
mod knobs;
mod network;
mod operator;
mod operator_commands;
mod rollup_faults;
mod rollup_node;
mod settlement;
mod walkthrough;
mod wallet;
