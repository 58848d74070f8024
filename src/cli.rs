//! The `checkin` command line.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::clock::{SharedClock, SystemClock};
use crate::config::Settings;
use crate::db::{users, Db};
use crate::domain::language::Language;
use crate::domain::people::{Email, PersonName};
use crate::domain::Role;
use crate::error::AppError;

#[derive(Debug, Parser)]
#[command(
    name = "checkin",
    version,
    about = "Student-to-patient check-in calls for a primary-care practice"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web service (the default).
    Serve,
    /// Create or update the database's tables, then exit.
    Migrate,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Import patients or students from the programme spreadsheet saved as
    /// CSV (columns in docs/import.md). Every row is checked first; if any
    /// fails, each problem is printed and nothing is written.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Load a realistic demo programme into an empty database.
    Demo(crate::demo::DemoArgs),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// A consistent copy of the live SQLite database (PostgreSQL: use pg_dump,
    /// see docs/operations.md).
    Backup {
        /// Where to write the copy; must not exist yet.
        path: std::path::PathBuf,
    },
    /// Background work, for cron-style deployments.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// A whole programme in fast-forward on a fresh database: prints a
    /// report for leaders and fails naming any patient a promise broke for.
    Simulate(crate::simulate::SimulateArgs),
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Run the discharge sweep, reminders and the outbox sender once.
    RunOnce,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain; exits non-zero naming the first
    /// row that was removed or changed.
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Patients, each with the enrolling physician's account email and,
    /// optionally, the student they are paired with.
    Patients {
        /// The spreadsheet saved as CSV (UTF-8).
        file: PathBuf,
    },
    /// Students; each is emailed a one-time link to choose a password.
    Students {
        /// The spreadsheet saved as CSV (UTF-8).
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. The password is read from standard input (or asked
    /// for twice at a terminal), never from a flag.
    Create(CreateUser),
}

#[derive(Debug, Args)]
pub struct CreateUser {
    #[arg(long)]
    pub email: String,
    /// Full name; the first word is used as the given name.
    #[arg(long)]
    pub name: String,
    /// physician, student, leader or admin; repeat or separate with commas.
    #[arg(long = "role", required = true, value_delimiter = ',')]
    pub roles: Vec<Role>,
    /// Languages spoken, as ISO 639-1 codes: es,en.
    #[arg(long, default_value = "")]
    pub languages: String,
    /// Weighted patient load a student can carry (weekly 1, biweekly 0.5).
    #[arg(long, default_value_t = 4)]
    pub capacity: i32,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load().context("configuration")?;
    crate::telemetry::init_logging(settings.log_format);
    let clock: SharedClock = Arc::new(SystemClock);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings, clock),
        Command::Migrate => {
            let db = open_db(&settings)?;
            let applied = db.migrate()?;
            println!(
                "{}: {} migration(s) applied{}",
                db.target(),
                applied.len(),
                if applied.is_empty() {
                    ", already up to date"
                } else {
                    ""
                }
            );
            Ok(())
        }
        Command::User(UserCommand::Create(args)) => {
            let db = open_db(&settings)?;
            db.migrate()?;
            let password = read_password()?;
            let id = create_user(&db, &args, &password, clock.now())?;
            println!("created user {id} <{}>", args.email.trim().to_lowercase());
            Ok(())
        }
        Command::Backup { path } => {
            let db = open_db(&settings)?;
            crate::db::backup(&db, &path)?;
            println!("backed up {} to {}", db.target(), path.display());
            Ok(())
        }
        Command::Jobs(JobsCommand::RunOnce) => {
            let state = crate::startup::prepare(settings, clock)?;
            let transport = crate::mail::sender::Transport::from_settings(&state.settings)
                .map_err(anyhow::Error::msg)?;
            let holder = crate::jobs::holder_name();
            let (jobs, sent) = crate::jobs::run_once(&state, &transport, &holder)?;
            println!(
                "sweep {}: {} entered the final week, {} reached the discharge point; \
                 {} digests and {} weekly summaries queued; emails: {} sent, {} to retry, {} failed (to {})",
                if jobs.swept { "ran" } else { "already done today" },
                jobs.final_call_marked,
                jobs.discharge_due_marked,
                jobs.digests,
                jobs.weekly_summaries,
                sent.sent,
                sent.retrying,
                sent.failed,
                transport.describe()
            );
            Ok(())
        }
        Command::Simulate(args) => crate::simulate::command(settings, &args),
        Command::Audit(AuditCommand::Verify) => {
            let db = open_db(&settings)?;
            let outcome = db.read_blocking(|c| Ok(crate::audit::verify(c)?))?;
            match outcome {
                Ok(rows) => {
                    println!("the audit log is intact: {rows} rows checked");
                    Ok(())
                }
                Err(broken) => bail!("the audit log is broken: {broken}"),
            }
        }
        Command::Import(command) => {
            let db = open_db(&settings)?;
            db.migrate()?;
            import(&db, &settings, &command, clock.now())
        }
        Command::Demo(args) => {
            let db = open_db(&settings)?;
            db.migrate()?;
            let report = crate::demo::load(&db, &settings, &args, clock.now())?;
            println!("{report}");
            Ok(())
        }
    }
}

fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    Ok(Db::connect(&settings.database_url, settings.db_pool_size)?)
}

fn serve(settings: Settings, clock: SharedClock) -> anyhow::Result<()> {
    // Bind first: a port in use is the most common mistake and costs nothing to find.
    let listener = crate::startup::bind(&settings)?;
    let state = crate::startup::prepare(settings, clock)?;
    let users = state.db.read_blocking(|c| Ok(users::count(c)?))?;
    if users == 0 {
        let now = state.clock.now();
        let (link, _) = state
            .db
            .write_blocking(|c| crate::web::auth::make_link(c, &state, "first_admin", None, now))?;
        // The console is the only place this link appears; it is not logged.
        // A closed console must not stop the service, so write errors are ignored.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stdout(),
            "checkin has no accounts yet. Create the first admin by opening this one-time link \
             (valid 24 hours):\n  {link}\nor on this machine run:\n  \
             checkin user create --email you@example.org --name \"Your Name\" --role admin\n\
             (with cargo: cargo run --release -- user create ...)"
        );
    }
    crate::jobs::spawn_worker(state.clone()).context("starting the background worker")?;
    actix_web::rt::System::new()
        .block_on(crate::startup::serve(state, listener))
        .context("serving")
}

/// Runs the import; on bad rows prints one line per problem to standard
/// error, then fails with a summary line.
fn import(
    db: &Db,
    settings: &Settings,
    command: &ImportCommand,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    use crate::import::{import_patients, import_students, ImportError};
    let (result, file) = match command {
        ImportCommand::Patients { file } => (import_patients(db, settings, file, now), file),
        ImportCommand::Students { file } => (import_students(db, settings, file, now), file),
    };
    match result {
        Ok(report) => {
            println!("{report}");
            Ok(())
        }
        Err(ImportError::Rows(problems)) => {
            for problem in &problems {
                eprintln!("{problem}");
            }
            let s = if problems.len() == 1 { "" } else { "s" };
            bail!(
                "{} problem{s} in {}; nothing was imported",
                problems.len(),
                file.display()
            )
        }
        Err(other) => Err(other.into()),
    }
}

fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password (12 to 128 characters): ")?;
        let again = rpassword::prompt_password("Same password again: ")?;
        if first != again {
            bail!("the two passwords differ; nothing was created");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

/// Checks every argument, then writes the user, roles and languages in one
/// transaction.
pub fn create_user(
    db: &Db,
    args: &CreateUser,
    password: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<i64> {
    let mut problems = Vec::new();
    let email = Email::parse(&args.email)
        .map_err(|e| problems.push(format!("--email {e}")))
        .ok();
    let name = PersonName::split_full(&args.name)
        .map_err(|e| problems.push(format!("--name {e}")))
        .ok();
    let languages = Language::parse_list(&args.languages)
        .map_err(|e| problems.push(format!("--languages: {e}")))
        .ok();
    if !(0..=100).contains(&args.capacity) {
        problems.push("--capacity must be between 0 and 100".into());
    }
    let hash = crate::auth::hash_password(password)
        .map_err(|e| problems.push(format!("password {e}")))
        .ok();
    let (Some(email), Some((given, family)), Some(languages), Some(hash), true) =
        (email, name, languages, hash, problems.is_empty())
    else {
        bail!("{}; nothing was created", problems.join("; "));
    };
    let mut roles = args.roles.clone();
    roles.sort();
    roles.dedup();
    let languages: Vec<String> = languages.into_iter().map(String::from).collect();
    let now = now.naive_utc();
    let capacity = args.capacity;
    let result = db.write_blocking(|c| {
        if users::find_by_email(c, email.as_str())?.is_some() {
            return Err(AppError::Conflict(format!(
                "an account with the email {email} already exists"
            )));
        }
        let new = users::NewUser {
            id: None,
            email: email.as_str(),
            given_name: given.as_str(),
            family_name: &family,
            password_hash: Some(&hash),
            capacity,
            created_at: now,
            updated_at: now,
        };
        Ok(users::create(c, &new, &roles, &languages)?)
    });
    result.map_err(|e| anyhow::anyhow!("{e}; nothing was created"))
}
