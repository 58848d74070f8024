//! `checkin import`: the spreadsheet's students and patients come in whole,
//! or not at all with every bad line named.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::{Duration, NaiveDate};

use checkin::domain::Role;
use checkin::import::{import_patients, import_students, ImportError, ImportReport, RowError};
use common::{test_start, TestApp};

const PATIENT_HEADER: &str = "given_name,family_name,phone,preferred_language,interpreter_needed,\
best_times,contact_mode,enrolment_reasons,enrolment_reason_other,interest_confirmed,cadence,\
enrolled_on,date_of_birth,clinic_record_number,physician_email,student_email";

const PHYSICIAN: &str = "physician1@example.org";

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/samples")
}

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write the CSV file");
    path
}

/// One patient row in the header's column order; line `i + 2`.
fn patient_row(i: usize, enrolled_on: NaiveDate) -> String {
    let student = match i % 4 {
        0 => format!("student{}@example.org", (i / 4) % 4),
        _ => String::new(),
    };
    format!(
        "{given},Paciente{i:04},(215) 555-01{phone:02},es,no,\"Mornings, before 11\",phone,\
         \"social_isolation, covid_worries\",,yes,weekly,{enrolled_on},1950-01-01,MRN-{i},{PHYSICIAN},{student}",
        given = ["Rosa", "Ernesto", "Gloria", "Inés", "Manuel"][i % 5],
        phone = i % 100,
    )
}

/// A patients file of `n` good rows, a quarter paired with four students.
fn patients_csv(n: usize, today: NaiveDate) -> Vec<String> {
    (0..n)
        .map(|i| patient_row(i, today - Duration::days(2 + (i % 60) as i64)))
        .collect()
}

fn join(rows: &[String]) -> Vec<u8> {
    format!("{PATIENT_HEADER}\n{}\n", rows.join("\n")).into_bytes()
}

fn today() -> NaiveDate {
    test_start().date_naive()
}

/// The import's library functions, run off the async workers.
async fn import(app: &TestApp, what: &str, path: &Path) -> Result<ImportReport, ImportError> {
    let (db, settings, path, what) = (
        app.state.db.clone(),
        app.state.settings.clone(),
        path.to_path_buf(),
        what.to_string(),
    );
    actix_web::web::block(move || match what.as_str() {
        "patients" => import_patients(&db, &settings, &path, test_start()),
        _ => import_students(&db, &settings, &path, test_start()),
    })
    .await
    .expect("blocking task")
}

fn problems(result: Result<ImportReport, ImportError>) -> Vec<RowError> {
    match result {
        Err(ImportError::Rows(problems)) => problems,
        other => panic!("expected row problems, got {other:?}"),
    }
}

fn has(problems: &[RowError], line: u64, field: &str, words: &str) -> bool {
    problems
        .iter()
        .any(|p| p.line == line && p.field == field && p.message.contains(words))
}

/// The physician and the four students the generated files name; returns
/// the physician's id.
async fn staff(app: &TestApp) -> i64 {
    let physician = app.create_user(PHYSICIAN, &[Role::Physician], "en").await;
    for s in 0..4 {
        app.create_user(
            &format!("student{s}@example.org"),
            &[Role::Student],
            "es,en",
        )
        .await;
    }
    physician
}

async fn sample_files_import(app: TestApp) {
    app.create_user(PHYSICIAN, &[Role::Physician], "en").await;
    let students = import(&app, "students", &samples().join("students.csv")).await;
    assert_eq!(
        students.expect("students import"),
        ImportReport::Students { created: 5 }
    );
    let patients = import(&app, "patients", &samples().join("patients.csv")).await;
    assert_eq!(
        patients.expect("patients import"),
        ImportReport::Patients {
            created: 8,
            paired: 5
        }
    );
    assert_eq!(app.count("patients WHERE status = 'active'").await, 8);
    assert_eq!(
        app.count("assignments WHERE ended_at IS NULL AND note = 'imported'")
            .await,
        5
    );
    assert_eq!(
        app.count("audit_log WHERE action = 'patient.enrolled' AND request_id = 'import'")
            .await,
        8
    );
    assert_eq!(
        app.count("audit_log WHERE action = 'assignment.started'")
            .await,
        5
    );
    // "Recently widowed" is the other reason; accents survive.
    assert_eq!(
        app.count(
            "patients WHERE given_name = 'Inés' AND enrolment_reason_other = 'Recently widowed'"
        )
        .await,
        1
    );
    assert_eq!(app.count("patients WHERE phone = '+12155550101'").await, 1);
}

async fn students_import_makes_accounts_with_set_up_links(app: TestApp) {
    let report = import(&app, "students", &samples().join("students.csv")).await;
    assert_eq!(report.expect("students import").created(), 5);
    let lucia = "users u WHERE u.email = 'lucia.reyes@example.org' AND u.password_hash IS NULL \
                 AND u.capacity = 3 AND u.given_name = 'Lucía'";
    assert_eq!(app.count(lucia).await, 1);
    let roles =
        "user_roles r JOIN users u ON u.id = r.user_id WHERE u.email = 'lucia.reyes@example.org'";
    assert_eq!(
        app.count(&format!("{roles} AND r.role IN ('student', 'leader')"))
            .await,
        2
    );
    let languages =
        "user_languages l JOIN users u ON u.id = l.user_id WHERE u.email = 'tomas.herrera@example.org'";
    assert_eq!(app.count(languages).await, 3);
    // A blank roles cell is a student; a blank capacity is 4.
    assert_eq!(
        app.count("user_roles r JOIN users u ON u.id = r.user_id WHERE u.email = 'marisol.vega@example.org' AND r.role = 'student'")
            .await,
        1
    );
    assert_eq!(
        app.count("users WHERE email = 'priya.raman@example.org' AND capacity = 4")
            .await,
        1
    );
    assert_eq!(
        app.count("one_time_links WHERE purpose = 'account_setup'")
            .await,
        5
    );
    assert_eq!(
        app.count("outbox WHERE template = 'account_setup' AND status = 'pending' AND to_address LIKE '%@example.org'")
            .await,
        5
    );
    assert_eq!(
        app.count("audit_log WHERE action = 'user.imported' AND user_id IS NULL")
            .await,
        5
    );

    // The same file again: every email is taken, nothing more is written.
    let again = problems(import(&app, "students", &samples().join("students.csv")).await);
    assert_eq!(again.len(), 5, "{again:?}");
    assert!(has(&again, 2, "email", "already exists"), "{again:?}");
    assert_eq!(app.count("users").await, 5);
    assert_eq!(app.count("outbox").await, 5);
}

async fn student_rows_are_all_checked(app: TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "students.csv",
        "Email,Given Name,Family Name,Languages,Capacity,Roles\n\
         ana@example.org,Ana,Ruiz,es,3,student\n\
         ANA@example.org,Ana,Ruiz,es,3,student\n\
         boss@example.org,Bo,Ss,en,2,admin\n\
         nolang@example.org,No,Lang,,2,\n\
         cap@example.org,Cap,Acity,en,500,\n\
         not-an-email,,Ruiz,xx,1,\n"
            .as_bytes(),
    );
    let found = problems(import(&app, "students", &file).await);
    assert!(has(&found, 3, "email", "line 2"), "{found:?}");
    assert!(has(&found, 4, "roles", "student and leader"), "{found:?}");
    assert!(has(&found, 5, "languages", "is required"), "{found:?}");
    assert!(has(&found, 6, "capacity", "between 0 and 100"), "{found:?}");
    for field in ["email", "given_name", "languages"] {
        assert!(
            found.iter().any(|p| p.line == 7 && p.field == field),
            "{field}: {found:?}"
        );
    }
    assert!(!found.iter().any(|p| p.line == 2), "{found:?}");
    assert_eq!(app.count("users").await, 0);
}

async fn a_thousand_rows_import_in_one_go(app: TestApp) {
    staff(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "patients.csv",
        &join(&patients_csv(1000, today())),
    );
    let started = Instant::now();
    let report = import(&app, "patients", &file).await.expect("import");
    eprintln!(
        "{}: 1,000 patients imported in {:?}",
        app.backend,
        started.elapsed()
    );
    assert_eq!(
        report,
        ImportReport::Patients {
            created: 1000,
            paired: 250
        }
    );
    assert_eq!(app.count("patients").await, 1000);
    assert_eq!(app.count("enrolment_reasons").await, 2000);
    assert_eq!(app.count("assignments WHERE ended_at IS NULL").await, 250);
    assert_eq!(
        app.count("audit_log WHERE action = 'patient.enrolled'")
            .await,
        1000
    );
    // The audit chain is whole after a thousand rows in one transaction.
    let db = app.state.db.clone();
    let verified =
        actix_web::web::block(move || db.read_blocking(|c| Ok(checkin::audit::verify(c)?)))
            .await
            .unwrap()
            .unwrap();
    assert!(verified.is_ok(), "{verified:?}");
}

async fn one_bad_row_in_a_thousand_writes_nothing(app: TestApp) {
    staff(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let mut rows = patients_csv(1000, today());
    rows[535] = rows[535].replace("(215) 555-0135", "555");
    let file = write(dir.path(), "patients.csv", &join(&rows));
    let found = problems(import(&app, "patients", &file).await);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].line, found[0].field.as_str()),
        (537, "phone"),
        "{found:?}"
    );
    assert_eq!(
        found[0].to_string().split(':').next(),
        Some("line 537, phone")
    );
    assert_eq!(app.count("patients").await, 0);
    assert_eq!(app.count("assignments").await, 0);
    assert_eq!(
        app.count("audit_log WHERE action = 'patient.enrolled'")
            .await,
        0
    );
}

async fn every_bad_row_is_reported(app: TestApp) {
    staff(&app).await;
    app.create_user("gone@example.org", &[Role::Student], "es")
        .await;
    app.sql("UPDATE users SET disabled_at = created_at WHERE email = 'gone@example.org'")
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut rows = patients_csv(12, today());
    rows[0] = rows[0].replace(",es,", ",xx,");
    rows[1] = rows[1].replace(&(today() - Duration::days(3)).to_string(), "2027-01-05");
    rows[2] = rows[2].replace(",yes,weekly,", ",no,weekly,");
    rows[3] = rows[3].replacen("Inés", "", 1);
    rows[4] = rows[4].replace(PHYSICIAN, "nobody@example.org");
    rows[5] = rows[5].replace(PHYSICIAN, "student0@example.org");
    rows[8] = rows[8].replace("student2@example.org", "gone@example.org");
    rows[9] = rows[9].replace("\"social_isolation, covid_worries\"", "other");
    rows[10] = rows[10].replace(&(today() - Duration::days(12)).to_string(), "2024-01-01");
    rows[11] = rows[11]
        .replace("weekly", "Biweekly")
        .replace(",no,", ",YES,");
    let file = write(dir.path(), "patients.csv", &join(&rows));
    let found = problems(import(&app, "patients", &file).await);
    let expected = [
        (2, "preferred_language", ""),
        (3, "enrolled_on", "future"),
        (4, "interest_confirmed", "must be confirmed"),
        (5, "given_name", "required"),
        (6, "physician_email", "no account"),
        (7, "physician_email", "physician role"),
        (10, "student_email", "disabled"),
        (11, "enrolment_reason_other", "other reason"),
        (12, "enrolled_on", "cannot be before"),
    ];
    for (line, field, words) in expected {
        assert!(
            has(&found, line, field, words),
            "line {line} {field}: {found:?}"
        );
    }
    // Spreadsheet spellings (Biweekly, YES) are fine.
    assert_eq!(found.len(), expected.len(), "{found:?}");
    assert_eq!(app.count("patients").await, 0);
}

async fn duplicates_in_the_file_and_the_database(app: TestApp) {
    let physician = staff(&app).await;
    let existing = app.add_patient("Ana", "López", physician, None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut rows = patients_csv(6, today());
    // Line 5 is line 2's patient, names in other case; line 7 reuses line 3's record number.
    rows[3] = rows[0]
        .replace("Paciente0000", "PACIENTE0000")
        .replace("MRN-0", "MRN-X");
    rows[5] = rows[5].replace("MRN-5", "MRN-1");
    // Line 4 is the patient already enrolled (phone +12155550123).
    rows[2] = rows[2]
        .replace("Gloria,Paciente0002", "ana,lópez")
        .replace("(215) 555-0102", "215-555-0123");
    let file = write(dir.path(), "patients.csv", &join(&rows));
    let found = problems(import(&app, "patients", &file).await);
    assert!(has(&found, 5, "phone", "line 2"), "{found:?}");
    assert!(
        has(&found, 7, "clinic_record_number", "line 3"),
        "{found:?}"
    );
    assert!(
        has(&found, 4, "phone", &format!("patient {existing}")),
        "{found:?}"
    );
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(app.count("patients").await, 1);
}

async fn the_header_is_checked_first(app: TestApp) {
    staff(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let header = PATIENT_HEADER
        .replace("phone,", "telephone,")
        .replace(",student_email", ",Student Email,notes");
    let bad_row = patient_row(0, today()).replace(",es,", ",xx,");
    let file = write(
        dir.path(),
        "patients.csv",
        format!("{header}\n{bad_row},x\n").as_bytes(),
    );
    let found = problems(import(&app, "patients", &file).await);
    assert!(has(&found, 1, "telephone", "not a column"), "{found:?}");
    assert!(has(&found, 1, "notes", "not a column"), "{found:?}");
    assert!(has(&found, 1, "phone", "required and missing"), "{found:?}");
    assert_eq!(
        found.len(),
        3,
        "rows are read only once the header is right: {found:?}"
    );
    assert_eq!(app.count("patients").await, 0);
}

async fn files_as_spreadsheets_save_them(app: TestApp) {
    staff(&app).await;
    let dir = tempfile::tempdir().unwrap();
    // A byte-order mark, CRLF line ends, a cell with a line break (one
    // spreadsheet row over two lines of the file), then a bad phone.
    let mut rows = patients_csv(3, today());
    rows[0] = rows[0].replace("\"Mornings, before 11\"", "\"Mornings,\r\nnot Fridays\"");
    rows[1] = rows[1].replace("(215) 555-0101", "12");
    let mut content = b"\xEF\xBB\xBF".to_vec();
    content.extend(format!("{PATIENT_HEADER}\r\n{}\r\n,,,,\r\n", rows.join("\r\n")).as_bytes());
    let file = write(dir.path(), "patients.csv", &content);
    let found = problems(import(&app, "patients", &file).await);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(has(&found, 3, "phone", ""), "{found:?}");

    rows[1] = patient_row(1, today());
    let mut content = b"\xEF\xBB\xBF".to_vec();
    content.extend(format!("{PATIENT_HEADER}\r\n{}\r\n,,,,\r\n", rows.join("\r\n")).as_bytes());
    let file = write(dir.path(), "patients.csv", &content);
    let report = import(&app, "patients", &file).await.expect("import");
    assert_eq!(report.created(), 3, "the blank row is skipped");
    assert_eq!(
        app.count("patients WHERE best_times LIKE '%Fridays'").await,
        1
    );

    let latin1 = write(dir.path(), "latin1.csv", b"given_name\nIn\xe9s\n");
    match import(&app, "patients", &latin1).await {
        Err(e @ ImportError::File { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains("latin1.csv")
                    && message.contains("line 2")
                    && message.contains("UTF-8"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    match import(&app, "patients", &dir.path().join("missing.csv")).await {
        Err(e @ ImportError::File { .. }) => assert!(e.to_string().contains("missing.csv"), "{e}"),
        other => panic!("{other:?}"),
    }
}

on_both_backends!(
    sample_files_import,
    students_import_makes_accounts_with_set_up_links,
    student_rows_are_all_checked,
    a_thousand_rows_import_in_one_go,
    one_bad_row_in_a_thousand_writes_nothing,
    every_bad_row_is_reported,
    duplicates_in_the_file_and_the_database,
    the_header_is_checked_first,
    files_as_spreadsheets_save_them,
);

/// The operator's view: exit codes, the bad line on standard error, the
/// count on standard output.
#[test]
fn the_binary_names_the_bad_line_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("data/checkin.db").display());
    let checkin = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_checkin"));
        cmd.current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CHECKIN_DATABASE_URL", &url)
            .args(args);
        cmd
    };
    let db = checkin::db::Db::connect(&url, 2).unwrap();
    db.migrate().unwrap();
    for (email, role) in [
        (PHYSICIAN, Role::Physician),
        ("student0@example.org", Role::Student),
        ("student1@example.org", Role::Student),
        ("student2@example.org", Role::Student),
        ("student3@example.org", Role::Student),
    ] {
        let args = checkin::cli::CreateUser {
            email: email.into(),
            name: "Test Person".into(),
            roles: vec![role],
            languages: "es,en".into(),
            capacity: 4,
        };
        checkin::cli::create_user(&db, &args, common::PASSWORD, chrono::Utc::now()).unwrap();
    }
    // The binary's clock is the real one.
    let today = chrono::Utc::now().date_naive();
    let mut rows = patients_csv(1000, today);
    rows[535] = rows[535].replace("(215) 555-0135", "555");
    rows[799] = rows[799].replace(",weekly,", ",fortnightly,");
    write(dir.path(), "bad.csv", &join(&rows));
    let out = checkin(&["import", "patients", "bad.csv"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines[0].starts_with("line 537, phone: "), "{stderr}");
    assert!(lines[1].starts_with("line 801, cadence: "), "{stderr}");
    assert!(
        lines[2].contains("2 problems in bad.csv; nothing was imported"),
        "{stderr}"
    );
    assert_eq!(lines.len(), 3, "{stderr}");

    let out = checkin(&["import", "patients", "missing.csv"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("missing.csv") && stderr.contains("cannot be read"),
        "{stderr}"
    );

    write(dir.path(), "good.csv", &join(&patients_csv(1000, today)));
    let out = checkin(&["import", "patients", "good.csv"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "imported 1000 patients (250 paired with a student)"
    );
}
