//! Logging a call (SPEC.md rules 3–9).
//!
//! Every field of rule 3 is read and checked at once; `next_call_at` must
//! follow rule 4. The call, its sections and resources, the patient's new
//! follow-up, any concern with its emails (rule 8), and the audit row are
//! written in one transaction. A retry with the same idempotency key returns
//! the first call instead of storing a second.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use serde::Serialize;

use crate::access;
use crate::audit;
use crate::db::calls::{NewCall, NewConcern};
use crate::db::schema::{
    call_resources, call_sections, calls, patients, protocol_versions, user_roles, users,
};
use crate::db::{patients as patient_rows, DbConn};
use crate::domain::schedule::{self, NextCallError};
use crate::domain::{Cadence, ConcernLevel, ContactMode, Outcome, PatientStatus, Role};
use crate::error::AppError;
use crate::mail::{self, OutgoingEmail};
use crate::protocol::Protocol;
use crate::web::identity::Principal;
use crate::web::input::Fields;

pub const NOTES_MAX_CHARS: usize = 10_000;
pub const DURATION_MAX_MINUTES: i64 = 240;
/// Calls may be logged late, up to this long after they happened.
pub const LATE_LOGGING_DAYS: i64 = 14;
/// A student may correct their call within this time.
pub const CORRECTION_WINDOW: Duration = Duration::hours(24);

/// A checked call, before the patient's schedule is applied.
#[derive(Debug, Clone)]
pub struct CallInput {
    pub occurred_at: DateTime<Utc>,
    pub mode: ContactMode,
    pub outcome: Outcome,
    pub duration_minutes: i32,
    pub interpreter_used: bool,
    pub sections: Vec<String>,
    pub resources: Vec<String>,
    pub concern: ConcernLevel,
    pub notes: String,
    pub next_call_at: Option<DateTime<Utc>>,
    pub flagged_for_debrief: bool,
}

/// A moment as the API sends it (RFC 3339) or a form does (`2026-11-30T10:00`,
/// read in programme time).
pub fn parse_instant(text: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(local) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(schedule::local_to_utc(local.date(), local.time(), tz));
        }
    }
    Err(format!(
        "{text:?} is not a date and time such as 2026-11-30T10:00:00-05:00"
    ))
}

/// Reads every call field, naming every problem in `fields`.
pub fn read(
    fields: &mut Fields,
    protocol: &Protocol,
    now: DateTime<Utc>,
    tz: Tz,
) -> Option<CallInput> {
    let occurred_at = match fields.parsed("occurred_at", false, |t| parse_instant(t, tz)) {
        Some(at) if at > now + Duration::minutes(5) => {
            fields.error("occurred_at", "cannot be in the future");
            None
        }
        Some(at) if at < now - Duration::days(LATE_LOGGING_DAYS) => {
            fields.error(
                "occurred_at",
                format!("cannot be more than {LATE_LOGGING_DAYS} days ago"),
            );
            None
        }
        Some(at) => Some(at),
        None if fields.errors().contains_key("occurred_at") => None,
        None => Some(now),
    };
    let mode = fields.choice::<ContactMode>("mode", true);
    let outcome = fields.choice::<Outcome>("outcome", true);
    let duration = fields.integer("duration_minutes", true, 0..=DURATION_MAX_MINUTES);
    let interpreter_used = fields.boolean("interpreter_used", false);
    let sections = fields.list("sections", |id: &str| {
        protocol
            .section(id)
            .map(|s| s.id.clone())
            .ok_or_else(|| format!("{id:?} is not a section of protocol {}", protocol.version))
    });
    let resources = fields.list("resources", |id: &str| {
        protocol
            .resource(id)
            .map(|r| r.id.clone())
            .ok_or_else(|| format!("{id:?} is not a resource of protocol {}", protocol.version))
    });
    let concern = fields
        .choice::<ConcernLevel>("concern", false)
        .or_else(|| (!fields.errors().contains_key("concern")).then_some(ConcernLevel::None));
    let notes = fields
        .text("notes", false, NOTES_MAX_CHARS)
        .unwrap_or_default();
    let next_call_at = fields.parsed("next_call_at", false, |t| parse_instant(t, tz));
    let flagged = fields.boolean("flagged_for_debrief", false);
    if fields.has_errors() {
        return None;
    }
    Some(CallInput {
        occurred_at: occurred_at?,
        mode: mode?,
        outcome: outcome?,
        duration_minutes: duration? as i32,
        interpreter_used: interpreter_used?,
        sections: sections?,
        resources: resources?,
        concern: concern?,
        notes,
        next_call_at,
        flagged_for_debrief: flagged?,
    })
}

/// The call as stored, returned to the caller (and to a retry).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LoggedCall {
    pub id: i64,
    pub patient_id: i64,
    pub student_id: i64,
    pub occurred_at: DateTime<Utc>,
    pub mode: String,
    pub outcome: String,
    pub duration_minutes: i32,
    pub interpreter_used: bool,
    pub protocol_version: String,
    pub sections: Vec<String>,
    pub resources: Vec<String>,
    pub concern: String,
    pub notes: String,
    pub next_call_at: Option<DateTime<Utc>>,
    pub flagged_for_debrief: bool,
}

type CallRow = (
    i64,
    i64,
    i64,
    NaiveDateTime,
    String,
    String,
    i32,
    bool,
    String,
    String,
    String,
    Option<NaiveDateTime>,
    bool,
);

/// One call with its sections and resources.
pub fn load(conn: &mut DbConn, call_id: i64) -> QueryResult<LoggedCall> {
    let r: CallRow = crate::native!(conn, |c| calls::table
        .find(call_id)
        .select((
            calls::id,
            calls::patient_id,
            calls::student_id,
            calls::occurred_at,
            calls::mode,
            calls::outcome,
            calls::duration_minutes,
            calls::interpreter_used,
            calls::protocol_version,
            calls::concern,
            calls::notes,
            calls::next_call_at,
            calls::flagged_for_debrief,
        ))
        .get_result(c))?;
    let sections = crate::native!(conn, |c| call_sections::table
        .filter(call_sections::call_id.eq(call_id))
        .select(call_sections::section_id)
        .order(call_sections::section_id)
        .load(c))?;
    let resources = crate::native!(conn, |c| call_resources::table
        .filter(call_resources::call_id.eq(call_id))
        .select(call_resources::resource_id)
        .order(call_resources::resource_id)
        .load(c))?;
    Ok(LoggedCall {
        id: r.0,
        patient_id: r.1,
        student_id: r.2,
        occurred_at: r.3.and_utc(),
        mode: r.4,
        outcome: r.5,
        duration_minutes: r.6,
        interpreter_used: r.7,
        protocol_version: r.8,
        concern: r.9,
        notes: r.10,
        next_call_at: r.11.map(|t| t.and_utc()),
        flagged_for_debrief: r.12,
        sections,
        resources,
    })
}

/// Was this student ever paired with this patient?
fn was_assigned(conn: &mut DbConn, student_id: i64, patient_id: i64) -> QueryResult<bool> {
    use crate::db::schema::assignments;
    diesel::select(diesel::dsl::exists(
        assignments::table
            .filter(assignments::patient_id.eq(patient_id))
            .filter(assignments::student_id.eq(student_id)),
    ))
    .get_result(conn)
}

/// The call this student already logged with this key, if any.
pub fn find_by_key(conn: &mut DbConn, student_id: i64, key: &str) -> QueryResult<Option<i64>> {
    crate::native!(conn, |c| calls::table
        .filter(calls::student_id.eq(student_id))
        .filter(calls::idempotency_key.eq(key))
        .select(calls::id)
        .get_result(c))
    .optional()
}

/// Everything `log` needs besides the input.
pub struct CallContext<'a> {
    pub protocol: &'a Protocol,
    pub tz: Tz,
    pub base_url: &'a str,
    pub now: DateTime<Utc>,
}

#[derive(Debug)]
pub enum Logged {
    New(LoggedCall),
    /// The same key was used before: the first call, unchanged.
    Repeat(LoggedCall),
}

/// Rule 4 for this patient: `next_call_at` against their cadence and
/// discharge point (422 on `next_call_at`).
fn check_schedule(
    patient: &patient_rows::Patient,
    input: &CallInput,
    tz: Tz,
) -> Result<(), AppError> {
    let cadence: Cadence = patient
        .cadence
        .parse()
        .map_err(|_| AppError::internal("a patient's cadence is not a cadence"))?;
    schedule::check_next_call(
        input.occurred_at,
        input.next_call_at,
        cadence,
        patient.discharge_due_on,
        tz,
    )
    .map_err(|e: NextCallError| AppError::invalid("next_call_at", e.to_string()))
}

/// Logs a call by the student assigned to the patient now, in the caller's
/// transaction. Not assigned (or no such patient): 404, and the refusal is
/// audited by the caller. Discharged: 409, nothing written.
pub fn log(
    conn: &mut DbConn,
    student: &Principal,
    patient_id: i64,
    input: &CallInput,
    key: Option<&str>,
    ctx: &CallContext<'_>,
) -> Result<Logged, AppError> {
    if let Some(key) = key {
        if let Some(existing) = find_by_key(conn, student.user_id, key)? {
            let call = load(conn, existing)?;
            if call.patient_id != patient_id {
                return Err(AppError::Conflict(
                    "this idempotency key was used for another patient's call".into(),
                ));
            }
            return Ok(Logged::Repeat(call));
        }
    }
    if !access::is_assigned_now(conn, student.user_id, patient_id)? {
        // Rule 7: the student who called a patient until discharge is told
        // why (409); anyone else learns nothing (404).
        if was_assigned(conn, student.user_id, patient_id)?
            && patient_rows::find(conn, patient_id)?
                .is_some_and(|p| p.status == PatientStatus::Discharged.as_str())
        {
            return Err(AppError::Conflict(
                "this patient has been discharged; no call can be logged".into(),
            ));
        }
        return Err(AppError::NotFound);
    }
    let patient = patient_rows::find(conn, patient_id)?.ok_or(AppError::NotFound)?;
    if patient.status != PatientStatus::Active.as_str() {
        return Err(AppError::Conflict(
            "this patient has been discharged; no call can be logged".into(),
        ));
    }
    check_schedule(&patient, input, ctx.tz)?;
    let now = ctx.now.naive_utc();
    let assignment_id: Option<i64> =
        crate::native!(conn, |c| crate::db::schema::assignments::table
            .filter(crate::db::schema::assignments::patient_id.eq(patient_id))
            .filter(crate::db::schema::assignments::ended_at.is_null())
            .select(crate::db::schema::assignments::id)
            .get_result(c))
        .optional()?;
    ensure_protocol_version(conn, ctx.protocol, now)?;
    let call_id = crate::insert_returning_id!(
        conn,
        calls::table,
        NewCall {
            id: None,
            patient_id,
            student_id: student.user_id,
            assignment_id,
            occurred_at: input.occurred_at.naive_utc(),
            mode: input.mode,
            outcome: input.outcome,
            duration_minutes: input.duration_minutes,
            interpreter_used: input.interpreter_used,
            protocol_version: &ctx.protocol.version,
            concern: input.concern,
            notes: &input.notes,
            next_call_at: input.next_call_at.map(|t| t.naive_utc()),
            flagged_for_debrief: input.flagged_for_debrief,
            idempotency_key: key,
            created_at: now,
            updated_at: now,
        },
        calls::id
    )?;
    write_children(conn, call_id, &input.sections, &input.resources)?;
    update_follow_up(conn, &patient, input, now)?;
    if input.concern != ConcernLevel::None {
        raise_concern(conn, student, &patient, call_id, input.concern, ctx)?;
    }
    // Read back before the audit row: on PostgreSQL, recording it locks the
    // chain head until the commit, so nothing else should run after it.
    let logged = load(conn, call_id)?;
    audit::record(
        conn,
        &student.audit("call.logged", "call", Some(call_id), Some(patient_id)),
        now,
    )?;
    Ok(Logged::New(logged))
}

fn write_children(
    conn: &mut DbConn,
    call_id: i64,
    sections: &[String],
    resources: &[String],
) -> QueryResult<()> {
    #[derive(Insertable)]
    #[diesel(table_name = call_sections)]
    struct S<'a> {
        call_id: i64,
        section_id: &'a str,
    }
    #[derive(Insertable)]
    #[diesel(table_name = call_resources)]
    struct R<'a> {
        call_id: i64,
        resource_id: &'a str,
    }
    let s: Vec<S> = sections
        .iter()
        .map(|id| S {
            call_id,
            section_id: id,
        })
        .collect();
    let r: Vec<R> = resources
        .iter()
        .map(|id| R {
            call_id,
            resource_id: id,
        })
        .collect();
    crate::insert_batch!(conn, call_sections::table, s)?;
    crate::insert_batch!(conn, call_resources::table, r)?;
    Ok(())
}

/// The patient's follow-up moves to this call's `next_call_at` when this is
/// their latest call; unsuccessful attempts in a row are counted (rule 9).
fn update_follow_up(
    conn: &mut DbConn,
    patient: &patient_rows::Patient,
    input: &CallInput,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let occurred = input.occurred_at.naive_utc();
    if patient.last_call_at.is_some_and(|last| last > occurred) {
        // A call logged late, older than the latest: history only.
        return Ok(());
    }
    let failed = if input.outcome.reached_patient() {
        0
    } else {
        patient.failed_attempts + 1
    };
    crate::native!(conn, |c| diesel::update(patients::table.find(patient.id))
        .set((
            patients::last_call_at.eq(Some(occurred)),
            patients::last_call_outcome.eq(Some(input.outcome.as_str())),
            patients::next_call_at.eq(input.next_call_at.map(|t| t.naive_utc())),
            patients::failed_attempts.eq(failed),
            patients::updated_at.eq(now),
        ))
        .execute(c))?;
    Ok(())
}

/// Keeps a snapshot of each protocol version calls were logged against.
fn ensure_protocol_version(
    conn: &mut DbConn,
    protocol: &Protocol,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let known: i64 = crate::native!(conn, |c| protocol_versions::table
        .filter(protocol_versions::version.eq(&protocol.version))
        .count()
        .get_result(c))?;
    if known == 0 {
        // Another first call may be recording it at this moment: on
        // PostgreSQL this insert then waits for it, and must not fail.
        crate::native!(conn, |c| diesel::insert_into(protocol_versions::table)
            .values((
                protocol_versions::version.eq(&protocol.version),
                protocol_versions::first_used_at.eq(now),
                protocol_versions::content.eq(protocol.snapshot_json()),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
    }
    Ok(())
}

/// Writes the concern; an urgent one emails the enrolling physician and every
/// leader at once (a link, the patient's first name, nothing clinical).
fn raise_concern(
    conn: &mut DbConn,
    student: &Principal,
    patient: &patient_rows::Patient,
    call_id: i64,
    level: ConcernLevel,
    ctx: &CallContext<'_>,
) -> Result<(), AppError> {
    let now = ctx.now.naive_utc();
    let concern_id = crate::insert_returning_id!(
        conn,
        crate::db::schema::concerns::table,
        NewConcern {
            call_id,
            patient_id: patient.id,
            raised_by: student.user_id,
            level,
            raised_at: now,
            acknowledged_at: None,
            acknowledged_by: None,
            acknowledgement_note: None,
        },
        crate::db::schema::concerns::id
    )?;
    audit::record(
        conn,
        &student.audit(
            "concern.raised",
            "concern",
            Some(concern_id),
            Some(patient.id),
        ),
        now,
    )?;
    if level != ConcernLevel::Urgent {
        return Ok(());
    }
    send_urgent_alerts(conn, patient, concern_id, ctx)
}

/// Emails the enrolling physician and every leader about an urgent concern
/// (a link and the patient's first name; nothing clinical).
fn send_urgent_alerts(
    conn: &mut DbConn,
    patient: &patient_rows::Patient,
    concern_id: i64,
    ctx: &CallContext<'_>,
) -> Result<(), AppError> {
    let now = ctx.now.naive_utc();
    let mut recipients: Vec<(i64, String, String)> = users::table
        .inner_join(user_roles::table)
        .filter(user_roles::role.eq(Role::Leader.as_str()))
        .filter(users::disabled_at.is_null())
        .select((users::id, users::email, users::given_name))
        .load(conn)?;
    let physician: Option<(i64, String, String)> = users::table
        .find(patient.enrolled_by)
        .filter(users::disabled_at.is_null())
        .select((users::id, users::email, users::given_name))
        .get_result(conn)
        .optional()?;
    if let Some(p) = physician {
        if !recipients.iter().any(|r| r.0 == p.0) {
            recipients.push(p);
        }
    }
    let link = format!("{}/patients/{}", ctx.base_url, patient.id);
    for (user_id, email, given_name) in recipients {
        mail::enqueue(
            conn,
            &urgent_email(
                concern_id,
                user_id,
                &email,
                &given_name,
                &patient.given_name,
                &link,
            )?,
            now,
        )?;
    }
    Ok(())
}

fn urgent_email(
    concern_id: i64,
    user_id: i64,
    to: &str,
    greeting: &str,
    patient_first_name: &str,
    link: &str,
) -> Result<OutgoingEmail, AppError> {
    let mut context = tera::Context::new();
    context.insert("greeting", greeting);
    context.insert("patient_first_name", patient_first_name);
    context.insert("link", link);
    mail::compose(
        "urgent_concern",
        format!("urgent:{concern_id}:{user_id}"),
        Some(user_id),
        to,
        &context,
    )
}

/// Corrects a call its student logged less than 24 hours ago, keeping the
/// call as it was in `call_revisions`, in the caller's transaction.
pub fn correct(
    conn: &mut DbConn,
    student: &Principal,
    patient_id: i64,
    call_id: i64,
    input: &CallInput,
    ctx: &CallContext<'_>,
) -> Result<LoggedCall, AppError> {
    let before = load(conn, call_id).optional()?;
    // Child records through their parent: the call must be this patient's.
    let Some(before) = before.filter(|c| c.patient_id == patient_id) else {
        return Err(AppError::NotFound);
    };
    if before.student_id != student.user_id
        || !access::is_assigned_now(conn, student.user_id, patient_id)?
    {
        return Err(AppError::NotFound);
    }
    let created: NaiveDateTime = calls::table
        .find(call_id)
        .select(calls::created_at)
        .get_result(conn)?;
    if ctx.now.naive_utc() - created > CORRECTION_WINDOW {
        return Err(AppError::Conflict(
            "a call can be corrected only within 24 hours of logging it".into(),
        ));
    }
    let patient = patient_rows::find(conn, patient_id)?.ok_or(AppError::NotFound)?;
    if patient.status != PatientStatus::Active.as_str() {
        return Err(AppError::Conflict(
            "this patient has been discharged; their calls are closed".into(),
        ));
    }
    check_schedule(&patient, input, ctx.tz)?;
    let now = ctx.now.naive_utc();
    let previous = serde_json::to_string(&before).map_err(|e| AppError::internal(e.to_string()))?;
    diesel::insert_into(crate::db::schema::call_revisions::table)
        .values((
            crate::db::schema::call_revisions::call_id.eq(call_id),
            crate::db::schema::call_revisions::revised_by.eq(student.user_id),
            crate::db::schema::call_revisions::revised_at.eq(now),
            crate::db::schema::call_revisions::previous.eq(previous),
        ))
        .execute(conn)?;
    diesel::update(calls::table.find(call_id))
        .set((
            calls::occurred_at.eq(input.occurred_at.naive_utc()),
            calls::mode.eq(input.mode.as_str()),
            calls::outcome.eq(input.outcome.as_str()),
            calls::duration_minutes.eq(input.duration_minutes),
            calls::interpreter_used.eq(input.interpreter_used),
            calls::concern.eq(input.concern.as_str()),
            calls::notes.eq(&input.notes),
            calls::next_call_at.eq(input.next_call_at.map(|t| t.naive_utc())),
            calls::flagged_for_debrief.eq(input.flagged_for_debrief),
            calls::updated_at.eq(now),
        ))
        .execute(conn)?;
    diesel::delete(call_sections::table.filter(call_sections::call_id.eq(call_id)))
        .execute(conn)?;
    diesel::delete(call_resources::table.filter(call_resources::call_id.eq(call_id)))
        .execute(conn)?;
    write_children(conn, call_id, &input.sections, &input.resources)?;
    // The follow-up follows the patient's latest call.
    let latest: Option<i64> = calls::table
        .filter(calls::patient_id.eq(patient_id))
        .order((calls::occurred_at.desc(), calls::id.desc()))
        .select(calls::id)
        .first(conn)
        .optional()?;
    if latest == Some(call_id) {
        let reached_streak = recount_failures(conn, patient_id)?;
        diesel::update(patients::table.find(patient_id))
            .set((
                patients::last_call_at.eq(Some(input.occurred_at.naive_utc())),
                patients::last_call_outcome.eq(Some(input.outcome.as_str())),
                patients::next_call_at.eq(input.next_call_at.map(|t| t.naive_utc())),
                patients::failed_attempts.eq(reached_streak),
                patients::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    use crate::db::schema::concerns;
    let existing: Option<(i64, String)> = concerns::table
        .filter(concerns::call_id.eq(call_id))
        .select((concerns::id, concerns::level))
        .get_result(conn)
        .optional()?;
    match existing {
        None if input.concern != ConcernLevel::None => {
            raise_concern(conn, student, &patient, call_id, input.concern, ctx)?;
        }
        // Raised to urgent in a correction: the urgent emails go now.
        Some((concern_id, level)) if input.concern == ConcernLevel::Urgent && level != "urgent" => {
            diesel::update(concerns::table.find(concern_id))
                .set(concerns::level.eq("urgent"))
                .execute(conn)?;
            send_urgent_alerts(conn, &patient, concern_id, ctx)?;
        }
        _ => {}
    }
    audit::record(
        conn,
        &student.audit("call.corrected", "call", Some(call_id), Some(patient_id)),
        now,
    )?;
    Ok(load(conn, call_id)?)
}

/// Unsuccessful attempts since the patient was last reached, from the calls.
fn recount_failures(conn: &mut DbConn, patient_id: i64) -> QueryResult<i32> {
    let outcomes: Vec<String> = calls::table
        .filter(calls::patient_id.eq(patient_id))
        .order((calls::occurred_at.desc(), calls::id.desc()))
        .limit(50)
        .select(calls::outcome)
        .load(conn)?;
    Ok(outcomes
        .iter()
        .take_while(|o| o.parse::<Outcome>().is_ok_and(|o| !o.reached_patient()))
        .count() as i32)
}
