//! A whole programme in fast-forward (`checkin simulate`): every promise
//! holds at a small size on both backends, and breaking one on purpose is
//! caught and named with the patient.

mod common;

use std::process::Command;

use checkin::simulate::{self, Faults, Outcome, Promise, SimulateArgs};

use common::{postgres_url, settings_for, PgDatabase};

fn small(patients: usize, students: usize, weeks: u32) -> SimulateArgs {
    SimulateArgs {
        patients,
        students,
        weeks,
        ..SimulateArgs::default()
    }
}

fn on_sqlite(args: &SimulateArgs, faults: Faults) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("sim.db").display());
    simulate::run(settings_for(&url, dir.path()), args, faults).expect("the simulation runs")
}

/// The checks must have had something to check, or "held" means nothing.
fn assert_every_promise_held_and_was_tested(outcome: &Outcome, args: &SimulateArgs) {
    for broken in &outcome.broken {
        eprintln!("{broken}");
    }
    assert!(outcome.broken.is_empty(), "{} broken", outcome.broken.len());
    let f = &outcome.figures;
    assert!(f.calls > args.patients * 4, "only {} calls", f.calls);
    assert!(f.peak_overdue_share > 0.0, "no follow-up was ever overdue");
    assert!(f.interpreter_calls > 0, "no interpreter call");
    assert!(
        f.emails_by_kind.get("urgent_concern").copied().unwrap_or(0) > 0,
        "no urgent concern was raised: {:?}",
        f.emails_by_kind
    );
    assert_eq!(
        f.emails_by_kind.get("discharge_notice").copied(),
        Some(args.patients),
        "every patient is discharged and their physician told"
    );
    assert!(f.weeks.len() >= args.weeks as usize);
    for promise in Promise::ALL {
        let line = outcome
            .report
            .lines()
            .find(|l| l.contains(promise.describe()))
            .unwrap_or_else(|| panic!("{promise:?} is not in the report"));
        assert!(line.contains(": held ("), "{line}");
        assert!(
            !line.contains("(0 checks)"),
            "nothing put this promise to the test: {line}"
        );
    }
}

#[test]
fn a_small_programme_keeps_every_promise_on_sqlite() {
    let args = small(200, 20, 8);
    let outcome = on_sqlite(&args, Faults::default());
    assert_every_promise_held_and_was_tested(&outcome, &args);
    assert!(outcome.report.contains("| week of | calls |"));
}

#[test]
fn a_small_programme_keeps_every_promise_on_postgres() {
    let Some(admin) = postgres_url("a_small_programme_keeps_every_promise_on_postgres") else {
        return;
    };
    let db = PgDatabase::create(&admin);
    let dir = tempfile::tempdir().expect("temp dir");
    let args = small(200, 20, 8);
    let outcome = simulate::run(settings_for(&db.url, dir.path()), &args, Faults::default())
        .expect("the simulation runs");
    assert_every_promise_held_and_was_tested(&outcome, &args);
    assert!(outcome.report.contains("database PostgreSQL"));
}

#[test]
fn the_same_seed_gives_the_same_programme() {
    let args = small(30, 4, 2);
    let a = on_sqlite(&args, Faults::default());
    let b = on_sqlite(&args, Faults::default());
    assert_eq!(a.figures.calls, b.figures.calls);
    assert_eq!(a.figures.completed, b.figures.completed);
}

#[test]
fn a_day_without_the_sweep_breaks_the_discharge_promise_naming_the_patients() {
    // The first patients are enrolled on day 0; their discharge point is
    // day 56. The jobs do not run that day.
    let args = small(40, 5, 8);
    let outcome = on_sqlite(
        &args,
        Faults {
            skip_jobs_on_day: Some(56),
            ..Faults::default()
        },
    );
    let broken: Vec<_> = outcome
        .broken
        .iter()
        .filter(|b| b.promise == Promise::DischargeQueueOnTheDay)
        .collect();
    assert!(!broken.is_empty(), "the skipped sweep went unnoticed");
    let message = broken[0].to_string();
    assert!(
        message.starts_with(&format!(
            "patient {}: promise broken: ",
            broken[0].patient_id
        )) && message.contains("reaches the discharge queue on the day")
            && message.contains("2027-03-29"),
        "{message}"
    );
    assert!(outcome
        .report
        .contains("reaches the discharge queue on the day of the discharge point: **broken for"));
    assert!(outcome
        .broken
        .iter()
        .all(|b| b.promise == Promise::DischargeQueueOnTheDay));
}

#[test]
fn a_stalled_outbox_breaks_the_urgent_email_promise_naming_the_patient() {
    let args = SimulateArgs {
        urgent_rate: 0.5,
        ..small(20, 3, 2)
    };
    let outcome = on_sqlite(
        &args,
        Faults {
            outbox_stalled: Some((4, 24)),
            ..Faults::default()
        },
    );
    let broken: Vec<_> = outcome
        .broken
        .iter()
        .filter(|b| b.promise == Promise::UrgentEmailWithinFiveMinutes)
        .collect();
    assert!(!broken.is_empty(), "the stalled outbox went unnoticed");
    assert!(broken[0]
        .to_string()
        .contains("urgent concern's emails leave the outbox within 5 minutes"));
    assert!(outcome
        .broken
        .iter()
        .all(|b| b.promise == Promise::UrgentEmailWithinFiveMinutes));
}

#[test]
fn the_command_prints_the_report_and_refuses_bad_arguments() {
    let bin = env!("CARGO_BIN_EXE_checkin");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(bin)
        .args([
            "simulate",
            "--patients",
            "15",
            "--students",
            "3",
            "--weeks",
            "2",
        ])
        .arg("--out")
        .arg(dir.path())
        .env_remove("CHECKIN_DATABASE_URL")
        .output()
        .expect("run checkin simulate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("# Simulation: 15 patients, 3 students, 2 weeks"));
    assert!(dir.path().join("simulation.db").exists());
    assert!(
        dir.path()
            .join("mail")
            .read_dir()
            .expect("mail folder")
            .count()
            > 0
    );

    // A second run into the same folder would not be a fresh database.
    let again = Command::new(bin)
        .args(["simulate", "--patients", "15", "--students", "3"])
        .arg("--out")
        .arg(dir.path())
        .output()
        .expect("run checkin simulate");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("fresh database"));

    for (flag, value, expect) in [
        ("--skip-rate", "1.5", "--skip-rate must be between 0 and 1"),
        ("--weeks", "0", "--weeks must be 1 to 52"),
        (
            "--patients",
            "0",
            "--patients and --students must each be at least 1",
        ),
    ] {
        let bad = Command::new(bin)
            .args(["simulate", flag, value])
            .output()
            .expect("run checkin simulate");
        assert!(!bad.status.success());
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert!(stderr.contains(expect), "{flag} {value}: {stderr}");
    }
}
