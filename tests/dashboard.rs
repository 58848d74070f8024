//! The leader dashboard (issue: workload, concerns, exports): workload numbers
//! against hand-computed values, concerns until acknowledged, streamed CSV.

mod common;

use actix_web::http::{Method, StatusCode};
use checkin::domain::Role;
use common::TestApp;
use serde_json::{json, Value};

async fn call_at(app: &TestApp, patient: i64, student: i64, at: &str, outcome: &str, notes: &str) {
    app.sql(&format!(
        "INSERT INTO calls (patient_id, student_id, occurred_at, mode, outcome, duration_minutes, interpreter_used, \
         protocol_version, concern, notes, flagged_for_debrief, created_at, updated_at) \
         VALUES ({patient}, {student}, '{at}', 'phone', '{outcome}', 10, FALSE, 'test', 'none', '{notes}', FALSE, '{at}', '{at}')"
    ))
    .await;
}

/// Today is Sunday 2026-11-29 in New York; the programme week is Mon 23 – Sun 29.
async fn workload_matches_hand_computed_values(app: TestApp) {
    let leader = app.actor("leader@example.org", &[Role::Leader]).await;
    let doc = app.actor("doc@example.org", &[Role::Physician]).await;
    let a = app
        .create_user("a@example.org", &[Role::Student], "es,en")
        .await;
    let b = app
        .create_user("b@example.org", &[Role::Student], "en")
        .await;
    app.sql(&format!("UPDATE users SET capacity = 1 WHERE id = {b}"))
        .await;
    let p1 = app.add_patient("Uno", "A", doc.id, Some(a)).await;
    let p2 = app.add_patient("Dos", "A", doc.id, Some(a)).await;
    let p3 = app.add_patient("Tres", "A", doc.id, Some(a)).await;
    app.add_patient("Cuatro", "B", doc.id, Some(b)).await;
    app.add_patient("Cinco", "B", doc.id, Some(b)).await;
    // p1 weekly, due today; p2 biweekly, overdue since the 27th; p3 weekly, due next Tuesday.
    app.sql(&format!("UPDATE patients SET next_call_at = '2026-11-29 20:00:00', last_call_at = '2026-11-22 15:00:00' WHERE id = {p1}")).await;
    app.sql(&format!("UPDATE patients SET cadence = 'biweekly', next_call_at = '2026-11-27 15:00:00', last_call_at = '2026-11-13 15:00:00' WHERE id = {p2}")).await;
    app.sql(&format!("UPDATE patients SET next_call_at = '2026-12-01 15:00:00', last_call_at = '2026-11-24 15:00:00' WHERE id = {p3}")).await;
    call_at(&app, p1, a, "2026-11-25 15:00:00", "completed", "").await; // in the last 7 days
    call_at(&app, p2, a, "2026-11-20 15:00:00", "no_answer", "").await; // in 28 days, not 7
    call_at(&app, p3, a, "2026-10-20 15:00:00", "completed", "").await; // older than 28 days
    let rows = app.api_get(&leader, "/api/v1/workload").await;
    assert_eq!(rows.status, StatusCode::OK, "{}", rows.body);
    let rows = rows.json();
    let row = |id: i64| -> Value {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["student_id"] == id)
            .unwrap()
            .clone()
    };
    let ra = row(a);
    assert_eq!(
        ra["weighted_load"], 2.5,
        "weekly 1 + biweekly 0.5 + weekly 1"
    );
    assert_eq!(ra["active_patients"], 3);
    assert_eq!(
        ra["calls_due_this_week"], 1.5,
        "p1 due today (1) + p2 overdue (0.5); p3 is next week"
    );
    assert_eq!(ra["calls_last_7_days"], 1);
    assert_eq!(ra["completed_rate"], 0.5);
    assert_eq!(ra["overdue_follow_ups"], 1);
    assert_eq!(ra["last_activity"], "2026-11-25T15:00:00Z");
    assert_eq!(ra["over_capacity"], false);
    assert_eq!(ra["idle"], false);
    assert_eq!(ra["languages"], json!(["en", "es"]));
    let rb = row(b);
    assert_eq!(rb["weighted_load"], 2.0);
    assert_eq!(rb["over_capacity"], true);
    assert_eq!(rb["idle"], true, "patients but no call for 7 days");
    assert!(rb["completed_rate"].is_null());
    assert_eq!(
        rb["calls_due_this_week"], 2.0,
        "new patients are due within 3 days of enrolment"
    );
    // Monday: a new programme week; p3 (Tuesday) now counts, p1 became overdue.
    app.clock.set("2026-11-30T15:00:00Z".parse().unwrap());
    let leader = app.actor_for(leader.id, &leader.email).await;
    let monday = app.api_get(&leader, "/api/v1/workload").await.json();
    let ra = monday
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["student_id"] == a)
        .unwrap()
        .clone();
    assert_eq!(ra["calls_due_this_week"], 2.5);
    assert_eq!(ra["overdue_follow_ups"], 2);
    // The page shows the same, with highlights, and sorts.
    let page = app.page(&leader, "/dashboard?sort=load").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("over capacity") && page.body.contains("idle 7+ days"));
    assert!(
        page.body.find("Test b").unwrap() < page.body.find("Test a").unwrap(),
        "sorted by load"
    );
    assert_eq!(
        app.api_get(&doc, "/api/v1/workload").await.status,
        StatusCode::FORBIDDEN
    );
}

async fn an_urgent_concern_stays_until_acknowledged_and_the_acknowledgement_is_audited(
    app: TestApp,
) {
    let leader = app.actor("leader@example.org", &[Role::Leader]).await;
    let doc = app.actor("doc@example.org", &[Role::Physician]).await;
    let other_doc = app.actor("doc2@example.org", &[Role::Physician]).await;
    let student = app.actor("student@example.org", &[Role::Student]).await;
    let patient = app
        .add_patient("Rosa", "Urgente", doc.id, Some(student.id))
        .await;
    let logged = app
        .api_send(&student, Method::POST, &format!("/api/v1/patients/{patient}/calls"), json!({
            "occurred_at": "2026-11-29T09:00:00-05:00", "mode": "phone", "outcome": "completed", "duration_minutes": 15,
            "concern": "urgent", "next_call_at": "2026-12-06T10:00:00-05:00"
        }))
        .await;
    assert_eq!(logged.status, StatusCode::CREATED, "{}", logged.body);
    let page = app.page(&leader, "/dashboard").await;
    assert!(page.body.contains("Open concerns (1)"), "{}", page.body);
    let physicians = app.api_get(&doc, "/api/v1/concerns").await.json();
    assert_eq!(
        physicians.as_array().unwrap().len(),
        1,
        "on the enrolling physician's list too"
    );
    assert!(app
        .api_get(&other_doc, "/api/v1/concerns")
        .await
        .json()
        .as_array()
        .unwrap()
        .is_empty());
    let id = physicians[0]["id"].as_i64().unwrap();
    // Later visits still show it.
    app.clock.advance(chrono::Duration::hours(3));
    let leader = app.actor_for(leader.id, &leader.email).await;
    assert!(app
        .page(&leader, "/dashboard")
        .await
        .body
        .contains("Open concerns (1)"));
    assert_eq!(
        app.post_form(
            &leader,
            &format!("/concerns/{id}/acknowledge"),
            &[("note", "")],
            true
        )
        .await
        .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.api_send(
            &other_doc,
            Method::POST,
            &format!("/api/v1/concerns/{id}/acknowledge"),
            json!({"note": "x"})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let ack = app
        .post_form(
            &leader,
            &format!("/concerns/{id}/acknowledge"),
            &[("note", "Called the patient; physician informed.")],
            true,
        )
        .await;
    assert_eq!(ack.status, StatusCode::SEE_OTHER);
    assert!(!app
        .page(&leader, "/dashboard")
        .await
        .body
        .contains("Open concerns"));
    assert_eq!(
        app.count(&format!(
            "audit_log WHERE action = 'concern.acknowledged' AND user_id = {}",
            leader.id
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(
            "concerns WHERE acknowledgement_note = 'Called the patient; physician informed.'"
        )
        .await,
        1
    );
    let doc = app.actor_for(doc.id, &doc.email).await;
    assert_eq!(
        app.api_send(
            &doc,
            Method::POST,
            &format!("/api/v1/concerns/{id}/acknowledge"),
            json!({"note": "again"})
        )
        .await
        .status,
        StatusCode::CONFLICT
    );
}

async fn exports_stream_every_row_with_formulas_neutralised(app: TestApp) {
    let leader = app.actor("leader@example.org", &[Role::Leader]).await;
    let doc = app.actor("doc@example.org", &[Role::Physician]).await;
    let student = app
        .create_user("s@example.org", &[Role::Student], "es")
        .await;
    let patient = app
        .add_patient("=HYPERLINK(\"x\")", "+Sum", doc.id, Some(student))
        .await;
    // More rows than one chunk: 5,000 per read.
    app.sql(&format!(
        "INSERT INTO calls (patient_id, student_id, occurred_at, mode, outcome, duration_minutes, interpreter_used, protocol_version, concern, notes, flagged_for_debrief, created_at, updated_at) \
         SELECT {patient}, {student}, '2026-11-20 15:00:00', 'phone', 'completed', 10, FALSE, 'test', 'none', '@cmd', FALSE, '2026-11-20 15:00:00', '2026-11-20 15:00:00' \
         FROM (SELECT 1 FROM audit_chain_head) one, (SELECT 1 AS n UNION ALL SELECT 2 UNION ALL SELECT 3) a"
    ))
    .await;
    let mut inserted = app.count("calls").await;
    while inserted < 12_000 {
        app.sql("INSERT INTO calls (patient_id, student_id, occurred_at, mode, outcome, duration_minutes, interpreter_used, protocol_version, concern, notes, flagged_for_debrief, created_at, updated_at) \
                 SELECT patient_id, student_id, occurred_at, mode, outcome, duration_minutes, interpreter_used, protocol_version, concern, notes, flagged_for_debrief, created_at, updated_at FROM calls").await;
        inserted = app.count("calls").await;
    }
    let csv = app.api_get(&leader, "/api/v1/exports/calls.csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines[0], "call_id,patient_id,student_id,occurred_at,mode,outcome,duration_minutes,interpreter_used,protocol_version,sections,resources,concern,notes,next_call_at");
    assert_eq!(
        lines.len() as i64,
        inserted + 1,
        "every call, across chunks"
    );
    assert!(lines[1].contains(",'@cmd,"), "{}", lines[1]);
    let patients = app.api_get(&leader, "/api/v1/exports/patients.csv").await;
    assert!(
        patients.body.contains("'=HYPERLINK") && patients.body.contains("'+Sum"),
        "{}",
        patients.body
    );
    assert!(!patients.body.contains(",=HYPERLINK"));
    assert_eq!(
        app.api_get(&doc, "/api/v1/exports/calls.csv").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.count("audit_log WHERE action LIKE 'export.%'").await, 2);
}

async fn debriefs_gather_flagged_calls_and_record_attendance(app: TestApp) {
    let leader = app.actor("leader@example.org", &[Role::Leader]).await;
    let doc = app.actor("doc@example.org", &[Role::Physician]).await;
    let student = app.actor("student@example.org", &[Role::Student]).await;
    let patient = app
        .add_patient("Rosa", "Agenda", doc.id, Some(student.id))
        .await;
    let logged = app
        .api_send(&student, Method::POST, &format!("/api/v1/patients/{patient}/calls"), json!({
            "occurred_at": "2026-11-29T09:00:00-05:00", "mode": "phone", "outcome": "declined", "duration_minutes": 3,
            "flagged_for_debrief": true, "next_call_at": "2026-12-06T10:00:00-05:00"
        }))
        .await;
    assert_eq!(logged.status, StatusCode::CREATED, "{}", logged.body);
    let bad = app
        .post_form(
            &leader,
            "/debriefs",
            &[("title", ""), ("scheduled_for", "soon")],
            true,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let made = app
        .post_form(
            &leader,
            "/debriefs",
            &[
                ("title", "Week 1 debrief"),
                ("scheduled_for", "2026-11-30T18:00"),
                ("location", "Room 2"),
            ],
            true,
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let path = made.header("location").unwrap().to_string();
    let page = app.page(&leader, &path).await;
    assert!(
        page.body.contains("Rosa") && page.body.contains("flagged"),
        "the flagged call is on the agenda"
    );
    let saved = app
        .post_form(
            &leader,
            &path,
            &[
                ("attended", &student.id.to_string()),
                ("challenges", "Hard to reach people"),
                ("successes", "Food bank visits"),
                ("held", "on"),
            ],
            true,
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.count(&format!(
            "debrief_attendance WHERE student_id = {}",
            student.id
        ))
        .await,
        1
    );
    assert_eq!(
        app.count("debriefs WHERE held_at IS NOT NULL AND successes = 'Food bank visits'")
            .await,
        1
    );
    let not_student = app
        .post_form(&leader, &path, &[("attended", &doc.id.to_string())], true)
        .await;
    assert_eq!(not_student.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.api_get(&leader, "/api/v1/debriefs").await.json()[0]["title"],
        "Week 1 debrief"
    );
}

async fn the_report_counts_the_period(app: TestApp) {
    let leader = app.actor("leader@example.org", &[Role::Leader]).await;
    let doc = app.actor("doc@example.org", &[Role::Physician]).await;
    let student = app
        .create_user("s@example.org", &[Role::Student], "es")
        .await;
    let p1 = app.add_patient("Uno", "R", doc.id, Some(student)).await;
    let p2 = app.add_patient("Dos", "R", doc.id, Some(student)).await;
    call_at(&app, p1, student, "2026-11-20 15:00:00", "completed", "").await;
    call_at(&app, p1, student, "2026-11-21 15:00:00", "no_answer", "").await;
    call_at(&app, p2, student, "2026-11-22 15:00:00", "completed", "").await;
    call_at(&app, p2, student, "2026-09-01 15:00:00", "completed", "").await; // outside the range
    app.sql("UPDATE calls SET interpreter_used = TRUE WHERE occurred_at = '2026-11-22 15:00:00'")
        .await;
    let page = app
        .page(&leader, "/reports?from=2026-11-01&to=2026-11-29")
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("3 (2 completed)"), "{}", page.body);
    assert!(page.body.contains("1.5 calls each"));
    assert!(page.body.contains("1 calls"), "interpreter use");
    assert!(page.body.contains("<svg"));
    let bad = app.page(&leader, "/reports?from=someday").await;
    assert!(bad.body.contains("from must be a date"));
}

/// The dashboard lists the first 50 waiting, longest enrolled first, but
/// counts them all and points to the pairing queue for the rest.
async fn the_waiting_list_counts_everyone_waiting(app: TestApp) {
    let leader = app.actor("leader@example.org", &[Role::Leader]).await;
    let doc = app.actor("doc@example.org", &[Role::Physician]).await;
    let student = app
        .create_user("s@example.org", &[Role::Student], "es")
        .await;
    let paired = app.add_patient("Paired", "P", doc.id, Some(student)).await;
    let shown = checkin::web::dashboard::WAITING_SHOWN as usize;
    for k in 0..shown + 3 {
        app.add_patient(&format!("Waiting{k}"), "W", doc.id, None)
            .await;
    }
    // A student who leaves: their patient is waiting again.
    app.sql(&format!(
        "UPDATE users SET disabled_at = '2026-11-29 12:00:00' WHERE id = {student}"
    ))
    .await;
    let page = app.page(&leader, "/dashboard").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains(&format!("Waiting to be paired ({})", shown + 4)),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("and 4 more in <a href=\"/pairing\">the pairing queue</a>"));
    assert!(
        page.body.contains(&format!("/pairing/{paired}\"")),
        "the patient whose student left is listed"
    );
}

on_both_backends!(
    the_waiting_list_counts_everyone_waiting,
    debriefs_gather_flagged_calls_and_record_attendance,
    the_report_counts_the_period,
    workload_matches_hand_computed_values,
    an_urgent_concern_stays_until_acknowledged_and_the_acknowledgement_is_audited,
    exports_stream_every_row_with_formulas_neutralised,
);
