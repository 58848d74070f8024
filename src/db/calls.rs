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
