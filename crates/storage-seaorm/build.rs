//! Compiles the PostgreSQL tests in only when `CONFAB_TEST_POSTGRES_URL` names a
//! server: the storage contract suite's tests cannot skip themselves at run time, and
//! a PostgreSQL test that quietly passes without PostgreSQL would prove nothing.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(confab_postgres_tests)");
    println!("cargo::rerun-if-env-changed=CONFAB_TEST_POSTGRES_URL");
    let configured =
        std::env::var("CONFAB_TEST_POSTGRES_URL").is_ok_and(|url| !url.trim().is_empty());
    if configured {
        println!("cargo::rustc-cfg=confab_postgres_tests");
    }
}
