use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = baton::cli::Cli::parse();
    baton::commands::init_logging(&cli);
    match baton::commands::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("baton: {err:#}");
            ExitCode::from(baton::exit_code(&err))
        }
    }
}
