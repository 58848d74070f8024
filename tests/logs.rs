//! SECURITY.md 19: logs carry ids, never names, phone numbers, notes,
//! passwords or tokens. Seeds sentinel values through every kind of request
//! (including failures), captures everything logged at TRACE, finds none.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use actix_web::http::Method;
use actix_web::test::TestRequest;
use checkin::domain::Role;
use common::TestApp;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const SENTINELS: &[&str] = &[
    "Xanthippe",
    "Quizzlewick",
    "+12155550199",
    "555-0199",
    "sentinel-password-9f8e7d",
    "sentinel.person@example.org",
    "secret-note-4c3b2a",
];

async fn journey(app: TestApp) {
    let admin = app.actor("admin@example.org", &[Role::Admin]).await;
    let doc = app.actor("doc@example.org", &[Role::Physician]).await;
    app.sign_in("sentinel.person@example.org", "sentinel-password-9f8e7d")
        .await;
    app.api_send(
        &admin,
        Method::POST,
        "/api/v1/users",
        serde_json::json!({"email": "sentinel.person@example.org", "given_name": "Xanthippe", "family_name": "Quizzlewick", "roles": ["student"]}),
    )
    .await;
    app.api_send(
        &admin,
        Method::POST,
        "/api/v1/users",
        serde_json::json!({"email": "sentinel.person@example.org", "given_name": "Xanthippe", "roles": ["nope"], "notes": "secret-note-4c3b2a"}),
    )
    .await;
    let patient = app
        .add_patient("Xanthippe", "Quizzlewick", doc.id, None)
        .await;
    app.sql(&format!(
        "UPDATE patients SET phone = '+12155550199' WHERE id = {patient}"
    ))
    .await;
    app.api_get(&doc, &format!("/api/v1/patients/{patient}"))
        .await;
    app.page(&doc, &format!("/patients/{patient}")).await;
    app.page(&admin, "/admin/users?q=Xanthippe").await;
    app.call(TestRequest::get().uri("/patients/Xanthippe?name=Quizzlewick"))
        .await;
    app.call(
        TestRequest::post()
            .uri("/api/v1/tokens")
            .set_json(serde_json::json!({"email": "sentinel.person@example.org", "password": "sentinel-password-9f8e7d"})),
    )
    .await;
}

#[actix_web::test]
async fn no_sentinel_reaches_the_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    // The most an operator can ask for: RUST_LOG=trace.
    tracing_subscriber::fmt()
        .with_env_filter(checkin::telemetry::log_filter(Some("trace")))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    journey(TestApp::sqlite().await).await;
    if let Some(app) = TestApp::postgres("no_sentinel_reaches_the_log").await {
        journey(app).await;
    }
    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(
        log.contains("request_id="),
        "the log captured nothing: {log}"
    );
    for sentinel in SENTINELS {
        assert!(
            !log.contains(sentinel),
            "{sentinel} reached the log:\n{log}"
        );
    }
}
