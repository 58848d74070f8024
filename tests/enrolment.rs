//! Enrolment and pairing (SPEC.md rules 1–2), on both backends: the form and
//! the API, every bad field named, the duplicate guard, physicians' lists,
//! and leaders pairing patients with students.

mod common;

use actix_web::http::{Method, StatusCode};
use checkin::domain::Role;
use common::{Actor, TestApp};
use serde_json::{json, Value};

fn good() -> Value {
    json!({
        "given_name": "Rosa", "family_name": "Martínez", "phone": "(215) 555-0123",
        "preferred_language": "es", "interpreter_needed": true, "best_times": "mornings",
        "contact_mode": "phone", "enrolment_reasons": ["mental_health", "social_isolation"],
        "interest_confirmed": true, "cadence": "weekly", "enrolled_on": "2026-11-27",
        "date_of_birth": "1950-03-02", "clinic_record_number": "MRN-1001"
    })
}

fn with(changes: Value) -> Value {
    let mut body = good();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            body.as_object_mut().unwrap().remove(k);
        } else {
            body[k] = v.clone();
        }
    }
    body
}

async fn enrol(app: &TestApp, who: &Actor, body: Value) -> common::Reply {
    app.api_send(who, Method::POST, "/api/v1/patients", body)
        .await
}

async fn a_physician_enrols_and_sees_the_discharge_point(app: TestApp) {
    let doc = app.actor("doc@example.org", &[Role::Physician]).await;
    let reply = enrol(&app, &doc, good()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let p = reply.json();
    assert_eq!(p["status"], "active");
    assert_eq!(p["discharge_due_on"], "2027-01-22", "2026-11-27 + 56 days");
    assert_eq!(p["phone"], "+12155550123");
    assert_eq!(p["enrolled_by"], doc.id);
    assert_eq!(
        p["flags"],
        json!(["due"]),
        "the first call is due within 3 days"
    );
    assert_eq!(
        app.count("audit_log WHERE action = 'patient.enrolled'")
            .await,
        1
    );
    // Defaults: today in programme time, weekly, phone.
    let minimal = enrol(&app, &doc, json!({
        "given_name": "Ana", "family_name": "Reyes", "phone": "2155550188", "preferred_language": "en",
        "enrolment_reasons": ["covid_worries"], "interest_confirmed": true
    }))
    .await;
    assert_eq!(minimal.status, StatusCode::CREATED, "{}", minimal.body);
    assert_eq!(minimal.json()["enrolled_on"], "2026-11-29");
    assert_eq!(minimal.json()["cadence"], "weekly");
}

async fn every_bad_field_is_named_and_nothing_is_written(app: TestApp) {
    let doc = app.actor("doc@example.org", &[Role::Physician]).await;
    let cases: Vec<(&str, Value)> = vec![
        ("given_name", json!({"given_name": ""})),
        ("given_name", json!({"given_name": "x".repeat(101)})),
        ("family_name", json!({"family_name": null})),
        ("family_name", json!({"family_name": "y".repeat(101)})),
        ("phone", json!({"phone": "555"})),
        ("phone", json!({"phone": "+1 (856) 555-01234"})),
        ("preferred_language", json!({"preferred_language": "xx"})),
        ("cadence", json!({"cadence": "daily"})),
        ("contact_mode", json!({"contact_mode": "fax"})),
        ("enrolled_on", json!({"enrolled_on": "2026-11-30"})),
        ("enrolled_on", json!({"enrolled_on": "2026-10-29"})),
        ("enrolled_on", json!({"enrolled_on": "yesterday"})),
        ("interest_confirmed", json!({"interest_confirmed": false})),
        ("interest_confirmed", json!({"interest_confirmed": null})),
        ("enrolment_reasons", json!({"enrolment_reasons": []})),
        (
            "enrolment_reasons",
            json!({"enrolment_reasons": ["boredom"]}),
        ),
        (
            "enrolment_reason_other",
            json!({"enrolment_reasons": ["other"]}),
        ),
        ("date_of_birth", json!({"date_of_birth": "2030-01-01"})),
        ("best_times", json!({"best_times": "z".repeat(501)})),
        (
            "interpreter_needed",
            json!({"interpreter_needed": "perhaps"}),
        ),
    ];
    for (field, change) in cases {
        let reply = enrol(&app, &doc, with(change.clone())).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{change}: {}",
            reply.body
        );
        let body = reply.json();
        assert_eq!(body["error"], "invalid");
        assert!(
            body["fields"][field].is_array(),
            "{change} did not name {field}: {body}"
        );
    }
    // All at once: every field named in one answer.
    let all = enrol(&app, &doc, json!({"given_name": "", "phone": "555", "preferred_language": "xx", "cadence": "daily", "enrolled_on": "2026-11-30"})).await;
    let fields = all.json()["fields"].clone();
    for field in [
        "given_name",
        "family_name",
        "phone",
        "preferred_language",
        "cadence",
        "enrolled_on",
        "interest_confirmed",
        "enrolment_reasons",
    ] {
        assert!(fields[field].is_array(), "{field} missing from {fields}");
    }
    assert_eq!(app.count("patients").await, 0);
    assert_eq!(app.count("enrolment_reasons").await, 0);
}

async fn the_form_comes_back_with_messages_and_the_values_kept(app: TestApp) {
    let doc = app.actor("doc@example.org", &[Role::Physician]).await;
    let form = [
        ("given_name", "Rosa"),
        ("family_name", ""),
        ("phone", "555"),
        ("preferred_language", "es"),
        ("best_times", "after lunch"),
        ("enrolment_reasons", "mental_health"),
        ("cadence", "biweekly"),
    ];
    let reply = app.post_form(&doc, "/enrol", &form, true).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.body.contains("value=\"Rosa\""), "given name kept");
    assert!(
        reply.body.contains("value=\"after lunch\""),
        "best times kept"
    );
    assert!(
        reply.body.contains("value=\"biweekly\" checked"),
        "cadence kept"
    );
    assert!(reply.body.contains("family_name-error"));
    assert!(reply.body.contains("phone-error"));
    assert!(
        reply.body.contains(
            r#"<input id="phone" aria-invalid="true" aria-describedby="phone-error" name="phone""#
        ),
        "a screen reader reads the error with the field"
    );
    assert!(
        !reply.body.contains(r#"id="given_name" aria-invalid"#),
        "a good field is not marked"
    );
    assert!(reply.body.contains("interest_confirmed-error"));
    assert_eq!(app.count("patients").await, 0);

    let ok = [
        ("given_name", "Rosa"),
        ("family_name", "Martínez"),
        ("phone", "(215) 555-0123"),
        ("preferred_language", "es"),
        ("interpreter_needed", "on"),
        ("enrolment_reasons", "mental_health"),
        ("enrolment_reasons", "covid_worries"),
        ("cadence", "weekly"),
        ("contact_mode", "video"),
        ("interest_confirmed", "on"),
    ];
    let created = app.post_form(&doc, "/enrol", &ok, true).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let location = created.header("location").unwrap().to_string();
    let page = app.page(&doc, &location).await;
    assert!(
        page.body.contains("2027-01-24"),
        "the discharge point is shown"
    );
    assert!(
        page.body
            .contains("Enrolled. The student leaders will pair Rosa"),
        "the physician is told it worked and what happens next"
    );
    let later = app.page(&doc, location.split('?').next().unwrap()).await;
    assert!(!later.body.contains("Enrolled. The student leaders"));
    assert_eq!(app.count("enrolment_reasons").await, 2);
    assert_eq!(
        app.count("patients WHERE contact_mode = 'video' AND interpreter_needed")
            .await,
        1
    );
    assert_eq!(app.page(&doc, "/enrol").await.status, StatusCode::OK);
}

async fn enrolling_the_same_person_twice_points_at_the_first_enrolment(app: TestApp) {
    let doc = app.actor("doc@example.org", &[Role::Physician]).await;
    let other_doc = app.actor("doc2@example.org", &[Role::Physician]).await;
    let first = enrol(&app, &doc, good()).await.json();
    let id = first["id"].as_i64().unwrap();
    let again = enrol(
        &app,
        &doc,
        with(json!({"given_name": "ROSA", "clinic_record_number": null})),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.json()["existing_patient_id"], id);
    assert_eq!(
        again.header("location"),
        Some(format!("/api/v1/patients/{id}").as_str())
    );
    let same_record = enrol(
        &app,
        &doc,
        with(json!({"given_name": "Other", "phone": "2155550177"})),
    )
    .await;
    assert_eq!(
        same_record.status,
        StatusCode::CONFLICT,
        "same clinic record number"
    );
    // Another physician learns only that the person is enrolled.
    let hidden = enrol(&app, &other_doc, good()).await;
    assert_eq!(hidden.status, StatusCode::CONFLICT);
    assert!(hidden.json()["existing_patient_id"].is_null());
    assert!(!hidden.body.contains(&id.to_string()));
    // Once discharged, the person may be enrolled again.
    app.sql(&format!(
        "UPDATE patients SET status = 'discharged', discharged_at = '2026-11-28 10:00:00', discharged_by = {}, discharge_reason = 'completed' WHERE id = {id}",
        doc.id
    ))
    .await;
    assert_eq!(enrol(&app, &doc, good()).await.status, StatusCode::CREATED);
    assert_eq!(app.count("patients").await, 2);
}

async fn students_and_admins_cannot_enrol_and_extra_fields_change_nothing(app: TestApp) {
    let student = app.actor("student@example.org", &[Role::Student]).await;
    let leader = app.actor("leader@example.org", &[Role::Leader]).await;
    assert_eq!(
        enrol(&app, &student, good()).await.status,
        StatusCode::FORBIDDEN
    );
    let sneaky = with(
        json!({"status": "discharged", "enrolled_by": student.id, "discharge_due_on": "2030-01-01", "id": 777, "discharged_at": "2026-11-28T00:00:00Z"}),
    );
    let reply = enrol(&app, &leader, sneaky).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let p = reply.json();
    assert_eq!(p["status"], "active");
    assert_eq!(p["enrolled_by"], leader.id);
    assert_eq!(p["discharge_due_on"], "2027-01-22");
    assert_ne!(p["id"], 777);
}

async fn physicians_list_their_own_patients_with_student_and_flags(app: TestApp) {
    let doc = app.actor("doc@example.org", &[Role::Physician]).await;
    let other = app.actor("doc2@example.org", &[Role::Physician]).await;
    let student = app.actor("student@example.org", &[Role::Student]).await;
    let mine = app
        .add_patient("Rosa", "Mine", doc.id, Some(student.id))
        .await;
    app.add_patient("Luis", "NotMine", other.id, None).await;
    let list = app.api_get(&doc, "/api/v1/patients").await.json();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], mine);
    assert_eq!(rows[0]["student_given_name"], "Test");
    assert!(rows[0]["flags"].as_array().unwrap().contains(&json!("due")));
    let page = app.page(&doc, "/patients").await;
    assert!(page.body.contains("Mine") && !page.body.contains("NotMine"));
    let students = app.api_get(&student, "/api/v1/patients").await.json();
    assert_eq!(students.as_array().unwrap().len(), 1);
    assert_eq!(
        app.api_get(&doc, "/api/v1/patients?status=lost")
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.api_get(&doc, "/api/v1/patients?status=discharged")
            .await
            .json(),
        json!([])
    );
}

async fn setup_pairing(app: &TestApp) -> (Actor, Actor, Vec<i64>, i64) {
    let leader = app.actor("leader@example.org", &[Role::Leader]).await;
    let doc = app.actor("doc@example.org", &[Role::Physician]).await;
    let english = app
        .create_user("english@example.org", &[Role::Student], "en")
        .await;
    let spanish_full = app
        .create_user("full@example.org", &[Role::Student], "es,en")
        .await;
    let spanish_free = app
        .create_user("free@example.org", &[Role::Student], "es")
        .await;
    let spanish_busy = app
        .create_user("busy@example.org", &[Role::Student], "es")
        .await;
    // capacity 4 each (create_user's default): fill one, half-fill another.
    for i in 0..4 {
        app.add_patient("Filler", &format!("Full{i}"), doc.id, Some(spanish_full))
            .await;
    }
    for i in 0..2 {
        app.add_patient("Filler", &format!("Busy{i}"), doc.id, Some(spanish_busy))
            .await;
    }
    let patient = app.add_patient("Carmen", "Waiting", doc.id, None).await;
    (
        leader,
        doc,
        vec![english, spanish_full, spanish_free, spanish_busy],
        patient,
    )
}

async fn a_spanish_speaker_with_room_is_suggested_first(app: TestApp) {
    let (leader, _, students, patient) = setup_pairing(&app).await;
    let (english, full, free, busy) = (students[0], students[1], students[2], students[3]);
    let reply = app
        .api_get(
            &leader,
            &format!("/api/v1/patients/{patient}/pairing-suggestions"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let order: Vec<i64> = reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["student_id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        order,
        vec![free, busy, english, full],
        "Spanish with most room first; the full student last"
    );
    let top = &reply.json()[0];
    assert_eq!(top["speaks_patient_language"], true);
    assert_eq!(top["fits"], true);
    assert_eq!(reply.json()[3]["fits"], false);
    assert_eq!(reply.json()[3]["weighted_load"], 4.0);
    let page = app.page(&leader, "/pairing").await;
    assert!(
        page.body.contains("Carmen"),
        "the queue shows the unpaired patient"
    );
    assert_eq!(
        app.page(&leader, &format!("/pairing/{patient}"))
            .await
            .status,
        StatusCode::OK
    );
}

async fn pairing_keeps_history_and_asks_for_hand_off_notes(app: TestApp) {
    let (leader, _, students, patient) = setup_pairing(&app).await;
    let (english, full, free) = (students[0], students[1], students[2]);
    let path = format!("/api/v1/patients/{patient}/assignment");
    let put = |body: Value| app.api_send(&leader, Method::PUT, &path, body);
    assert_eq!(
        put(json!({"student_id": free, "note": "likes mornings"}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        put(json!({"student_id": free})).await.status,
        StatusCode::CONFLICT,
        "already paired"
    );
    let no_note = put(json!({"student_id": english})).await;
    assert_eq!(no_note.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(no_note.json()["fields"]["note"].is_array());
    let over = put(json!({"student_id": full, "note": "moving"})).await;
    assert_eq!(over.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(over.json()["fields"]["confirm_over_capacity"].is_array());
    let confirmed = put(json!({"student_id": full, "note": "moving: prefers evenings", "confirm_over_capacity": true})).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    let not_student = put(json!({"student_id": leader.id, "note": "x"})).await;
    assert_eq!(not_student.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(not_student.json()["fields"]["student_id"].is_array());
    assert_eq!(
        app.count(&format!("assignments WHERE patient_id = {patient}"))
            .await,
        2
    );
    assert_eq!(
        app.count(&format!("assignments WHERE patient_id = {patient} AND ended_at IS NOT NULL AND handoff_note = 'moving: prefers evenings'")).await,
        1
    );
    assert_eq!(
        app.count("audit_log WHERE action = 'assignment.started'")
            .await,
        2
    );
    assert_eq!(
        app.count("audit_log WHERE action = 'assignment.ended'")
            .await,
        1
    );
    let page = app.page(&leader, &format!("/patients/{patient}")).await;
    assert!(page.body.contains("Pairing history") && page.body.contains("prefers evenings"));
    // The new student reads the hand-off note on the call page.
    let full_student = app.actor_for(full, "full@example.org").await;
    let call_page = app
        .page(&full_student, &format!("/patients/{patient}/call"))
        .await;
    assert_eq!(call_page.status, StatusCode::OK);
    assert!(
        call_page.body.contains("Hand-off from") && call_page.body.contains("prefers evenings"),
        "{}",
        call_page.body
    );
    // Unpair; a discharged patient cannot be paired.
    let delete = app
        .api_send(
            &leader,
            Method::DELETE,
            &path,
            json!({"note": "student on exams"}),
        )
        .await;
    assert_eq!(delete.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.api_send(&leader, Method::DELETE, &path, json!({}))
            .await
            .status,
        StatusCode::CONFLICT
    );
    app.sql(&format!(
        "UPDATE patients SET status = 'discharged', discharged_at = '2026-11-29 10:00:00', discharged_by = {}, discharge_reason = 'withdrew' WHERE id = {patient}",
        leader.id
    ))
    .await;
    assert_eq!(
        put(json!({"student_id": free, "note": "back"}))
            .await
            .status,
        StatusCode::CONFLICT
    );
}

async fn the_pairing_form_works_without_javascript(app: TestApp) {
    let (leader, _, students, patient) = setup_pairing(&app).await;
    let free = students[2].to_string();
    let reply = app
        .post_form(
            &leader,
            &format!("/pairing/{patient}"),
            &[("student_id", &free), ("note", "")],
            true,
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    // Moving without a note re-shows the page with the message.
    let english = students[0].to_string();
    let again = app
        .post_form(
            &leader,
            &format!("/pairing/{patient}"),
            &[("student_id", &english)],
            true,
        )
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("hand-off note is required"));
    let unpair = app
        .post_form(
            &leader,
            &format!("/pairing/{patient}/unassign"),
            &[("note", "pause")],
            true,
        )
        .await;
    assert_eq!(unpair.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.count(&format!(
            "assignments WHERE patient_id = {patient} AND ended_at IS NULL"
        ))
        .await,
        0
    );
}

on_both_backends!(
    a_physician_enrols_and_sees_the_discharge_point,
    every_bad_field_is_named_and_nothing_is_written,
    the_form_comes_back_with_messages_and_the_values_kept,
    enrolling_the_same_person_twice_points_at_the_first_enrolment,
    students_and_admins_cannot_enrol_and_extra_fields_change_nothing,
    physicians_list_their_own_patients_with_student_and_flags,
    a_spanish_speaker_with_room_is_suggested_first,
    pairing_keeps_history_and_asks_for_hand_off_notes,
    the_pairing_form_works_without_javascript,
);
