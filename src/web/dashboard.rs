//! The leader dashboard: the workload table, and beside it the unassigned
//! patients, the discharge queue, open concerns (acknowledged with a note),
//! unreachable patients and calls per week. Physicians see the open concerns
//! of their own patients until someone acknowledges them.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::schema::{concerns, patients, users};
use crate::domain::schedule;
use crate::domain::{PatientStatus, Role, UNREACHABLE_AFTER};
use crate::error::{AppError, PageError};
use crate::startup::AppState;
use crate::web::identity::{Api, Leaders, LeadersOrPhysicians, Page, PageForm, Principal};
use crate::web::input::JsonFields;
use crate::web::pages::{page_context, render};
use crate::workload::{self, WorkloadRow};

pub fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(dashboard_page)
        .service(student_page)
        .service(acknowledge_from_page);
}

pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(workload_api)
        .service(concerns_api)
        .service(acknowledge_api);
}

/// Patients waiting to be paired shown on the dashboard, longest enrolled
/// first; the pairing queue lists them all.
pub const WAITING_SHOWN: i64 = 50;

/// An open concern, as the dashboards list it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OpenConcern {
    pub id: i64,
    pub patient_id: i64,
    pub patient_given_name: String,
    pub level: String,
    pub raised_at: DateTime<Utc>,
    pub raised_by: i64,
    pub student_given_name: String,
    pub call_id: i64,
}

/// Unacknowledged concerns, urgent first: all for leaders and admins, their
/// own patients' for physicians.
pub fn open_concerns(c: &mut crate::db::DbConn, user: &Principal) -> QueryResult<Vec<OpenConcern>> {
    let mut q = concerns::table
        .inner_join(patients::table.on(patients::id.eq(concerns::patient_id)))
        .inner_join(users::table.on(users::id.eq(concerns::raised_by)))
        .filter(concerns::acknowledged_at.is_null())
        .into_boxed();
    if !(user.has(Role::Leader) || user.has(Role::Admin)) {
        q = q.filter(patients::enrolled_by.eq(user.user_id));
    }
    type Row = (
        i64,
        i64,
        String,
        String,
        chrono::NaiveDateTime,
        i64,
        String,
        i64,
    );
    let rows: Vec<Row> = q
        .order((concerns::level.desc(), concerns::raised_at))
        .limit(500)
        .select((
            concerns::id,
            concerns::patient_id,
            patients::given_name,
            concerns::level,
            concerns::raised_at,
            concerns::raised_by,
            users::given_name,
            concerns::call_id,
        ))
        .load(c)?;
    Ok(rows
        .into_iter()
        .map(|r| OpenConcern {
            id: r.0,
            patient_id: r.1,
            patient_given_name: r.2,
            level: r.3,
            raised_at: r.4.and_utc(),
            raised_by: r.5,
            student_given_name: r.6,
            call_id: r.7,
        })
        .collect())
}

#[derive(Debug, Clone, Serialize)]
struct WeekBar {
    label: String,
    completed: i64,
    other: i64,
    /// Bar heights in the chart's units (0–100).
    completed_height: i64,
    other_height: i64,
    x: i64,
}

#[derive(QueryableByName)]
struct WeekCounts {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    all_calls: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    completed: i64,
}

/// Calls per programme week for the last 8 weeks, completed and not.
fn calls_per_week(
    c: &mut crate::db::DbConn,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> QueryResult<Vec<WeekBar>> {
    let this_week = schedule::week_start(schedule::local_date(now, tz));
    let mut bars = Vec::new();
    for back in (0..8).rev() {
        let start = this_week - Duration::weeks(back);
        let (from, to) = schedule::week_bounds_utc(start, tz);
        // One range scan of calls_recent_idx counts both.
        let week: WeekCounts = diesel::sql_query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS all_calls, \
                    CAST(COALESCE(SUM(CASE WHEN outcome = 'completed' THEN 1 ELSE 0 END), 0) \
                         AS BIGINT) AS completed \
             FROM calls WHERE occurred_at >= $1 AND occurred_at < $2",
        )
        .bind::<diesel::sql_types::Timestamp, _>(from.naive_utc())
        .bind::<diesel::sql_types::Timestamp, _>(to.naive_utc())
        .get_result(c)?;
        let (all, completed) = (week.all_calls, week.completed);
        bars.push(WeekBar {
            label: start.format("%-d %b").to_string(),
            completed,
            other: all - completed,
            completed_height: 0,
            other_height: 0,
            x: 0,
        });
    }
    let top = bars
        .iter()
        .map(|b| b.completed + b.other)
        .max()
        .unwrap_or(0)
        .max(1);
    for (i, bar) in bars.iter_mut().enumerate() {
        bar.completed_height = bar.completed * 100 / top;
        bar.other_height = bar.other * 100 / top;
        bar.x = 30 + i as i64 * 40;
    }
    Ok(bars)
}

#[derive(Deserialize)]
struct DashboardQuery {
    sort: Option<String>,
    /// Show every student, not only the first 200 in the chosen order.
    all: Option<String>,
}

/// Rows shown before "show all": the ones a leader acts on come first.
const WORKLOAD_ROWS_SHOWN: usize = 200;

#[derive(Serialize)]
struct Unreachable {
    id: i64,
    given_name: String,
    failed_attempts: i32,
    last_call_at: Option<DateTime<Utc>>,
}

#[get("/dashboard")]
async fn dashboard_page(
    user: Page<Leaders>,
    state: web::Data<AppState>,
    query: web::Query<DashboardQuery>,
) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let tz = state.settings.timezone;
    let who = user.0.clone();
    let read_at = now.naive_utc();
    let (mut rows, unassigned, queue, concerns_open, unreachable, bars) =
        crate::audit::read_recorded(&state.db, read_at, move |c| {
            let today = schedule::local_date(now, tz);
            let rows = workload::workload(c, now, tz)?;
            let unassigned = (
                crate::pairing::unassigned(c, WAITING_SHOWN)?,
                crate::pairing::unassigned_count(c)?,
            );
            let queue = crate::discharge::queue(c, &who, today)?;
            let concerns_open = open_concerns(c, &who)?;
            let unreachable: Vec<Unreachable> = patients::table
                .filter(patients::status.eq(PatientStatus::Active.as_str()))
                .filter(patients::failed_attempts.ge(UNREACHABLE_AFTER as i32))
                .order(patients::last_call_at)
                .limit(100)
                .select((
                    patients::id,
                    patients::given_name,
                    patients::failed_attempts,
                    patients::last_call_at,
                ))
                .load::<(i64, String, i32, Option<chrono::NaiveDateTime>)>(c)?
                .into_iter()
                .map(|r| Unreachable {
                    id: r.0,
                    given_name: r.1,
                    failed_attempts: r.2,
                    last_call_at: r.3.map(|t| t.and_utc()),
                })
                .collect();
            let bars = calls_per_week(c, now, tz)?;
            let entry = who.audit("dashboard.read", "patient_list", None, None);
            Ok((
                (rows, unassigned, queue, concerns_open, unreachable, bars),
                Some(entry),
            ))
        })
        .await?;
    let sort = query.sort.clone().unwrap_or_default();
    workload::sort(&mut rows, &sort);
    let total = rows.len();
    if query.all.is_none() {
        rows.truncate(WORKLOAD_ROWS_SHOWN);
    }
    let mut context = page_context(&state, &user);
    context.insert("rows", &rows);
    context.insert("students_total", &total);
    context.insert("sort", &sort);
    context.insert("unassigned", &unassigned.0);
    context.insert("waiting_total", &unassigned.1);
    context.insert(
        "waiting_more",
        &(unassigned.1 - unassigned.0.len() as i64).max(0),
    );
    context.insert("queue", &queue);
    context.insert("concerns", &concerns_open);
    context.insert("unreachable", &unreachable);
    context.insert("bars", &bars);
    Ok(render("dashboard.html", &context)?)
}

/// One row per student: load, calls due this week, calls logged, completed
/// rate, overdue follow-ups, open concerns, last activity (leaders).
#[utoipa::path(get, path = "/api/v1/workload", tag = "leaders", security(("bearer" = [])),
    responses((status = 200, body = Vec<WorkloadRow>), (status = 403, body = crate::error::ErrorBody)))]
#[get("/workload")]
async fn workload_api(
    _user: Api<Leaders>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.now();
    let tz = state.settings.timezone;
    let mut rows = state
        .db
        .read(move |c| Ok(workload::workload(c, now, tz)?))
        .await?;
    workload::sort(&mut rows, "");
    Ok(HttpResponse::Ok().json(rows))
}

/// Open concerns: all for leaders, your patients' for physicians.
#[utoipa::path(get, path = "/api/v1/concerns", tag = "leaders", security(("bearer" = [])),
    responses((status = 200, body = Vec<OpenConcern>)))]
#[get("/concerns")]
async fn concerns_api(
    user: Api<LeadersOrPhysicians>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let who = user.0.clone();
    let now = state.clock.now().naive_utc();
    let rows = crate::audit::read_recorded(&state.db, now, move |c| {
        let rows = open_concerns(c, &who)?;
        let entry = who.audit("concerns.listed", "patient_list", None, None);
        Ok((rows, Some(entry)))
    })
    .await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// Acknowledges a concern the user may see, with a note; audited.
async fn acknowledge(
    state: &AppState,
    user: &Principal,
    concern_id: i64,
    note: String,
) -> Result<(), AppError> {
    let who = user.clone();
    let now = state.clock.now().naive_utc();
    state
        .db
        .write(move |c| acknowledge_concern(c, &who, concern_id, note, now))
        .await
}

/// Acknowledges in the caller's transaction: 404 (audited as a refusal) for
/// a concern the user may not see, 409 when someone already did.
pub fn acknowledge_concern(
    c: &mut crate::db::DbConn,
    who: &Principal,
    concern_id: i64,
    note: String,
    now: chrono::NaiveDateTime,
) -> Result<(), AppError> {
    let patient: Option<i64> = concerns::table
        .find(concern_id)
        .select(concerns::patient_id)
        .get_result(c)
        .optional()?;
    let Some(patient_id) = patient else {
        return Err(AppError::NotFound);
    };
    if !crate::access::can_see_patient(c, who, patient_id)? {
        crate::audit::record(
            c,
            &who.audit(
                "patient.refused",
                "concern",
                Some(concern_id),
                Some(patient_id),
            ),
            now,
        )?;
        return Err(AppError::NotFound);
    }
    let changed = diesel::update(
        concerns::table
            .filter(concerns::id.eq(concern_id))
            .filter(concerns::acknowledged_at.is_null()),
    )
    .set((
        concerns::acknowledged_at.eq(Some(now)),
        concerns::acknowledged_by.eq(Some(who.user_id)),
        concerns::acknowledgement_note.eq(Some(note)),
    ))
    .execute(c)?;
    if changed == 0 {
        return Err(AppError::Conflict(
            "this concern was already acknowledged".into(),
        ));
    }
    crate::audit::record(
        c,
        &who.audit(
            "concern.acknowledged",
            "concern",
            Some(concern_id),
            Some(patient_id),
        ),
        now,
    )?;
    Ok(())
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct AcknowledgeRequest {
    /// What was done (1 to 2,000 characters).
    note: String,
}

/// Acknowledge a concern (leaders, and physicians for their patients).
#[utoipa::path(post, path = "/api/v1/concerns/{id}/acknowledge", tag = "leaders", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = AcknowledgeRequest,
    responses((status = 204), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
#[post("/concerns/{id}/acknowledge")]
async fn acknowledge_api(
    user: Api<LeadersOrPhysicians>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    JsonFields(mut fields): JsonFields,
) -> Result<HttpResponse, AppError> {
    let note = fields.text("note", true, 2000);
    fields.finish()?;
    acknowledge(&state, &user, id.into_inner(), note.unwrap_or_default()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[post("/concerns/{id}/acknowledge")]
async fn acknowledge_from_page(
    state: web::Data<AppState>,
    form: PageForm<LeadersOrPhysicians>,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let PageForm {
        user, mut fields, ..
    } = form;
    let note = fields.text("note", true, 2000);
    fields.finish()?;
    acknowledge(&state, &user, id.into_inner(), note.unwrap_or_default()).await?;
    let back = if user.has(Role::Leader) {
        "/dashboard"
    } else {
        "/"
    };
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", back))
        .finish())
}

#[derive(Serialize)]
struct StudentPatient {
    id: i64,
    given_name: String,
    preferred_language: String,
    follow_up: String,
    flags: Vec<String>,
}

/// One student's patients, each with a link to move them to a suggested
/// student (with the hand-off note): reassignment from the dashboard.
#[get("/dashboard/students/{id}")]
async fn student_page(
    user: Page<Leaders>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let student_id = id.into_inner();
    let now = state.clock.now();
    let tz = state.settings.timezone;
    let who = user.0.clone();
    let (row, patients) = crate::audit::read_recorded(&state.db, now.naive_utc(), move |c| {
        let row = workload::workload(c, now, tz)?
            .into_iter()
            .find(|r| r.student_id == student_id)
            .ok_or(AppError::NotFound)?;
        let list = crate::web::checkins::checkins_of(c, student_id, now, tz)?;
        let entry = who.audit(
            "student_patients.listed",
            "patient_list",
            Some(student_id),
            None,
        );
        Ok(((row, list), Some(entry)))
    })
    .await?;
    let patients: Vec<StudentPatient> = patients
        .into_iter()
        .map(|p| StudentPatient {
            id: p.patient_id,
            given_name: p.given_name,
            preferred_language: p.preferred_language,
            follow_up: p.follow_up,
            flags: p.flags,
        })
        .collect();
    let mut context = page_context(&state, &user);
    context.insert("row", &row);
    context.insert("patients", &patients);
    Ok(render("dashboard_student.html", &context)?)
}
