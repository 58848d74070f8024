//! The eight-week discharge (SPEC.md rules 5–7): the sweep, the queue, who
//! may discharge, what discharging does, and the daily reminders' settings.

mod common;

use actix_web::http::{Method, StatusCode};
use checkin::domain::Role;
use chrono::Duration;
use common::{Actor, TestApp};
use serde_json::json;

struct World {
    doc: Actor,
    other_doc: Actor,
    leader: Actor,
    student: Actor,
    patient: i64,
}

/// A patient enrolled on 2026-11-29 (today in the test clock): the discharge
/// point is 2027-01-24.
async fn world(app: &TestApp) -> World {
    let doc = app.actor("doc@example.org", &[Role::Physician]).await;
    let other_doc = app.actor("doc2@example.org", &[Role::Physician]).await;
    let leader = app.actor("leader@example.org", &[Role::Leader]).await;
    let student = app.actor("student@example.org", &[Role::Student]).await;
    let patient = app
        .add_patient("Rosa", "Quintanilla", doc.id, Some(student.id))
        .await;
    World {
        doc,
        other_doc,
        leader,
        student,
        patient,
    }
}

/// Moves the clock and signs everyone in again (sessions expire meanwhile).
async fn at(app: &TestApp, w: &mut World, instant: &str) {
    app.clock.set(instant.parse().unwrap());
    w.doc = app.actor_for(w.doc.id, &w.doc.email).await;
    w.other_doc = app.actor_for(w.other_doc.id, &w.other_doc.email).await;
    w.leader = app.actor_for(w.leader.id, &w.leader.email).await;
    w.student = app.actor_for(w.student.id, &w.student.email).await;
}

async fn sweep(app: &TestApp, holder: &'static str) -> checkin::jobs::JobReport {
    let state = app.state.clone();
    actix_web::web::block(move || checkin::jobs::run_due(&state, holder))
        .await
        .unwrap()
        .unwrap()
}

async fn the_sweep_flags_the_final_week_and_the_discharge_point_once_a_day(app: TestApp) {
    let mut w = world(&app).await;
    at(&app, &mut w, "2027-01-16T15:00:00Z").await; // day 48
    let report = sweep(&app, "a").await;
    assert!(report.swept);
    assert_eq!(
        (report.final_call_marked, report.discharge_due_marked),
        (0, 0)
    );
    at(&app, &mut w, "2027-01-17T15:00:00Z").await; // day 49: a week before
    assert_eq!(sweep(&app, "a").await.final_call_marked, 1);
    assert!(
        !sweep(&app, "b").await.swept,
        "another instance finds today's sweep done"
    );
    let flags = app
        .api_get(&w.leader, &format!("/api/v1/patients/{}", w.patient))
        .await
        .json()["flags"]
        .clone();
    assert!(
        flags.as_array().unwrap().contains(&json!("final_call")),
        "{flags}"
    );
    assert!(app
        .api_get(&w.leader, "/api/v1/discharge-queue")
        .await
        .json()
        .as_array()
        .unwrap()
        .is_empty());
    at(&app, &mut w, "2027-01-24T15:00:00Z").await; // day 56
    assert_eq!(sweep(&app, "b").await.discharge_due_marked, 1);
    assert_eq!(
        app.count(
            "patients WHERE final_call_since = '2027-01-17' AND discharge_due_since = '2027-01-24'"
        )
        .await,
        1
    );
    let queue = app
        .api_get(&w.leader, "/api/v1/discharge-queue")
        .await
        .json();
    assert_eq!(queue[0]["patient_id"], w.patient);
    assert_eq!(queue[0]["stage"], "discharge_due");
    // The enrolling physician sees it; another physician does not; students may not ask.
    assert_eq!(
        app.api_get(&w.doc, "/api/v1/discharge-queue")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(app
        .api_get(&w.other_doc, "/api/v1/discharge-queue")
        .await
        .json()
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        app.api_get(&w.student, "/api/v1/discharge-queue")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let page = app.page(&w.leader, "/discharge-queue").await;
    assert!(page.body.contains("Rosa") && page.body.contains("discharge due"));
    // Fourteen days on: discharge overdue.
    at(&app, &mut w, "2027-02-07T15:00:00Z").await;
    assert_eq!(
        app.api_get(&w.leader, "/api/v1/discharge-queue")
            .await
            .json()[0]["stage"],
        "discharge_overdue"
    );
}

async fn discharging_ends_the_pairing_locks_calls_and_notifies_the_physician(app: TestApp) {
    let mut w = world(&app).await;
    at(&app, &mut w, "2027-01-24T15:00:00Z").await;
    let path = format!("/api/v1/patients/{}/discharge", w.patient);
    let bad = app
        .api_send(
            &w.doc,
            Method::POST,
            &path,
            json!({"reason": "bored", "summary": ""}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.json()["fields"]["reason"].is_array() && bad.json()["fields"]["summary"].is_array()
    );
    assert_eq!(
        app.api_send(
            &w.student,
            Method::POST,
            &path,
            json!({"reason": "completed", "summary": "x"})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.api_send(
            &w.other_doc,
            Method::POST,
            &path,
            json!({"reason": "completed", "summary": "x"})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.count("patients WHERE status = 'active'").await,
        1,
        "nothing written by refusals"
    );
    let ok = app
        .api_send(
            &w.doc,
            Method::POST,
            &path,
            json!({"reason": "completed", "summary": "Eight calls; feeling less alone."}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.body);
    assert_eq!(app.count("assignments WHERE ended_at IS NULL").await, 0);
    assert_eq!(
        app.count("audit_log WHERE action = 'patient.discharged'")
            .await,
        1
    );
    assert_eq!(
        app.count("outbox WHERE template = 'discharge_notice' AND to_address = 'doc@example.org'")
            .await,
        1
    );
    assert_eq!(
        app.count(
            "outbox WHERE body_text LIKE '%Quintanilla%' OR body_text LIKE '%feeling less alone%'"
        )
        .await,
        0
    );
    assert!(
        app.api_get(&w.leader, "/api/v1/discharge-queue")
            .await
            .json()
            .as_array()
            .unwrap()
            .is_empty(),
        "the queue empties"
    );
    assert_eq!(
        app.api_send(
            &w.leader,
            Method::POST,
            &path,
            json!({"reason": "completed", "summary": "again"})
        )
        .await
        .status,
        StatusCode::CONFLICT
    );
    let call = app
        .api_send(
            &w.leader,
            Method::POST,
            &format!("/api/v1/patients/{}/calls", w.patient),
            json!({"mode": "phone", "outcome": "completed", "duration_minutes": 5}),
        )
        .await;
    assert_eq!(call.status, StatusCode::FORBIDDEN);
    // The student no longer has the patient; the physician reads the summary.
    assert!(app
        .api_get(&w.student, "/api/v1/me/checkins")
        .await
        .json()
        .as_array()
        .unwrap()
        .is_empty());
    let seen = app
        .api_get(&w.doc, &format!("/api/v1/patients/{}", w.patient))
        .await
        .json();
    assert_eq!(seen["status"], "discharged");
    assert_eq!(seen["discharge_reason"], "completed");
    assert_eq!(
        seen["discharge_summary"],
        "Eight calls; feeling less alone."
    );
}

async fn early_discharge_works_the_same_way_from_the_page(app: TestApp) {
    let w = world(&app).await;
    let reply = app
        .post_form(
            &w.leader,
            &format!("/patients/{}/discharge", w.patient),
            &[
                ("reason", "withdrew"),
                ("summary", "Asked to stop the calls."),
            ],
            true,
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(
        app.count("patients WHERE status = 'discharged' AND discharge_reason = 'withdrew'")
            .await,
        1
    );
    // Without the CSRF token nothing happens.
    let other = app.add_patient("Luis", "Otro", w.doc.id, None).await;
    let refused = app
        .post_form(
            &w.leader,
            &format!("/patients/{other}/discharge"),
            &[("reason", "withdrew"), ("summary", "x")],
            false,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("patients WHERE status = 'active'").await, 1);
}

async fn digests_follow_the_admins_settings(app: TestApp) {
    let w = world(&app).await;
    let admin = app.actor("admin@example.org", &[Role::Admin]).await;
    // 07:00 in New York: before the default reminder hour (8).
    app.clock.set("2026-11-30T12:00:00Z".parse().unwrap());
    assert_eq!(sweep(&app, "a").await.digests, 0);
    app.clock.advance(Duration::hours(2));
    assert_eq!(
        sweep(&app, "a").await.digests,
        1,
        "the new patient's first call is due"
    );
    assert_eq!(
        sweep(&app, "b").await.digests,
        0,
        "one digest per student per day"
    );
    let digest = app
        .count("outbox WHERE template = 'student_digest' AND subject LIKE '%1 due%'")
        .await;
    assert_eq!(digest, 1);
    assert_eq!(
        app.count("outbox WHERE template = 'student_digest' AND body_text LIKE '%Rosa%'")
            .await,
        0,
        "no names"
    );
    // The admin turns digests off; the next day none goes out.
    let admin = app.actor_for(admin.id, &admin.email).await;
    let saved = app
        .post_form(&admin, "/admin/settings", &[("reminder_hour", "9")], true)
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let bad = app
        .post_form(&admin, "/admin/settings", &[("reminder_hour", "25")], true)
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.clock.advance(Duration::days(1));
    assert_eq!(sweep(&app, "a").await.digests, 0);
    assert_eq!(
        app.count("audit_log WHERE action = 'settings.changed'")
            .await,
        1
    );
    let _ = w;
}

on_both_backends!(
    the_sweep_flags_the_final_week_and_the_discharge_point_once_a_day,
    discharging_ends_the_pairing_locks_calls_and_notifies_the_physician,
    early_discharge_works_the_same_way_from_the_page,
    digests_follow_the_admins_settings,
);

/// Issue: the discharge point and flags are right for enrolments on every day
/// of a year, across both daylight-saving changes, in programme time.
#[test]
fn discharge_point_and_flags_for_every_day_of_a_year() {
    use checkin::domain::schedule::{self, DischargeStage::*};
    use chrono::{Datelike, NaiveDate, NaiveTime};
    let tz = chrono_tz::America::New_York;
    let mut day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    while day.year() == 2026 {
        let point = schedule::discharge_point(day, 8);
        assert_eq!((point - day).num_days(), 56, "{day}");
        for (offset, stage) in [
            (-8, InProgramme),
            (-7, FinalCall),
            (-1, FinalCall),
            (0, DischargeDue),
            (13, DischargeDue),
            (14, DischargeOverdue),
        ] {
            assert_eq!(
                schedule::discharge_stage(point, point + Duration::days(offset)),
                stage,
                "enrolled {day}, offset {offset}"
            );
        }
        // "Today" flips to the discharge day at local midnight, whatever the offset that day.
        let midnight = schedule::local_to_utc(point, NaiveTime::MIN, tz);
        assert_eq!(schedule::local_date(midnight, tz), point, "{day}");
        assert_eq!(
            schedule::local_date(midnight - Duration::seconds(1), tz),
            point.pred_opt().unwrap(),
            "{day}"
        );
        day = day.succ_opt().unwrap();
    }
}
