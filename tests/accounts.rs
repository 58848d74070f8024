//! Accounts, sign-in, sessions, tokens and the audit trail (SECURITY.md
//! 7–14, 17–18, 20–21), on both backends.

mod common;

use actix_web::http::{Method, StatusCode};
use actix_web::test::TestRequest;
use checkin::domain::Role;
use chrono::Duration;
use common::{set_cookie, TestApp, PASSWORD};

async fn passwords_are_stored_as_argon2id(app: TestApp) {
    app.create_user("ana@example.org", &[Role::Student], "es")
        .await;
    let hashes = app
        .count("users WHERE password_hash LIKE '$argon2id$v=19$m=19456,t=2,p=1$%'")
        .await;
    assert_eq!(hashes, 1);
    assert_eq!(
        app.count(&format!("users WHERE password_hash LIKE '%{PASSWORD}%'"))
            .await,
        0
    );
}

async fn sign_in_starts_a_fresh_session_with_a_safe_cookie(app: TestApp) {
    app.create_user("ana@example.org", &[Role::Student], "es")
        .await;
    let first = app.sign_in("ANA@example.org ", PASSWORD).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    let raw = first
        .headers
        .get_all("set-cookie")
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("checkin_session="))
        .expect("session cookie")
        .to_string();
    assert!(raw.contains("HttpOnly"), "{raw}");
    assert!(raw.contains("SameSite=Lax"), "{raw}");
    let value = raw
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("checkin_session=");
    assert!(value.len() >= 32, "at least 128 random bits: {value}");
    let second = app.sign_in("ana@example.org", PASSWORD).await;
    assert_ne!(
        set_cookie(&first, "checkin_session"),
        set_cookie(&second, "checkin_session")
    );
    assert_eq!(app.count("audit_log WHERE action = 'sign_in'").await, 2);
}

async fn unknown_email_and_wrong_password_get_the_same_answer(app: TestApp) {
    app.create_user("ana@example.org", &[Role::Student], "es")
        .await;
    let started = std::time::Instant::now();
    let wrong = app
        .sign_in("ana@example.org", "not the password at all")
        .await;
    let wrong_time = started.elapsed();
    let started = std::time::Instant::now();
    let unknown = app
        .sign_in("nobody@example.org", "not the password at all")
        .await;
    let unknown_time = started.elapsed();
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let strip = |body: &str, email: &str| {
        let csrf = common::csrf_in(body);
        body.replace(email, "EMAIL").replace(&csrf, "CSRF")
    };
    assert_eq!(
        strip(&wrong.body, "ana@example.org"),
        strip(&unknown.body, "nobody@example.org")
    );
    // Both paths run one argon2 check; allow generous noise.
    let ratio = unknown_time.as_secs_f64() / wrong_time.as_secs_f64().max(1e-6);
    assert!(
        (0.25..4.0).contains(&ratio),
        "timing differs: wrong {wrong_time:?} unknown {unknown_time:?}"
    );
    assert_eq!(
        app.count("audit_log WHERE action = 'sign_in.failed'").await,
        2
    );
}

async fn eleven_wrong_passwords_are_throttled(app: TestApp) {
    app.create_user("ana@example.org", &[Role::Student], "es")
        .await;
    for attempt in 1..=10 {
        let reply = app.sign_in("ana@example.org", "wrong password here").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let eleventh = app.sign_in("ana@example.org", "wrong password here").await;
    assert_eq!(eleventh.status, StatusCode::TOO_MANY_REQUESTS);
    // The right password is refused too while throttled, through the API as well.
    assert_eq!(
        app.sign_in("ana@example.org", PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let api = app
        .call(
            TestRequest::post()
                .uri("/api/v1/tokens")
                .set_json(serde_json::json!({"email": "ana@example.org", "password": PASSWORD})),
        )
        .await;
    assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(api.json()["error"], "too_many_requests");
    assert_eq!(
        app.count("audit_log WHERE action = 'sign_in.failed'").await,
        10
    );
    // After the window the account works again.
    app.clock.advance(Duration::minutes(16));
    assert_eq!(
        app.sign_in("ana@example.org", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

async fn failures_are_throttled_per_address_too(app: TestApp) {
    let from = |email: &str| {
        let form = format!(
            "email={}&password=wrongwrongwrong",
            common::urlencode(email)
        );
        (
            form,
            "10.9.8.7:5000".parse::<std::net::SocketAddr>().unwrap(),
        )
    };
    let page = app.get("/sign-in").await;
    let pre = set_cookie(&page, "checkin_csrf").unwrap();
    let csrf = common::csrf_in(&page.body);
    let mut last = StatusCode::OK;
    for i in 0..11 {
        let (form, addr) = from(&format!("user{i}@example.org"));
        last = app
            .call(
                TestRequest::post()
                    .uri("/sign-in")
                    .peer_addr(addr)
                    .insert_header(("cookie", pre.clone()))
                    .insert_header(("content-type", "application/x-www-form-urlencoded"))
                    .set_payload(format!("csrf={csrf}&{form}")),
            )
            .await
            .status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

async fn sign_out_ends_the_session_and_a_replayed_cookie_is_refused(app: TestApp) {
    let ana = app.actor("ana@example.org", &[Role::Student]).await;
    assert_eq!(app.page(&ana, "/account").await.status, StatusCode::OK);
    let out = app.post_form(&ana, "/sign-out", &[], true).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let replay = app.page(&ana, "/account").await;
    assert_eq!(replay.status, StatusCode::FOUND);
    assert_eq!(replay.header("location"), Some("/sign-in"));
    assert_eq!(app.count("sessions").await, 0);
}

async fn sessions_expire_when_idle_and_after_twelve_hours(app: TestApp) {
    let ana = app.actor("ana@example.org", &[Role::Student]).await;
    app.clock.advance(Duration::minutes(29));
    assert_eq!(
        app.page(&ana, "/account").await.status,
        StatusCode::OK,
        "29 idle minutes"
    );
    // Activity every 25 minutes keeps it alive until the absolute limit.
    let mut elapsed = Duration::minutes(29);
    while elapsed + Duration::minutes(25) < Duration::hours(12) {
        app.clock.advance(Duration::minutes(25));
        elapsed += Duration::minutes(25);
        assert_eq!(
            app.page(&ana, "/account").await.status,
            StatusCode::OK,
            "active at {elapsed}"
        );
    }
    app.clock.advance(Duration::hours(12) - elapsed);
    assert_eq!(
        app.page(&ana, "/account").await.status,
        StatusCode::FOUND,
        "12 hours"
    );

    let bob = app.actor("bob@example.org", &[Role::Student]).await;
    app.clock.advance(Duration::minutes(31));
    assert_eq!(
        app.page(&bob, "/account").await.status,
        StatusCode::FOUND,
        "31 idle minutes"
    );
}

async fn forms_without_the_csrf_token_are_refused_and_write_nothing(app: TestApp) {
    let admin = app.actor("admin@example.org", &[Role::Admin]).await;
    let users_before = app.count("users").await;
    let reply = app
        .post_form(
            &admin,
            "/admin/users",
            &[
                ("email", "new@example.org"),
                ("given_name", "New"),
                ("roles", "student"),
            ],
            false,
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("users").await, users_before);
    let mut wrong = admin.clone();
    wrong.csrf = "0".repeat(64);
    let reply = app
        .post_form(
            &wrong,
            "/admin/users",
            &[
                ("email", "new@example.org"),
                ("given_name", "New"),
                ("roles", "student"),
            ],
            true,
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("users").await, users_before);
    assert_eq!(
        app.post_form(&admin, "/sign-out", &[], false).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.page(&admin, "/account").await.status,
        StatusCode::OK,
        "still signed in"
    );
    // Sign-in itself needs the pre-session token.
    let bare = app
        .call(
            TestRequest::post()
                .uri("/sign-in")
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .set_payload(format!(
                    "email=admin%40example.org&password={}",
                    common::urlencode(PASSWORD)
                )),
        )
        .await;
    assert_eq!(bare.status, StatusCode::FORBIDDEN);
}

async fn api_tokens_work_expire_and_can_be_revoked(app: TestApp) {
    let ana = app.actor("ana@example.org", &[Role::Student]).await;
    let me = app.api_get(&ana, "/api/v1/me").await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["email"], "ana@example.org");
    assert_eq!(me.json()["roles"][0], "student");
    // Only hashes are stored.
    assert_eq!(
        app.count(&format!("api_tokens WHERE token_hash = '{}'", ana.token))
            .await,
        0
    );
    // The API takes no cookies; pages take no bearer tokens.
    let cookie_on_api = app
        .call(
            TestRequest::get()
                .uri("/api/v1/me")
                .insert_header(("cookie", ana.cookie.clone())),
        )
        .await;
    assert_eq!(cookie_on_api.status, StatusCode::UNAUTHORIZED);
    let token_on_page = app
        .call(
            TestRequest::get()
                .uri("/account")
                .insert_header(("authorization", format!("Bearer {}", ana.token))),
        )
        .await;
    assert_eq!(token_on_page.status, StatusCode::FOUND);
    // Revoked from the account page: refused on the next call.
    let page = app.page(&ana, "/account").await;
    let id: i64 = page
        .body
        .split("/account/tokens/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
        .expect("token id on the page");
    let revoke = app
        .post_form(&ana, &format!("/account/tokens/{id}/revoke"), &[], true)
        .await;
    assert_eq!(revoke.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.api_get(&ana, "/api/v1/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    // A fresh token expires after 30 days.
    let fresh = app.actor_for(ana.id, "ana@example.org").await;
    app.clock.advance(Duration::days(29));
    assert_eq!(
        app.api_get(&fresh, "/api/v1/me").await.status,
        StatusCode::OK
    );
    app.clock.advance(Duration::days(2));
    assert_eq!(
        app.api_get(&fresh, "/api/v1/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    // Wrong credentials: 401 JSON.
    let bad = app
        .call(TestRequest::post().uri("/api/v1/tokens").set_json(
            serde_json::json!({"email": "ana@example.org", "password": "nope nope nope"}),
        ))
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad.json()["error"], "unauthorized");
}

async fn the_first_admin_is_made_through_a_one_time_link(app: TestApp) {
    let state = app.state.clone();
    let now = common::test_start();
    let url = app
        .state
        .db
        .write(move |c| checkin::web::auth::make_link(c, &state, "first_admin", None, now))
        .await
        .unwrap()
        .0;
    let path = url
        .trim_start_matches(&app.state.settings.base_url)
        .to_string();
    let page = app.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    let pre = set_cookie(&page, "checkin_csrf").unwrap();
    let csrf = common::csrf_in(&page.body);
    let post = |form: String| {
        TestRequest::post()
            .uri(&path)
            .insert_header(("cookie", pre.clone()))
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .set_payload(format!("csrf={csrf}&{form}"))
    };
    let bad = app
        .call(post(
            "email=nope&name=&password=short&password_again=other".into(),
        ))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    for message in [
        "not an email address",
        "is required",
        "at least 12 characters",
    ] {
        assert!(bad.body.contains(message), "{message} missing");
    }
    assert_eq!(app.count("users").await, 0);
    let form = format!(
        "email=first%40example.org&name=Ada+Admin&password={0}&password_again={0}",
        common::urlencode(PASSWORD)
    );
    let ok = app.call(post(form.clone())).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(
        app.count("users u JOIN user_roles r ON r.user_id = u.id WHERE r.role = 'admin'")
            .await,
        1
    );
    assert_eq!(
        app.sign_in("first@example.org", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let again = app.call(post(form)).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
}

async fn admins_create_accounts_that_are_set_up_through_the_emailed_link(app: TestApp) {
    let admin = app.actor("admin@example.org", &[Role::Admin]).await;
    let bad = app
        .api_send(&admin, Method::POST, "/api/v1/users", serde_json::json!({
            "email": "not-an-email", "given_name": "x".repeat(101), "roles": ["student", "superuser"],
            "languages": ["es", "xx"], "capacity": 500
        }))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = bad.json()["fields"].clone();
    for field in ["email", "given_name", "roles", "languages", "capacity"] {
        assert!(fields[field].is_array(), "{field} not named: {fields}");
    }
    assert_eq!(app.count("users").await, 1);

    let created = app
        .api_send(
            &admin,
            Method::POST,
            "/api/v1/users",
            serde_json::json!({
                "email": "Lucia@Example.org", "given_name": "Lucía", "family_name": "Reyes",
                "roles": ["student", "leader"], "languages": ["es", "en"], "capacity": 3
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let url = created.json()["setup_url"].as_str().unwrap().to_string();
    // The email carries only the link: no password, no clinical detail.
    assert_eq!(
        app.count("outbox WHERE template = 'account_setup' AND to_address = 'lucia@example.org'")
            .await,
        1
    );
    assert_eq!(
        app.count(&format!("outbox WHERE body_text LIKE '%{url}%'"))
            .await,
        1
    );
    assert_eq!(
        app.count("audit_log WHERE action = 'user.created'").await,
        1
    );
    // The same email twice is a 422 naming the email.
    let twice = app
        .api_send(&admin, Method::POST, "/api/v1/users", serde_json::json!({"email": "lucia@example.org", "given_name": "L", "roles": ["student"]}))
        .await;
    assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(twice.json()["fields"]["email"].is_array());

    let path = url
        .trim_start_matches(&app.state.settings.base_url)
        .to_string();
    let page = app.get(&path).await;
    let pre = set_cookie(&page, "checkin_csrf").unwrap();
    let csrf = common::csrf_in(&page.body);
    let set = app
        .call(
            TestRequest::post()
                .uri(&path)
                .insert_header(("cookie", pre))
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .set_payload(format!(
                    "csrf={csrf}&password={0}&password_again={0}",
                    common::urlencode(PASSWORD)
                )),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let lucia = app.actor_for(0, "lucia@example.org").await;
    let me = app.api_get(&lucia, "/api/v1/me").await.json();
    assert_eq!(me["roles"], serde_json::json!(["leader", "student"]));
}

async fn admins_edit_roles_and_disabling_ends_access_at_once(app: TestApp) {
    let admin = app.actor("admin@example.org", &[Role::Admin]).await;
    let ana = app.actor("ana@example.org", &[Role::Student]).await;
    let edit = |disabled: bool| {
        let mut form = vec![
            ("given_name", "Ana"),
            ("family_name", "López"),
            ("roles", "student"),
            ("roles", "leader"),
            ("languages", "es, en"),
            ("capacity", "5"),
        ];
        if disabled {
            form.push(("disabled", "on"));
        }
        form
    };
    let reply = app
        .post_form(
            &admin,
            &format!("/admin/users/{}", ana.id),
            &edit(false),
            true,
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(
        app.count("audit_log WHERE action = 'user.roles_changed'")
            .await,
        1
    );
    assert_eq!(
        app.api_get(&ana, "/api/v1/me").await.json()["roles"],
        serde_json::json!(["leader", "student"])
    );
    assert_eq!(
        app.count(&format!("user_languages WHERE user_id = {}", ana.id))
            .await,
        2
    );

    let bad = app
        .post_form(
            &admin,
            &format!("/admin/users/{}", ana.id),
            &[("given_name", ""), ("roles", "wizard"), ("capacity", "-1")],
            true,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("is required"));

    let reply = app
        .post_form(
            &admin,
            &format!("/admin/users/{}", ana.id),
            &edit(true),
            true,
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(app.page(&ana, "/account").await.status, StatusCode::FOUND);
    assert_eq!(
        app.api_get(&ana, "/api/v1/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.sign_in("ana@example.org", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    // An admin cannot lock themselves out.
    let own = app
        .post_form(
            &admin,
            &format!("/admin/users/{}", admin.id),
            &[("given_name", "Admin"), ("roles", "student")],
            true,
        )
        .await;
    assert_eq!(own.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn a_password_reset_link_sets_a_new_password_and_ends_old_sessions(app: TestApp) {
    let admin = app.actor("admin@example.org", &[Role::Admin]).await;
    let ana = app.actor("ana@example.org", &[Role::Student]).await;
    let reply = app
        .post_form(
            &admin,
            &format!("/admin/users/{}/reset-password", ana.id),
            &[],
            true,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    // Tera escapes "/" as "&#x2F;"; a browser shows the plain link.
    let body = reply.body.replace("&#x2F;", "/");
    let start = body.find("/link/").expect("link shown");
    let token: String = body[start + 6..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    let path = format!("/link/{token}");
    let page = app.get(&path).await;
    let pre = set_cookie(&page, "checkin_csrf").unwrap();
    let csrf = common::csrf_in(&page.body);
    let set = app
        .call(
            TestRequest::post()
                .uri(&path)
                .insert_header(("cookie", pre))
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .set_payload(format!(
                    "csrf={csrf}&password=a+brand+new+password&password_again=a+brand+new+password"
                )),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK);
    assert_eq!(
        app.page(&ana, "/account").await.status,
        StatusCode::FOUND,
        "old session ended"
    );
    assert_eq!(
        app.sign_in("ana@example.org", "a brand new password")
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.count("outbox WHERE template = 'password_reset'").await,
        1
    );
    // Used once only; expired links too.
    assert_eq!(app.get(&path).await.status, StatusCode::CONFLICT);
}

async fn the_audit_chain_detects_a_changed_or_removed_row(app: TestApp) {
    app.create_user("ana@example.org", &[Role::Student], "es")
        .await;
    for _ in 0..3 {
        app.sign_in("ana@example.org", PASSWORD).await;
    }
    app.sign_in("ana@example.org", "wrong password!!").await;
    let verify = || {
        let db = app.state.db.clone();
        async move { db.read(|c| Ok(checkin::audit::verify(c)?)).await.unwrap() }
    };
    assert_eq!(verify().await, Ok(4));
    app.sql("UPDATE audit_log SET action = 'sign_in.failed' WHERE id = 2")
        .await;
    assert_eq!(
        verify().await,
        Err(checkin::audit::BrokenChain::Altered { id: 2 })
    );
    app.sql("UPDATE audit_log SET action = 'sign_in' WHERE id = 2")
        .await;
    assert_eq!(verify().await, Ok(4));
    app.sql("DELETE FROM audit_log WHERE id = 3").await;
    assert_eq!(
        verify().await,
        Err(checkin::audit::BrokenChain::Gap { id: 4 })
    );
}

async fn the_admin_audit_page_searches_by_user_patient_and_date(app: TestApp) {
    let admin = app.actor("admin@example.org", &[Role::Admin]).await;
    let physician = app.actor("doc@example.org", &[Role::Physician]).await;
    let patient = app
        .add_patient("Rosa", "Auditada", physician.id, None)
        .await;
    assert_eq!(
        app.api_get(&physician, &format!("/api/v1/patients/{patient}"))
            .await
            .status,
        StatusCode::OK
    );
    let page = app
        .page(&admin, &format!("/admin/audit?patient_id={patient}"))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("patient.read"));
    assert!(!page.body.contains("sign_in.failed"));
    let by_user = app
        .page(
            &admin,
            &format!(
                "/admin/audit?user_id={}&from=2026-11-29&until=2026-11-29",
                physician.id
            ),
        )
        .await;
    assert!(by_user.body.contains("patient.read"));
    let none = app.page(&admin, "/admin/audit?from=2027-01-01").await;
    assert!(none.body.contains("Nothing matches"));
    let bad = app
        .page(&admin, "/admin/audit?patient_id=abc&from=yesterday")
        .await;
    assert!(bad.body.contains("patient must be a number"));
    assert!(bad.body.contains("from must be a date"));
}

async fn user_data_comes_back_escaped_on_every_page(app: TestApp) {
    let admin = app.actor("admin@example.org", &[Role::Admin]).await;
    let physician = app.actor("doc@example.org", &[Role::Physician]).await;
    let evil = "<script>alert(1)</script>";
    let evil2 = "\"><img src=x onerror=alert(2)>";
    let created = app
        .api_send(&admin, Method::POST, "/api/v1/users", serde_json::json!({"email": "evil@example.org", "given_name": evil, "family_name": evil2, "roles": ["student"]}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let patient = app.add_patient(evil, evil2, physician.id, None).await;
    for (who, path) in [
        (&admin, "/admin/users".to_string()),
        (&admin, "/admin/users?q=evil".to_string()),
        (&physician, format!("/patients/{patient}")),
        (&admin, format!("/patients/{patient}")),
    ] {
        let page = app.page(who, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.body.contains(evil), "{path} has raw <script>");
        assert!(!page.body.contains("<img src=x"), "{path} has a raw <img>");
    }
}

async fn big_and_broken_bodies_get_clear_errors_not_500s(app: TestApp) {
    let admin = app.actor("admin@example.org", &[Role::Admin]).await;
    let huge = serde_json::json!({"email": "a@b.org", "given_name": "x".repeat(1_100_000), "roles": ["student"]});
    assert_eq!(
        app.api_send(&admin, Method::POST, "/api/v1/users", huge)
            .await
            .status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let broken = app
        .call(
            TestRequest::post()
                .uri("/api/v1/users")
                .insert_header(("authorization", format!("Bearer {}", admin.token)))
                .insert_header(("content-type", "application/json"))
                .set_payload("{\"email\": "),
        )
        .await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    assert_eq!(broken.json()["error"], "bad_request");
    let wrong_types = app
        .api_send(&admin, Method::POST, "/api/v1/users", serde_json::json!({"email": 5, "given_name": ["a"], "roles": "student", "capacity": "lots"}))
        .await;
    assert_eq!(wrong_types.status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["email", "given_name", "capacity"] {
        assert!(wrong_types.json()["fields"][field].is_array(), "{field}");
    }
    for reply in [&broken, &wrong_types] {
        for internal in ["diesel", "SQL", "panicked", "src/"] {
            assert!(
                !reply.body.contains(internal),
                "{internal} leaked: {}",
                reply.body
            );
        }
    }
}

on_both_backends!(
    passwords_are_stored_as_argon2id,
    sign_in_starts_a_fresh_session_with_a_safe_cookie,
    unknown_email_and_wrong_password_get_the_same_answer,
    eleven_wrong_passwords_are_throttled,
    failures_are_throttled_per_address_too,
    sign_out_ends_the_session_and_a_replayed_cookie_is_refused,
    sessions_expire_when_idle_and_after_twelve_hours,
    forms_without_the_csrf_token_are_refused_and_write_nothing,
    api_tokens_work_expire_and_can_be_revoked,
    the_first_admin_is_made_through_a_one_time_link,
    admins_create_accounts_that_are_set_up_through_the_emailed_link,
    admins_edit_roles_and_disabling_ends_access_at_once,
    a_password_reset_link_sets_a_new_password_and_ends_old_sessions,
    the_audit_chain_detects_a_changed_or_removed_row,
    the_admin_audit_page_searches_by_user_patient_and_date,
    user_data_comes_back_escaped_on_every_page,
    big_and_broken_bodies_get_clear_errors_not_500s,
);
