//! Write every target's seeds and checked-in regressions into `DIR/<target>/`, the corpus
//! `cargo fuzz run <target>` starts from: `cargo run -p sheaf-fuzz --example fuzz_seeds -- DIR`.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: fuzz_seeds DIR (e.g. fuzz/corpus)"),
    );
    let regressions = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("regressions");
    for target in sheaf_fuzz::TARGETS {
        let out = dir.join(target.name);
        std::fs::create_dir_all(&out)?;
        let seeds = (target.seeds)();
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(out.join(format!("seed-{i}")), seed)?;
        }
        let mut copied = 0;
        if let Ok(entries) = std::fs::read_dir(regressions.join(target.name)) {
            for entry in entries {
                let path = entry?.path();
                let name = path.file_name().expect("a file name").to_owned();
                std::fs::copy(&path, out.join(name))?;
                copied += 1;
            }
        }
        println!(
            "{}: {} seeds, {copied} regressions",
            target.name,
            seeds.len()
        );
    }
    Ok(())
}
