//! Email that never gets lost (SPEC.md rule 11, SECURITY.md 27), against a
//! real SMTP server: every kind of email reaches the right people with no
//! surname and no clinical detail; a server that is down is retried until it
//! is back, none twice; two senders on one database deliver each email once.

mod common;

use std::collections::BTreeSet;

use actix_web::http::{Method, StatusCode};
use checkin::domain::Role;
use checkin::mail::sender::{drain, Transport};
use chrono::Duration;
use common::{SmtpServer, TestApp};
use serde_json::json;

fn smtp_transport(url: &str) -> Transport {
    let mut settings = checkin::config::Settings::from_env(|_| None).unwrap();
    settings.smtp_url = Some(url.to_string());
    Transport::from_settings(&settings).unwrap()
}

async fn drain_with(
    app: &TestApp,
    transport: Transport,
    holder: &'static str,
) -> checkin::mail::sender::DrainReport {
    let (db, clock, from) = (
        app.state.db.clone(),
        app.clock.clone(),
        app.state.settings.mail_from.clone(),
    );
    actix_web::web::block(move || {
        use checkin::clock::Clock;
        drain(&db, &transport, &from, holder, move || clock.now())
    })
    .await
    .unwrap()
    .unwrap()
}

fn recipients(message: &str) -> String {
    message
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("to:"))
        .unwrap_or_default()
        .to_string()
}

async fn every_email_reaches_its_people_without_clinical_detail(app: TestApp) {
    let Some(smtp) = SmtpServer::start("every_email_reaches_its_people") else {
        return;
    };
    // Monday 2026-11-30, 10:00 in New York: digests and the weekly summary are due.
    app.clock.set("2026-11-30T15:00:00Z".parse().unwrap());
    let admin = app.actor("admin@example.org", &[Role::Admin]).await;
    let doc = app.actor("doc@example.org", &[Role::Physician]).await;
    let leader = app.actor("leader@example.org", &[Role::Leader]).await;
    let student = app.actor("student@example.org", &[Role::Student]).await;
    let patient = app
        .add_patient("Rosa", "Zzyzxsurname", doc.id, Some(student.id))
        .await;
    // Account set-up and password reset.
    app.api_send(
        &admin,
        Method::POST,
        "/api/v1/users",
        json!({"email": "new@example.org", "given_name": "Nuevo", "roles": ["student"]}),
    )
    .await;
    app.post_form(
        &admin,
        &format!("/admin/users/{}/reset-password", student.id),
        &[],
        true,
    )
    .await;
    // An urgent concern.
    let call = app
        .api_send(&student, Method::POST, &format!("/api/v1/patients/{patient}/calls"), json!({
            "occurred_at": "2026-11-30T09:30:00-05:00", "mode": "phone", "outcome": "completed", "duration_minutes": 20,
            "concern": "urgent", "notes": "CLINICAL-SECRET chest pain", "next_call_at": "2026-12-07T10:00:00-05:00"
        }))
        .await;
    assert_eq!(call.status, StatusCode::CREATED, "{}", call.body);
    // Digests and the weekly summary.
    let second = app
        .add_patient("Luis", "Zzyzxother", doc.id, Some(student.id))
        .await;
    let _ = second;
    let report = actix_web::web::block({
        let state = app.state.clone();
        move || checkin::jobs::run_due(&state, "test")
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(report.digests, 1, "{report:?}");
    assert_eq!(report.weekly_summaries, 1, "{report:?}");
    // Discharge notice.
    let discharged = app
        .api_send(
            &leader,
            Method::POST,
            &format!("/api/v1/patients/{patient}/discharge"),
            json!({"reason": "withdrew", "summary": "CLINICAL-SECRET moved away"}),
        )
        .await;
    assert_eq!(
        discharged.status,
        StatusCode::NO_CONTENT,
        "{}",
        discharged.body
    );

    let sent = drain_with(&app, smtp_transport(&smtp.url()), "one").await;
    assert_eq!(sent.retrying + sent.failed, 0, "{sent:?}");
    let messages = smtp.messages();
    assert_eq!(messages.len(), sent.sent);
    let to = |who: &str, subject: &str| {
        messages
            .iter()
            .filter(|m| recipients(m).contains(who) && m.contains(subject))
            .count()
    };
    assert_eq!(to("new@example.org", "Your checkin account"), 1);
    assert_eq!(to("student@example.org", "Reset your checkin password"), 1);
    assert_eq!(to("doc@example.org", "Urgent concern"), 1);
    assert_eq!(to("leader@example.org", "Urgent concern"), 1);
    assert_eq!(to("student@example.org", "Your check-ins today"), 1);
    assert_eq!(to("leader@example.org", "the week in numbers"), 1);
    assert_eq!(to("doc@example.org", "discharge summary is ready"), 1);
    for m in &messages {
        assert!(!m.contains("Zzyzx"), "a surname in an email:\n{m}");
        assert!(
            !m.contains("CLINICAL-SECRET"),
            "clinical detail in an email:\n{m}"
        );
        assert!(!m.contains("+1215555"), "a phone number in an email");
    }
    // Nothing is sent twice.
    assert_eq!(
        drain_with(&app, smtp_transport(&smtp.url()), "one")
            .await
            .sent,
        0
    );
    assert_eq!(smtp.messages().len(), messages.len());
}

async fn a_server_that_is_down_is_retried_until_it_is_back(app: TestApp) {
    let port = common::process::free_port();
    let admin = app.actor("admin@example.org", &[Role::Admin]).await;
    app.api_send(
        &admin,
        Method::POST,
        "/api/v1/users",
        json!({"email": "new@example.org", "given_name": "Nuevo", "roles": ["student"]}),
    )
    .await;
    let url = format!("smtp://127.0.0.1:{port}");
    let down = drain_with(&app, smtp_transport(&url), "one").await;
    assert_eq!((down.sent, down.retrying), (0, 1));
    assert_eq!(
        app.count("outbox WHERE status = 'pending' AND attempts = 1 AND last_error IS NOT NULL")
            .await,
        1
    );
    let Some(smtp) = SmtpServer::start_on("a_server_that_is_down_is_retried", port) else {
        return;
    };
    // Not before its back-off.
    assert_eq!(drain_with(&app, smtp_transport(&url), "one").await.sent, 0);
    app.clock.advance(Duration::seconds(31));
    assert_eq!(drain_with(&app, smtp_transport(&url), "one").await.sent, 1);
    assert_eq!(drain_with(&app, smtp_transport(&url), "one").await.sent, 0);
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(
        app.count("outbox WHERE status = 'sent' AND sent_at IS NOT NULL")
            .await,
        1
    );
    // An email that cannot go for a day is marked failed and shown to admins.
    app.api_send(
        &admin,
        Method::POST,
        "/api/v1/users",
        json!({"email": "second@example.org", "given_name": "Segundo", "roles": ["student"]}),
    )
    .await;
    let nowhere = "smtp://127.0.0.1:1";
    drain_with(&app, smtp_transport(nowhere), "one").await;
    app.clock.advance(Duration::hours(25));
    let gave_up = drain_with(&app, smtp_transport(nowhere), "one").await;
    assert_eq!(gave_up.failed, 1);
    let admin = app.actor_for(admin.id, "admin@example.org").await;
    let page = app.page(&admin, "/admin/settings").await;
    assert!(
        page.body.contains("1 failed") && page.body.contains("second@example.org"),
        "{}",
        page.body
    );
}

async fn two_senders_on_one_database_deliver_each_email_once(app: TestApp) {
    let Some(smtp) = SmtpServer::start("two_senders_on_one_database") else {
        return;
    };
    let now = app.clock_now();
    app.state
        .db
        .write(move |c| {
            for i in 0..1000 {
                let email = checkin::mail::OutgoingEmail {
                    dedup_key: format!("load:{i}"),
                    template: "load_test",
                    recipient_user_id: None,
                    to_address: format!("person{i}@example.org"),
                    subject: format!("Message {i}"),
                    body_text: "Hello".into(),
                    body_html: "<p>Hello</p>".into(),
                };
                checkin::mail::enqueue(c, &email, now.naive_utc())?;
            }
            Ok(())
        })
        .await
        .unwrap();
    // Two instances: two pools on the same database, two holders.
    let url = app.state.settings.database_url.clone();
    let second = checkin::db::Db::connect(&url, 4).unwrap();
    let (first, smtp_url, from) = (
        app.state.db.clone(),
        smtp.url(),
        app.state.settings.mail_from.clone(),
    );
    let clock = app.clock.clone();
    let run = |db: checkin::db::Db, holder: &'static str| {
        let (smtp_url, from, clock) = (smtp_url.clone(), from.clone(), clock.clone());
        std::thread::spawn(move || {
            use checkin::clock::Clock;
            drain(&db, &smtp_transport(&smtp_url), &from, holder, move || {
                clock.now()
            })
            .unwrap()
        })
    };
    let a = run(first, "instance-a");
    let b = run(second, "instance-b");
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    assert_eq!(a.sent + b.sent, 1000, "{a:?} {b:?}");
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1000);
    let ids: BTreeSet<String> = messages
        .iter()
        .filter_map(|m| {
            m.lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                .map(str::to_string)
        })
        .collect();
    assert_eq!(ids.len(), 1000, "each email once");
    assert_eq!(app.count("outbox WHERE status = 'sent'").await, 1000);
}

async fn without_smtp_mail_is_written_to_the_data_folder(app: TestApp) {
    let admin = app.actor("admin@example.org", &[Role::Admin]).await;
    app.api_send(
        &admin,
        Method::POST,
        "/api/v1/users",
        json!({"email": "new@example.org", "given_name": "Nuevo", "roles": ["student"]}),
    )
    .await;
    let transport = Transport::from_settings(&app.state.settings).unwrap();
    assert!(transport.describe().contains("CHECKIN_SMTP_URL is not set"));
    assert_eq!(drain_with(&app, transport, "one").await.sent, 1);
    let folder = app.state.settings.mail_dir();
    let files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(files.len(), 1);
    let eml = std::fs::read_to_string(files[0].path()).unwrap();
    assert!(eml.contains("new@example.org") && eml.contains("/link/"));
}

trait Now {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc>;
}

impl Now for TestApp {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use checkin::clock::Clock;
        self.clock.now()
    }
}

on_both_backends!(
    every_email_reaches_its_people_without_clinical_detail,
    a_server_that_is_down_is_retried_until_it_is_back,
    two_senders_on_one_database_deliver_each_email_once,
    without_smtp_mail_is_written_to_the_data_folder,
);
