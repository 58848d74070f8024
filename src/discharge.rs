//! Discharge (SPEC.md rule 6): a leader or the enrolling physician discharges
//! a patient with a reason and a short summary — at the discharge point, or
//! early (withdrew, unreachable, transferred). The pairing ends, no call can
//! be logged after, and the enrolling physician is emailed that a summary is
//! ready (a link, no clinical detail).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::audit;
use crate::db::schema::{assignments, patients, users};
use crate::db::{patients as patient_rows, DbConn};
use crate::domain::schedule::{self, DischargeStage};
use crate::domain::{DischargeReason, PatientStatus, Role};
use crate::error::AppError;
use crate::mail;
use crate::web::identity::Principal;

pub const SUMMARY_MAX_CHARS: usize = 2000;

/// Who may discharge: leaders, and the physician who enrolled the patient.
pub fn may_discharge(user: &Principal, enrolled_by: i64) -> bool {
    user.has(Role::Leader) || (user.has(Role::Physician) && enrolled_by == user.user_id)
}

/// Discharges in the caller's transaction. Errors: 404 when the user may not
/// see the patient, 403 when they may see but not discharge, 409 when already
/// discharged.
pub fn discharge(
    c: &mut DbConn,
    by: &Principal,
    patient_id: i64,
    reason: DischargeReason,
    summary: &str,
    now: DateTime<Utc>,
    base_url: &str,
) -> Result<(), AppError> {
    if !crate::access::can_see_patient(c, by, patient_id)? {
        return Err(AppError::NotFound);
    }
    let patient = patient_rows::find(c, patient_id)?.ok_or(AppError::NotFound)?;
    if !may_discharge(by, patient.enrolled_by) {
        return Err(AppError::Forbidden);
    }
    if patient.status != PatientStatus::Active.as_str() {
        return Err(AppError::Conflict(
            "this patient has already been discharged".into(),
        ));
    }
    let at = now.naive_utc();
    diesel::update(patients::table.find(patient_id))
        .set((
            patients::status.eq(PatientStatus::Discharged.as_str()),
            patients::discharged_at.eq(Some(at)),
            patients::discharged_by.eq(Some(by.user_id)),
            patients::discharge_reason.eq(Some(reason.as_str())),
            patients::discharge_summary.eq(Some(summary)),
            patients::next_call_at.eq(None::<chrono::NaiveDateTime>),
            patients::updated_at.eq(at),
        ))
        .execute(c)?;
    diesel::update(
        assignments::table
            .filter(assignments::patient_id.eq(patient_id))
            .filter(assignments::ended_at.is_null()),
    )
    .set((
        assignments::ended_at.eq(Some(at)),
        assignments::ended_by.eq(Some(by.user_id)),
        assignments::handoff_note.eq(Some(format!("Discharged ({})", reason.as_str()))),
    ))
    .execute(c)?;
    audit::record(
        c,
        &by.audit(
            "patient.discharged",
            "patient",
            Some(patient_id),
            Some(patient_id),
        ),
        at,
    )?;
    let physician: Option<(String, String)> = users::table
        .find(patient.enrolled_by)
        .filter(users::disabled_at.is_null())
        .select((users::email, users::given_name))
        .get_result(c)
        .optional()?;
    if let Some((email, given_name)) = physician {
        let mut context = tera::Context::new();
        context.insert("greeting", &given_name);
        context.insert("patient_first_name", &patient.given_name);
        context.insert("link", &format!("{base_url}/patients/{patient_id}"));
        mail::enqueue(
            c,
            &mail::compose(
                "discharge_notice",
                format!("discharge:{patient_id}"),
                Some(patient.enrolled_by),
                &email,
                &context,
            )?,
            at,
        )?;
    }
    Ok(())
}

/// A patient at or past the discharge point.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QueueEntry {
    pub patient_id: i64,
    pub given_name: String,
    pub family_name: String,
    pub enrolled_on: NaiveDate,
    pub enrolled_by: i64,
    pub discharge_due_on: NaiveDate,
    pub days_past: i64,
    /// discharge_due, or discharge_overdue 14 days after the point.
    pub stage: String,
    pub student_given_name: Option<String>,
    pub last_call_at: Option<DateTime<Utc>>,
}

/// Active patients at or past the discharge point: all for leaders and
/// admins, their own for physicians; oldest first.
pub fn queue(c: &mut DbConn, user: &Principal, today: NaiveDate) -> QueryResult<Vec<QueueEntry>> {
    let mut q = patients::table
        .left_join(
            assignments::table.on(assignments::patient_id
                .eq(patients::id)
                .and(assignments::ended_at.is_null())),
        )
        .left_join(users::table.on(users::id.nullable().eq(assignments::student_id.nullable())))
        .filter(patients::status.eq(PatientStatus::Active.as_str()))
        .filter(patients::discharge_due_on.le(today))
        .into_boxed();
    if !(user.has(Role::Leader) || user.has(Role::Admin)) {
        q = q.filter(patients::enrolled_by.eq(user.user_id));
    }
    type Row = (
        i64,
        String,
        String,
        NaiveDate,
        i64,
        NaiveDate,
        Option<String>,
        Option<chrono::NaiveDateTime>,
    );
    let rows: Vec<Row> = q
        .order((patients::discharge_due_on, patients::id))
        .limit(1000)
        .select((
            patients::id,
            patients::given_name,
            patients::family_name,
            patients::enrolled_on,
            patients::enrolled_by,
            patients::discharge_due_on,
            users::given_name.nullable(),
            patients::last_call_at,
        ))
        .load(c)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let stage = schedule::discharge_stage(r.5, today);
            QueueEntry {
                patient_id: r.0,
                given_name: r.1,
                family_name: r.2,
                enrolled_on: r.3,
                enrolled_by: r.4,
                discharge_due_on: r.5,
                days_past: (today - r.5).num_days(),
                stage: if stage == DischargeStage::DischargeOverdue {
                    "discharge_overdue"
                } else {
                    "discharge_due"
                }
                .into(),
                student_given_name: r.6,
                last_call_at: r.7.map(|t| t.and_utc()),
            }
        })
        .collect())
}
