//! `checkin import patients`.

use super::sheet::*;
use super::*;

/// A patient row that passed every check.
pub(super) struct CheckedPatient {
    pub(super) line: u64,
    pub(super) input: EnrolmentInput,
    pub(super) physician_id: i64,
    pub(super) student_id: Option<i64>,
}

/// Spreadsheets write TRUE, Yes, Weekly and "Mental health": read them as
/// the form's values.
pub(super) fn tidy_patient_cell(column: &str, value: &str) -> String {
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

pub(super) fn check_patients(
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

pub(super) fn write_patients(
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
pub(super) fn pair(
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
