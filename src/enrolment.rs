//! Enrolment: a physician (or leader) enrols a patient after a routine visit.
//!
//! One reader for the page form, the JSON API and the spreadsheet import, so
//! the rules live here once: names 1–100 characters, a phone number stored as
//! E.164, an ISO 639-1 language, at least one reason (with text for "other"),
//! the patient's interest confirmed, a cadence, and an enrolment day that is
//! not in the future and (on the form and API) at most 30 days back.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::audit::{self, AuditEntry};
use crate::db::patients::{NewEnrolmentReason, NewPatient};
use crate::db::schema::patients;
use crate::db::{lower, DbConn};
use crate::domain::language::Language;
use crate::domain::people::PersonName;
use crate::domain::phone::Phone;
use crate::domain::{schedule, Cadence, ContactMode, EnrolmentReason, PatientStatus};
use crate::error::AppError;
use crate::web::input::Fields;

/// How far back an enrolment day may be on the form and the API.
pub const ENROLLED_ON_MAX_DAYS_BACK: i64 = 30;

/// A checked enrolment.
#[derive(Debug, Clone)]
pub struct EnrolmentInput {
    pub given_name: PersonName,
    pub family_name: PersonName,
    pub phone: Phone,
    pub preferred_language: Language,
    pub interpreter_needed: bool,
    pub best_times: String,
    pub contact_mode: ContactMode,
    pub reasons: Vec<EnrolmentReason>,
    pub reason_other: Option<String>,
    pub cadence: Cadence,
    pub enrolled_on: NaiveDate,
    pub date_of_birth: Option<NaiveDate>,
    pub clinic_record_number: Option<String>,
}

fn date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a date such as 2026-11-29"))
}

/// Reads every enrolment field, noting every problem in `fields`.
/// `earliest` is the first allowed enrolment day.
pub fn read(fields: &mut Fields, today: NaiveDate, earliest: NaiveDate) -> Option<EnrolmentInput> {
    let given_name = fields.parsed("given_name", true, PersonName::parse);
    let family_name = fields.parsed("family_name", true, PersonName::parse);
    let phone = fields.parsed("phone", true, Phone::parse);
    let preferred_language = fields.parsed("preferred_language", true, Language::parse);
    let interpreter_needed = fields.boolean("interpreter_needed", false);
    let best_times = fields.text("best_times", false, 500).unwrap_or_default();
    let contact_mode = fields
        .choice::<ContactMode>("contact_mode", false)
        .or_else(|| (!fields.errors().contains_key("contact_mode")).then_some(ContactMode::Phone));
    let reasons = fields.list("enrolment_reasons", |s| s.parse::<EnrolmentReason>());
    let reason_other = fields.text("enrolment_reason_other", false, 500);
    match &reasons {
        Some(r) if r.is_empty() => fields.error("enrolment_reasons", "choose at least one reason"),
        Some(r) if r.contains(&EnrolmentReason::Other) && reason_other.is_none() => {
            fields.error("enrolment_reason_other", "say what the other reason is")
        }
        _ => {}
    }
    match fields.boolean("interest_confirmed", true) {
        Some(true) => {}
        Some(false) => fields.error(
            "interest_confirmed",
            "must be confirmed: enrol only patients who said they want the calls",
        ),
        None => {}
    }
    let cadence = fields
        .choice::<Cadence>("cadence", false)
        .or_else(|| (!fields.errors().contains_key("cadence")).then_some(Cadence::Weekly));
    let enrolled_on = match fields.parsed("enrolled_on", false, date) {
        Some(d) if d > today => {
            fields.error("enrolled_on", "cannot be in the future");
            None
        }
        Some(d) if d < earliest => {
            fields.error("enrolled_on", format!("cannot be before {earliest}"));
            None
        }
        Some(d) => Some(d),
        None if fields.errors().contains_key("enrolled_on") => None,
        None => Some(today),
    };
    let date_of_birth = match fields.parsed("date_of_birth", false, date) {
        Some(d) if d > today => {
            fields.error("date_of_birth", "cannot be in the future");
            None
        }
        Some(d) if d < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(d) => {
            fields.error("date_of_birth", "must be after 1900");
            None
        }
        other => other,
    };
    let clinic_record_number = fields.text("clinic_record_number", false, 50);
    if fields.has_errors() {
        return None;
    }
    Some(EnrolmentInput {
        given_name: given_name?,
        family_name: family_name?,
        phone: phone?,
        preferred_language: preferred_language?,
        interpreter_needed: interpreter_needed?,
        best_times,
        contact_mode: contact_mode?,
        reasons: reasons?,
        reason_other,
        cadence: cadence?,
        enrolled_on: enrolled_on?,
        date_of_birth,
        clinic_record_number,
    })
}

/// The form and API's earliest enrolment day.
pub fn earliest_for_form(today: NaiveDate) -> NaiveDate {
    today - Duration::days(ENROLLED_ON_MAX_DAYS_BACK)
}

/// An active enrolment of the same person: same phone and name, or the same
/// clinic record number.
pub fn find_duplicate(conn: &mut DbConn, input: &EnrolmentInput) -> QueryResult<Option<i64>> {
    let same_person = patients::table
        .filter(patients::status.eq(PatientStatus::Active.as_str()))
        .filter(patients::phone.eq(input.phone.as_str()))
        .filter(lower(patients::given_name).eq(input.given_name.as_str().to_lowercase()))
        .filter(lower(patients::family_name).eq(input.family_name.as_str().to_lowercase()))
        .select(patients::id)
        .get_result::<i64>(conn)
        .optional()?;
    if same_person.is_some() {
        return Ok(same_person);
    }
    match &input.clinic_record_number {
        Some(record) => patients::table
            .filter(patients::status.eq(PatientStatus::Active.as_str()))
            .filter(patients::clinic_record_number.eq(record))
            .select(patients::id)
            .get_result::<i64>(conn)
            .optional(),
        None => Ok(None),
    }
}

/// Writes the patient and the reasons, and the audit row, in the caller's
/// transaction. A duplicate is refused with the existing patient's id.
pub fn enrol(
    conn: &mut DbConn,
    input: &EnrolmentInput,
    enrolled_by: i64,
    programme_weeks: u32,
    audit_entry: AuditEntry,
    now: NaiveDateTime,
) -> Result<i64, AppError> {
    if let Some(existing) = find_duplicate(conn, input)? {
        return Err(AppError::DuplicatePatient(existing));
    }
    let new = NewPatient {
        id: None,
        given_name: input.given_name.as_str(),
        family_name: input.family_name.as_str(),
        phone: input.phone.as_str(),
        preferred_language: input.preferred_language.code(),
        interpreter_needed: input.interpreter_needed,
        best_times: &input.best_times,
        contact_mode: input.contact_mode,
        enrolment_reason_other: input.reason_other.as_deref(),
        interest_confirmed: true,
        cadence: input.cadence,
        enrolled_on: input.enrolled_on,
        enrolled_by,
        date_of_birth: input.date_of_birth,
        clinic_record_number: input.clinic_record_number.as_deref(),
        status: PatientStatus::Active,
        discharge_due_on: schedule::discharge_point(input.enrolled_on, programme_weeks),
        next_call_at: None,
        last_call_at: None,
        last_call_outcome: None,
        failed_attempts: 0,
        final_call_since: None,
        discharge_due_since: None,
        discharged_at: None,
        discharged_by: None,
        discharge_reason: None,
        discharge_summary: None,
        created_at: now,
        updated_at: now,
    };
    let id =
        crate::insert_returning_id!(conn, patients::table, new, patients::id).map_err(|e| {
            // The unique index on an active clinic record number can catch a race.
            match AppError::from(e) {
                AppError::Conflict(_) => {
                    AppError::Conflict("this patient was enrolled a moment ago".into())
                }
                other => other,
            }
        })?;
    let reasons: Vec<NewEnrolmentReason> = input
        .reasons
        .iter()
        .map(|&reason| NewEnrolmentReason {
            patient_id: id,
            reason,
        })
        .collect();
    crate::insert_batch!(conn, crate::db::schema::enrolment_reasons::table, reasons)?;
    let entry = AuditEntry {
        action: "patient.enrolled",
        record_type: "patient",
        record_id: Some(id),
        patient_id: Some(id),
        ..audit_entry
    };
    audit::record(conn, &entry, now)?;
    Ok(id)
}
