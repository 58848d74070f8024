//! The service's outer surface on both backends: health, readiness, metrics,
//! security headers, request ids, error bodies and the OpenAPI document.

mod common;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use common::TestApp;

async fn health_and_readiness_answer(app: TestApp) {
    let health = app.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
}

async fn metrics_count_requests_by_route_and_status(app: TestApp) {
    let admin = app
        .actor("admin@example.org", &[checkin::domain::Role::Admin])
        .await;
    app.get("/healthz").await;
    app.get("/no/such/page").await;
    assert_eq!(app.get("/metrics").await.status, StatusCode::UNAUTHORIZED);
    let metrics = app.api_get(&admin, "/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics
        .body
        .contains(r#"checkin_http_requests_total{method="GET",route="/healthz",status="200"} 1"#));
    assert!(metrics
        .body
        .contains(r#"checkin_http_requests_total{method="GET",route="unmatched",status="404"} 1"#));
    assert!(metrics
        .body
        .contains("checkin_http_request_duration_seconds_bucket"));
    assert!(metrics
        .body
        .contains(r#"checkin_db_pool_connections{state="idle"}"#));
}

async fn every_response_carries_the_security_headers(app: TestApp) {
    for path in [
        "/",
        "/healthz",
        "/no/such/page",
        "/api/v1/openapi.json",
        "/api/v1/nothing",
    ] {
        let reply = app.get(path).await;
        let csp = reply.header("content-security-policy").unwrap_or_default();
        for directive in [
            "default-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: CSP {csp:?} lacks {directive}"
            );
        }
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            reply.header("referrer-policy"),
            Some("no-referrer"),
            "{path}"
        );
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{path}");
        let id = reply.header("x-request-id").unwrap_or_default();
        assert!(id.len() >= 16, "{path}: request id {id:?}");
    }
}

async fn errors_are_json_under_the_api_and_pages_elsewhere(app: TestApp) {
    let api = app.get("/api/v1/patients/12345/nothing").await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    let body = api.json();
    assert_eq!(body["error"], "not_found");
    assert!(body["message"].is_string());

    let page = app.get("/no/such/page").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/html"));
    assert!(page.body.contains("<!doctype html>"));
    assert!(page.body.contains("404"));
}

async fn the_sign_in_page_says_how_to_make_the_first_admin(app: TestApp) {
    let home = app.get("/").await;
    assert_eq!(home.status, StatusCode::FOUND);
    assert_eq!(home.header("location"), Some("/sign-in"));
    let page = app.get("/sign-in").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("checkin user create"), "{}", page.body);

    let db = app.state.db.clone();
    actix_web::web::block(move || {
        let args = checkin::cli::CreateUser {
            email: "Admin@Example.org".into(),
            name: "Ada Admin".into(),
            roles: vec![checkin::domain::Role::Admin],
            languages: "en".into(),
            capacity: 0,
        };
        checkin::cli::create_user(&db, &args, "a long enough password", common::test_start())
    })
    .await
    .unwrap()
    .unwrap();
    let page = app.get("/sign-in").await;
    assert!(!page.body.contains("checkin user create"));
}

async fn the_openapi_document_describes_the_api(app: TestApp) {
    let someone = app
        .actor("someone@example.org", &[checkin::domain::Role::Student])
        .await;
    let reply = app.api_get(&someone, "/api/v1/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.json();
    assert!(doc["openapi"]
        .as_str()
        .unwrap_or_default()
        .starts_with("3."));
    assert_eq!(doc["info"]["title"], "checkin");
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/openapi.json",
        "/api/v1/tokens",
        "/api/v1/users",
        "/api/v1/me",
        "/api/v1/patients/{id}",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the document"
        );
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

async fn the_stylesheet_is_served_and_cacheable(app: TestApp) {
    let css = app.call(TestRequest::get().uri("/static/app.css")).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/css"));
    assert!(css
        .header("cache-control")
        .unwrap_or_default()
        .contains("max-age"));
}

on_both_backends!(
    health_and_readiness_answer,
    metrics_count_requests_by_route_and_status,
    every_response_carries_the_security_headers,
    errors_are_json_under_the_api_and_pages_elsewhere,
    the_sign_in_page_says_how_to_make_the_first_admin,
    the_openapi_document_describes_the_api,
    the_stylesheet_is_served_and_cacheable,
);

/// Every template file is compiled in and renders through the layout: a
/// template added to templates/ but not to the list would fail here.
#[test]
fn every_template_is_registered() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let tera = checkin::web::pages::load_templates().expect("templates compile");
    let registered: Vec<&str> = tera.get_template_names().collect();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".html") {
            assert!(
                registered.contains(&name.as_str()),
                "templates/{name} is not in pages::TEMPLATES"
            );
        }
    }
}
