//! Thin: parse the command line, load the settings, run the chosen command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cap_malloc_arenas();
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

/// glibc's malloc gives each thread that allocates its own arena, up to
/// eight per core, and keeps what is freed in each. The database reads run
/// on whichever blocking thread is free, so a few concurrent dashboard or
/// discharge-queue requests left the server at 300 MB or more. Two arenas
/// keep it near what one request needs (docs/PERFORMANCE.md); the threads
/// that share them rarely allocate at the same moment on two cores.
/// `MALLOC_ARENA_MAX` in the environment still wins.
fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes malloc's tuning, and runs here before
        // any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
