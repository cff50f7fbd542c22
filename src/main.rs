//! The `baton` binary: parse the command line, run it, map an error to its exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = baton::cli::Cli::parse();
    baton::init_logging(&cli);
    match baton::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // Not eprintln!: a closed stderr must not turn an error into a panic.
            let _ = writeln!(std::io::stderr(), "baton: {err:#}");
            ExitCode::from(baton::exit_code(&err))
        }
    }
}
