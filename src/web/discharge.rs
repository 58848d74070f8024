//! The discharge queue and discharging, as pages and API.

use actix_web::{get, post, web, HttpResponse};

use crate::discharge::{self, QueueEntry};
use crate::domain::{schedule, DischargeReason};
use crate::error::{AppError, PageError};
use crate::startup::AppState;
use crate::web::identity::{Api, LeadersOrPhysicians, Page, PageForm, Principal};
use crate::web::input::{Fields, JsonFields};
use crate::web::pages::{page_context, render};

pub fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(queue_page).service(discharge_from_page);
}

pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(queue_api).service(discharge_api);
}

async fn load_queue(state: &AppState, user: &Principal) -> Result<Vec<QueueEntry>, AppError> {
    let user = user.clone();
    let now = state.clock.now();
    let tz = state.settings.timezone;
    crate::audit::read_recorded(&state.db, now.naive_utc(), move |c| {
        let rows = discharge::queue(c, &user, schedule::local_date(now, tz))?;
        let entry = user.audit("discharge_queue.listed", "patient_list", None, None);
        Ok((rows, Some(entry)))
    })
    .await
}

/// Patients at or past the discharge point (leaders: all; physicians: their own).
#[utoipa::path(get, path = "/api/v1/discharge-queue", tag = "discharge", security(("bearer" = [])),
    responses((status = 200, body = Vec<QueueEntry>), (status = 403, body = crate::error::ErrorBody)))]
#[get("/discharge-queue")]
async fn queue_api(
    user: Api<LeadersOrPhysicians>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(load_queue(&state, &user).await?))
}

#[get("/discharge-queue")]
async fn queue_page(
    user: Page<LeadersOrPhysicians>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let rows = load_queue(&state, &user).await?;
    let mut context = page_context(&state, &user);
    context.insert("queue", &rows);
    context.insert(
        "reasons",
        &DischargeReason::ALL
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>(),
    );
    Ok(render("discharge_queue.html", &context)?)
}

fn read(fields: &mut Fields) -> Option<(DischargeReason, String)> {
    let reason = fields.choice::<DischargeReason>("reason", true);
    let summary = fields.text("summary", true, discharge::SUMMARY_MAX_CHARS);
    Some((reason?, summary?))
}

async fn do_discharge(
    state: &AppState,
    user: &Principal,
    patient_id: i64,
    mut fields: Fields,
) -> Result<(), AppError> {
    let input = read(&mut fields);
    fields.finish()?;
    let (reason, summary) = input.ok_or_else(|| AppError::internal("read without errors"))?;
    let (who, now, base) = (
        user.clone(),
        state.clock.now(),
        state.settings.base_url.clone(),
    );
    let result = state
        .db
        .write(move |c| discharge::discharge(c, &who, patient_id, reason, &summary, now, &base))
        .await;
    if let Err(AppError::NotFound) = result {
        // Audit the refusal the same way every patient route does.
        crate::web::patients::guard(state, user, patient_id).await?;
    }
    result
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct DischargeRequest {
    /// completed, unreachable, withdrew, transferred, other
    reason: String,
    /// A short summary for the enrolling physician (at most 2,000 characters).
    summary: String,
}

/// Discharge a patient (leaders, the enrolling physician), at the discharge
/// point or early.
#[utoipa::path(post, path = "/api/v1/patients/{id}/discharge", tag = "discharge", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = DischargeRequest,
    responses(
        (status = 204),
        (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "already discharged"),
        (status = 422, body = crate::error::ErrorBody)))]
#[post("/patients/{id}/discharge")]
async fn discharge_api(
    user: Api<LeadersOrPhysicians>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    JsonFields(fields): JsonFields,
) -> Result<HttpResponse, AppError> {
    do_discharge(&state, &user, id.into_inner(), fields).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[post("/patients/{id}/discharge")]
async fn discharge_from_page(
    state: web::Data<AppState>,
    form: PageForm<LeadersOrPhysicians>,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let PageForm { user, fields, .. } = form;
    let patient_id = id.into_inner();
    do_discharge(&state, &user, patient_id, fields).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", format!("/patients/{patient_id}")))
        .finish())
}
