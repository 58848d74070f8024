//! One patient, as page and API: the record with its assignment, follow-up
//! and flags. Every read is audited; a patient the user may not see answers
//! 404 and the refusal is audited.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use tera::Context;

use crate::access;
use crate::db::patients;
use crate::domain::schedule::{self, DischargeStage, FollowUp};
use crate::domain::{PatientStatus, Role, UNREACHABLE_AFTER};
use crate::error::{AppError, PageError};
use crate::startup::AppState;
use crate::web::identity::{Api, Page, Principal};
use crate::web::pages::{page_context, render};

pub fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(patient_page);
}

pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(get_patient);
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AssignmentView {
    pub student_id: i64,
    /// First name only.
    pub student_given_name: String,
    pub since: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PatientView {
    pub id: i64,
    pub given_name: String,
    pub family_name: String,
    /// E.164
    pub phone: String,
    pub preferred_language: String,
    pub interpreter_needed: bool,
    pub best_times: String,
    pub contact_mode: String,
    pub enrolment_reasons: Vec<String>,
    pub enrolment_reason_other: Option<String>,
    pub cadence: String,
    pub enrolled_on: NaiveDate,
    pub enrolled_by: i64,
    pub date_of_birth: Option<NaiveDate>,
    pub clinic_record_number: Option<String>,
    /// active or discharged
    pub status: String,
    /// enrolled_on + programme length: the discharge point.
    pub discharge_due_on: NaiveDate,
    pub next_call_at: Option<DateTime<Utc>>,
    pub last_call_at: Option<DateTime<Utc>>,
    pub last_call_outcome: Option<String>,
    /// overdue, due, upcoming or none
    pub follow_up: String,
    /// The day the follow-up is due, in programme time.
    pub follow_up_due_on: Option<NaiveDate>,
    /// Any of: due, overdue, final_call, discharge_due, discharge_overdue, unreachable.
    pub flags: Vec<String>,
    pub assignment: Option<AssignmentView>,
    pub discharged_at: Option<DateTime<Utc>>,
    pub discharge_reason: Option<String>,
    pub discharge_summary: Option<String>,
}

/// The follow-up and flags of a patient today, in programme time.
pub fn flags_of(
    p: &patients::Patient,
    today: NaiveDate,
    tz: chrono_tz::Tz,
) -> (FollowUp, Vec<String>) {
    if p.status != PatientStatus::Active.as_str() {
        return (FollowUp::None, Vec::new());
    }
    let next = p.next_call_at.map(|t| t.and_utc());
    let follow_up = schedule::follow_up(next, p.enrolled_on, p.last_call_at.is_some(), today, tz);
    let mut flags = Vec::new();
    if matches!(follow_up, FollowUp::Due | FollowUp::Overdue) {
        flags.push(follow_up.as_str().to_string());
    }
    let stage = schedule::discharge_stage(p.discharge_due_on, today);
    if stage != DischargeStage::InProgramme {
        flags.push(stage.as_str().to_string());
        if stage == DischargeStage::DischargeOverdue {
            flags.push(DischargeStage::DischargeDue.as_str().to_string());
        }
    }
    if p.failed_attempts as usize >= UNREACHABLE_AFTER {
        flags.push("unreachable".to_string());
    }
    (follow_up, flags)
}

/// The patient as the API and pages show them, read inside the caller's
/// transaction.
pub fn build_view(
    c: &mut crate::db::DbConn,
    p: patients::Patient,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Result<PatientView, AppError> {
    let reasons = patients::reasons_of(c, p.id)?;
    let assignment = patients::current_student(c, p.id)?;
    let today = schedule::local_date(now, tz);
    let (follow_up, flags) = flags_of(&p, today, tz);
    let due_on = (p.status == PatientStatus::Active.as_str())
        .then(|| {
            schedule::follow_up_due_on(
                p.next_call_at.map(|t| t.and_utc()),
                p.enrolled_on,
                p.last_call_at.is_some(),
                tz,
            )
        })
        .flatten();
    Ok(PatientView {
        id: p.id,
        given_name: p.given_name,
        family_name: p.family_name,
        phone: p.phone,
        preferred_language: p.preferred_language,
        interpreter_needed: p.interpreter_needed,
        best_times: p.best_times,
        contact_mode: p.contact_mode,
        enrolment_reasons: reasons,
        enrolment_reason_other: p.enrolment_reason_other,
        cadence: p.cadence,
        enrolled_on: p.enrolled_on,
        enrolled_by: p.enrolled_by,
        date_of_birth: p.date_of_birth,
        clinic_record_number: p.clinic_record_number,
        status: p.status,
        discharge_due_on: p.discharge_due_on,
        next_call_at: p.next_call_at.map(|t| t.and_utc()),
        last_call_at: p.last_call_at.map(|t| t.and_utc()),
        last_call_outcome: p.last_call_outcome,
        follow_up: follow_up.as_str().to_string(),
        follow_up_due_on: due_on,
        flags,
        assignment: assignment.map(|(student_id, student_given_name, since)| AssignmentView {
            student_id,
            student_given_name,
            since: since.and_utc(),
        }),
        discharged_at: p.discharged_at.map(|t| t.and_utc()),
        discharge_reason: p.discharge_reason,
        discharge_summary: p.discharge_summary,
    })
}

/// The patient page's extra parts: calls (notes only for those who may read
/// them) and, for leaders and admins, the pairing history.
#[derive(Debug, Clone, Serialize)]
pub struct PatientDetail {
    pub patient: PatientView,
    pub calls: Vec<crate::db::calls::CallSummary>,
    pub history: Vec<crate::pairing::AssignmentRow>,
    pub notes_visible: bool,
}

/// Loads the patient for this user, auditing the read or the refusal in the
/// same transaction. `None`: not visible (or not there); answer 404.
pub async fn load_for(
    state: &AppState,
    user: &Principal,
    patient_id: i64,
) -> Result<Option<PatientDetail>, AppError> {
    let user = user.clone();
    let now = state.clock.now();
    let tz = state.settings.timezone;
    crate::audit::read_recorded(&state.db, now.naive_utc(), move |c| {
        if !access::can_see_patient(c, &user, patient_id)? {
            let refused = user.audit(
                "patient.refused",
                "patient",
                Some(patient_id),
                Some(patient_id),
            );
            return Ok((None, Some(refused)));
        }
        let Some(p) = patients::find(c, patient_id)? else {
            return Ok((None, None));
        };
        let read = user.audit(
            "patient.read",
            "patient",
            Some(patient_id),
            Some(patient_id),
        );
        let assigned_to_user = access::is_assigned_now(c, user.user_id, patient_id)?;
        let notes_visible = access::can_read_notes(&user, p.enrolled_by, assigned_to_user);
        let calls = crate::db::calls::for_patient(c, patient_id, 50, notes_visible)?;
        let history = if user.has(Role::Leader) || user.has(Role::Admin) {
            crate::pairing::history(c, patient_id)?
        } else {
            Vec::new()
        };
        let detail = PatientDetail {
            patient: build_view(c, p, now, tz)?,
            calls,
            history,
            notes_visible,
        };
        Ok((Some(detail), Some(read)))
    })
    .await
}

/// Refuses (404, audited) a patient this user may not see; for routes that
/// act on a patient's child records (calls, comments).
pub async fn guard(state: &AppState, user: &Principal, patient_id: i64) -> Result<(), AppError> {
    let user = user.clone();
    let now = state.clock.now().naive_utc();
    let visible = crate::audit::read_recorded(&state.db, now, move |c| {
        let visible = access::can_see_patient(c, &user, patient_id)?;
        let refused = (!visible).then(|| {
            user.audit(
                "patient.refused",
                "patient",
                Some(patient_id),
                Some(patient_id),
            )
        });
        Ok((visible, refused))
    })
    .await?;
    if visible {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

/// One patient with assignment, follow-up and flags (rule 2: 404 when the
/// caller may not see them).
#[utoipa::path(get, path = "/api/v1/patients/{id}", tag = "patients",
    params(("id" = i64, Path, description = "patient id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = PatientView),
        (status = 401, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
#[get("/patients/{id}")]
pub async fn get_patient(
    user: Api,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    match load_for(&state, &user, id.into_inner()).await? {
        Some(detail) => Ok(HttpResponse::Ok().json(detail.patient)),
        None => Err(AppError::NotFound),
    }
}

#[derive(serde::Deserialize)]
struct PatientQuery {
    enrolled: Option<String>,
}

#[get("/patients/{id}")]
async fn patient_page(
    user: Page,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: web::Query<PatientQuery>,
) -> Result<HttpResponse, PageError> {
    let Some(detail) = load_for(&state, &user, id.into_inner()).await? else {
        return Err(AppError::NotFound.into());
    };
    let mut context: Context = page_context(&state, &user);
    context.insert("patient", &detail.patient);
    context.insert("calls", &detail.calls);
    context.insert("history", &detail.history);
    context.insert("notes_visible", &detail.notes_visible);
    context.insert("just_enrolled", &query.enrolled.is_some());
    Ok(render("patient.html", &context)?)
}
