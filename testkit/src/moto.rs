//! What every test that runs against moto_server needs: its address, and names of its own.

/// The moto_server that `scripts/test` starts and names in `MOTO_ENDPOINT`; without it a test fails
/// rather than pass untested.
pub fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT")
        .expect("MOTO_ENDPOINT is not set: run scripts/test, which starts moto_server")
}

/// A table or queue name of its own for each test, so that tests (and test processes) can run at
/// once against one moto.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{nanos:x}{:x}{n:x}", std::process::id())
}
