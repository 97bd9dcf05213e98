//! Shared code of the Rust benchmark binaries: option parsing, error reporting, the timing loop
//! and its JSON line, input files, and the seeded generator.
//!
//! Every task binary follows the same shape:
//! 1. parse options ([`cli::Opts`]), failing with one `Error: ...` line and exit status 1
//!    ([`cli::fail`]);
//! 2. set up (load the input), timed as `setup_ns`;
//! 3. [`report::run_kernel`]: K timed iterations of the kernel, all giving the same checksum,
//!    then one JSON line on stdout (the last line).

pub mod batch_scoring;
pub mod cli;
pub mod concurrency;
pub mod datagen;
pub mod drift;
pub mod feature_engineering;
pub mod file_read;
pub mod input;
pub mod io_impact;
pub mod parallel;
pub mod pool;
pub mod report;
pub mod rng;
pub mod score;
pub mod sum_squares;
pub mod tables;
