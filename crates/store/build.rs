//! Compiles the PostgreSQL half of the tests in when `SHEAF_TEST_POSTGRES_URL` is set at build
//! time (`cfg(sheaf_postgres)`); without it they stand in the test output as ignored, with the
//! reason, instead of passing without having run.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(sheaf_postgres)");
    println!("cargo::rerun-if-env-changed=SHEAF_TEST_POSTGRES_URL");
    // sqlx::migrate! embeds the migrations; a new one must rebuild the crate.
    println!("cargo::rerun-if-changed=migrations");
    if std::env::var_os("SHEAF_TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=sheaf_postgres");
    }
}
