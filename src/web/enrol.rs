//! Physicians (and leaders) enrol patients; everyone lists the patients they
//! may see. The enrolment form works on a phone and without JavaScript; on a
//! mistake it comes back with every problem named and the entered values kept.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use tera::Context;

use crate::access;
use crate::db::schema::{assignments, patients, users};
use crate::db::DbConn;
use crate::domain::schedule;
use crate::domain::{Cadence, ContactMode, EnrolmentReason, PatientStatus, Role};
use crate::enrolment;
use crate::error::{AppError, PageError};
use crate::startup::AppState;
use crate::web::identity::{Api, LeadersOrPhysicians, Page, PageForm, Principal};
use crate::web::input::{Fields, JsonFields};
use crate::web::pages::{page_context, render};
use crate::web::patients::{build_view, flags_of, PatientView};

pub fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(enrol_page)
        .service(enrol_from_page)
        .service(patients_page);
}

pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(enrol_api).service(list_api);
}

/// Reads and writes one enrolment; a duplicate the user may not see is
/// reported without its id (rule 2).
async fn enrol(
    state: &AppState,
    user: &Principal,
    mut fields: Fields,
) -> Result<Result<PatientView, Fields>, AppError> {
    let now = state.clock.now();
    let tz = state.settings.timezone;
    let today = schedule::local_date(now, tz);
    let input = enrolment::read(&mut fields, today, enrolment::earliest_for_form(today));
    let Some(input) = input.filter(|_| !fields.has_errors()) else {
        return Ok(Err(fields));
    };
    let who = user.clone();
    let weeks = state.settings.programme_weeks;
    let result = state
        .db
        .write(move |c| {
            let id = enrolment::enrol(
                c,
                &input,
                who.user_id,
                weeks,
                who.audit("", "", None, None),
                now.naive_utc(),
            )?;
            let patient = crate::db::patients::find(c, id)?.ok_or(AppError::NotFound)?;
            build_view(c, patient, now, tz)
        })
        .await;
    match result {
        Ok(view) => Ok(Ok(view)),
        Err(AppError::DuplicatePatient(existing)) => {
            let who = user.clone();
            let visible = state
                .db
                .read(move |c| Ok(access::can_see_patient(c, &who, existing)?))
                .await?;
            if visible {
                Err(AppError::DuplicatePatient(existing))
            } else {
                Err(AppError::Conflict(
                    "this person is already enrolled by another physician; a leader can find the enrolment".into(),
                ))
            }
        }
        Err(e) => Err(e),
    }
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct EnrolmentRequest {
    given_name: String,
    family_name: String,
    /// As written locally, e.g. "(215) 555-0123"; stored as E.164.
    phone: String,
    /// ISO 639-1, e.g. "es".
    preferred_language: String,
    interpreter_needed: Option<bool>,
    best_times: Option<String>,
    /// phone (default) or video
    contact_mode: Option<String>,
    /// mental_health, social_isolation, living_circumstances, covid_worries, other
    enrolment_reasons: Vec<String>,
    /// Required when the reasons include "other".
    enrolment_reason_other: Option<String>,
    /// Must be true: the patient said they want the calls.
    interest_confirmed: bool,
    /// weekly (default) or biweekly
    cadence: Option<String>,
    /// YYYY-MM-DD; default today in programme time; not in the future, at most 30 days back.
    enrolled_on: Option<String>,
    date_of_birth: Option<String>,
    clinic_record_number: Option<String>,
}

/// Enrol a patient (physicians and leaders). Returns the patient with its
/// discharge point.
#[utoipa::path(post, path = "/api/v1/patients", tag = "patients", security(("bearer" = [])),
    request_body = EnrolmentRequest,
    responses(
        (status = 201, body = PatientView),
        (status = 409, body = crate::error::ErrorBody, description = "already enrolled: existing_patient_id names them"),
        (status = 422, body = crate::error::ErrorBody)))]
#[post("/patients")]
async fn enrol_api(
    user: Api<LeadersOrPhysicians>,
    state: web::Data<AppState>,
    JsonFields(fields): JsonFields,
) -> Result<HttpResponse, AppError> {
    match enrol(&state, &user, fields).await? {
        Ok(view) => Ok(HttpResponse::Created()
            .insert_header(("Location", format!("/api/v1/patients/{}", view.id)))
            .json(view)),
        Err(fields) => Err(fields
            .finish()
            .err()
            .unwrap_or_else(|| AppError::internal("invalid without errors"))),
    }
}

fn form_context(
    state: &AppState,
    user: &Principal,
    fields: Option<&Fields>,
    notice: Option<(String, Option<i64>)>,
) -> Context {
    let mut context = page_context(state, user);
    let today = schedule::local_date(state.clock.now(), state.settings.timezone);
    context.insert("today", &today);
    context.insert("earliest", &enrolment::earliest_for_form(today));
    context.insert(
        "reasons",
        &EnrolmentReason::ALL
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>(),
    );
    context.insert(
        "cadences",
        &Cadence::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
    );
    context.insert(
        "modes",
        &ContactMode::ALL
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>(),
    );
    context.insert(
        "errors",
        &fields.map(|f| f.errors().clone()).unwrap_or_default(),
    );
    context.insert("entered", &fields.map(|f| f.entered()));
    context.insert("notice", &notice.as_ref().map(|n| &n.0));
    context.insert("existing_id", &notice.and_then(|n| n.1));
    context
}

#[get("/enrol")]
async fn enrol_page(
    user: Page<LeadersOrPhysicians>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    Ok(render(
        "enrol.html",
        &form_context(&state, &user, None, None),
    )?)
}

#[post("/enrol")]
async fn enrol_from_page(
    state: web::Data<AppState>,
    form: PageForm<LeadersOrPhysicians>,
) -> Result<HttpResponse, PageError> {
    let PageForm { user, fields, .. } = form;
    let kept = Fields::from_pairs(
        fields
            .entered()
            .into_iter()
            .filter(|(k, _)| k != "csrf")
            .map(|(k, v)| {
                (
                    k,
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                )
            }),
    );
    let (status, context) = match enrol(&state, &user, fields).await {
        Ok(Ok(view)) => {
            return Ok(HttpResponse::SeeOther()
                .insert_header(("Location", format!("/patients/{}?enrolled=1", view.id)))
                .finish())
        }
        Ok(Err(fields)) => (422, form_context(&state, &user, Some(&fields), None)),
        Err(AppError::DuplicatePatient(id)) => (
            409,
            form_context(
                &state,
                &user,
                Some(&kept),
                Some(("This person is already enrolled.".into(), Some(id))),
            ),
        ),
        Err(AppError::Conflict(message)) => (
            409,
            form_context(&state, &user, Some(&kept), Some((message, None))),
        ),
        Err(e) => return Err(e.into()),
    };
    let mut response = render("enrol.html", &context)?;
    *response.status_mut() = actix_web::http::StatusCode::from_u16(status).unwrap_or_default();
    Ok(response)
}

/// One row of a patient list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PatientSummary {
    pub id: i64,
    pub given_name: String,
    pub family_name: String,
    pub status: String,
    pub preferred_language: String,
    pub interpreter_needed: bool,
    pub cadence: String,
    pub enrolled_on: NaiveDate,
    pub enrolled_by: i64,
    pub discharge_due_on: NaiveDate,
    pub next_call_at: Option<DateTime<Utc>>,
    pub last_call_at: Option<DateTime<Utc>>,
    pub last_call_outcome: Option<String>,
    /// First name of the student calling them now.
    pub student_given_name: Option<String>,
    pub follow_up: String,
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// active (default), discharged or all
    pub status: Option<String>,
    /// At most 500; default 100.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// The patients this user may see (rule 2), newest enrolment first.
fn list_visible(
    c: &mut DbConn,
    user: &Principal,
    query: &ListQuery,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Result<Vec<PatientSummary>, AppError> {
    let status = query.status.as_deref().unwrap_or("active");
    if !["active", "discharged", "all"].contains(&status) {
        return Err(AppError::invalid(
            "status",
            "must be active, discharged or all",
        ));
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    let offset = query.offset.unwrap_or(0).max(0);
    let mut q = patients::table
        .left_join(
            assignments::table.on(assignments::patient_id
                .eq(patients::id)
                .and(assignments::ended_at.is_null())),
        )
        .left_join(users::table.on(users::id.nullable().eq(assignments::student_id.nullable())))
        .into_boxed();
    if status != "all" {
        q = q.filter(patients::status.eq(status.to_string()));
    }
    if !(user.has(Role::Leader) || user.has(Role::Admin)) {
        let mine_enrolled = if user.has(Role::Physician) {
            user.user_id
        } else {
            -1
        };
        let mine_assigned = if user.has(Role::Student) {
            user.user_id
        } else {
            -1
        };
        q = q.filter(
            patients::enrolled_by
                .eq(mine_enrolled)
                .or(assignments::student_id.nullable().eq(mine_assigned)),
        );
    }
    let rows: Vec<(crate::db::patients::Patient, Option<String>)> = q
        .order((patients::enrolled_on.desc(), patients::id.desc()))
        .limit(limit)
        .offset(offset)
        .select((
            crate::db::patients::Patient::as_select(),
            users::given_name.nullable(),
        ))
        .load(c)?;
    let today = schedule::local_date(now, tz);
    Ok(rows
        .into_iter()
        .map(|(p, student)| {
            let (follow_up, flags) = flags_of(&p, today, tz);
            PatientSummary {
                id: p.id,
                follow_up: follow_up.as_str().to_string(),
                flags,
                given_name: p.given_name,
                family_name: p.family_name,
                status: p.status,
                preferred_language: p.preferred_language,
                interpreter_needed: p.interpreter_needed,
                cadence: p.cadence,
                enrolled_on: p.enrolled_on,
                enrolled_by: p.enrolled_by,
                discharge_due_on: p.discharge_due_on,
                next_call_at: p.next_call_at.map(|t| t.and_utc()),
                last_call_at: p.last_call_at.map(|t| t.and_utc()),
                last_call_outcome: p.last_call_outcome,
                student_given_name: student,
            }
        })
        .collect())
}

/// Reads the list and writes one audit row for the list view.
async fn load_list(
    state: &AppState,
    user: &Principal,
    query: ListQuery,
) -> Result<Vec<PatientSummary>, AppError> {
    let user = user.clone();
    let now = state.clock.now();
    let tz = state.settings.timezone;
    crate::audit::read_recorded(&state.db, now.naive_utc(), move |c| {
        let rows = list_visible(c, &user, &query, now, tz)?;
        let entry = user.audit("patients.listed", "patient_list", None, None);
        Ok((rows, Some(entry)))
    })
    .await
}

/// The patients you may see: physicians their enrolled patients, students
/// those assigned to them now, leaders and admins everyone.
#[utoipa::path(get, path = "/api/v1/patients", tag = "patients", security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, body = Vec<PatientSummary>), (status = 422, body = crate::error::ErrorBody)))]
#[get("/patients")]
async fn list_api(
    user: Api,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(load_list(&state, &user, query.into_inner()).await?))
}

#[get("/patients")]
async fn patients_page(
    user: Page,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let query = query.into_inner();
    let status = query.status.clone().unwrap_or_else(|| "active".into());
    let rows = load_list(&state, &user, query).await?;
    let mut context = page_context(&state, &user);
    context.insert("patients", &rows);
    context.insert("status", &status);
    context.insert("active", PatientStatus::Active.as_str());
    Ok(render("patients.html", &context)?)
}
