//! Debriefs: leaders schedule a session, record who attended and the
//! challenges and successes shared. Its agenda lists the calls flagged by
//! students or carrying a concern since the previous debrief was held.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::{calls, debrief_attendance, debriefs, patients, user_roles, users};
use crate::domain::Role;
use crate::error::{AppError, PageError};
use crate::startup::AppState;
use crate::web::identity::{Api, Leaders, Page, PageForm, Principal};
use crate::web::input::Fields;
use crate::web::pages::{page_context, render};

pub fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list_page)
        .service(schedule)
        .service(debrief_page)
        .service(save);
}

pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list_api);
}

#[derive(Debug, Clone, Serialize, Queryable, utoipa::ToSchema)]
pub struct Debrief {
    pub id: i64,
    pub scheduled_for: NaiveDateTime,
    pub title: String,
    pub location: String,
    pub led_by: i64,
    pub challenges: String,
    pub successes: String,
    pub notes: String,
    pub held_at: Option<NaiveDateTime>,
}

fn columns() -> (
    debriefs::id,
    debriefs::scheduled_for,
    debriefs::title,
    debriefs::location,
    debriefs::led_by,
    debriefs::challenges,
    debriefs::successes,
    debriefs::notes,
    debriefs::held_at,
) {
    (
        debriefs::id,
        debriefs::scheduled_for,
        debriefs::title,
        debriefs::location,
        debriefs::led_by,
        debriefs::challenges,
        debriefs::successes,
        debriefs::notes,
        debriefs::held_at,
    )
}

/// Debriefs, newest scheduled first (leaders).
#[utoipa::path(get, path = "/api/v1/debriefs", tag = "leaders", security(("bearer" = [])),
    responses((status = 200, body = Vec<Debrief>)))]
#[get("/debriefs")]
async fn list_api(
    _user: Api<Leaders>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let rows = state
        .db
        .read(|c| {
            Ok(debriefs::table
                .order(debriefs::scheduled_for.desc())
                .limit(200)
                .select(columns())
                .load::<Debrief>(c)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(rows))
}

async fn list_response(
    state: &AppState,
    user: &Principal,
    fields: Option<&Fields>,
) -> Result<HttpResponse, PageError> {
    let rows = state
        .db
        .read(|c| {
            Ok(debriefs::table
                .order(debriefs::scheduled_for.desc())
                .limit(200)
                .select(columns())
                .load::<Debrief>(c)?)
        })
        .await?;
    let mut context = page_context(state, user);
    context.insert("debriefs", &rows);
    context.insert(
        "errors",
        &fields.map(|f| f.errors().clone()).unwrap_or_default(),
    );
    context.insert("entered", &fields.map(Fields::entered));
    Ok(render("debriefs.html", &context)?)
}

#[get("/debriefs")]
async fn list_page(
    user: Page<Leaders>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    list_response(&state, &user, None).await
}

#[post("/debriefs")]
async fn schedule(
    state: web::Data<AppState>,
    form: PageForm<Leaders>,
) -> Result<HttpResponse, PageError> {
    let PageForm {
        user, mut fields, ..
    } = form;
    let tz = state.settings.timezone;
    let title = fields.text("title", true, 200);
    let location = fields.text("location", false, 500).unwrap_or_default();
    let when = fields.parsed("scheduled_for", true, |t| {
        crate::calls::parse_instant(t, tz)
    });
    let (Some(title), Some(when), false) = (title, when, fields.has_errors()) else {
        let mut response = list_response(&state, &user, Some(&fields)).await?;
        *response.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(response);
    };
    let (who, now) = (user.clone(), state.clock.now().naive_utc());
    let id = state
        .db
        .write(move |c| {
            Ok(crate::insert_returning_id!(
                c,
                debriefs::table,
                (
                    debriefs::scheduled_for.eq(when.naive_utc()),
                    debriefs::title.eq(&title),
                    debriefs::location.eq(&location),
                    debriefs::led_by.eq(who.user_id),
                    debriefs::created_at.eq(now),
                    debriefs::updated_at.eq(now),
                ),
                debriefs::id
            )?)
        })
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", format!("/debriefs/{id}")))
        .finish())
}

/// A call on a debrief's agenda.
#[derive(Debug, Clone, Serialize)]
pub struct AgendaItem {
    pub call_id: i64,
    pub patient_id: i64,
    pub patient_given_name: String,
    pub student_given_name: String,
    pub occurred_at: DateTime<Utc>,
    pub outcome: String,
    pub concern: String,
    pub flagged: bool,
}

/// Calls flagged for a debrief or with a concern, since the last debrief held
/// before this one.
pub fn agenda(c: &mut crate::db::DbConn, debrief: &Debrief) -> QueryResult<Vec<AgendaItem>> {
    let since: Option<NaiveDateTime> = debriefs::table
        .filter(debriefs::held_at.is_not_null())
        .filter(debriefs::scheduled_for.lt(debrief.scheduled_for))
        .select(diesel::dsl::max(debriefs::held_at))
        .get_result(c)?;
    let until = debrief
        .held_at
        .unwrap_or(debrief.scheduled_for)
        .max(debrief.scheduled_for);
    type Row = (
        i64,
        i64,
        String,
        String,
        NaiveDateTime,
        String,
        String,
        bool,
    );
    let mut q = calls::table
        .inner_join(patients::table.on(patients::id.eq(calls::patient_id)))
        .inner_join(users::table.on(users::id.eq(calls::student_id)))
        .into_boxed();
    // NaiveDateTime::MIN is outside PostgreSQL's range: no lower bound instead.
    if let Some(since) = since {
        q = q.filter(calls::occurred_at.gt(since));
    }
    let rows: Vec<Row> = q
        .filter(calls::occurred_at.le(until))
        .filter(
            calls::flagged_for_debrief
                .eq(true)
                .or(calls::concern.ne("none")),
        )
        .order(calls::occurred_at)
        .limit(200)
        .select((
            calls::id,
            calls::patient_id,
            patients::given_name,
            users::given_name,
            calls::occurred_at,
            calls::outcome,
            calls::concern,
            calls::flagged_for_debrief,
        ))
        .load(c)?;
    Ok(rows
        .into_iter()
        .map(|r| AgendaItem {
            call_id: r.0,
            patient_id: r.1,
            patient_given_name: r.2,
            student_given_name: r.3,
            occurred_at: r.4.and_utc(),
            outcome: r.5,
            concern: r.6,
            flagged: r.7,
        })
        .collect())
}

#[get("/debriefs/{id}")]
async fn debrief_page(
    user: Page<Leaders>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let id = id.into_inner();
    let (debrief, agenda, students, attended) = state
        .db
        .read(move |c| {
            let debrief: Debrief = debriefs::table.find(id).select(columns()).get_result(c)?;
            let agenda = agenda(c, &debrief)?;
            let students: Vec<(i64, String, String)> = users::table
                .inner_join(user_roles::table)
                .filter(user_roles::role.eq(Role::Student.as_str()))
                .filter(users::disabled_at.is_null())
                .order((users::given_name, users::family_name))
                .select((users::id, users::given_name, users::family_name))
                .load(c)?;
            let attended: Vec<i64> = debrief_attendance::table
                .filter(debrief_attendance::debrief_id.eq(id))
                .select(debrief_attendance::student_id)
                .load(c)?;
            Ok((debrief, agenda, students, attended))
        })
        .await?;
    let mut context = page_context(&state, &user);
    context.insert("debrief", &debrief);
    context.insert("agenda", &agenda);
    context.insert("students", &students);
    context.insert("attended", &attended);
    Ok(render("debrief.html", &context)?)
}

#[post("/debriefs/{id}")]
async fn save(
    state: web::Data<AppState>,
    form: PageForm<Leaders>,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let PageForm {
        user, mut fields, ..
    } = form;
    let id = id.into_inner();
    let challenges = fields.text("challenges", false, 10_000).unwrap_or_default();
    let successes = fields.text("successes", false, 10_000).unwrap_or_default();
    let notes = fields.text("notes", false, 10_000).unwrap_or_default();
    let held = fields.boolean("held", false).unwrap_or(false);
    let attended = fields.list("attended", |s: &str| {
        s.parse::<i64>()
            .map_err(|_| format!("{s:?} is not a student id"))
    });
    fields.finish()?;
    let attended = attended.unwrap_or_default();
    let (who, now) = (user.clone(), state.clock.now().naive_utc());
    state
        .db
        .write(move |c| {
            let exists: i64 = debriefs::table
                .filter(debriefs::id.eq(id))
                .count()
                .get_result(c)?;
            if exists == 0 {
                return Err(AppError::NotFound);
            }
            let students: Vec<i64> = user_roles::table
                .filter(user_roles::role.eq(Role::Student.as_str()))
                .filter(user_roles::user_id.eq_any(&attended))
                .select(user_roles::user_id)
                .load(c)?;
            if students.len() != attended.len() {
                return Err(AppError::invalid(
                    "attended",
                    "lists someone who is not a student",
                ));
            }
            diesel::update(debriefs::table.find(id))
                .set((
                    debriefs::challenges.eq(&challenges),
                    debriefs::successes.eq(&successes),
                    debriefs::notes.eq(&notes),
                    debriefs::held_at.eq(held.then_some(now)),
                    debriefs::updated_at.eq(now),
                ))
                .execute(c)?;
            diesel::delete(debrief_attendance::table.filter(debrief_attendance::debrief_id.eq(id)))
                .execute(c)?;
            let rows: Vec<_> = students
                .iter()
                .map(|s| {
                    (
                        debrief_attendance::debrief_id.eq(id),
                        debrief_attendance::student_id.eq(*s),
                    )
                })
                .collect();
            crate::insert_batch!(c, debrief_attendance::table, rows)?;
            crate::audit::record(
                c,
                &who.audit("debrief.saved", "debrief", Some(id), None),
                now,
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", format!("/debriefs/{id}")))
        .finish())
}
