//! Students' check-ins: "My check-ins" (overdue first, then due today, then
//! upcoming), the call page with the protocol beside the form, and logging a
//! call from the page or the API.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::calls::{self, CallContext, Logged};
use crate::db::schema::{
    assignments, call_resources, calls as calls_table, patients, user_languages,
};
use crate::domain::schedule::{self, DischargeStage, FollowUp};
use crate::domain::PatientStatus;
use crate::error::{AppError, FieldErrors, PageError};
use crate::startup::AppState;
use crate::web::identity::{Api, Page, PageForm, Principal, Students};
use crate::web::input::{Fields, JsonFields};
use crate::web::pages::{page_context, render};
use crate::web::patients::flags_of;

pub fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(checkins_page)
        .service(call_page)
        .service(log_from_page);
}

pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(checkins_api).service(log_api);
}

/// One patient on a student's list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Checkin {
    pub patient_id: i64,
    pub given_name: String,
    /// The family name's first letter, to tell two patients of one name apart.
    pub family_initial: String,
    pub preferred_language: String,
    pub interpreter_needed: bool,
    pub next_call_at: Option<DateTime<Utc>>,
    /// The day the follow-up is due, in programme time.
    pub due_on: Option<NaiveDate>,
    /// overdue, due, upcoming or none
    pub follow_up: String,
    /// Any of: due, overdue, final_call, discharge_due, discharge_overdue, unreachable.
    pub flags: Vec<String>,
    pub best_times: String,
}

/// The student's patients now, overdue first, then due, then upcoming, each
/// group by due day.
pub fn checkins_of(
    c: &mut crate::db::DbConn,
    student_id: i64,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Result<Vec<Checkin>, AppError> {
    let rows: Vec<crate::db::patients::Patient> = patients::table
        .inner_join(assignments::table)
        .filter(assignments::student_id.eq(student_id))
        .filter(assignments::ended_at.is_null())
        .filter(patients::status.eq(PatientStatus::Active.as_str()))
        .select(crate::db::patients::Patient::as_select())
        .load(c)?;
    let today = schedule::local_date(now, tz);
    let mut list: Vec<(FollowUp, Option<NaiveDate>, Checkin)> = rows
        .into_iter()
        .map(|p| {
            let (follow_up, flags) = flags_of(&p, today, tz);
            let next = p.next_call_at.map(|t| t.and_utc());
            let due_on =
                schedule::follow_up_due_on(next, p.enrolled_on, p.last_call_at.is_some(), tz);
            let row = Checkin {
                patient_id: p.id,
                given_name: p.given_name,
                family_initial: p.family_name.chars().take(1).collect(),
                preferred_language: p.preferred_language,
                interpreter_needed: p.interpreter_needed,
                next_call_at: next,
                due_on,
                follow_up: follow_up.as_str().to_string(),
                flags,
                best_times: p.best_times,
            };
            (follow_up, due_on, row)
        })
        .collect();
    list.sort_by_key(|(follow_up, due_on, row)| {
        (*follow_up, *due_on, row.next_call_at, row.patient_id)
    });
    Ok(list.into_iter().map(|(_, _, row)| row).collect())
}

async fn load_checkins(state: &AppState, user: &Principal) -> Result<Vec<Checkin>, AppError> {
    let user = user.clone();
    let now = state.clock.now();
    let tz = state.settings.timezone;
    crate::audit::read_recorded(&state.db, now.naive_utc(), move |c| {
        let rows = checkins_of(c, user.user_id, now, tz)?;
        let entry = user.audit("checkins.listed", "patient_list", None, None);
        Ok((rows, Some(entry)))
    })
    .await
}

/// My patients with their follow-ups (students), overdue first.
#[utoipa::path(get, path = "/api/v1/me/checkins", tag = "calls", security(("bearer" = [])),
    responses((status = 200, body = Vec<Checkin>), (status = 403, body = crate::error::ErrorBody)))]
#[get("/me/checkins")]
async fn checkins_api(
    user: Api<Students>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(load_checkins(&state, &user).await?))
}

#[derive(Deserialize)]
struct CheckinsQuery {
    logged: Option<i64>,
}

#[get("/checkins")]
async fn checkins_page(
    user: Page<Students>,
    state: web::Data<AppState>,
    query: web::Query<CheckinsQuery>,
) -> Result<HttpResponse, PageError> {
    let rows = load_checkins(&state, &user).await?;
    let mut context = page_context(&state, &user);
    context.insert(
        "logged",
        &query
            .logged
            .and_then(|id| rows.iter().find(|r| r.patient_id == id)),
    );
    context.insert("checkins", &rows);
    Ok(render("checkins.html", &context)?)
}

fn local_input(at: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string()
}

#[derive(Deserialize)]
struct CallPageQuery {
    lang: Option<String>,
}

/// The call page: the patient, how to reach them, what happened before, the
/// protocol in their language, and the call form.
async fn call_page_response(
    state: &AppState,
    user: &Principal,
    patient_id: i64,
    lang: Option<&str>,
    fields: Option<&Fields>,
    status: u16,
) -> Result<HttpResponse, PageError> {
    call_page_with_action(state, user, patient_id, lang, fields, status, None).await
}

/// The correction form for one call: the call page posting to its edit URL.
pub async fn call_page_for_edit(
    state: &AppState,
    user: &Principal,
    patient_id: i64,
    call_id: i64,
    fields: &Fields,
    status: u16,
) -> Result<HttpResponse, PageError> {
    call_page_with_action(
        state,
        user,
        patient_id,
        None,
        Some(fields),
        status,
        Some(call_id),
    )
    .await
}

async fn call_page_with_action(
    state: &AppState,
    user: &Principal,
    patient_id: i64,
    lang: Option<&str>,
    fields: Option<&Fields>,
    status: u16,
    editing: Option<i64>,
) -> Result<HttpResponse, PageError> {
    let Some(detail) = crate::web::patients::load_for(state, user, patient_id).await? else {
        return Err(AppError::NotFound.into());
    };
    let assigned = {
        let (u, p) = (user.user_id, patient_id);
        state
            .db
            .read(move |c| Ok(crate::access::is_assigned_now(c, u, p)?))
            .await?
    };
    if !assigned {
        // Leaders and physicians read the patient page; only the student calls.
        return Err(AppError::NotFound.into());
    }
    let patient = &detail.patient;
    let student_id = user.user_id;
    let (languages, last_shared, handoff) = state
        .db
        .read(move |c| {
            use crate::db::schema::{assignments, users};
            // What the previous student (or the leader who paired this one)
            // wrote for whoever calls next.
            let handoff: Option<(String, Option<String>, String)> = assignments::table
                .inner_join(users::table.on(users::id.eq(assignments::student_id)))
                .filter(assignments::patient_id.eq(patient_id))
                .filter(assignments::ended_at.is_not_null())
                .order(assignments::ended_at.desc())
                .select((
                    users::given_name,
                    assignments::handoff_note,
                    assignments::note,
                ))
                .get_result(c)
                .optional()?;
            let pairing_note: Option<String> = assignments::table
                .filter(assignments::patient_id.eq(patient_id))
                .filter(assignments::ended_at.is_null())
                .select(assignments::note)
                .get_result(c)
                .optional()?;
            let handoff = serde_json::json!({
                "previous_student": handoff.as_ref().map(|h| h.0.clone()),
                "handoff_note": handoff.and_then(|h| h.1).filter(|n| !n.trim().is_empty()),
                "pairing_note": pairing_note.filter(|n| !n.trim().is_empty()),
            });
            let languages: Vec<String> = user_languages::table
                .filter(user_languages::user_id.eq(student_id))
                .select(user_languages::language)
                .load(c)?;
            let last_with_resources: Option<i64> = calls_table::table
                .inner_join(call_resources::table)
                .filter(calls_table::patient_id.eq(patient_id))
                .order((calls_table::occurred_at.desc(), calls_table::id.desc()))
                .select(calls_table::id)
                .first(c)
                .optional()?;
            let shared: Vec<String> = match last_with_resources {
                Some(id) => call_resources::table
                    .filter(call_resources::call_id.eq(id))
                    .select(call_resources::resource_id)
                    .load(c)?,
                None => Vec::new(),
            };
            Ok((languages, shared, handoff))
        })
        .await?;
    let protocol = &state.protocol;
    let tz = state.settings.timezone;
    let now = state.clock.now();
    let script_language = protocol
        .language_or_default(lang.unwrap_or(&patient.preferred_language))
        .to_string();
    let stage = schedule::discharge_stage(patient.discharge_due_on, schedule::local_date(now, tz));
    let final_week = matches!(
        stage,
        DischargeStage::FinalCall | DischargeStage::DischargeDue | DischargeStage::DischargeOverdue
    );
    let sections: Vec<&crate::protocol::Section> = protocol
        .sections
        .iter()
        .filter(|s| !s.final_call_only || final_week)
        .collect();
    let cadence = patient
        .cadence
        .parse()
        .unwrap_or(crate::domain::Cadence::Weekly);
    let proposed = schedule::proposed_next_call(now, cadence, patient.discharge_due_on, tz);
    let shared: Vec<&crate::protocol::Resource> = last_shared
        .iter()
        .filter_map(|id| protocol.resource(id))
        .collect();
    let mut context = page_context(state, user);
    context.insert("patient", patient);
    context.insert("calls", &detail.calls.iter().take(5).collect::<Vec<_>>());
    context.insert("last_shared", &shared);
    context.insert("handoff", &handoff);
    context.insert("sections", &sections);
    context.insert("resources", &protocol.resources);
    context.insert("script_language", &script_language);
    context.insert("protocol_languages", &protocol.languages);
    context.insert("protocol_version", &protocol.version);
    context.insert(
        "call_link",
        &state
            .settings
            .call_link_template
            .replace("{phone}", &patient.phone),
    );
    context.insert(
        "speaks_language",
        &languages.contains(&patient.preferred_language),
    );
    context.insert("interpreter_line", &state.settings.interpreter_line);
    context.insert("final_week", &final_week);
    context.insert("default_occurred_at", &local_input(now, tz));
    context.insert(
        "default_next_call_at",
        &proposed.map(|p| local_input(p, tz)),
    );
    context.insert("is_last_call", &proposed.is_none());
    context.insert("idempotency_key", &crate::auth::random_token(16));
    context.insert(
        "errors",
        &fields.map(|f| f.errors().clone()).unwrap_or_default(),
    );
    context.insert("entered", &fields.map(Fields::entered));
    context.insert(
        "form_action",
        &match editing {
            Some(call_id) => format!("/patients/{patient_id}/calls/{call_id}/edit"),
            None => format!("/patients/{patient_id}/call"),
        },
    );
    context.insert("editing", &editing.is_some());
    let mut response = render("call.html", &context)?;
    *response.status_mut() = actix_web::http::StatusCode::from_u16(status).unwrap_or_default();
    Ok(response)
}

#[get("/patients/{id}/call")]
async fn call_page(
    user: Page<Students>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: web::Query<CallPageQuery>,
) -> Result<HttpResponse, PageError> {
    call_page_response(
        &state,
        &user,
        id.into_inner(),
        query.lang.as_deref(),
        None,
        200,
    )
    .await
}

/// Logs the call in one transaction; a 404 is audited as a refusal. A key
/// seen before (even by a request racing this one) returns the first call.
async fn log_call(
    state: &AppState,
    user: &Principal,
    patient_id: i64,
    fields: &mut Fields,
    key: Option<String>,
) -> Result<Logged, AppError> {
    let now = state.clock.now();
    let tz = state.settings.timezone;
    let input = calls::read(fields, &state.protocol, now, tz);
    let Some(input) = input.filter(|_| !fields.has_errors()) else {
        return Err(AppError::invalid_fields(fields.errors().clone()));
    };
    let (app, who, key2) = (state.clone(), user.clone(), key.clone());
    let result = state
        .db
        .write(move |c| {
            let ctx = CallContext {
                protocol: &app.protocol,
                tz,
                base_url: &app.settings.base_url,
                now,
            };
            calls::log(c, &who, patient_id, &input, key2.as_deref(), &ctx)
        })
        .await;
    match result {
        Err(AppError::NotFound) => {
            let who = user.clone();
            state
                .db
                .write(move |c| {
                    crate::audit::record(
                        c,
                        &who.audit(
                            "patient.refused",
                            "patient",
                            Some(patient_id),
                            Some(patient_id),
                        ),
                        now.naive_utc(),
                    )?;
                    Ok(())
                })
                .await?;
            Err(AppError::NotFound)
        }
        Err(AppError::Conflict(message)) if key.is_some() => {
            // Another request with the same key committed first.
            let (student, key) = (user.user_id, key.unwrap_or_default());
            let first = state
                .db
                .read(move |c| match calls::find_by_key(c, student, &key)? {
                    Some(id) => Ok(Some(calls::load(c, id)?)),
                    None => Ok(None),
                })
                .await?;
            match first {
                Some(call) if call.patient_id == patient_id => Ok(Logged::Repeat(call)),
                _ => Err(AppError::Conflict(message)),
            }
        }
        other => other,
    }
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, AppError> {
    match req.headers().get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let key = v.to_str().map(str::trim).unwrap_or_default();
            if key.is_empty() || key.len() > 200 {
                Err(AppError::invalid(
                    "Idempotency-Key",
                    "must be 1 to 200 visible characters",
                ))
            } else {
                Ok(Some(key.to_string()))
            }
        }
    }
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CallRequest {
    /// RFC 3339; default now. Not in the future, at most 14 days ago.
    occurred_at: Option<String>,
    /// phone or video
    mode: String,
    /// completed, no_answer, voicemail, declined, wrong_number, interpreter_unavailable, rescheduled
    outcome: String,
    /// 0 to 240
    duration_minutes: i32,
    interpreter_used: Option<bool>,
    /// Protocol section ids covered.
    sections: Option<Vec<String>>,
    /// Protocol resource ids shared.
    resources: Option<Vec<String>>,
    /// none (default), non_urgent or urgent
    concern: Option<String>,
    /// At most 10,000 characters.
    notes: Option<String>,
    /// RFC 3339. Required unless this is the last call before the discharge
    /// point; after occurred_at and not after the discharge point.
    next_call_at: Option<String>,
    flagged_for_debrief: Option<bool>,
}

/// Log a call (the student assigned to the patient). Send an
/// `Idempotency-Key` header: a retry with the same key returns the first call.
#[utoipa::path(post, path = "/api/v1/patients/{id}/calls", tag = "calls", security(("bearer" = [])),
    params(("id" = i64, Path), ("Idempotency-Key" = Option<String>, Header)),
    request_body = CallRequest,
    responses(
        (status = 201, body = calls::LoggedCall),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "the patient has been discharged"),
        (status = 422, body = crate::error::ErrorBody)))]
#[post("/patients/{id}/calls")]
async fn log_api(
    req: HttpRequest,
    user: Api<Students>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    JsonFields(mut fields): JsonFields,
) -> Result<HttpResponse, AppError> {
    let key = idempotency_key(&req)?;
    let patient_id = id.into_inner();
    match log_call(&state, &user, patient_id, &mut fields, key).await? {
        Logged::New(call) | Logged::Repeat(call) => Ok(HttpResponse::Created()
            .insert_header((
                "Location",
                format!("/api/v1/patients/{patient_id}/calls/{}", call.id),
            ))
            .json(call)),
    }
}

#[post("/patients/{id}/call")]
async fn log_from_page(
    state: web::Data<AppState>,
    form: PageForm<Students>,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let PageForm {
        user, mut fields, ..
    } = form;
    let patient_id = id.into_inner();
    let key = fields.text("idempotency_key", false, 200);
    match log_call(&state, &user, patient_id, &mut fields, key).await {
        Ok(_) => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", format!("/checkins?logged={patient_id}")))
            .finish()),
        Err(AppError::Validation {
            fields: problems, ..
        }) => {
            let mut shown = fields;
            merge(&mut shown, problems);
            call_page_response(&state, &user, patient_id, None, Some(&shown), 422).await
        }
        Err(AppError::Conflict(message)) => {
            let mut problems = FieldErrors::new();
            problems.insert("patient".into(), vec![message]);
            merge(&mut fields, problems);
            call_page_response(&state, &user, patient_id, None, Some(&fields), 409).await
        }
        Err(e) => Err(e.into()),
    }
}

fn merge(fields: &mut Fields, problems: FieldErrors) {
    for (field, messages) in problems {
        if fields.errors().get(&field).is_some_and(|m| m == &messages) {
            continue;
        }
        for m in messages {
            fields.error(&field, m);
        }
    }
}
