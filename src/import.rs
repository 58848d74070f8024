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

/// One data row: its spreadsheet line and its cells by column name.
struct Row {
    line: u64,
    cells: Vec<(String, String)>,
}

impl Row {
    fn get(&self, column: &str) -> &str {
        self.cells
            .iter()
            .find(|(name, _)| name == column)
            .map_or("", |(_, value)| value.as_str())
    }
}

struct Sheet {
    columns: Vec<String>,
    rows: Vec<Row>,
    /// Rows that could not be split into cells.
    problems: Vec<RowError>,
}

impl Sheet {
    /// A row's field problems as `RowError`s, in the file's column order.
    fn note(&self, problems: &mut Vec<RowError>, line: u64, fields: &Fields) {
        let mut found: Vec<(usize, RowError)> = fields
            .errors()
            .iter()
            .flat_map(|(field, messages)| {
                let at = self.columns.iter().position(|c| c == field);
                messages
                    .iter()
                    .map(move |m| (at.unwrap_or(usize::MAX), RowError::new(line, field, m)))
            })
            .collect();
        found.sort_by_key(|(at, _)| *at);
        problems.extend(found.into_iter().map(|(_, e)| e));
    }
}

/// "Given Name " and "given-name" both name `given_name`.
fn column_name(header: &str) -> String {
    header
        .trim_start_matches('\u{feff}')
        .trim()
        .to_lowercase()
        .replace([' ', '-'], "_")
}

fn read_sheet(path: &Path, layout: &[Column], what: &str) -> Result<Sheet, ImportError> {
    let file_problem = |problem: String| ImportError::File {
        path: path.to_path_buf(),
        problem,
    };
    let bytes = std::fs::read(path).map_err(|e| file_problem(format!("cannot be read: {e}")))?;
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    if let Err(e) = std::str::from_utf8(text) {
        let line = text[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        return Err(file_problem(format!(
            "line {line} is not UTF-8 text; save the file from the spreadsheet as \"CSV UTF-8\""
        )));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text);
    let mut records = reader.records();
    let header = match records.next() {
        Some(header) => header.map_err(|e| file_problem(e.to_string()))?,
        None => {
            return Err(file_problem(
                "is empty: the first line must name the columns".into(),
            ))
        }
    };
    let columns: Vec<String> = header.iter().map(column_name).collect();
    check_header(&columns, layout, what)?;
    let (mut rows, mut problems) = (Vec::new(), Vec::new());
    let mut lines = LineCounter::new(text);
    // A cell with line breaks spans several lines of the file but is one
    // spreadsheet row, and the spreadsheet's row number is what people see.
    let breaks_in = |record: &csv::StringRecord| -> u64 {
        record.iter().map(|c| c.matches('\n').count() as u64).sum()
    };
    let mut extra_lines = breaks_in(&header);
    for record in records {
        let record = record.map_err(|e| file_problem(e.to_string()))?;
        let line = lines.line_at(record.position().map_or(0, |p| p.byte() as usize)) - extra_lines;
        extra_lines += breaks_in(&record);
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let mut stray = record.iter().enumerate().filter(|(i, cell)| {
            !cell.trim().is_empty() && columns.get(*i).is_none_or(String::is_empty)
        });
        if let Some((i, _)) = stray.next() {
            let message = "has a value, but the header gives this column no name";
            problems.push(RowError::new(line, &format!("column {}", i + 1), message));
            continue;
        }
        let cells = columns
            .iter()
            .zip(record.iter().chain(std::iter::repeat("")))
            .filter(|(name, _)| !name.is_empty())
            .map(|(name, value)| (name.clone(), value.to_string()))
            .collect();
        rows.push(Row { line, cells });
    }
    if rows.is_empty() && problems.is_empty() {
        return Err(file_problem("has a header but no rows".into()));
    }
    Ok(Sheet {
        columns,
        rows,
        problems,
    })
}

/// The line of the file on which a record starts. The csv reader's own line
/// count lags after CRLF line ends, and its byte offset can point at the end
/// of the previous line, so the count is made here.
struct LineCounter<'a> {
    text: &'a [u8],
    counted_to: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a [u8]) -> Self {
        LineCounter {
            text,
            counted_to: 0,
            line: 1,
        }
    }

    /// `from` is the reader's offset for a record; records come in order.
    fn line_at(&mut self, from: usize) -> u64 {
        let from = from.clamp(self.counted_to, self.text.len());
        let skipped = self.text[from..]
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        let start = from + skipped;
        let breaks = self.text[self.counted_to..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line += breaks as u64;
        self.counted_to = start;
        self.line
    }
}

/// Unknown, repeated and missing columns, all reported before any row is read.
fn check_header(columns: &[String], layout: &[Column], what: &str) -> Result<(), ImportError> {
    let known: Vec<&str> = layout.iter().map(|c| c.name).collect();
    let mut problems = Vec::new();
    for (i, name) in columns.iter().enumerate() {
        if name.is_empty() {
            continue;
        }
        if !known.contains(&name.as_str()) {
            let message = format!(
                "is not a column of a {what} file; the columns are {}",
                known.join(", ")
            );
            problems.push(RowError::new(1, name, message));
        } else if columns[..i].contains(name) {
            problems.push(RowError::new(1, name, "appears twice in the header"));
        }
    }
    for required in layout.iter().filter(|c| c.required) {
        if !columns.iter().any(|c| c == required.name) {
            problems.push(RowError::new(
                1,
                required.name,
                "this column is required and missing",
            ));
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(ImportError::Rows(problems)),
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

/// A patient row that passed every check.
struct CheckedPatient {
    line: u64,
    input: EnrolmentInput,
    physician_id: i64,
    student_id: Option<i64>,
}

/// Spreadsheets write TRUE, Yes, Weekly and "Mental health": read them as
/// the form's values.
fn tidy_patient_cell(column: &str, value: &str) -> String {
    match column {
        "interpreter_needed" | "interest_confirmed" | "contact_mode" | "cadence" => {
            value.trim().to_lowercase()
        }
        "enrolment_reasons" => value
            .split(',')
            .map(|reason| reason.trim().to_lowercase().replace(' ', "_"))
            .collect::<Vec<_>>()
            .join(","),
        _ => value.to_string(),
    }
}

/// Imports every patient in the file, or none. `now` decides "today" (in
/// the programme's time zone) for the enrolment-day rules.
pub fn import_patients(
    db: &Db,
    settings: &Settings,
    path: &Path,
    now: DateTime<Utc>,
) -> Result<ImportReport, ImportError> {
    let sheet = read_sheet(path, PATIENT_COLUMNS, "patients")?;
    let today = schedule::local_date(now, settings.timezone);
    let (rows, problems) = db.read_blocking(|c| check_patients(c, &sheet, today))?;
    if !problems.is_empty() {
        return Err(ImportError::Rows(problems));
    }
    write_patients(db, &rows, settings.programme_weeks, now.naive_utc())
}

fn check_patients(
    conn: &mut DbConn,
    sheet: &Sheet,
    today: NaiveDate,
) -> Result<(Vec<CheckedPatient>, Vec<RowError>), AppError> {
    let earliest = today - Duration::days(ENROLLED_ON_MAX_DAYS_BACK);
    let accounts = accounts_by_email(
        conn,
        &emails_in(sheet, &["physician_email", "student_email"]),
    )?;
    let mut problems = sheet.problems.clone();
    let mut checked = Vec::new();
    let mut people: HashMap<(String, String, String), u64> = HashMap::new();
    let mut records: HashMap<String, u64> = HashMap::new();
    for row in &sheet.rows {
        let cells = row
            .cells
            .iter()
            .map(|(c, v)| (c.clone(), tidy_patient_cell(c, v)));
        let mut fields = Fields::from_pairs(cells);
        // The form's default (today) would give an imported patient the
        // wrong discharge point.
        if row.get("enrolled_on").trim().is_empty() {
            fields.error(
                "enrolled_on",
                "is required: the day the patient was enrolled",
            );
        }
        let input = enrolment::read(&mut fields, today, earliest);
        let physician = match named_account(
            &accounts,
            row.get("physician_email"),
            Role::Physician,
            false,
        ) {
            Ok(None) => Err("is required: the enrolling physician's account email".to_string()),
            Ok(Some(id)) => Ok(id),
            Err(message) => Err(message),
        }
        .map_err(|message| fields.error("physician_email", message))
        .ok();
        let student = named_account(&accounts, row.get("student_email"), Role::Student, true)
            .map_err(|message| fields.error("student_email", message))
            .unwrap_or_default();
        if let Some(input) = &input {
            let person = (
                input.phone.as_str().to_string(),
                input.given_name.as_str().to_lowercase(),
                input.family_name.as_str().to_lowercase(),
            );
            if let Some(first) = people.get(&person) {
                fields.error(
                    "phone",
                    format!("the same patient (phone and name) as line {first}"),
                );
            } else {
                people.insert(person, row.line);
            }
            if let Some(record) = &input.clinic_record_number {
                match records.get(record) {
                    Some(first) => {
                        fields.error("clinic_record_number", format!("also on line {first}"))
                    }
                    None => {
                        records.insert(record.clone(), row.line);
                    }
                }
            }
            if let Some(existing) = enrolment::find_duplicate(conn, input)? {
                let same_phone = patients::find(conn, existing)?
                    .is_some_and(|p| p.phone == input.phone.as_str());
                let (field, what) = match same_phone {
                    true => ("phone", "phone and name"),
                    false => ("clinic_record_number", "clinic record number"),
                };
                fields.error(
                    field,
                    format!("already enrolled: patient {existing} has the same {what}"),
                );
            }
        }
        sheet.note(&mut problems, row.line, &fields);
        if let (Some(input), Some(physician_id), false) = (input, physician, fields.has_errors()) {
            checked.push(CheckedPatient {
                line: row.line,
                input,
                physician_id,
                student_id: student,
            });
        }
    }
    Ok((checked, problems))
}

fn write_patients(
    db: &Db,
    rows: &[CheckedPatient],
    programme_weeks: u32,
    now: NaiveDateTime,
) -> Result<ImportReport, ImportError> {
    let mut clash = None;
    let written = db.write_blocking(|c| {
        let mut paired = 0;
        for row in rows {
            let entry = import_entry("patient.enrolled", "patient");
            let id = enrolment::enrol(c, &row.input, row.physician_id, programme_weeks, entry, now)
                .inspect_err(|e| {
                    if matches!(e, AppError::DuplicatePatient(_) | AppError::Conflict(_)) {
                        let message = format!(
                            "enrolled by someone else while the import ran ({}); \
                             nothing was imported",
                            describe(e)
                        );
                        clash = Some(RowError::new(row.line, "phone", message));
                    }
                })?;
            if let Some(student_id) = row.student_id {
                pair(c, id, student_id, row.physician_id, now)?;
                paired += 1;
            }
        }
        Ok(paired)
    });
    match (written, clash) {
        (Ok(paired), _) => Ok(ImportReport::Patients {
            created: rows.len(),
            paired,
        }),
        (Err(_), Some(clash)) => Err(ImportError::Rows(vec![clash])),
        (Err(e), None) => Err(ImportError::Database(e)),
    }
}

/// The file's pairing, as if the enrolling physician had made it.
fn pair(
    c: &mut DbConn,
    patient_id: i64,
    student_id: i64,
    physician_id: i64,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let assignment = NewAssignment {
        id: None,
        patient_id,
        student_id,
        started_at: now,
        started_by: physician_id,
        note: "imported",
        ended_at: None,
        ended_by: None,
        handoff_note: None,
    };
    let id = crate::insert_returning_id!(c, assignments::table, assignment, assignments::id)?;
    let entry = AuditEntry {
        record_id: Some(id),
        patient_id: Some(patient_id),
        ..import_entry("assignment.started", "assignment")
    };
    audit::record(c, &entry, now)?;
    Ok(())
}

/// A student row that passed every check.
struct CheckedStudent {
    line: u64,
    email: Email,
    given_name: PersonName,
    family_name: PersonName,
    languages: Vec<String>,
    capacity: i32,
    roles: Vec<Role>,
}

/// Imports every student in the file, or none. Each account has no password:
/// a one-time set-up link is emailed (through the outbox), as when an admin
/// creates an account.
pub fn import_students(
    db: &Db,
    settings: &Settings,
    path: &Path,
    now: DateTime<Utc>,
) -> Result<ImportReport, ImportError> {
    let sheet = read_sheet(path, STUDENT_COLUMNS, "students")?;
    let (rows, problems) = db.read_blocking(|c| check_students(c, &sheet))?;
    if !problems.is_empty() {
        return Err(ImportError::Rows(problems));
    }
    write_students(db, &rows, &settings.base_url, now)
}

fn check_students(
    conn: &mut DbConn,
    sheet: &Sheet,
) -> Result<(Vec<CheckedStudent>, Vec<RowError>), AppError> {
    let existing = accounts_by_email(conn, &emails_in(sheet, &["email"]))?;
    let mut problems = sheet.problems.clone();
    let mut checked = Vec::new();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for row in &sheet.rows {
        let cells = row.cells.iter().map(|(c, v)| match c.as_str() {
            "roles" => (c.clone(), v.to_lowercase()),
            _ => (c.clone(), v.clone()),
        });
        let mut fields = Fields::from_pairs(cells);
        let email = fields.parsed("email", true, Email::parse);
        let given_name = fields.parsed("given_name", true, PersonName::parse);
        let family_name = fields.parsed("family_name", true, PersonName::parse);
        let languages = fields.list("languages", Language::parse);
        if languages.as_ref().is_some_and(Vec::is_empty) {
            fields.error("languages", "is required: ISO 639-1 codes such as es, en");
        }
        let capacity = fields.integer("capacity", false, 0..=100);
        let mut roles = fields.list("roles", |s| s.parse::<Role>());
        match &mut roles {
            Some(r) if r.is_empty() => r.push(Role::Student),
            Some(r) if r.iter().any(|r| !matches!(r, Role::Student | Role::Leader)) => fields
                .error(
                    "roles",
                    "a students file gives only the roles student and leader; \
                 create physicians and admins with `checkin user create` or the admin page",
                ),
            _ => {}
        }
        if let Some(email) = &email {
            if existing.contains_key(email.as_str()) {
                fields.error("email", "an account with this email already exists");
            } else if let Some(first) = first_line.get(email.as_str()) {
                fields.error("email", format!("also on line {first}"));
            } else {
                first_line.insert(email.to_string(), row.line);
            }
        }
        sheet.note(&mut problems, row.line, &fields);
        if fields.has_errors() {
            continue;
        }
        if let (Some(email), Some(given_name), Some(family_name), Some(languages), Some(roles)) =
            (email, given_name, family_name, languages, roles)
        {
            checked.push(CheckedStudent {
                line: row.line,
                email,
                given_name,
                family_name,
                languages: languages.into_iter().map(String::from).collect(),
                capacity: capacity.map_or(DEFAULT_CAPACITY, |c| c as i32),
                roles,
            });
        }
    }
    Ok((checked, problems))
}

fn write_students(
    db: &Db,
    rows: &[CheckedStudent],
    base_url: &str,
    now: DateTime<Utc>,
) -> Result<ImportReport, ImportError> {
    let at = now.naive_utc();
    let mut clash = None;
    let written = db.write_blocking(|c| {
        for row in rows {
            let new = crate::db::users::NewUser {
                id: None,
                email: row.email.as_str(),
                given_name: row.given_name.as_str(),
                family_name: row.family_name.as_str(),
                password_hash: None,
                capacity: row.capacity,
                created_at: at,
                updated_at: at,
            };
            let id = crate::db::users::create(c, &new, &row.roles, &row.languages)
                .map_err(AppError::from)
                .inspect_err(|e| {
                    if matches!(e, AppError::Conflict(_)) {
                        let message = "an account with this email was made while the import ran; \
                                       nothing was imported";
                        clash = Some(RowError::new(row.line, "email", message));
                    }
                })?;
            let purpose = "account_setup";
            let (url, link_id) =
                crate::web::auth::make_link_on(c, base_url, purpose, Some(id), now)?;
            let email = mail::account_link_email(
                id,
                row.email.as_str(),
                row.given_name.as_str(),
                purpose,
                &url,
                link_id,
            )?;
            mail::enqueue(c, &email, at)?;
            let entry = AuditEntry {
                record_id: Some(id),
                ..import_entry("user.imported", "user")
            };
            audit::record(c, &entry, at)?;
        }
        Ok(())
    });
    match (written, clash) {
        (Ok(()), _) => Ok(ImportReport::Students {
            created: rows.len(),
        }),
        (Err(_), Some(clash)) => Err(ImportError::Rows(vec![clash])),
        (Err(e), None) => Err(ImportError::Database(e)),
    }
}

#[cfg(test)]
mod tests {
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
