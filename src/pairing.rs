//! Pairing: which student calls which patient (SPEC.md rule 1).
//!
//! A patient has at most one active assignment; reassigning ends the old one
//! with a hand-off note and starts a new one, so the history stays. The
//! pairing suggestions rank students for one patient: first whether the
//! patient still fits in the student's capacity (a student at capacity is
//! never first), then whether the student speaks the patient's language, then
//! spare capacity (weighted load: weekly patient 1, biweekly 0.5), then the
//! fewest overdue follow-ups.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use chrono_tz::Tz;
use diesel::prelude::*;
use serde::Serialize;

use crate::audit;
use crate::db::calls::NewAssignment;
use crate::db::schema::{assignments, patients, user_languages, user_roles, users};
use crate::db::DbConn;
use crate::domain::schedule::{self, FollowUp};
use crate::domain::{Cadence, PatientStatus, Role};
use crate::error::AppError;
use crate::web::identity::Principal;

/// One student's current load.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StudentLoad {
    pub student_id: i64,
    pub given_name: String,
    pub family_name: String,
    pub languages: Vec<String>,
    pub capacity: i32,
    /// Weekly patients count 1, biweekly 0.5.
    pub weighted_load: f64,
    pub active_patients: i64,
    pub overdue_follow_ups: i64,
}

/// A student ranked for one patient.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Suggestion {
    #[serde(flatten)]
    pub load: StudentLoad,
    pub speaks_patient_language: bool,
    /// capacity − weighted load, before this patient.
    pub spare_capacity: f64,
    /// Whether this patient fits within the student's capacity.
    pub fits: bool,
}

/// An active patient with an active assignment: what a student's load and
/// the workload table count.
#[derive(Debug, Clone, Queryable)]
pub struct ActivePatient {
    pub student_id: i64,
    pub cadence: String,
    pub next_call_at: Option<NaiveDateTime>,
    pub enrolled_on: NaiveDate,
    pub last_call_at: Option<NaiveDateTime>,
}

/// Every enabled student's load, computed from active assignments of active
/// patients. Follow-ups are judged on `today` in programme time.
pub fn student_loads(conn: &mut DbConn, today: NaiveDate, tz: Tz) -> QueryResult<Vec<StudentLoad>> {
    Ok(loads_of(conn, None, today, tz)?.0)
}

/// [`student_loads`], with the active patients they were counted from, for
/// the workload table, which counts them again by due date: one read of
/// them instead of two.
pub fn student_loads_and_patients(
    conn: &mut DbConn,
    today: NaiveDate,
    tz: Tz,
) -> QueryResult<(Vec<StudentLoad>, Vec<ActivePatient>)> {
    loads_of(conn, None, today, tz)
}

/// One enabled student's load; `None` when the account is not an enabled
/// student. Pairing one patient needs only this, not every student's.
pub fn student_load(
    conn: &mut DbConn,
    student_id: i64,
    today: NaiveDate,
    tz: Tz,
) -> QueryResult<Option<StudentLoad>> {
    Ok(loads_of(conn, Some(student_id), today, tz)?.0.pop())
}

fn loads_of(
    conn: &mut DbConn,
    only: Option<i64>,
    today: NaiveDate,
    tz: Tz,
) -> QueryResult<(Vec<StudentLoad>, Vec<ActivePatient>)> {
    let mut students = users::table
        .inner_join(user_roles::table)
        .filter(user_roles::role.eq(Role::Student.as_str()))
        .filter(users::disabled_at.is_null())
        .into_boxed();
    let mut languages = user_languages::table
        .inner_join(user_roles::table.on(user_roles::user_id.eq(user_languages::user_id)))
        .filter(user_roles::role.eq(Role::Student.as_str()))
        .into_boxed();
    let mut loads = assignments::table
        .inner_join(patients::table)
        .filter(assignments::ended_at.is_null())
        .filter(patients::status.eq(PatientStatus::Active.as_str()))
        .into_boxed();
    if let Some(id) = only {
        students = students.filter(users::id.eq(id));
        languages = languages.filter(user_languages::user_id.eq(id));
        loads = loads.filter(assignments::student_id.eq(id));
    }
    let students: Vec<(i64, String, String, i32)> = students
        .select((
            users::id,
            users::given_name,
            users::family_name,
            users::capacity,
        ))
        .order(users::id)
        .load(conn)?;
    let languages: Vec<(i64, String)> = languages
        .select((user_languages::user_id, user_languages::language))
        .order((user_languages::user_id, user_languages::language))
        .load(conn)?;
    let active: Vec<ActivePatient> = loads
        .select((
            assignments::student_id,
            patients::cadence,
            patients::next_call_at,
            patients::enrolled_on,
            patients::last_call_at,
        ))
        .load(conn)?;
    let mut languages_by: HashMap<i64, Vec<String>> = HashMap::new();
    for (id, language) in languages {
        languages_by.entry(id).or_default().push(language);
    }
    let mut totals: HashMap<i64, (f64, i64, i64)> = HashMap::new();
    for a in &active {
        let weight = a.cadence.parse::<Cadence>().map_or(1.0, Cadence::weight);
        let overdue = schedule::follow_up(
            a.next_call_at.map(|t| t.and_utc()),
            a.enrolled_on,
            a.last_call_at.is_some(),
            today,
            tz,
        ) == FollowUp::Overdue;
        let entry = totals.entry(a.student_id).or_default();
        entry.0 += weight;
        entry.1 += 1;
        entry.2 += i64::from(overdue);
    }
    let loads = students
        .into_iter()
        .map(|(id, given_name, family_name, capacity)| {
            let (weighted_load, active_patients, overdue_follow_ups) =
                totals.get(&id).copied().unwrap_or_default();
            StudentLoad {
                student_id: id,
                given_name,
                family_name,
                languages: languages_by.remove(&id).unwrap_or_default(),
                capacity,
                weighted_load,
                active_patients,
                overdue_follow_ups,
            }
        })
        .collect();
    Ok((loads, active))
}

/// Students ranked for this patient, best first.
pub fn suggestions(
    conn: &mut DbConn,
    patient_id: i64,
    today: NaiveDate,
    tz: Tz,
) -> Result<Vec<Suggestion>, AppError> {
    let (language, cadence) = language_and_cadence(conn, patient_id)?;
    Ok(rank(
        student_loads(conn, today, tz)?,
        &language,
        cadence.weight(),
    ))
}

fn language_and_cadence(conn: &mut DbConn, patient_id: i64) -> Result<(String, Cadence), AppError> {
    let (language, cadence): (String, String) = patients::table
        .find(patient_id)
        .select((patients::preferred_language, patients::cadence))
        .get_result(conn)?;
    let cadence = cadence
        .parse::<Cadence>()
        .map_err(|_| AppError::internal("a patient's cadence is not a cadence"))?;
    Ok((language, cadence))
}

/// The ranking itself, apart from the database so it can be tested alone.
pub fn rank(loads: Vec<StudentLoad>, language: &str, weight: f64) -> Vec<Suggestion> {
    let mut ranked: Vec<Suggestion> = loads
        .into_iter()
        .map(|load| {
            let spare = f64::from(load.capacity) - load.weighted_load;
            Suggestion {
                speaks_patient_language: load.languages.iter().any(|l| l == language),
                spare_capacity: spare,
                fits: weight <= spare + f64::EPSILON,
                load,
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        (!a.fits, !a.speaks_patient_language)
            .cmp(&(!b.fits, !b.speaks_patient_language))
            .then(b.spare_capacity.total_cmp(&a.spare_capacity))
            .then(a.load.overdue_follow_ups.cmp(&b.load.overdue_follow_ups))
            .then(a.load.student_id.cmp(&b.load.student_id))
    });
    ranked
}

/// What an assignment request asks for.
#[derive(Debug, Clone)]
pub struct AssignRequest {
    pub student_id: i64,
    pub note: String,
    pub confirm_over_capacity: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AssignmentRow {
    pub id: i64,
    pub patient_id: i64,
    pub student_id: i64,
    pub student_given_name: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub started_by: i64,
    pub note: String,
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
    pub handoff_note: Option<String>,
}

/// Pairs or re-pairs a patient, in the caller's transaction. Refuses a
/// discharged patient, an account that is not an enabled student, a
/// reassignment without a hand-off note, and a student over capacity unless
/// confirmed.
pub fn assign(
    conn: &mut DbConn,
    by: &Principal,
    patient_id: i64,
    request: &AssignRequest,
    now: NaiveDateTime,
    today: NaiveDate,
    tz: Tz,
) -> Result<i64, AppError> {
    let status: String = patients::table
        .find(patient_id)
        .select(patients::status)
        .get_result(conn)
        .optional()?
        .ok_or(AppError::NotFound)?;
    if status != PatientStatus::Active.as_str() {
        return Err(AppError::Conflict(
            "this patient has been discharged; they cannot be paired".into(),
        ));
    }
    let Some(load) = student_load(conn, request.student_id, today, tz)? else {
        return Err(AppError::invalid(
            "student_id",
            "is not an enabled student account",
        ));
    };
    let (language, cadence) = language_and_cadence(conn, patient_id)?;
    let choice = rank(vec![load], &language, cadence.weight()).remove(0);
    let current: Option<(i64, i64)> = assignments::table
        .filter(assignments::patient_id.eq(patient_id))
        .filter(assignments::ended_at.is_null())
        .select((assignments::id, assignments::student_id))
        .get_result(conn)
        .optional()?;
    if let Some((_, student)) = current {
        if student == request.student_id {
            return Err(AppError::Conflict(
                "the patient is already paired with this student".into(),
            ));
        }
        if request.note.trim().is_empty() {
            return Err(AppError::invalid(
                "note",
                "a hand-off note is required when moving a patient to another student",
            ));
        }
    }
    if !choice.fits && !request.confirm_over_capacity {
        return Err(AppError::invalid(
            "confirm_over_capacity",
            format!(
                "{} is at capacity ({} of {}); confirm to pair anyway",
                choice.load.given_name, choice.load.weighted_load, choice.load.capacity
            ),
        ));
    }
    if let Some((old, _)) = current {
        diesel::update(assignments::table.find(old))
            .set((
                assignments::ended_at.eq(now),
                assignments::ended_by.eq(by.user_id),
                assignments::handoff_note.eq(request.note.trim()),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            &by.audit(
                "assignment.ended",
                "assignment",
                Some(old),
                Some(patient_id),
            ),
            now,
        )?;
    }
    let id = crate::insert_returning_id!(
        conn,
        assignments::table,
        NewAssignment {
            id: None,
            patient_id,
            student_id: request.student_id,
            started_at: now,
            started_by: by.user_id,
            note: request.note.trim(),
            ended_at: None,
            ended_by: None,
            handoff_note: None,
        },
        assignments::id
    )
    .map_err(|e| match AppError::from(e) {
        AppError::Conflict(_) => {
            AppError::Conflict("someone paired this patient a moment ago; reload".into())
        }
        other => other,
    })?;
    audit::record(
        conn,
        &by.audit(
            "assignment.started",
            "assignment",
            Some(id),
            Some(patient_id),
        ),
        now,
    )?;
    Ok(id)
}

/// Ends the patient's active assignment, keeping it in the history.
pub fn unassign(
    conn: &mut DbConn,
    by: &Principal,
    patient_id: i64,
    note: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let current: Option<i64> = assignments::table
        .filter(assignments::patient_id.eq(patient_id))
        .filter(assignments::ended_at.is_null())
        .select(assignments::id)
        .get_result(conn)
        .optional()?;
    let Some(id) = current else {
        return Err(AppError::Conflict(
            "the patient is not paired with anyone".into(),
        ));
    };
    diesel::update(assignments::table.find(id))
        .set((
            assignments::ended_at.eq(now),
            assignments::ended_by.eq(by.user_id),
            assignments::handoff_note.eq(Some(note.trim()).filter(|n| !n.is_empty())),
        ))
        .execute(conn)?;
    audit::record(
        conn,
        &by.audit("assignment.ended", "assignment", Some(id), Some(patient_id)),
        now,
    )?;
    Ok(())
}

/// Every assignment the patient has had, newest first.
pub fn history(conn: &mut DbConn, patient_id: i64) -> QueryResult<Vec<AssignmentRow>> {
    type Row = (
        i64,
        i64,
        i64,
        String,
        NaiveDateTime,
        i64,
        String,
        Option<NaiveDateTime>,
        Option<String>,
    );
    let rows: Vec<Row> = assignments::table
        .inner_join(users::table.on(users::id.eq(assignments::student_id)))
        .filter(assignments::patient_id.eq(patient_id))
        .order(assignments::started_at.desc())
        .select((
            assignments::id,
            assignments::patient_id,
            assignments::student_id,
            users::given_name,
            assignments::started_at,
            assignments::started_by,
            assignments::note,
            assignments::ended_at,
            assignments::handoff_note,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| AssignmentRow {
            id: r.0,
            patient_id: r.1,
            student_id: r.2,
            student_given_name: r.3,
            started_at: r.4.and_utc(),
            started_by: r.5,
            note: r.6,
            ended_at: r.7.map(|t| t.and_utc()),
            handoff_note: r.8,
        })
        .collect())
}

/// Active patients without an active assignment: the pairing queue, oldest
/// enrolment first.
#[derive(Debug, Clone, Serialize, Queryable)]
pub struct Unassigned {
    pub id: i64,
    pub given_name: String,
    pub preferred_language: String,
    pub interpreter_needed: bool,
    pub cadence: String,
    pub enrolled_on: NaiveDate,
    pub best_times: String,
}

/// Active patients with no enabled student: a patient whose student's
/// account is disabled is waiting too.
macro_rules! waiting {
    () => {
        patients::table
            .filter(patients::status.eq(PatientStatus::Active.as_str()))
            .filter(diesel::dsl::not(diesel::dsl::exists(
                assignments::table
                    .inner_join(users::table.on(users::id.eq(assignments::student_id)))
                    .filter(assignments::patient_id.eq(patients::id))
                    .filter(assignments::ended_at.is_null())
                    .filter(users::disabled_at.is_null()),
            )))
    };
}

/// How many are waiting to be paired, however many a list shows.
pub fn unassigned_count(conn: &mut DbConn) -> QueryResult<i64> {
    waiting!().count().get_result(conn)
}

pub fn unassigned(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<Unassigned>> {
    waiting!()
        .order((patients::enrolled_on, patients::id))
        .limit(limit)
        .select((
            patients::id,
            patients::given_name,
            patients::preferred_language,
            patients::interpreter_needed,
            patients::cadence,
            patients::enrolled_on,
            patients::best_times,
        ))
        .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(
        id: i64,
        languages: &[&str],
        capacity: i32,
        weighted: f64,
        overdue: i64,
    ) -> StudentLoad {
        StudentLoad {
            student_id: id,
            given_name: format!("S{id}"),
            family_name: String::new(),
            languages: languages.iter().map(|l| l.to_string()).collect(),
            capacity,
            weighted_load: weighted,
            active_patients: 0,
            overdue_follow_ups: overdue,
        }
    }

    #[test]
    fn a_spanish_speaker_with_room_comes_first_and_a_full_student_never_does() {
        let ranked = rank(
            vec![
                load(1, &["en"], 6, 0.0, 0),
                load(2, &["es", "en"], 4, 4.0, 0),
                load(3, &["es"], 4, 2.5, 1),
                load(4, &["es"], 4, 2.5, 0),
                load(5, &["es"], 5, 1.0, 3),
            ],
            "es",
            1.0,
        );
        let order: Vec<i64> = ranked.iter().map(|s| s.load.student_id).collect();
        assert_eq!(order, [5, 4, 3, 1, 2]);
        assert!(!ranked[4].fits);
    }

    #[test]
    fn a_biweekly_patient_fits_in_half_a_slot() {
        let ranked = rank(vec![load(1, &["es"], 4, 3.5, 0)], "es", 0.5);
        assert!(ranked[0].fits);
        let ranked = rank(vec![load(1, &["es"], 4, 3.5, 0)], "es", 1.0);
        assert!(!ranked[0].fits);
    }
}
