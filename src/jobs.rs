//! The periodic work: the discharge sweep, the students' daily digest, the
//! leaders' weekly summary, and the outbox sender. It runs inside `serve` (a
//! worker thread) and as `checkin jobs run-once` for cron-style deployments.
//!
//! Each daily or weekly job is claimed for its period (a programme-time date)
//! in `job_leases` with one conditional update, in the same transaction as the
//! work, so with several instances on one database each period's work is done
//! once, and a crash leaves it undone rather than half-done.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use diesel::prelude::*;

use crate::db::schema::{
    assignments, calls, concerns, job_leases, patients, settings, user_roles, users,
};
use crate::db::DbConn;
use crate::domain::schedule::{self, FollowUp};
use crate::domain::{PatientStatus, Role};
use crate::error::AppError;
use crate::mail;
use crate::startup::AppState;

/// Programme settings an admin changes at run time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReminderSettings {
    /// Local hour (0–23) after which the day's digests go out.
    pub reminder_hour: u32,
    pub student_digest: bool,
    pub leader_weekly_summary: bool,
}

impl Default for ReminderSettings {
    fn default() -> Self {
        ReminderSettings {
            reminder_hour: 8,
            student_digest: true,
            leader_weekly_summary: true,
        }
    }
}

pub fn reminder_settings(conn: &mut DbConn) -> QueryResult<ReminderSettings> {
    let rows: Vec<(String, String)> = settings::table
        .select((settings::key, settings::value))
        .load(conn)?;
    let mut out = ReminderSettings::default();
    for (key, value) in rows {
        match key.as_str() {
            "reminder_hour" => {
                out.reminder_hour = value.parse().unwrap_or(out.reminder_hour).min(23)
            }
            "student_digest" => out.student_digest = value == "true",
            "leader_weekly_summary" => out.leader_weekly_summary = value == "true",
            _ => {}
        }
    }
    Ok(out)
}

pub fn save_reminder_settings(
    conn: &mut DbConn,
    s: &ReminderSettings,
    by: i64,
    now: NaiveDateTime,
) -> QueryResult<()> {
    for (key, value) in [
        ("reminder_hour", s.reminder_hour.to_string()),
        ("student_digest", s.student_digest.to_string()),
        ("leader_weekly_summary", s.leader_weekly_summary.to_string()),
    ] {
        diesel::delete(settings::table.filter(settings::key.eq(key))).execute(conn)?;
        diesel::insert_into(settings::table)
            .values((
                settings::key.eq(key),
                settings::value.eq(value),
                settings::updated_at.eq(now),
                settings::updated_by.eq(Some(by)),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Claims `name` for `period` (e.g. "2026-11-29"): true for exactly one
/// caller per period, in the caller's transaction.
pub fn claim_period(
    conn: &mut DbConn,
    name: &str,
    period: &str,
    holder: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let exists: i64 = job_leases::table
        .filter(job_leases::name.eq(name))
        .count()
        .get_result(conn)?;
    if exists == 0 {
        match conn {
            DbConn::Sqlite(c) => diesel::insert_into(job_leases::table)
                .values(job_leases::name.eq(name))
                .on_conflict_do_nothing()
                .execute(c)?,
            DbConn::Pg(c) => diesel::insert_into(job_leases::table)
                .values(job_leases::name.eq(name))
                .on_conflict_do_nothing()
                .execute(c)?,
        };
    }
    let claimed = diesel::update(
        job_leases::table.filter(job_leases::name.eq(name)).filter(
            job_leases::last_period
                .is_null()
                .or(job_leases::last_period.lt(period)),
        ),
    )
    .set((
        job_leases::last_period.eq(Some(period)),
        job_leases::holder.eq(Some(holder)),
        job_leases::last_completed_at.eq(Some(now)),
    ))
    .execute(conn)?;
    Ok(claimed == 1)
}

/// What one pass did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JobReport {
    pub swept: bool,
    pub final_call_marked: usize,
    pub discharge_due_marked: usize,
    pub digests: usize,
    pub weekly_summaries: usize,
}

/// Runs whatever daily and weekly work is due now. Safe to call often.
pub fn run_due(state: &AppState, holder: &str) -> Result<JobReport, AppError> {
    let now = state.clock.now();
    let tz = state.settings.timezone;
    let today = schedule::local_date(now, tz);
    let period = today.format("%Y-%m-%d").to_string();
    let mut report = JobReport::default();
    let at = now.naive_utc();
    state.db.write_blocking(|c| {
        if claim_period(c, "discharge_sweep", &period, holder, at)? {
            report.swept = true;
            (report.final_call_marked, report.discharge_due_marked) = sweep(c, today)?;
        }
        Ok(())
    })?;
    let reminders = state.db.read_blocking(|c| Ok(reminder_settings(c)?))?;
    let local_hour = now.with_timezone(&tz).hour();
    if local_hour >= reminders.reminder_hour {
        let base = state.settings.base_url.clone();
        if reminders.student_digest {
            report.digests = state.db.write_blocking(|c| {
                if !claim_period(c, "student_digest", &period, holder, at)? {
                    return Ok(0);
                }
                queue_digests(c, now, tz, &base)
            })?;
        }
        if reminders.leader_weekly_summary && today.weekday() == Weekday::Mon {
            report.weekly_summaries = state.db.write_blocking(|c| {
                if !claim_period(c, "leader_weekly_summary", &period, holder, at)? {
                    return Ok(0);
                }
                queue_weekly_summaries(c, now, tz, &base)
            })?;
        }
    }
    Ok(report)
}

/// Marks patients entering their final week and reaching the discharge point
/// (rule 6). The flags shown are computed from dates; these columns record
/// when the programme noticed.
pub fn sweep(c: &mut DbConn, today: NaiveDate) -> QueryResult<(usize, usize)> {
    let final_call = diesel::update(
        patients::table
            .filter(patients::status.eq(PatientStatus::Active.as_str()))
            .filter(patients::final_call_since.is_null())
            .filter(
                patients::discharge_due_on.le(today + Duration::days(schedule::FINAL_CALL_DAYS)),
            ),
    )
    .set(patients::final_call_since.eq(Some(today)))
    .execute(c)?;
    let due = diesel::update(
        patients::table
            .filter(patients::status.eq(PatientStatus::Active.as_str()))
            .filter(patients::discharge_due_since.is_null())
            .filter(patients::discharge_due_on.le(today)),
    )
    .set(patients::discharge_due_since.eq(Some(today)))
    .execute(c)?;
    Ok((final_call, due))
}

/// Due and overdue follow-ups per student today.
pub fn due_counts(
    c: &mut DbConn,
    today: NaiveDate,
    tz: Tz,
) -> QueryResult<HashMap<i64, (i64, i64)>> {
    type Row = (i64, Option<NaiveDateTime>, NaiveDate, Option<NaiveDateTime>);
    let rows: Vec<Row> = assignments::table
        .inner_join(patients::table)
        .filter(assignments::ended_at.is_null())
        .filter(patients::status.eq(PatientStatus::Active.as_str()))
        .select((
            assignments::student_id,
            patients::next_call_at,
            patients::enrolled_on,
            patients::last_call_at,
        ))
        .load(c)?;
    let mut counts: HashMap<i64, (i64, i64)> = HashMap::new();
    for (student, next, enrolled_on, last) in rows {
        match schedule::follow_up(
            next.map(|t| t.and_utc()),
            enrolled_on,
            last.is_some(),
            today,
            tz,
        ) {
            FollowUp::Due => counts.entry(student).or_default().0 += 1,
            FollowUp::Overdue => counts.entry(student).or_default().1 += 1,
            _ => {}
        }
    }
    Ok(counts)
}

fn enabled_with_role(c: &mut DbConn, role: Role) -> QueryResult<Vec<(i64, String, String)>> {
    users::table
        .inner_join(user_roles::table)
        .filter(user_roles::role.eq(role.as_str()))
        .filter(users::disabled_at.is_null())
        .select((users::id, users::email, users::given_name))
        .load(c)
}

/// One digest per student with something due: counts and a link, no names.
fn queue_digests(
    c: &mut DbConn,
    now: DateTime<Utc>,
    tz: Tz,
    base: &str,
) -> Result<usize, AppError> {
    let today = schedule::local_date(now, tz);
    let counts = due_counts(c, today, tz)?;
    let mut queued = 0;
    for (id, email, given_name) in enabled_with_role(c, Role::Student)? {
        let Some(&(due, overdue)) = counts.get(&id) else {
            continue;
        };
        let mut context = tera::Context::new();
        context.insert("greeting", &given_name);
        context.insert("due", &due);
        context.insert("overdue", &overdue);
        context.insert("link", &format!("{base}/checkins"));
        let email = mail::compose(
            "student_digest",
            format!("digest:{id}:{today}"),
            Some(id),
            &email,
            &context,
        )?;
        if mail::enqueue(c, &email, now.naive_utc())? {
            queued += 1;
        }
    }
    Ok(queued)
}

/// The leaders' Monday summary: counts for the programme, a link.
fn queue_weekly_summaries(
    c: &mut DbConn,
    now: DateTime<Utc>,
    tz: Tz,
    base: &str,
) -> Result<usize, AppError> {
    let today = schedule::local_date(now, tz);
    let week_ago = (now - Duration::days(7)).naive_utc();
    let active: i64 = patients::table
        .filter(patients::status.eq("active"))
        .count()
        .get_result(c)?;
    let calls_made: i64 = calls::table
        .filter(calls::occurred_at.ge(week_ago))
        .count()
        .get_result(c)?;
    let completed: i64 = calls::table
        .filter(calls::occurred_at.ge(week_ago))
        .filter(calls::outcome.eq("completed"))
        .count()
        .get_result(c)?;
    let open_urgent: i64 = concerns::table
        .filter(concerns::level.eq("urgent"))
        .filter(concerns::acknowledged_at.is_null())
        .count()
        .get_result(c)?;
    let at_discharge: i64 = patients::table
        .filter(patients::status.eq("active"))
        .filter(patients::discharge_due_on.le(today))
        .count()
        .get_result(c)?;
    let overdue: i64 = due_counts(c, today, tz)?.values().map(|v| v.1).sum();
    let mut context = tera::Context::new();
    context.insert("calls_made", &calls_made);
    context.insert("completed", &completed);
    context.insert("active", &active);
    context.insert("overdue", &overdue);
    context.insert("open_urgent", &open_urgent);
    context.insert("at_discharge", &at_discharge);
    context.insert("link", &format!("{base}/"));
    let mut queued = 0;
    for (id, email, given_name) in enabled_with_role(c, Role::Leader)? {
        context.insert("greeting", &given_name);
        let email = mail::compose(
            "leader_weekly_summary",
            format!("weekly:{id}:{today}"),
            Some(id),
            &email,
            &context,
        )?;
        if mail::enqueue(c, &email, now.naive_utc())? {
            queued += 1;
        }
    }
    Ok(queued)
}

/// A name for this process in leases: host, process id and a random part.
pub fn holder_name() -> String {
    let host = hostname_or_unknown();
    format!(
        "{host}:{}:{}",
        std::process::id(),
        crate::auth::random_token(4)
    )
}

fn hostname_or_unknown() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "checkin".into())
}

/// One pass of everything: the due jobs, then the outbox.
pub fn run_once(
    state: &AppState,
    transport: &mail::sender::Transport,
    holder: &str,
) -> Result<(JobReport, mail::sender::DrainReport), AppError> {
    let jobs = run_due(state, holder)?;
    let clock = state.clock.clone();
    let sent = mail::sender::drain(
        &state.db,
        transport,
        &state.settings.mail_from,
        holder,
        move || clock.now(),
    )?;
    Ok((jobs, sent))
}

/// The worker inside `serve`: the outbox every 5 seconds, the rest every
/// minute. Errors are logged and the loop goes on (a database outage must not
/// stop the sender for good).
pub fn spawn_worker(state: AppState) -> std::io::Result<()> {
    let transport = match mail::sender::Transport::from_settings(&state.settings) {
        Ok(t) => t,
        Err(e) => return Err(std::io::Error::other(e)),
    };
    tracing::info!("emails go to {}", transport.describe());
    let holder = holder_name();
    std::thread::Builder::new()
        .name("checkin-jobs".into())
        .spawn(move || {
            let mut tick: u64 = 0;
            loop {
                if tick % 12 == 0 {
                    if let Err(e) = run_due(&state, &holder) {
                        tracing::warn!(error = %e, "background jobs failed; retrying in a minute");
                    }
                }
                let clock = state.clock.clone();
                if let Err(e) = mail::sender::drain(
                    &state.db,
                    &transport,
                    &state.settings.mail_from,
                    &holder,
                    move || clock.now(),
                ) {
                    tracing::warn!(error = %e, "outbox drain failed; retrying");
                }
                tick = tick.wrapping_add(1);
                std::thread::sleep(std::time::Duration::from_secs(5));
            }
        })?;
    Ok(())
}
