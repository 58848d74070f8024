//! One call after it was logged: read it, correct it within 24 hours (the
//! student who logged it; the original is kept as a revision), and leaders'
//! comments, so students know someone read what they wrote. Calls are reached
//! through their patient: the call must belong to the patient in the path.

use actix_web::{get, post, put, web, HttpResponse};
use diesel::prelude::*;

use crate::access;
use crate::calls::{self, CallContext};
use crate::db::schema::calls as calls_table;
use crate::error::{AppError, PageError};
use crate::startup::AppState;
use crate::web::identity::{Api, Leaders, PageForm, Principal, Students};
use crate::web::input::{Fields, JsonFields};

pub fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(comment_from_page)
        .service(edit_page)
        .service(correct_from_page);
}

pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(get_call)
        .service(correct_api)
        .service(comment_api);
}

/// The call's patient id, if the call exists.
fn patient_of(c: &mut crate::db::DbConn, call_id: i64) -> QueryResult<Option<i64>> {
    calls_table::table
        .find(call_id)
        .select(calls_table::patient_id)
        .get_result(c)
        .optional()
}

/// One call of a patient the caller may see; notes only for those who may
/// read them.
#[utoipa::path(get, path = "/api/v1/patients/{id}/calls/{call_id}", tag = "calls", security(("bearer" = [])),
    params(("id" = i64, Path), ("call_id" = i64, Path)),
    responses((status = 200, body = crate::db::calls::CallSummary), (status = 404, body = crate::error::ErrorBody)))]
#[get("/patients/{id}/calls/{call_id}")]
async fn get_call(
    user: Api,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let (patient_id, call_id) = path.into_inner();
    let Some(detail) = crate::web::patients::load_for(&state, &user, patient_id).await? else {
        return Err(AppError::NotFound);
    };
    let call = detail.calls.into_iter().find(|c| c.id == call_id);
    match call {
        Some(call) => Ok(HttpResponse::Ok().json(call)),
        None => Err(AppError::NotFound),
    }
}

async fn correct(
    state: &AppState,
    user: &Principal,
    patient_id: i64,
    call_id: i64,
    fields: &mut Fields,
) -> Result<calls::LoggedCall, AppError> {
    crate::web::patients::guard(state, user, patient_id).await?;
    let now = state.clock.now();
    let tz = state.settings.timezone;
    let input = calls::read(fields, &state.protocol, now, tz);
    let Some(input) = input.filter(|_| !fields.has_errors()) else {
        return Err(AppError::invalid_fields(fields.errors().clone()));
    };
    let (app, who) = (state.clone(), user.clone());
    state
        .db
        .write(move |c| {
            let ctx = CallContext {
                protocol: &app.protocol,
                tz,
                base_url: &app.settings.base_url,
                now,
            };
            calls::correct(c, &who, patient_id, call_id, &input, &ctx)
        })
        .await
}

/// Correct your call within 24 hours of logging it (send every field again).
#[utoipa::path(put, path = "/api/v1/patients/{id}/calls/{call_id}", tag = "calls", security(("bearer" = [])),
    params(("id" = i64, Path), ("call_id" = i64, Path)), request_body = crate::web::checkins::CallRequest,
    responses(
        (status = 200, body = calls::LoggedCall),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "more than 24 hours after logging"),
        (status = 422, body = crate::error::ErrorBody)))]
#[put("/patients/{id}/calls/{call_id}")]
async fn correct_api(
    user: Api<Students>,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    JsonFields(mut fields): JsonFields,
) -> Result<HttpResponse, AppError> {
    let (patient_id, call_id) = path.into_inner();
    Ok(HttpResponse::Ok().json(correct(&state, &user, patient_id, call_id, &mut fields).await?))
}

async fn comment(
    state: &AppState,
    leader: &Principal,
    patient_id: i64,
    call_id: i64,
    body: String,
) -> Result<i64, AppError> {
    crate::web::patients::guard(state, leader, patient_id).await?;
    let leader = leader.clone();
    let now = state.clock.now().naive_utc();
    state
        .db
        .write(move |c| {
            if !access::can_see_patient(c, &leader, patient_id)?
                || patient_of(c, call_id)? != Some(patient_id)
            {
                return Err(AppError::NotFound);
            }
            let id = crate::db::calls::add_comment(c, call_id, leader.user_id, &body, now)?;
            crate::audit::record(
                c,
                &leader.audit("call.commented", "call", Some(call_id), Some(patient_id)),
                now,
            )?;
            Ok(id)
        })
        .await
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CommentRequest {
    /// 1 to 5,000 characters.
    body: String,
}

/// Comment on a call (leaders).
#[utoipa::path(post, path = "/api/v1/patients/{id}/calls/{call_id}/comments", tag = "calls", security(("bearer" = [])),
    params(("id" = i64, Path), ("call_id" = i64, Path)), request_body = CommentRequest,
    responses((status = 201), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
#[post("/patients/{id}/calls/{call_id}/comments")]
async fn comment_api(
    leader: Api<Leaders>,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    JsonFields(mut fields): JsonFields,
) -> Result<HttpResponse, AppError> {
    let body = fields.text("body", true, 5000);
    fields.finish()?;
    let (patient_id, call_id) = path.into_inner();
    let id = comment(
        &state,
        &leader,
        patient_id,
        call_id,
        body.unwrap_or_default(),
    )
    .await?;
    Ok(HttpResponse::Created().json(serde_json::json!({"id": id})))
}

#[post("/patients/{id}/calls/{call_id}/comments")]
async fn comment_from_page(
    state: web::Data<AppState>,
    form: PageForm<Leaders>,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, PageError> {
    let PageForm {
        user, mut fields, ..
    } = form;
    let body = fields.text("body", true, 5000);
    fields.finish()?;
    let (patient_id, call_id) = path.into_inner();
    comment(&state, &user, patient_id, call_id, body.unwrap_or_default()).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", format!("/patients/{patient_id}#call-{call_id}")))
        .finish())
}

/// The correction form: the call page, filled with the call as logged.
#[get("/patients/{id}/calls/{call_id}/edit")]
async fn edit_page(
    user: crate::web::identity::Page<Students>,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, PageError> {
    let (patient_id, call_id) = path.into_inner();
    crate::web::patients::guard(&state, &user, patient_id).await?;
    let student = user.user_id;
    let call = state
        .db
        .read(move |c| match calls::load(c, call_id).optional()? {
            Some(call) if call.patient_id == patient_id && call.student_id == student => Ok(call),
            _ => Err(AppError::NotFound),
        })
        .await?;
    let tz = state.settings.timezone;
    let local = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string()
    };
    let mut pairs = vec![
        ("occurred_at".to_string(), local(call.occurred_at)),
        ("mode".to_string(), call.mode.clone()),
        ("outcome".to_string(), call.outcome.clone()),
        (
            "duration_minutes".to_string(),
            call.duration_minutes.to_string(),
        ),
        ("concern".to_string(), call.concern.clone()),
        ("notes".to_string(), call.notes.clone()),
        (
            "next_call_at".to_string(),
            call.next_call_at.map(local).unwrap_or_default(),
        ),
    ];
    if call.interpreter_used {
        pairs.push(("interpreter_used".into(), "on".into()));
    }
    if call.flagged_for_debrief {
        pairs.push(("flagged_for_debrief".into(), "on".into()));
    }
    let mut fields = Fields::from_pairs(pairs);
    fields.set_list("sections", &call.sections);
    fields.set_list("resources", &call.resources);
    crate::web::checkins::call_page_for_edit(&state, &user, patient_id, call_id, &fields, 200).await
}

#[post("/patients/{id}/calls/{call_id}/edit")]
async fn correct_from_page(
    state: web::Data<AppState>,
    form: PageForm<Students>,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, PageError> {
    let PageForm {
        user, mut fields, ..
    } = form;
    let (patient_id, call_id) = path.into_inner();
    match correct(&state, &user, patient_id, call_id, &mut fields).await {
        Ok(_) => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", format!("/checkins?logged={patient_id}")))
            .finish()),
        Err(AppError::Validation {
            fields: problems, ..
        }) => {
            for (field, messages) in problems {
                if fields.errors().contains_key(&field) {
                    continue;
                }
                for m in messages {
                    fields.error(&field, m);
                }
            }
            crate::web::checkins::call_page_for_edit(
                &state, &user, patient_id, call_id, &fields, 422,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}
