//! The workload table of SPEC.md: one row per student, so leaders see who is
//! overloaded, drifting or behind.
//!
//! Choices where SPEC.md is silent: "calls due this week" counts the
//! student's active patients whose follow-up falls due in this programme week
//! (Monday–Sunday in programme time) or is due or overdue now (a new patient's
//! first call is due from enrolment), a biweekly patient
//! counting half; the completed-call rate is over the last 28 days; last
//! activity is the student's most recent logged call.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;
use diesel::dsl::count_star;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::concerns;
use crate::db::DbConn;
use crate::domain::schedule::{self, FollowUp};
use crate::domain::Cadence;
use crate::pairing::student_loads_and_patients;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WorkloadRow {
    pub student_id: i64,
    pub given_name: String,
    pub family_name: String,
    pub languages: Vec<String>,
    pub capacity: i32,
    /// Weekly patients count 1, biweekly 0.5.
    pub weighted_load: f64,
    pub active_patients: i64,
    /// Follow-ups due this programme week or overdue; biweekly patients count half.
    pub calls_due_this_week: f64,
    pub calls_last_7_days: i64,
    /// Completed calls over all calls logged in the last 28 days; null with no calls.
    pub completed_rate: Option<f64>,
    pub overdue_follow_ups: i64,
    pub open_concerns: i64,
    pub last_activity: Option<DateTime<Utc>>,
    pub over_capacity: bool,
    /// Has patients but logged no call for 7 days or more.
    pub idle: bool,
}

/// The whole table, in one pass of a few grouped queries.
pub fn workload(c: &mut DbConn, now: DateTime<Utc>, tz: Tz) -> QueryResult<Vec<WorkloadRow>> {
    let today = schedule::local_date(now, tz);
    let week_end = schedule::week_start(today) + Duration::days(7);
    let (loads, active) = student_loads_and_patients(c, today, tz)?;
    let mut due_week: HashMap<i64, f64> = HashMap::new();
    for a in active {
        let next = a.next_call_at.map(|t| t.and_utc());
        let weight = a.cadence.parse::<Cadence>().map_or(1.0, Cadence::weight);
        let had_call = a.last_call_at.is_some();
        let state = schedule::follow_up(next, a.enrolled_on, had_call, today, tz);
        let due_day = schedule::follow_up_due_on(next, a.enrolled_on, had_call, tz);
        let due_now = matches!(state, FollowUp::Due | FollowUp::Overdue);
        if due_now || due_day.is_some_and(|d| d < week_end) {
            *due_week.entry(a.student_id).or_default() += weight;
        }
    }
    let stats = recent_call_stats(c, now)?;
    let last = last_calls(c)?;
    let open: HashMap<i64, i64> = concerns::table
        .filter(concerns::acknowledged_at.is_null())
        .group_by(concerns::raised_by)
        .select((concerns::raised_by, count_star()))
        .load::<(i64, i64)>(c)?
        .into_iter()
        .collect();
    Ok(loads
        .into_iter()
        .map(|l| {
            let id = l.student_id;
            let (recent, all, done) = stats.get(&id).copied().unwrap_or_default();
            let last_activity = last.get(&id).copied().flatten().map(|t| t.and_utc());
            let idle =
                l.active_patients > 0 && last_activity.is_none_or(|t| now - t >= Duration::days(7));
            WorkloadRow {
                student_id: id,
                calls_due_this_week: due_week.get(&id).copied().unwrap_or(0.0),
                calls_last_7_days: recent,
                completed_rate: (all > 0).then(|| done as f64 / all as f64),
                open_concerns: open.get(&id).copied().unwrap_or(0),
                over_capacity: l.weighted_load > f64::from(l.capacity),
                idle,
                last_activity,
                given_name: l.given_name,
                family_name: l.family_name,
                languages: l.languages,
                capacity: l.capacity,
                weighted_load: l.weighted_load,
                active_patients: l.active_patients,
                overdue_follow_ups: l.overdue_follow_ups,
            }
        })
        .collect())
}

#[derive(QueryableByName)]
struct CallStats {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    student_id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    last_7_days: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    last_28_days: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    completed_28_days: i64,
}

/// Calls per student in the last 7 and 28 days and completed in 28, in one
/// range scan of `calls_recent_idx` (bound parameters, portable SQL). Grouping
/// by `student_id + 0` keeps SQLite from walking the per-student index over
/// every call ever logged instead.
fn recent_call_stats(
    c: &mut DbConn,
    now: DateTime<Utc>,
) -> QueryResult<HashMap<i64, (i64, i64, i64)>> {
    use diesel::sql_types::Timestamp;
    let rows: Vec<CallStats> = diesel::sql_query(
        "SELECT CAST(student_id + 0 AS BIGINT) AS student_id, \
                CAST(SUM(CASE WHEN occurred_at >= $1 THEN 1 ELSE 0 END) AS BIGINT) AS last_7_days, \
                CAST(COUNT(*) AS BIGINT) AS last_28_days, \
                CAST(SUM(CASE WHEN outcome = 'completed' THEN 1 ELSE 0 END) AS BIGINT) AS completed_28_days \
         FROM calls WHERE occurred_at >= $2 GROUP BY student_id + 0",
    )
    .bind::<Timestamp, _>((now - Duration::days(7)).naive_utc())
    .bind::<Timestamp, _>((now - Duration::days(28)).naive_utc())
    .load(c)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.student_id,
                (r.last_7_days, r.last_28_days, r.completed_28_days),
            )
        })
        .collect())
}

#[derive(QueryableByName)]
struct LastCall {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    student_id: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
    last_call: Option<NaiveDateTime>,
}

/// Each student's latest call: one index probe per student on
/// (student_id, occurred_at) instead of grouping every call ever logged.
fn last_calls(c: &mut DbConn) -> QueryResult<HashMap<i64, Option<NaiveDateTime>>> {
    let rows: Vec<LastCall> = diesel::sql_query(
        "SELECT r.user_id AS student_id, \
                (SELECT MAX(occurred_at) FROM calls WHERE calls.student_id = r.user_id) AS last_call \
         FROM user_roles r WHERE r.role = 'student'",
    )
    .load(c)?;
    Ok(rows
        .into_iter()
        .map(|r| (r.student_id, r.last_call))
        .collect())
}

/// Sorts by a column name from the page (`?sort=overdue`); unknown names
/// keep the default (most overdue first, then highest load).
pub fn sort(rows: &mut [WorkloadRow], column: &str) {
    match column {
        "name" => rows.sort_by(|a, b| {
            a.given_name
                .cmp(&b.given_name)
                .then(a.family_name.cmp(&b.family_name))
        }),
        "load" => rows.sort_by(|a, b| {
            (b.weighted_load / f64::from(b.capacity.max(1)))
                .total_cmp(&(a.weighted_load / f64::from(a.capacity.max(1))))
        }),
        "due" => rows.sort_by(|a, b| b.calls_due_this_week.total_cmp(&a.calls_due_this_week)),
        "recent" => rows.sort_by_key(|r| r.calls_last_7_days),
        "rate" => rows.sort_by(|a, b| {
            a.completed_rate
                .unwrap_or(-1.0)
                .total_cmp(&b.completed_rate.unwrap_or(-1.0))
        }),
        "concerns" => rows.sort_by_key(|r| std::cmp::Reverse(r.open_concerns)),
        "activity" => rows.sort_by_key(|r| r.last_activity),
        _ => rows.sort_by(|a, b| {
            b.overdue_follow_ups
                .cmp(&a.overdue_follow_ups)
                .then(b.weighted_load.total_cmp(&a.weighted_load))
        }),
    }
}
