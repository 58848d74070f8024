//! Patients and their enrolment.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::schema::{enrolment_reasons, patients};
use crate::domain::{Cadence, ContactMode, EnrolmentReason, PatientStatus};

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = patients)]
pub struct NewPatient<'a> {
    /// `None` lets the database choose; bulk loads choose their own.
    pub id: Option<i64>,
    pub given_name: &'a str,
    pub family_name: &'a str,
    pub phone: &'a str,
    pub preferred_language: &'a str,
    pub interpreter_needed: bool,
    pub best_times: &'a str,
    #[diesel(serialize_as = String)]
    pub contact_mode: ContactMode,
    pub enrolment_reason_other: Option<&'a str>,
    pub interest_confirmed: bool,
    #[diesel(serialize_as = String)]
    pub cadence: Cadence,
    pub enrolled_on: NaiveDate,
    pub enrolled_by: i64,
    pub date_of_birth: Option<NaiveDate>,
    pub clinic_record_number: Option<&'a str>,
    #[diesel(serialize_as = String)]
    pub status: PatientStatus,
    pub discharge_due_on: NaiveDate,
    pub next_call_at: Option<NaiveDateTime>,
    pub last_call_at: Option<NaiveDateTime>,
    pub last_call_outcome: Option<&'a str>,
    pub failed_attempts: i32,
    pub final_call_since: Option<NaiveDate>,
    pub discharge_due_since: Option<NaiveDate>,
    pub discharged_at: Option<NaiveDateTime>,
    pub discharged_by: Option<i64>,
    pub discharge_reason: Option<&'a str>,
    pub discharge_summary: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = enrolment_reasons)]
pub struct NewEnrolmentReason {
    pub patient_id: i64,
    #[diesel(serialize_as = String)]
    pub reason: EnrolmentReason,
}

/// A patient row; enum columns as their text (the database checks them).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = patients)]
pub struct Patient {
    pub id: i64,
    pub given_name: String,
    pub family_name: String,
    pub phone: String,
    pub preferred_language: String,
    pub interpreter_needed: bool,
    pub best_times: String,
    pub contact_mode: String,
    pub enrolment_reason_other: Option<String>,
    pub interest_confirmed: bool,
    pub cadence: String,
    pub enrolled_on: NaiveDate,
    pub enrolled_by: i64,
    pub date_of_birth: Option<NaiveDate>,
    pub clinic_record_number: Option<String>,
    pub status: String,
    pub discharge_due_on: NaiveDate,
    pub next_call_at: Option<NaiveDateTime>,
    pub last_call_at: Option<NaiveDateTime>,
    pub last_call_outcome: Option<String>,
    pub failed_attempts: i32,
    pub final_call_since: Option<NaiveDate>,
    pub discharge_due_since: Option<NaiveDate>,
    pub discharged_at: Option<NaiveDateTime>,
    pub discharged_by: Option<i64>,
    pub discharge_reason: Option<String>,
    pub discharge_summary: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn find(conn: &mut super::DbConn, id: i64) -> QueryResult<Option<Patient>> {
    crate::native!(conn, |c| patients::table
        .find(id)
        .select(Patient::as_select())
        .get_result(c)
        .optional())
}

pub fn reasons_of(conn: &mut super::DbConn, id: i64) -> QueryResult<Vec<String>> {
    enrolment_reasons::table
        .filter(enrolment_reasons::patient_id.eq(id))
        .select(enrolment_reasons::reason)
        .order(enrolment_reasons::reason)
        .load(conn)
}

/// The student the patient is paired with now: id, given name, since when.
pub fn current_student(
    conn: &mut super::DbConn,
    patient_id: i64,
) -> QueryResult<Option<(i64, String, NaiveDateTime)>> {
    use super::schema::{assignments, users};
    assignments::table
        .inner_join(users::table.on(users::id.eq(assignments::student_id)))
        .filter(assignments::patient_id.eq(patient_id))
        .filter(assignments::ended_at.is_null())
        .select((users::id, users::given_name, assignments::started_at))
        .get_result(conn)
        .optional()
}
