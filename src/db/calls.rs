//! Assignments (pairings) and calls.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{assignments, calls, concerns};
use crate::domain::{ConcernLevel, ContactMode, Outcome};

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = assignments)]
pub struct NewAssignment<'a> {
    pub id: Option<i64>,
    pub patient_id: i64,
    pub student_id: i64,
    pub started_at: NaiveDateTime,
    pub started_by: i64,
    pub note: &'a str,
    pub ended_at: Option<NaiveDateTime>,
    pub ended_by: Option<i64>,
    pub handoff_note: Option<&'a str>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = calls)]
pub struct NewCall<'a> {
    pub id: Option<i64>,
    pub patient_id: i64,
    pub student_id: i64,
    pub assignment_id: Option<i64>,
    pub occurred_at: NaiveDateTime,
    #[diesel(serialize_as = String)]
    pub mode: ContactMode,
    #[diesel(serialize_as = String)]
    pub outcome: Outcome,
    pub duration_minutes: i32,
    pub interpreter_used: bool,
    pub protocol_version: &'a str,
    #[diesel(serialize_as = String)]
    pub concern: ConcernLevel,
    pub notes: &'a str,
    pub next_call_at: Option<NaiveDateTime>,
    pub flagged_for_debrief: bool,
    pub idempotency_key: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = concerns)]
pub struct NewConcern<'a> {
    pub call_id: i64,
    pub patient_id: i64,
    pub raised_by: i64,
    #[diesel(serialize_as = String)]
    pub level: ConcernLevel,
    pub raised_at: NaiveDateTime,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub acknowledged_by: Option<i64>,
    pub acknowledgement_note: Option<&'a str>,
}

/// A call as the patient's history shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CallSummary {
    pub id: i64,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    pub student_id: i64,
    pub student_given_name: String,
    pub mode: String,
    pub outcome: String,
    pub duration_minutes: i32,
    pub interpreter_used: bool,
    pub concern: String,
    /// Only for those who may read notes (SPEC.md: the enrolling physician,
    /// the student calling, leaders and admins).
    pub notes: Option<String>,
    pub next_call_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Leaders' comments, oldest first.
    pub comments: Vec<CommentView>,
    /// How many times the student corrected it.
    pub revisions: i64,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CommentView {
    pub author_given_name: String,
    pub body: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The patient's latest calls, newest first.
pub fn for_patient(
    conn: &mut super::DbConn,
    patient_id: i64,
    limit: i64,
    with_notes: bool,
) -> QueryResult<Vec<CallSummary>> {
    use super::schema::users;
    type Row = (
        i64,
        NaiveDateTime,
        i64,
        String,
        String,
        String,
        i32,
        bool,
        String,
        String,
        Option<NaiveDateTime>,
    );
    let rows: Vec<Row> = calls::table
        .inner_join(users::table.on(users::id.eq(calls::student_id)))
        .filter(calls::patient_id.eq(patient_id))
        .order((calls::occurred_at.desc(), calls::id.desc()))
        .limit(limit)
        .select((
            calls::id,
            calls::occurred_at,
            calls::student_id,
            users::given_name,
            calls::mode,
            calls::outcome,
            calls::duration_minutes,
            calls::interpreter_used,
            calls::concern,
            calls::notes,
            calls::next_call_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| CallSummary {
            id: r.0,
            occurred_at: r.1.and_utc(),
            student_id: r.2,
            student_given_name: r.3,
            mode: r.4,
            outcome: r.5,
            duration_minutes: r.6,
            interpreter_used: r.7,
            concern: r.8,
            notes: with_notes.then_some(r.9),
            next_call_at: r.10.map(|t| t.and_utc()),
            comments: Vec::new(),
            revisions: 0,
        })
        .collect::<Vec<_>>())
    .and_then(|mut list: Vec<CallSummary>| {
        use super::schema::{call_comments, call_revisions};
        let ids: Vec<i64> = list.iter().map(|c| c.id).collect();
        let comments: Vec<(i64, String, String, NaiveDateTime)> = call_comments::table
            .inner_join(users::table.on(users::id.eq(call_comments::author_id)))
            .filter(call_comments::call_id.eq_any(&ids))
            .order(call_comments::created_at)
            .select((
                call_comments::call_id,
                users::given_name,
                call_comments::body,
                call_comments::created_at,
            ))
            .load(conn)?;
        let revisions: Vec<i64> = call_revisions::table
            .filter(call_revisions::call_id.eq_any(&ids))
            .select(call_revisions::call_id)
            .load(conn)?;
        for call in &mut list {
            call.revisions = revisions.iter().filter(|id| **id == call.id).count() as i64;
            call.comments = comments
                .iter()
                .filter(|c| c.0 == call.id)
                .map(|c| CommentView {
                    author_given_name: c.1.clone(),
                    body: c.2.clone(),
                    created_at: c.3.and_utc(),
                })
                .collect();
        }
        Ok(list)
    })
}

/// A leader's comment on a call.
pub fn add_comment(
    conn: &mut super::DbConn,
    call_id: i64,
    author_id: i64,
    body: &str,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    use super::schema::call_comments;
    crate::insert_returning_id!(
        conn,
        call_comments::table,
        (
            call_comments::call_id.eq(call_id),
            call_comments::author_id.eq(author_id),
            call_comments::body.eq(body),
            call_comments::created_at.eq(now),
        ),
        call_comments::id
    )
}
