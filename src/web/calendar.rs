//! A student's private calendar feed (iCalendar) of their next calls, at a
//! secret URL they can revoke from their account page. Events carry first
//! names only: a calendar app is not a place for patient records.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::auth::{random_token, token_hash};
use crate::db::schema::{assignments, patients, user_roles, users};
use crate::domain::{PatientStatus, Role};
use crate::error::{AppError, PageError};
use crate::startup::AppState;
use crate::web::identity::{PageForm, Students};
use crate::web::pages::{page_context, render};

pub fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(new_feed).service(revoke_feed).service(feed);
}

#[post("/account/calendar")]
async fn new_feed(
    state: web::Data<AppState>,
    form: PageForm<Students>,
) -> Result<HttpResponse, PageError> {
    let user = form.user;
    let token = random_token(32);
    let hash = token_hash(&token);
    let (id, now) = (user.user_id, state.clock.now().naive_utc());
    state
        .db
        .write(move |c| {
            diesel::update(users::table.find(id))
                .set(users::calendar_token_hash.eq(Some(hash)))
                .execute(c)?;
            Ok(())
        })
        .await?;
    let _ = now;
    let mut context = page_context(&state, &user);
    context.insert("title", "Your calendar feed");
    context.insert(
        "message",
        &format!(
            "Add this address to your calendar app as a subscription. It shows your next calls with first names only. Keep it private; making a new one or revoking it stops this one. {}/calendar/{token}.ics",
            state.settings.base_url
        ),
    );
    context.insert("link", "/account");
    context.insert("link_text", "Back to your account");
    Ok(render("message.html", &context)?)
}

#[post("/account/calendar/revoke")]
async fn revoke_feed(
    state: web::Data<AppState>,
    form: PageForm<Students>,
) -> Result<HttpResponse, PageError> {
    let id = form.user.user_id;
    state
        .db
        .write(move |c| {
            diesel::update(users::table.find(id))
                .set(users::calendar_token_hash.eq(None::<String>))
                .execute(c)?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", "/account"))
        .finish())
}

/// Text escaped for an iCalendar value (RFC 5545 §3.3.11).
fn ical_text(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace(['\r', '\n'], " ")
}

fn ical_time(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// The feed. An unknown or revoked token is a 404 like any other.
#[get("/calendar/{token}.ics")]
async fn feed(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let hash = token_hash(&token);
    let now = state.clock.now();
    let events = state
        .db
        .write(move |c| {
            let user: Option<i64> = users::table
                .inner_join(user_roles::table)
                .filter(users::calendar_token_hash.eq(&hash))
                .filter(users::disabled_at.is_null())
                .filter(user_roles::role.eq(Role::Student.as_str()))
                .select(users::id)
                .get_result(c)
                .optional()?;
            let Some(user_id) = user else {
                return Err(AppError::NotFound);
            };
            let rows: Vec<(i64, String, Option<chrono::NaiveDateTime>)> = patients::table
                .inner_join(assignments::table)
                .filter(assignments::student_id.eq(user_id))
                .filter(assignments::ended_at.is_null())
                .filter(patients::status.eq(PatientStatus::Active.as_str()))
                .filter(patients::next_call_at.is_not_null())
                .select((patients::id, patients::given_name, patients::next_call_at))
                .order(patients::next_call_at)
                .load(c)?;
            let entry = crate::audit::AuditEntry {
                user_id: Some(user_id),
                action: "calendar.read",
                record_type: "patient_list",
                request_id: String::new(),
                ..Default::default()
            };
            crate::audit::record(c, &entry, now.naive_utc())?;
            Ok(rows)
        })
        .await?;
    let host = state
        .settings
        .base_url
        .split("://")
        .nth(1)
        .unwrap_or("checkin")
        .to_string();
    let mut out = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//checkin//check-in calls//EN\r\nCALSCALE:GREGORIAN\r\nX-WR-CALNAME:checkin calls\r\n");
    for (patient_id, given_name, next) in events {
        let Some(next) = next.map(|t| t.and_utc()) else {
            continue;
        };
        out.push_str("BEGIN:VEVENT\r\n");
        out.push_str(&format!(
            "UID:checkin-{patient_id}-{}@{host}\r\n",
            ical_time(next)
        ));
        out.push_str(&format!("DTSTAMP:{}\r\n", ical_time(now)));
        out.push_str(&format!("DTSTART:{}\r\n", ical_time(next)));
        out.push_str("DURATION:PT30M\r\n");
        out.push_str(&format!(
            "SUMMARY:{}\r\n",
            ical_text(&format!("Check-in call: {given_name}"))
        ));
        out.push_str(&format!(
            "DESCRIPTION:{}\r\n",
            ical_text(&format!(
                "Open checkin to call: {}/patients/{patient_id}/call",
                state.settings.base_url
            ))
        ));
        out.push_str("END:VEVENT\r\n");
    }
    out.push_str("END:VCALENDAR\r\n");
    Ok(HttpResponse::Ok()
        .content_type("text/calendar; charset=utf-8")
        .body(out))
}
