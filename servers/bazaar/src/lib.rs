//! The `bazaar` command line as a library, so tests run exactly what the
//! binary runs: [`cli`] parses flags and the environment, [`main_with`]
//! validates them (exit code 2 on a bad setting), sets up logging and a
//! runtime, and [`commands::execute`] runs the subcommand until it is done
//! or SIGINT/SIGTERM stops it gracefully.
//!
//! Every setting and its variable is listed in `docs/operations.md`
//! (`.ci/check-config-docs` keeps that list and [`cli`] in step).
//!
//! # Example
//! What `bazaar serve --http-addr localhost:8080` is told, and why it would
//! stop with exit code 2 before opening anything:
//! ```
//! use bazaar::cli::{Cli, Command};
//! use bazaar_app::Config;
//! use clap::Parser as _;
//!
//! let cli = Cli::try_parse_from(["bazaar", "serve", "--demo", "--http-addr", "localhost:8080"]).unwrap();
//! assert!(matches!(&cli.command, Command::Serve(args) if args.demo));
//! let err = Config::validate(cli.global.raw_config(true)).unwrap_err();
//! assert_eq!(err.to_string(), r#"invalid --http-addr: "localhost:8080" is not an address such as 127.0.0.1:8080"#);
//! ```

pub mod cli;
pub mod commands;

use std::process::ExitCode;

use bazaar_app::{Config, RawConfig, StartError};

use crate::cli::{Cli, Command};

/// Exit code of a setting that cannot be used (clap uses it for usage errors too).
pub const EXIT_CONFIG: u8 = 2;

/// How long a stopping process waits for the collector to take its last spans.
const TRACE_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The `service.name` (and `bazaar.role`) of the process's traces.
fn role(command: &Command) -> &'static str {
    match command {
        Command::Serve(_) => "bazaar",
        Command::Http(_) => "bazaar-http",
        Command::Grpc(_) => "bazaar-grpc",
        Command::Gateway(_) => "bazaar-gateway",
        Command::Worker(_) => "bazaar-worker",
        Command::Migrate => "bazaar-migrate",
        Command::Seed(_) => "bazaar-seed",
    }
}

/// Runs a parsed command line to completion and returns the process's exit
/// code: 0 on success (including a graceful stop), [`EXIT_CONFIG`] when a
/// setting is invalid (`error: invalid DATABASE_URL: …` on stderr), 1 when
/// the command fails.
pub fn main_with(cli: Cli) -> ExitCode {
    // Both create the demo logins.
    let demo = matches!(&cli.command, Command::Serve(args) if args.demo) || matches!(cli.command, Command::Seed(_));
    // Neither migrating nor proxying takes a payment, so neither needs a
    // payment provider chosen.
    let schema_only = matches!(cli.command, Command::Migrate | Command::Gateway(_));
    let raw = RawConfig { schema_only, ..cli.global.raw_config(demo) };
    let config = match Config::validate(raw) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Inside the runtime: the span export task runs on it.
    let telemetry = {
        let _runtime = runtime.enter();
        let role = role(&cli.command);
        bazaar_telemetry::init_with_traces(&config.log_level, config.log_format.is_json(), config.traces.as_ref(), role)
    };
    let telemetry = match telemetry {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let outcome = runtime.block_on(commands::execute(cli.command, &cli.global, config));
    runtime.block_on(telemetry.shutdown(TRACE_FLUSH_TIMEOUT));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // A setting only an adapter could judge (lettre refusing an SMTP
        // URL) or a gateway file is still a bad setting: the same message
        // and exit code.
        Err(e) if matches!(e.downcast_ref::<StartError>(), Some(StartError::Config(_) | StartError::Gateway(_))) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "stopped with an error");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
