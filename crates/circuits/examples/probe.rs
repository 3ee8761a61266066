use std::time::Instant;
use sheaf_circuits::*;
fn main() {
    env_logger::init();
    let arity: usize = std::env::args().nth(1).unwrap().parse().unwrap();
    let profile: Profile = std::env::args().nth(2).unwrap().parse().unwrap();
    let n: usize = std::env::args().nth(3).unwrap().parse().unwrap();
    let t = Instant::now();
    let leaf = WorkLeaf::build(profile.leaf_config(), 8).unwrap();
    println!("leaf built {:?} {:?}", t.elapsed(), leaf.circuit().common.degree_bits());
    let t = Instant::now();
    let settings = AggregationSettings { profile, arity, zk: None };
    let circuits = AggregationCircuits::load_or_build(settings, &[leaf.verifier()], None).unwrap();
    println!("agg built {:?} degree {}", t.elapsed(), circuits.universal().data.common.degree_bits());
    let w = WorkerSecret::random();
    let plan = TreePlan::new(n, arity).unwrap();
    let key = leaf.circuit().verifier_only.clone();
    let prover = TreeProver::new(&circuits, "work", &key, w);
    let t = Instant::now();
    let root = prover.prove(&plan, &mut |i| leaf.prove(&work::work_input(1, i as u64), &w), &mut |n| println!("{:?}", n)).unwrap();
    println!("tree {:?} bytes {}", t.elapsed(), encode_proof(&root).len());
    let fk = circuits.final_key();
    let v = fk.verify(&root).unwrap();
    println!("verify {:?}", v);
}
