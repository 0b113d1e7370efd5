//! `sgd-lab-bench`: training and evaluation throughput of the backends, for `docs/BENCHMARKS.md`. It parses
//! the command line and hands it to `sgd_lab::cli::bench::run`, where the measurements are documented.

// The CLI is native-only. `wasm-pack test` builds every target for wasm32: there this binary is empty.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

use clap::Parser;

fn main() {
    if let Err(e) = sgd_lab::cli::bench::run(&sgd_lab::cli::bench::BenchArgs::parse()) {
        eprintln!("sgd-lab-bench: {e}");
        std::process::exit(1);
    }
}
