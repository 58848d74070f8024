//! `checkin import`: patients and students from the programme spreadsheet,
//! saved as CSV. The column layouts are in docs/import.md.
//!
//! Every row is checked before anything is written, by the same rules as the
//! enrolment form (`enrolment::read`) and the admin's account form. One bad
//! row and nothing is written; every problem is reported with the line the
//! spreadsheet shows (the header is line 1). A good file is written in one
//! transaction, which checks for duplicates again, so an import is all or
//! nothing even if the database changed between the check and the write.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::audit::{self, AuditEntry};
use crate::config::Settings;
use crate::db::calls::NewAssignment;
use crate::db::schema::{assignments, user_roles, users};
use crate::db::{patients, Db, DbConn};
use crate::domain::language::Language;
use crate::domain::people::{Email, PersonName};
use crate::domain::{schedule, Role};
use crate::enrolment::{self, EnrolmentInput};
use crate::error::AppError;
use crate::mail;
use crate::web::input::Fields;

/// A running programme's patients were enrolled over months, so the import
/// accepts enrolment days up to a year back (the form: 30 days).
pub const ENROLLED_ON_MAX_DAYS_BACK: i64 = 365;

/// A student's capacity when the file leaves it blank.
pub const DEFAULT_CAPACITY: i32 = 4;

/// What the audit log shows as the import's request and address.
const IMPORT_REQUEST_ID: &str = "import";
const IMPORT_ADDRESS: &str = "command line";

/// One column of a file layout; `required` columns must be in the header.
pub struct Column {
    pub name: &'static str,
    pub required: bool,
}

const fn column(name: &'static str, required: bool) -> Column {
    Column { name, required }
}

pub const PATIENT_COLUMNS: &[Column] = &[
    column("given_name", true),
    column("family_name", true),
    column("phone", true),
    column("preferred_language", true),
    column("interpreter_needed", false),
    column("best_times", false),
    column("contact_mode", false),
    column("enrolment_reasons", true),
    column("enrolment_reason_other", false),
    column("interest_confirmed", true),
    column("cadence", false),
    column("enrolled_on", true),
    column("date_of_birth", false),
    column("clinic_record_number", false),
    column("physician_email", true),
    column("student_email", false),
];

pub const STUDENT_COLUMNS: &[Column] = &[
    column("email", true),
    column("given_name", true),
    column("family_name", true),
    column("languages", true),
    column("capacity", false),
    column("roles", false),
];

/// A problem with one cell, or with the header (line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub field: String,
    pub message: String,
}

impl RowError {
    fn new(line: u64, field: &str, message: impl Into<String>) -> Self {
        RowError {
            line,
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, {}: {}", self.line, self.field, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be read, or is not CSV text.
    #[error("{}: {problem}", .path.display())]
    File { path: PathBuf, problem: String },
    /// The header or some rows break the rules; nothing was written.
    #[error("{} problem(s) in the file; nothing was imported", .0.len())]
    Rows(Vec<RowError>),
    /// The database failed; the transaction rolled back.
    #[error("nothing was imported: {}", describe(.0))]
    Database(#[from] AppError),
}

/// The operator at the command line may see what a web user may not.
fn describe(e: &AppError) -> String {
    match e {
        AppError::Internal(detail) => detail.clone(),
        other => other.to_string(),
    }
}

/// What an import created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportReport {
    Patients { created: usize, paired: usize },
    Students { created: usize },
}

impl ImportReport {
    pub fn created(&self) -> usize {
        match self {
            ImportReport::Patients { created, .. } | ImportReport::Students { created } => *created,
        }
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        match self {
            ImportReport::Patients { created, paired } => write!(
                f,
                "imported {created} patient{} ({paired} paired with a student)",
                plural(*created)
            ),
            ImportReport::Students { created } => write!(
                f,
                "imported {created} student{s} ({created} set-up email{s} queued)",
                s = plural(*created)
            ),
        }
    }
}

/// An account named in a file.
struct Account {
    id: i64,
    disabled: bool,
    roles: Vec<Role>,
}

/// The accounts with these emails, looked up once per file (in chunks, to
/// stay under SQLite's limit on bound values).
fn accounts_by_email(
    conn: &mut DbConn,
    emails: &BTreeSet<String>,
) -> QueryResult<HashMap<String, Account>> {
    let emails: Vec<&str> = emails.iter().map(String::as_str).collect();
    let mut found = HashMap::new();
    for chunk in emails.chunks(500) {
        let rows: Vec<(i64, String, Option<NaiveDateTime>)> = users::table
            .filter(users::email.eq_any(chunk))
            .select((users::id, users::email, users::disabled_at))
            .load(conn)?;
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let roles: Vec<(i64, String)> = user_roles::table
            .filter(user_roles::user_id.eq_any(&ids))
            .select((user_roles::user_id, user_roles::role))
            .load(conn)?;
        for (id, email, disabled_at) in rows {
            let roles = roles
                .iter()
                .filter(|(user, _)| *user == id)
                .filter_map(|(_, role)| role.parse().ok())
                .collect();
            let account = Account {
                id,
                disabled: disabled_at.is_some(),
                roles,
            };
            found.insert(email, account);
        }
    }
    Ok(found)
}

/// The account an email cell names, if the cell is not blank; it must hold
/// `role` and, if `enabled`, not be disabled.
fn named_account(
    accounts: &HashMap<String, Account>,
    cell: &str,
    role: Role,
    enabled: bool,
) -> Result<Option<i64>, String> {
    if cell.trim().is_empty() {
        return Ok(None);
    }
    let email = Email::parse(cell).map_err(|e| e.to_string())?;
    match accounts.get(email.as_str()) {
        None => Err(format!("no account has the email {email}; create it first")),
        Some(a) if !a.roles.contains(&role) => {
            Err(format!("the account {email} does not have the {role} role"))
        }
        Some(a) if enabled && a.disabled => Err(format!("the account {email} is disabled")),
        Some(a) => Ok(Some(a.id)),
    }
}

fn emails_in(sheet: &Sheet, columns: &[&str]) -> BTreeSet<String> {
    sheet
        .rows
        .iter()
        .flat_map(|row| columns.iter().map(|c| row.get(c)))
        .filter_map(|cell| Email::parse(cell).ok())
        .map(String::from)
        .collect()
}

fn import_entry(action: &'static str, record_type: &'static str) -> AuditEntry {
    AuditEntry {
        user_id: None,
        action,
        record_type,
        request_id: IMPORT_REQUEST_ID.to_string(),
        address: IMPORT_ADDRESS.to_string(),
        ..AuditEntry::default()
    }
}

mod patient_file;
mod sheet;
mod student_file;

pub use patient_file::import_patients;
use sheet::Sheet;
pub use student_file::import_students;

#[cfg(test)]
mod tests {
    use super::patient_file::*;
    use super::sheet::*;
    use super::*;

    #[test]
    fn headers_are_read_the_way_people_write_them() {
        assert_eq!(column_name("\u{feff} Given Name "), "given_name");
        assert_eq!(column_name("PHYSICIAN-EMAIL"), "physician_email");
    }

    #[test]
    fn lines_are_counted_as_the_spreadsheet_numbers_rows() {
        let text = b"h1,h2\r\na,\"x\r\ny\"\r\nb,c\r\n\r\nd,e\n\ne2,f\n";
        let path = std::env::temp_dir().join(format!("checkin-lines-{}.csv", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let layout = [column("h1", true), column("h2", true)];
        let sheet = read_sheet(&path, &layout, "test");
        let _ = std::fs::remove_file(&path);
        let lines: Vec<u64> = sheet.unwrap().rows.iter().map(|r| r.line).collect();
        // "x\ny" is one row; the blank lines are rows 4 and 6.
        assert_eq!(lines, vec![2, 3, 5, 7]);
    }

    /// Another process enrols one of the file's patients after the check:
    /// the write finds it, names the line, and writes nothing.
    #[test]
    fn a_patient_enrolled_after_the_check_fails_the_whole_import() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("checkin.db").display());
        let db = Db::connect(&url, 2).unwrap();
        db.migrate().unwrap();
        let physician = crate::cli::CreateUser {
            email: "physician1@example.org".into(),
            name: "Ana Physician".into(),
            roles: vec![Role::Physician],
            languages: "en".into(),
            capacity: 0,
        };
        let now: DateTime<Utc> = "2026-11-29T15:00:00Z".parse().unwrap();
        let physician_id =
            crate::cli::create_user(&db, &physician, "a long test password", now).unwrap();
        let path = dir.path().join("patients.csv");
        let row = |n: u32| {
            format!(
                "Rosa,Paciente{n},(215) 555-010{n},es,mental_health,yes,2026-11-20,\
                 physician1@example.org\n"
            )
        };
        let header = "given_name,family_name,phone,preferred_language,enrolment_reasons,\
                      interest_confirmed,enrolled_on,physician_email\n";
        std::fs::write(&path, format!("{header}{}{}{}", row(1), row(2), row(3))).unwrap();
        let sheet = read_sheet(&path, PATIENT_COLUMNS, "patients").unwrap();
        let today = now.date_naive();
        let (rows, problems) = db
            .read_blocking(|c| check_patients(c, &sheet, today))
            .unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        db.write_blocking(|c| {
            let entry = import_entry("patient.enrolled", "patient");
            enrolment::enrol(c, &rows[1].input, physician_id, 8, entry, now.naive_utc())
        })
        .unwrap();
        match write_patients(&db, &rows, 8, now.naive_utc()) {
            Err(ImportError::Rows(found)) => {
                assert_eq!((found[0].line, found.len()), (3, 1), "{found:?}")
            }
            other => panic!("{other:?}"),
        }
        let count = db
            .read_blocking(|c| {
                Ok(crate::db::schema::patients::table
                    .count()
                    .get_result::<i64>(c)?)
            })
            .unwrap();
        assert_eq!(count, 1);
    }

    #[test]
    fn spreadsheet_values_read_as_form_values() {
        assert_eq!(tidy_patient_cell("interpreter_needed", " TRUE "), "true");
        assert_eq!(
            tidy_patient_cell("enrolment_reasons", "Mental health, social isolation"),
            "mental_health,social_isolation"
        );
        assert_eq!(tidy_patient_cell("best_times", "Mornings"), "Mornings");
    }
}
