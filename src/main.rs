//! Thin: parse the command line, load the settings, run the chosen command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = checkin::cli::Cli::parse();
    match checkin::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line saying what is wrong and how to fix it; no panic trace.
            // Drivers (libpq) write several lines; fold them into one.
            let message = format!("{e:#}");
            let one_line: Vec<&str> = message.split_whitespace().collect();
            eprintln!("checkin: {}", one_line.join(" "));
            ExitCode::FAILURE
        }
    }
}
