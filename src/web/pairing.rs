//! Leaders pair patients with students: the unassigned queue, suggestions
//! for one patient, assign, reassign with a hand-off note, and unassign.

use actix_web::{delete, get, post, put, web, HttpResponse};
use serde::Serialize;

use crate::domain::schedule;
use crate::error::{AppError, PageError};
use crate::pairing::{self, AssignRequest, Suggestion};
use crate::startup::AppState;
use crate::web::identity::{Api, Leaders, Page, PageForm, Principal};
use crate::web::input::{Fields, JsonFields};
use crate::web::pages::{page_context, render};

pub fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(queue_page)
        .service(patient_pairing_page)
        .service(assign_from_page)
        .service(unassign_from_page);
}

pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(put_assignment)
        .service(delete_assignment)
        .service(get_suggestions);
}

fn read_request(fields: &mut Fields) -> Option<AssignRequest> {
    let student_id = fields.integer("student_id", true, 1..=i64::MAX);
    let note = fields.text("note", false, 2000).unwrap_or_default();
    let confirm = fields.boolean("confirm_over_capacity", false);
    Some(AssignRequest {
        student_id: student_id?,
        note,
        confirm_over_capacity: confirm?,
    })
}

async fn do_assign(
    state: &AppState,
    leader: &Principal,
    patient_id: i64,
    request: AssignRequest,
) -> Result<i64, AppError> {
    let leader = leader.clone();
    let now = state.clock.now();
    let tz = state.settings.timezone;
    state
        .db
        .write(move |c| {
            pairing::assign(
                c,
                &leader,
                patient_id,
                &request,
                now.naive_utc(),
                schedule::local_date(now, tz),
                tz,
            )
        })
        .await
}

async fn load_suggestions(state: &AppState, patient_id: i64) -> Result<Vec<Suggestion>, AppError> {
    let now = state.clock.now();
    let tz = state.settings.timezone;
    state
        .db
        .read(move |c| {
            match pairing::suggestions(c, patient_id, schedule::local_date(now, tz), tz) {
                Err(AppError::NotFound) => Err(AppError::NotFound),
                other => other,
            }
        })
        .await
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct AssignmentRequest {
    student_id: i64,
    /// The pairing note; required when moving the patient from another
    /// student (the hand-off note).
    note: Option<String>,
    /// Pair even though the student is at capacity.
    confirm_over_capacity: Option<bool>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AssignmentCreated {
    pub assignment_id: i64,
    pub patient_id: i64,
    pub student_id: i64,
}

/// Pair or re-pair a patient (leaders).
#[utoipa::path(put, path = "/api/v1/patients/{id}/assignment", tag = "pairing", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = AssignmentRequest,
    responses(
        (status = 200, body = AssignmentCreated),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "discharged, or already paired with this student"),
        (status = 422, body = crate::error::ErrorBody, description = "not a student, hand-off note missing, or over capacity without confirmation")))]
#[put("/patients/{id}/assignment")]
async fn put_assignment(
    leader: Api<Leaders>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    JsonFields(mut fields): JsonFields,
) -> Result<HttpResponse, AppError> {
    let request = read_request(&mut fields);
    fields.finish()?;
    let request = request.ok_or_else(|| AppError::internal("read without errors"))?;
    let (patient_id, student_id) = (id.into_inner(), request.student_id);
    let assignment_id = do_assign(&state, &leader, patient_id, request).await?;
    Ok(HttpResponse::Ok().json(AssignmentCreated {
        assignment_id,
        patient_id,
        student_id,
    }))
}

/// End the patient's pairing (leaders); the body may carry `{"note": "..."}`.
#[utoipa::path(delete, path = "/api/v1/patients/{id}/assignment", tag = "pairing", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[delete("/patients/{id}/assignment")]
async fn delete_assignment(
    leader: Api<Leaders>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let mut fields = if body.is_empty() {
        Fields::default()
    } else {
        Fields::from_json(&body)?
    };
    let note = fields.text("note", false, 2000).unwrap_or_default();
    fields.finish()?;
    let patient_id = id.into_inner();
    let leader = leader.0;
    let now = state.clock.now().naive_utc();
    state
        .db
        .write(move |c| {
            if crate::db::patients::find(c, patient_id)?.is_none() {
                return Err(AppError::NotFound);
            }
            pairing::unassign(c, &leader, patient_id, &note, now)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Students ranked for this patient: those the patient still fits first, then
/// language match, spare capacity, fewest overdue follow-ups (leaders).
#[utoipa::path(get, path = "/api/v1/patients/{id}/pairing-suggestions", tag = "pairing", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Suggestion>), (status = 404, body = crate::error::ErrorBody)))]
#[get("/patients/{id}/pairing-suggestions")]
async fn get_suggestions(
    _leader: Api<Leaders>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(load_suggestions(&state, id.into_inner()).await?))
}

#[get("/pairing")]
async fn queue_page(
    leader: Page<Leaders>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let queue = state.db.read(|c| Ok(pairing::unassigned(c, 500)?)).await?;
    let mut context = page_context(&state, &leader);
    context.insert("queue", &queue);
    Ok(render("pairing.html", &context)?)
}

async fn pairing_response(
    state: &AppState,
    leader: &Principal,
    patient_id: i64,
    problems: Option<&crate::error::FieldErrors>,
    entered: Option<&Fields>,
    status: u16,
) -> Result<HttpResponse, PageError> {
    let Some(detail) = crate::web::patients::load_for(state, leader, patient_id).await? else {
        return Err(AppError::NotFound.into());
    };
    let suggestions = load_suggestions(state, patient_id).await?;
    let mut context = page_context(state, leader);
    context.insert("patient", &detail.patient);
    context.insert("history", &detail.history);
    context.insert("suggestions", &suggestions);
    context.insert("errors", &problems.cloned().unwrap_or_default());
    context.insert("entered", &entered.map(Fields::entered));
    let mut response = render("pairing_patient.html", &context)?;
    *response.status_mut() = actix_web::http::StatusCode::from_u16(status).unwrap_or_default();
    Ok(response)
}

#[get("/pairing/{id}")]
async fn patient_pairing_page(
    leader: Page<Leaders>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    pairing_response(&state, &leader, id.into_inner(), None, None, 200).await
}

#[post("/pairing/{id}")]
async fn assign_from_page(
    state: web::Data<AppState>,
    form: PageForm<Leaders>,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let PageForm {
        user: leader,
        mut fields,
        ..
    } = form;
    let patient_id = id.into_inner();
    let request = read_request(&mut fields);
    let result = match request.filter(|_| !fields.has_errors()) {
        Some(request) => do_assign(&state, &leader, patient_id, request)
            .await
            .map(|_| ()),
        None => Err(AppError::invalid_fields(fields.errors().clone())),
    };
    match result {
        Ok(()) => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", format!("/pairing/{patient_id}?paired=1")))
            .finish()),
        Err(AppError::Validation {
            fields: problems, ..
        }) => {
            pairing_response(
                &state,
                &leader,
                patient_id,
                Some(&problems),
                Some(&fields),
                422,
            )
            .await
        }
        Err(AppError::Conflict(message)) => {
            let mut problems = crate::error::FieldErrors::new();
            problems.insert("student_id".into(), vec![message]);
            pairing_response(
                &state,
                &leader,
                patient_id,
                Some(&problems),
                Some(&fields),
                409,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[post("/pairing/{id}/unassign")]
async fn unassign_from_page(
    state: web::Data<AppState>,
    form: PageForm<Leaders>,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let PageForm {
        user: leader,
        mut fields,
        ..
    } = form;
    let note = fields.text("note", false, 2000).unwrap_or_default();
    let patient_id = id.into_inner();
    let now = state.clock.now().naive_utc();
    let who = leader.clone();
    let result = state
        .db
        .write(move |c| {
            if crate::db::patients::find(c, patient_id)?.is_none() {
                return Err(AppError::NotFound);
            }
            pairing::unassign(c, &who, patient_id, &note, now)
        })
        .await;
    match result {
        Ok(()) => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", format!("/pairing/{patient_id}")))
            .finish()),
        Err(AppError::Conflict(message)) => {
            let mut problems = crate::error::FieldErrors::new();
            problems.insert("note".into(), vec![message]);
            pairing_response(&state, &leader, patient_id, Some(&problems), None, 409).await
        }
        Err(e) => Err(e.into()),
    }
}
