//! rayon pools with exactly the requested number of threads (`--threads P`).

use std::time::Instant;

use crate::report::ns_since;

/// Builds a pool of `threads` workers and makes sure they have started; returns it with its
/// start-up time in ns (reported as the `pool_start` phase).
pub fn start(threads: usize) -> Result<(rayon::ThreadPool, u64), String> {
    if threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    let t0 = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| format!("cannot start {threads} threads: {e}"))?;
    // One task per worker, so every thread exists before the clocks of the kernel start.
    pool.broadcast(|_| ());
    Ok((pool, ns_since(t0)))
}

/// `--threads` or, when absent, the number of CPUs this process may run on.
pub fn threads_option(opts: &crate::cli::Opts) -> Result<usize, String> {
    let default = std::thread::available_parallelism().map_or(1, |n| n.get());
    let p: usize = opts.parse_or("--threads", default)?;
    if p == 0 {
        return Err("--threads must be at least 1".into());
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pool_has_the_requested_threads() {
        let (pool, ns) = super::start(3).unwrap();
        assert_eq!(pool.current_num_threads(), 3);
        assert!(ns > 0);
        assert!(super::start(0).is_err());
    }
}
