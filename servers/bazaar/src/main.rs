//! The `bazaar` command line: `bazaar --help` lists the commands.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    bazaar::main_with(bazaar::cli::Cli::parse())
}
