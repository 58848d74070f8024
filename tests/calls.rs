//! Students' check-ins and logging calls (SPEC.md rules 3–9), on both
//! backends: the whole journey from enrolment to an overdue follow-up, every
//! bad field, discharged patients, urgent concerns, unreachable patients and
//! idempotent retries.

mod common;

use actix_web::http::{Method, StatusCode};
use checkin::domain::Role;
use chrono::Duration;
use common::{Actor, TestApp};
use serde_json::{json, Value};

struct Programme {
    doc: Actor,
    leader: Actor,
    student: Actor,
    patient: i64,
}

/// Enrol through the API (today is Sunday 2026-11-29 in New York) and pair.
async fn programme(app: &TestApp) -> Programme {
    let doc = app.actor("doc@example.org", &[Role::Physician]).await;
    let leader = app.actor("leader@example.org", &[Role::Leader]).await;
    let student = app.actor("student@example.org", &[Role::Student]).await;
    let enrolled = app
        .api_send(
            &doc,
            Method::POST,
            "/api/v1/patients",
            json!({
                "given_name": "Rosa", "family_name": "Quintanilla", "phone": "(215) 555-0123",
                "preferred_language": "es", "enrolment_reasons": ["social_isolation"],
                "interest_confirmed": true, "cadence": "weekly"
            }),
        )
        .await;
    assert_eq!(enrolled.status, StatusCode::CREATED, "{}", enrolled.body);
    let patient = enrolled.json()["id"].as_i64().unwrap();
    let paired = app
        .api_send(
            &leader,
            Method::PUT,
            &format!("/api/v1/patients/{patient}/assignment"),
            json!({"student_id": student.id, "note": "first pairing"}),
        )
        .await;
    assert_eq!(paired.status, StatusCode::OK, "{}", paired.body);
    Programme {
        doc,
        leader,
        student,
        patient,
    }
}

fn section_ids(app: &TestApp) -> Vec<String> {
    app.state
        .protocol
        .regular_sections()
        .take(3)
        .map(|s| s.id.clone())
        .collect()
}

fn resource_id(app: &TestApp) -> String {
    app.state.protocol.resources[0].id.clone()
}

fn completed_call(app: &TestApp, occurred: &str, next: Option<&str>) -> Value {
    json!({
        "occurred_at": occurred, "mode": "phone", "outcome": "completed", "duration_minutes": 18,
        "interpreter_used": true, "sections": section_ids(app), "resources": [resource_id(app)],
        "concern": "none", "notes": "Feeling better; went to the food bank.", "next_call_at": next
    })
}

async fn log(
    app: &TestApp,
    who: &Actor,
    patient: i64,
    body: Value,
    key: Option<&str>,
) -> common::Reply {
    let mut req = actix_web::test::TestRequest::default()
        .method(Method::POST)
        .uri(&format!("/api/v1/patients/{patient}/calls"))
        .insert_header(("authorization", format!("Bearer {}", who.token)))
        .set_json(body);
    if let Some(key) = key {
        req = req.insert_header(("idempotency-key", key));
    }
    app.call(req).await
}

async fn checkins(app: &TestApp, who: &Actor) -> Vec<Value> {
    let reply = app.api_get(who, "/api/v1/me/checkins").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json().as_array().unwrap().clone()
}

async fn the_whole_journey_from_enrolment_to_an_overdue_follow_up(app: TestApp) {
    let p = programme(&app).await;
    // The new patient is due (first call within 3 days of enrolment).
    let list = checkins(&app, &p.student).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["patient_id"], p.patient);
    assert_eq!(list[0]["follow_up"], "due");
    assert_eq!(list[0]["given_name"], "Rosa");
    assert!(
        list[0].get("family_name").is_none(),
        "check-ins carry first names and an initial only"
    );
    assert_eq!(list[0]["family_initial"], "Q");
    let page = app.page(&p.student, "/checkins").await;
    assert!(page.body.contains("Rosa Q."));
    assert!(!page.body.contains("Quintanilla"));
    let call_page = app
        .page(&p.student, &format!("/patients/{}/call", p.patient))
        .await;
    assert_eq!(call_page.status, StatusCode::OK, "{}", call_page.body);
    assert!(call_page.body.contains("tel:+12155550123"));
    assert!(
        call_page.body.contains(r##"href="#log-call""##)
            && call_page.body.contains(r#"id="log-call""#),
        "on a phone a link jumps past the protocol to the form"
    );
    assert!(
        call_page.body.contains("interpreter line"),
        "the student does not speak Spanish"
    );
    assert!(call_page.body.contains(&app.state.protocol.version));
    // 2026-11-29 10:00 New York; the form proposes a week later, same time.
    assert!(
        call_page.body.contains("2026-12-06T"),
        "proposed next call a week later"
    );

    let logged = log(
        &app,
        &p.student,
        p.patient,
        completed_call(
            &app,
            "2026-11-29T10:00:00-05:00",
            Some("2026-12-06T10:00:00-05:00"),
        ),
        None,
    )
    .await;
    assert_eq!(logged.status, StatusCode::CREATED, "{}", logged.body);
    let call = logged.json();
    assert_eq!(
        call["protocol_version"],
        app.state.protocol.version.as_str()
    );
    assert_eq!(call["sections"].as_array().unwrap().len(), 3);
    assert_eq!(app.count("call_sections").await, 3);
    assert_eq!(app.count("call_resources").await, 1);
    assert_eq!(app.count("protocol_versions").await, 1);
    assert_eq!(app.count("audit_log WHERE action = 'call.logged'").await, 1);

    let list = checkins(&app, &p.student).await;
    assert_eq!(list[0]["follow_up"], "upcoming");
    assert_eq!(list[0]["next_call_at"], "2026-12-06T15:00:00Z");
    // The physician sees it too.
    let seen = app
        .api_get(&p.doc, &format!("/api/v1/patients/{}", p.patient))
        .await
        .json();
    assert_eq!(seen["last_call_outcome"], "completed");
    assert_eq!(seen["next_call_at"], "2026-12-06T15:00:00Z");

    // A second patient, due on the 7th; on the 7th Rosa (due the 6th) is overdue and first.
    let second = app
        .add_patient("Luis", "Second", p.doc.id, Some(p.student.id))
        .await;
    app.sql(&format!("UPDATE patients SET next_call_at = '2026-12-07 15:00:00', last_call_at = '2026-11-30 15:00:00' WHERE id = {second}")).await;
    app.clock.set("2026-12-06T16:00:00Z".parse().unwrap());
    let on_the_6th = checkins(&app, &p.student).await;
    assert_eq!(on_the_6th[0]["patient_id"], p.patient);
    assert_eq!(on_the_6th[0]["follow_up"], "due");
    app.clock.set("2026-12-07T14:00:00Z".parse().unwrap());
    let student = app.actor_for(p.student.id, &p.student.email).await;
    let on_the_7th = checkins(&app, &student).await;
    assert_eq!(on_the_7th[0]["patient_id"], p.patient, "overdue first");
    assert_eq!(on_the_7th[0]["follow_up"], "overdue");
    assert_eq!(on_the_7th[1]["follow_up"], "due");
    let page = app.page(&student, "/checkins").await;
    let (rosa, luis) = (
        page.body.find("Rosa").unwrap(),
        page.body.find("Luis").unwrap(),
    );
    assert!(rosa < luis, "the overdue patient is at the top of the page");
}

async fn every_bad_call_field_is_named_and_nothing_is_written(app: TestApp) {
    let p = programme(&app).await;
    let base = completed_call(
        &app,
        "2026-11-29T10:00:00-05:00",
        Some("2026-12-06T10:00:00-05:00"),
    );
    let change = |c: Value| {
        let mut body = base.clone();
        for (k, v) in c.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    let cases = vec![
        (
            "next_call_at",
            change(json!({"next_call_at": "2026-11-29T09:00:00-05:00"})),
        ),
        (
            "next_call_at",
            change(json!({"next_call_at": "2027-01-25T10:00:00-05:00"})),
        ),
        ("next_call_at", change(json!({"next_call_at": null}))),
        ("next_call_at", change(json!({"next_call_at": "next week"}))),
        ("outcome", change(json!({"outcome": "maybe"}))),
        ("outcome", change(json!({"outcome": null}))),
        ("duration_minutes", change(json!({"duration_minutes": -5}))),
        (
            "duration_minutes",
            change(json!({"duration_minutes": 1000})),
        ),
        ("notes", change(json!({"notes": "n".repeat(10_001)}))),
        ("sections", change(json!({"sections": ["not-a-section"]}))),
        (
            "resources",
            change(json!({"resources": ["not-a-resource"]})),
        ),
        ("mode", change(json!({"mode": "carrier pigeon"}))),
        ("concern", change(json!({"concern": "mild"}))),
        (
            "occurred_at",
            change(json!({"occurred_at": "2026-12-25T10:00:00-05:00"})),
        ),
        (
            "interpreter_used",
            change(json!({"interpreter_used": "sometimes"})),
        ),
    ];
    for (field, body) in cases {
        let reply = log(&app, &p.student, p.patient, body.clone(), None).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            reply.body
        );
        assert!(
            reply.json()["fields"][field].is_array(),
            "{field} not named: {}",
            reply.body
        );
    }
    let many = log(
        &app,
        &p.student,
        p.patient,
        json!({"outcome": "maybe", "duration_minutes": -5, "sections": ["x"]}),
        None,
    )
    .await;
    for field in ["outcome", "duration_minutes", "sections", "mode"] {
        assert!(
            many.json()["fields"][field].is_array(),
            "{field} in {}",
            many.body
        );
    }
    assert_eq!(app.count("calls").await, 0);
    assert_eq!(app.count("call_sections").await, 0);
    assert_eq!(app.count("concerns").await, 0);
    assert_eq!(
        app.count("patients WHERE last_call_at IS NOT NULL").await,
        0
    );
}

async fn the_last_call_before_discharge_needs_no_next_call(app: TestApp) {
    let p = programme(&app).await;
    // Day 52 of 56: a week later would pass the discharge point.
    app.clock.set("2027-01-20T15:00:00Z".parse().unwrap());
    // Weeks later: sign in again (sessions and tokens have expired).
    let student = app.actor_for(p.student.id, &p.student.email).await;
    let reply = log(
        &app,
        &student,
        p.patient,
        completed_call(&app, "2027-01-20T10:00:00-05:00", None),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let on_the_day = log(
        &app,
        &student,
        p.patient,
        completed_call(
            &app,
            "2027-01-20T10:05:00-05:00",
            Some("2027-01-24T10:00:00-05:00"),
        ),
        None,
    )
    .await;
    assert_eq!(
        on_the_day.status,
        StatusCode::CREATED,
        "a next call on the discharge day is fine: {}",
        on_the_day.body
    );
}

async fn a_discharged_patient_gets_no_call(app: TestApp) {
    let p = programme(&app).await;
    app.sql(&format!(
        "UPDATE patients SET status = 'discharged', discharged_at = '2026-11-29 12:00:00', discharged_by = {}, discharge_reason = 'withdrew' WHERE id = {}",
        p.leader.id, p.patient
    ))
    .await;
    let reply = log(
        &app,
        &p.student,
        p.patient,
        completed_call(
            &app,
            "2026-11-29T10:00:00-05:00",
            Some("2026-12-06T10:00:00-05:00"),
        ),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert!(reply.json()["message"]
        .as_str()
        .unwrap()
        .contains("discharged"));
    assert_eq!(app.count("calls").await, 0);
}

async fn only_the_assigned_student_logs_calls(app: TestApp) {
    let p = programme(&app).await;
    let other = app.actor("other@example.org", &[Role::Student]).await;
    let body = completed_call(
        &app,
        "2026-11-29T10:00:00-05:00",
        Some("2026-12-06T10:00:00-05:00"),
    );
    assert_eq!(
        log(&app, &other, p.patient, body.clone(), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        log(&app, &p.leader, p.patient, body.clone(), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.page(&other, &format!("/patients/{}/call", p.patient))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.count("calls").await, 0);
    assert!(
        app.count(&format!(
            "audit_log WHERE action = 'patient.refused' AND user_id = {}",
            other.id
        ))
        .await
            >= 1
    );
}

async fn an_urgent_concern_emails_the_physician_and_leaders_at_once(app: TestApp) {
    let p = programme(&app).await;
    let second_leader = app.actor("leader2@example.org", &[Role::Leader]).await;
    let mut body = completed_call(
        &app,
        "2026-11-29T10:00:00-05:00",
        Some("2026-12-06T10:00:00-05:00"),
    );
    body["concern"] = json!("urgent");
    body["notes"] = json!("SECRET-NOTE: chest pain since yesterday");
    let reply = log(&app, &p.student, p.patient, body, None).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(
        app.count("concerns WHERE level = 'urgent' AND acknowledged_at IS NULL")
            .await,
        1
    );
    for who in [&p.doc, &p.leader, &second_leader] {
        assert_eq!(
            app.count(&format!(
                "outbox WHERE template = 'urgent_concern' AND to_address = '{}'",
                who.email
            ))
            .await,
            1,
            "{}",
            who.email
        );
    }
    assert_eq!(
        app.count("outbox WHERE template = 'urgent_concern'").await,
        3
    );
    assert_eq!(app.count("outbox WHERE body_text LIKE '%Quintanilla%' OR body_html LIKE '%Quintanilla%' OR subject LIKE '%Quintanilla%'").await, 0, "no surname");
    assert_eq!(
        app.count("outbox WHERE body_text LIKE '%SECRET-NOTE%' OR body_html LIKE '%chest%'")
            .await,
        0,
        "no clinical detail"
    );
    assert_eq!(
        app.count(&format!(
            "outbox WHERE body_text LIKE '%/patients/{}%'",
            p.patient
        ))
        .await,
        3,
        "a link"
    );
    // A non-urgent concern is recorded without email.
    let mut body = completed_call(
        &app,
        "2026-11-29T09:30:00-05:00",
        Some("2026-12-06T10:00:00-05:00"),
    );
    body["concern"] = json!("non_urgent");
    log(&app, &p.student, p.patient, body, None).await;
    assert_eq!(app.count("concerns").await, 2);
    assert_eq!(app.count("outbox").await, 3);
    // A correction that raises a concern to urgent emails at once.
    let mut mild = completed_call(
        &app,
        "2026-11-29T08:00:00-05:00",
        Some("2026-12-06T10:00:00-05:00"),
    );
    mild["concern"] = json!("non_urgent");
    let mild_call = log(&app, &p.student, p.patient, mild.clone(), None)
        .await
        .json()["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        app.count("outbox WHERE template = 'urgent_concern'").await,
        3
    );
    mild["concern"] = json!("urgent");
    let raised = app
        .api_send(
            &p.student,
            Method::PUT,
            &format!("/api/v1/patients/{}/calls/{mild_call}", p.patient),
            mild,
        )
        .await;
    assert_eq!(raised.status, StatusCode::OK, "{}", raised.body);
    assert_eq!(
        app.count("outbox WHERE template = 'urgent_concern'").await,
        6
    );
}

async fn three_unsuccessful_attempts_flag_the_patient_unreachable(app: TestApp) {
    let p = programme(&app).await;
    for (i, outcome) in ["no_answer", "voicemail", "no_answer"].iter().enumerate() {
        let mut body = completed_call(
            &app,
            &format!("2026-11-29T0{}:00:00-05:00", i + 7),
            Some("2026-11-30T10:00:00-05:00"),
        );
        body["outcome"] = json!(outcome);
        body["sections"] = json!([]);
        let reply = log(&app, &p.student, p.patient, body, None).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let flags = app
            .api_get(&p.leader, &format!("/api/v1/patients/{}", p.patient))
            .await
            .json()["flags"]
            .clone();
        assert_eq!(
            flags.as_array().unwrap().contains(&json!("unreachable")),
            i == 2,
            "after {} attempts: {flags}",
            i + 1
        );
    }
    assert!(checkins(&app, &p.student).await[0]["flags"]
        .as_array()
        .unwrap()
        .contains(&json!("unreachable")));
    let reached = log(
        &app,
        &p.student,
        p.patient,
        completed_call(
            &app,
            "2026-11-29T09:50:00-05:00",
            Some("2026-12-06T10:00:00-05:00"),
        ),
        None,
    )
    .await;
    assert_eq!(reached.status, StatusCode::CREATED);
    let flags = app
        .api_get(&p.leader, &format!("/api/v1/patients/{}", p.patient))
        .await
        .json()["flags"]
        .clone();
    assert!(!flags.as_array().unwrap().contains(&json!("unreachable")));
}

async fn a_retry_with_the_same_key_returns_the_first_call(app: TestApp) {
    let p = programme(&app).await;
    let body = completed_call(
        &app,
        "2026-11-29T10:00:00-05:00",
        Some("2026-12-06T10:00:00-05:00"),
    );
    let first = log(&app, &p.student, p.patient, body.clone(), Some("key-1")).await;
    let second = log(&app, &p.student, p.patient, body.clone(), Some("key-1")).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(first.json()["id"], second.json()["id"]);
    assert_eq!(app.count("calls").await, 1);
    // 20 at once with one key: exactly one call.
    let futures: Vec<_> = (0..20)
        .map(|_| {
            let req = actix_web::test::TestRequest::post()
                .uri(&format!("/api/v1/patients/{}/calls", p.patient))
                .insert_header(("authorization", format!("Bearer {}", p.student.token)))
                .insert_header(("idempotency-key", "key-20"))
                .set_json(body.clone());
            app.call(req)
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for reply in futures_util_join(futures).await {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        ids.insert(reply.json()["id"].as_i64().unwrap());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(app.count("calls").await, 2);
    // The form's hidden key makes a double click one call.
    let page = app
        .page(&p.student, &format!("/patients/{}/call", p.patient))
        .await;
    let marker = "name=\"idempotency_key\" value=\"";
    let key: String = page.body[page.body.find(marker).unwrap() + marker.len()..]
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    let sections = section_ids(&app);
    let form = [
        ("idempotency_key", key.as_str()),
        ("outcome", "completed"),
        ("mode", "phone"),
        ("duration_minutes", "12"),
        ("occurred_at", "2026-11-29T09:20"),
        ("next_call_at", "2026-12-06T10:00"),
        ("sections", sections[0].as_str()),
        ("concern", "none"),
    ];
    for _ in 0..2 {
        let reply = app
            .post_form(
                &p.student,
                &format!("/patients/{}/call", p.patient),
                &form,
                true,
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    }
    assert_eq!(app.count("calls").await, 3);
}

/// The first call under a protocol version records it. Another request
/// recording it at the same moment (here a transaction that has inserted it
/// and not yet committed) must not turn this call into an error: on
/// PostgreSQL it waited on the unique index and then failed with 409
/// (found by .ci/bench, where 3 of the first 32 calls failed).
async fn the_first_calls_under_a_protocol_version_may_come_at_once(app: TestApp) {
    use checkin::db::schema::protocol_versions;
    use diesel::{ExpressionMethods, RunQueryDsl};
    let p = programme(&app).await;
    let version = app.state.protocol.version.clone();
    let snapshot = app.state.protocol.snapshot_json();
    let now = app.state.clock.now().naive_utc();
    let (inserted, go) = std::sync::mpsc::channel();
    let db = app.state.db.clone();
    let other = std::thread::spawn(move || {
        db.write_blocking(move |c| {
            diesel::insert_into(protocol_versions::table)
                .values((
                    protocol_versions::version.eq(&version),
                    protocol_versions::first_used_at.eq(now),
                    protocol_versions::content.eq(&snapshot),
                ))
                .execute(c)?;
            inserted.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(400));
            Ok(())
        })
    });
    go.recv().unwrap();
    let body = completed_call(
        &app,
        "2026-11-29T10:00:00-05:00",
        Some("2026-12-06T10:00:00-05:00"),
    );
    let reply = log(&app, &p.student, p.patient, body, None).await;
    other.join().unwrap().unwrap();
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(app.count("calls").await, 1);
    assert_eq!(app.count("protocol_versions").await, 1);
}

async fn futures_util_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    // Polls every future together on this thread (the app's writes run on the
    // blocking pool), so the requests really overlap.
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}

async fn the_call_form_shows_mistakes_and_keeps_what_was_typed(app: TestApp) {
    let p = programme(&app).await;
    let form = [
        ("outcome", "completed"),
        ("mode", "phone"),
        ("duration_minutes", "1000"),
        ("notes", "kept words"),
        ("next_call_at", ""),
    ];
    let reply = app
        .post_form(
            &p.student,
            &format!("/patients/{}/call", p.patient),
            &form,
            true,
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    assert!(reply.body.contains("kept words"));
    assert!(reply.body.contains("duration_minutes-error"));
    assert_eq!(app.count("calls").await, 0);
}

async fn a_call_is_corrected_within_a_day_and_leaders_comment(app: TestApp) {
    let p = programme(&app).await;
    let logged = log(
        &app,
        &p.student,
        p.patient,
        completed_call(
            &app,
            "2026-11-29T09:00:00-05:00",
            Some("2026-12-06T10:00:00-05:00"),
        ),
        None,
    )
    .await;
    let call = logged.json()["id"].as_i64().unwrap();
    let path = format!("/api/v1/patients/{}/calls/{call}", p.patient);
    let mut fixed = completed_call(
        &app,
        "2026-11-29T09:00:00-05:00",
        Some("2026-12-05T11:00:00-05:00"),
    );
    fixed["outcome"] = json!("rescheduled");
    fixed["notes"] = json!("Asked to move to Saturday.");
    let reply = app
        .api_send(&p.student, Method::PUT, &path, fixed.clone())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["outcome"], "rescheduled");
    assert_eq!(
        app.count(&format!(
            "call_revisions WHERE call_id = {call} AND previous LIKE '%completed%'"
        ))
        .await,
        1,
        "the original is kept"
    );
    let seen = app
        .api_get(&p.doc, &format!("/api/v1/patients/{}", p.patient))
        .await
        .json();
    assert_eq!(
        seen["next_call_at"], "2026-12-05T16:00:00Z",
        "the follow-up follows the correction"
    );
    // Someone else's call, or another patient's path: 404.
    let other = app.actor("other@example.org", &[Role::Student]).await;
    assert_eq!(
        app.api_send(&other, Method::PUT, &path, fixed.clone())
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let second = app
        .add_patient("Luis", "Other", p.doc.id, Some(p.student.id))
        .await;
    let wrong_parent = format!("/api/v1/patients/{second}/calls/{call}");
    assert_eq!(
        app.api_send(&p.student, Method::PUT, &wrong_parent, fixed.clone())
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.api_get(&p.leader, &wrong_parent).await.status,
        StatusCode::NOT_FOUND
    );
    // The edit page shows the call as logged.
    let edit = app
        .page(
            &p.student,
            &format!("/patients/{}/calls/{call}/edit", p.patient),
        )
        .await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.body.contains("Asked to move to Saturday."));
    // After 24 hours: refused.
    app.clock.advance(Duration::hours(25));
    let student = app.actor_for(p.student.id, &p.student.email).await;
    let late = app.api_send(&student, Method::PUT, &path, fixed).await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.body);
    // A leader's comment reaches the student's call page.
    let leader = app.actor_for(p.leader.id, &p.leader.email).await;
    let comment = app
        .api_send(
            &leader,
            Method::POST,
            &format!("{path}/comments"),
            json!({"body": "Good call, thank you for the notes."}),
        )
        .await;
    assert_eq!(comment.status, StatusCode::CREATED, "{}", comment.body);
    assert_eq!(
        app.api_send(
            &leader,
            Method::POST,
            &format!("{path}/comments"),
            json!({"body": ""})
        )
        .await
        .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let page = app
        .page(&student, &format!("/patients/{}/call", p.patient))
        .await;
    assert!(page.body.contains("Good call, thank you for the notes."));
    let one = app.api_get(&leader, &path).await;
    assert_eq!(one.json()["comments"][0]["author_given_name"], "Test");
    assert_eq!(one.json()["revisions"], 1);
}

async fn the_calendar_feed_shows_next_calls_with_first_names_only(app: TestApp) {
    let p = programme(&app).await;
    log(
        &app,
        &p.student,
        p.patient,
        completed_call(
            &app,
            "2026-11-29T09:00:00-05:00",
            Some("2026-12-06T10:00:00-05:00"),
        ),
        None,
    )
    .await;
    let made = app
        .post_form(&p.student, "/account/calendar", &[], true)
        .await;
    assert_eq!(made.status, StatusCode::OK);
    let body = made.body.replace("&#x2F;", "/");
    let start = body.find("/calendar/").expect("feed address shown");
    let path: String = body[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '<')
        .collect();
    let feed = app.get(&path).await;
    assert_eq!(feed.status, StatusCode::OK, "{path}");
    assert!(feed
        .header("content-type")
        .unwrap()
        .starts_with("text/calendar"));
    assert!(feed.body.contains("BEGIN:VEVENT"));
    assert!(feed.body.contains("DTSTART:20261206T150000Z"));
    assert!(feed.body.contains("SUMMARY:Check-in call: Rosa"));
    assert!(!feed.body.contains("Quintanilla"), "no surname");
    assert!(!feed.body.contains("555"), "no phone number");
    let revoke = app
        .post_form(&p.student, "/account/calendar/revoke", &[], true)
        .await;
    assert_eq!(revoke.status, StatusCode::SEE_OTHER);
    assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND);
}

async fn the_protocol_is_served_with_its_version(app: TestApp) {
    let p = programme(&app).await;
    let api = app.api_get(&p.student, "/api/v1/protocol").await;
    assert_eq!(api.status, StatusCode::OK);
    let doc = api.json();
    assert_eq!(doc["version"], app.state.protocol.version.as_str());
    assert_eq!(doc["languages"], json!(["en", "es"]));
    let ids: Vec<&str> = doc["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    for id in [
        "opening",
        "how-are-you",
        "covid-19",
        "community-resources",
        "mental-health-resources",
        "safety",
        "next-call",
        "closing",
        "final-call",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    assert!(doc["resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == "lifeline-988"));
    let spanish = app.page(&p.doc, "/protocol?lang=es").await;
    assert_eq!(spanish.status, StatusCode::OK);
    assert!(spanish.body.contains(
        &doc["sections"][0]["title"]["es"]
            .as_str()
            .unwrap()
            .replace('\'', "&#x27;")
    ));
    assert!(
        spanish.body.contains(&app.state.protocol.version),
        "the version is on the page"
    );
}

on_both_backends!(
    the_first_calls_under_a_protocol_version_may_come_at_once,
    the_protocol_is_served_with_its_version,
    a_call_is_corrected_within_a_day_and_leaders_comment,
    the_calendar_feed_shows_next_calls_with_first_names_only,
    the_whole_journey_from_enrolment_to_an_overdue_follow_up,
    every_bad_call_field_is_named_and_nothing_is_written,
    the_last_call_before_discharge_needs_no_next_call,
    a_discharged_patient_gets_no_call,
    only_the_assigned_student_logs_calls,
    an_urgent_concern_emails_the_physician_and_leaders_at_once,
    three_unsuccessful_attempts_flag_the_patient_unreachable,
    a_retry_with_the_same_key_returns_the_first_call,
    the_call_form_shows_mistakes_and_keeps_what_was_typed,
);
