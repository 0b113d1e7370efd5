//! `sgd-lab`: the native command-line face of the lab. It parses the command line and hands it to
//! `sgd_lab::cli::run`; the commands are documented in `src/cli/mod.rs` (and `sgd-lab --help`).

// The CLI is native-only. `wasm-pack test` builds every target for wasm32: there this binary is empty.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

use clap::Parser;

fn main() {
    if let Err(e) = sgd_lab::cli::run(sgd_lab::cli::Cli::parse()) {
        eprintln!("sgd-lab: {e}");
        std::process::exit(1);
    }
}
