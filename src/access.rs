//! SPEC.md rule 2, in one place for every patient route, page and API alike:
//! a student sees the patients assigned to them now, a physician the patients
//! they enrolled, leaders and admins everyone. Anything else is refused as if
//! the patient did not exist.

use diesel::dsl::exists;
use diesel::prelude::*;

use crate::db::schema::{assignments, patients};
use crate::db::DbConn;
use crate::domain::Role;
use crate::web::identity::Principal;

/// May this user see this patient? False for a patient that does not exist.
pub fn can_see_patient(conn: &mut DbConn, user: &Principal, patient_id: i64) -> QueryResult<bool> {
    let exists_at_all = || patients::table.find(patient_id);
    if user.has(Role::Leader) || user.has(Role::Admin) {
        return diesel::select(exists(exists_at_all())).get_result(conn);
    }
    if user.has(Role::Physician) {
        let enrolled: bool = diesel::select(exists(
            exists_at_all().filter(patients::enrolled_by.eq(user.user_id)),
        ))
        .get_result(conn)?;
        if enrolled {
            return Ok(true);
        }
    }
    if user.has(Role::Student) {
        return is_assigned_now(conn, user.user_id, patient_id);
    }
    Ok(false)
}

/// Is the patient assigned to this student now (an active assignment)?
pub fn is_assigned_now(conn: &mut DbConn, student_id: i64, patient_id: i64) -> QueryResult<bool> {
    crate::native!(conn, |c| diesel::select(exists(
        assignments::table
            .filter(assignments::patient_id.eq(patient_id))
            .filter(assignments::student_id.eq(student_id))
            .filter(assignments::ended_at.is_null()),
    ))
    .get_result(c))
}

/// May this user see a patient's call notes? Students who call them, the
/// enrolling physician, leaders and admins; other physicians see outcomes only.
pub fn can_read_notes(user: &Principal, enrolled_by: i64, assigned_to_user: bool) -> bool {
    user.has(Role::Leader)
        || user.has(Role::Admin)
        || enrolled_by == user.user_id
        || assigned_to_user
}
