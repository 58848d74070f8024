//! The programme report for a date range, printable: patients enrolled,
//! discharged and why, calls made and completed, calls per patient, the
//! resources shared most, interpreter use, and active patients week by week.

use actix_web::{get, web, HttpResponse};
use chrono::{Duration, NaiveDate};
use diesel::dsl::{count, count_star};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::schema::{call_resources, calls, patients};
use crate::domain::schedule;
use crate::error::PageError;
use crate::startup::AppState;
use crate::web::identity::{Leaders, Page};
use crate::web::pages::{page_context, render};

pub fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(report_page);
}

#[derive(Deserialize)]
struct Range {
    from: Option<String>,
    to: Option<String>,
}

#[derive(Serialize, Default)]
struct Report {
    enrolled: i64,
    discharged: Vec<(String, i64)>,
    calls: i64,
    completed: i64,
    patients_called: i64,
    calls_per_patient: f64,
    interpreter_calls: i64,
    resources: Vec<(String, i64)>,
    weeks: Vec<WeekPoint>,
}

#[derive(Serialize)]
struct WeekPoint {
    label: String,
    active: i64,
    interpreter: i64,
    x: i64,
    active_height: i64,
    interpreter_height: i64,
}

#[get("/reports")]
async fn report_page(
    user: Page<Leaders>,
    state: web::Data<AppState>,
    range: web::Query<Range>,
) -> Result<HttpResponse, PageError> {
    let tz = state.settings.timezone;
    let today = schedule::local_date(state.clock.now(), tz);
    let mut problems = Vec::new();
    let mut day = |name: &str, v: &Option<String>, default: NaiveDate| match v
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => default,
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_else(|_| {
            problems.push(format!("{name} must be a date such as 2026-11-29"));
            default
        }),
    };
    let from = day("from", &range.from, today - Duration::weeks(8));
    let to = day("to", &range.to, today);
    let (from, to) = if from > to { (to, from) } else { (from, to) };
    let start = schedule::start_of_day(from, tz).naive_utc();
    let end = schedule::start_of_day(to + Duration::days(1), tz).naive_utc();
    let protocol = state.protocol.clone();
    let report = state
        .db
        .read(move |c| {
            let mut r = Report {
                enrolled: patients::table
                    .filter(patients::enrolled_on.between(from, to))
                    .count()
                    .get_result(c)?,
                ..Report::default()
            };
            r.discharged = patients::table
                .filter(patients::discharged_at.ge(start))
                .filter(patients::discharged_at.lt(end))
                .group_by(patients::discharge_reason)
                .select((patients::discharge_reason, count_star()))
                .load::<(Option<String>, i64)>(c)?
                .into_iter()
                .map(|(reason, n)| (reason.unwrap_or_default(), n))
                .collect();
            let in_range = calls::table
                .filter(calls::occurred_at.ge(start))
                .filter(calls::occurred_at.lt(end));
            r.calls = in_range.count().get_result(c)?;
            r.completed = in_range
                .filter(calls::outcome.eq("completed"))
                .count()
                .get_result(c)?;
            r.patients_called = in_range
                .select(count(calls::patient_id).aggregate_distinct())
                .get_result(c)?;
            r.calls_per_patient = if r.patients_called > 0 {
                r.calls as f64 / r.patients_called as f64
            } else {
                0.0
            };
            r.interpreter_calls = in_range
                .filter(calls::interpreter_used.eq(true))
                .count()
                .get_result(c)?;
            let mut shared: Vec<(String, i64)> = call_resources::table
                .inner_join(calls::table)
                .filter(calls::occurred_at.ge(start))
                .filter(calls::occurred_at.lt(end))
                .group_by(call_resources::resource_id)
                .select((call_resources::resource_id, count_star()))
                .load(c)?;
            shared.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
            shared.truncate(10);
            r.resources = shared
                .into_iter()
                .map(|(id, n)| {
                    (
                        protocol
                            .resource(&id)
                            .map_or(id.clone(), |res| res.name.clone()),
                        n,
                    )
                })
                .collect();
            // Week by week, at most 12 weeks ending with the range.
            let mut week = schedule::week_start(to);
            let mut points = Vec::new();
            while points.len() < 12 && week + Duration::days(6) >= from {
                let (w_start, w_end) = schedule::week_bounds_utc(week, tz);
                let last_day = week + Duration::days(6);
                let active: i64 = patients::table
                    .filter(patients::enrolled_on.le(last_day))
                    .filter(
                        patients::discharged_at
                            .is_null()
                            .or(patients::discharged_at.ge(w_end.naive_utc())),
                    )
                    .count()
                    .get_result(c)?;
                let interpreter: i64 = calls::table
                    .filter(calls::occurred_at.ge(w_start.naive_utc()))
                    .filter(calls::occurred_at.lt(w_end.naive_utc()))
                    .filter(calls::interpreter_used.eq(true))
                    .count()
                    .get_result(c)?;
                points.push(WeekPoint {
                    label: week.format("%-d %b").to_string(),
                    active,
                    interpreter,
                    x: 0,
                    active_height: 0,
                    interpreter_height: 0,
                });
                week -= Duration::weeks(1);
            }
            points.reverse();
            let top_active = points.iter().map(|p| p.active).max().unwrap_or(0).max(1);
            let top_interp = points
                .iter()
                .map(|p| p.interpreter)
                .max()
                .unwrap_or(0)
                .max(1);
            for (i, p) in points.iter_mut().enumerate() {
                p.x = 30 + i as i64 * 40;
                p.active_height = p.active * 100 / top_active;
                p.interpreter_height = p.interpreter * 100 / top_interp;
            }
            r.weeks = points;
            Ok(r)
        })
        .await?;
    let mut context = page_context(&state, &user);
    context.insert("report", &report);
    context.insert("from", &from);
    context.insert("to", &to);
    context.insert("problems", &problems);
    Ok(render("report.html", &context)?)
}
