//! `csp-harness` binary: see `csp-harness --help` and README.md.

use std::process::ExitCode;

fn main() -> ExitCode {
    csp_harness::cli::main_with_args(std::env::args_os())
}
