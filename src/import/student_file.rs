//! `checkin import students`.

use super::sheet::*;
use super::*;

/// A student row that passed every check.
pub(super) struct CheckedStudent {
    pub(super) line: u64,
    pub(super) email: Email,
    pub(super) given_name: PersonName,
    pub(super) family_name: PersonName,
    pub(super) languages: Vec<String>,
    pub(super) capacity: i32,
    pub(super) roles: Vec<Role>,
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

pub(super) fn check_students(
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

pub(super) fn write_students(
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
