//! The `bazaar` command line: `bazaar --help` lists the commands.

use std::process::ExitCode;

use clap::Parser as _;

// Every request allocates small, short-lived buffers on several threads
// (hyper's codecs, header maps, JSON); glibc's malloc spent ~13 % of the
// gateway's CPU on them under load (`perf`, benches/README.md "Gateway").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    bazaar::main_with(bazaar::cli::Cli::parse())
}
