//! The test harness: the real app, built by the same function `main` uses,
//! on a fresh database per test — a temporary SQLite file, or a fresh
//! PostgreSQL database when `CHECKIN_TEST_POSTGRES_URL` is set.
//!
//! Without PostgreSQL a PostgreSQL test says so on one line and returns,
//! unless `CI=true`, where it fails: CI can never skip silently.

#![allow(dead_code)]

pub mod process;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::test;
use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection, RunQueryDsl};

use checkin::clock::TestClock;
use checkin::config::Settings;
use checkin::startup::{build_app, prepare, AppState};

pub struct TestApp {
    pub state: AppState,
    pub clock: Arc<TestClock>,
    pub backend: &'static str,
    _dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
}

/// The answer to one request, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: actix_web::http::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A fixed "now" so every run sees the same programme day.
pub fn test_start() -> DateTime<Utc> {
    "2026-11-29T15:00:00Z".parse().expect("valid instant")
}

pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `CHECKIN_TEST_POSTGRES_URL`, or `None` after saying why the test is skipped.
pub fn postgres_url(test: &str) -> Option<String> {
    match std::env::var("CHECKIN_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if ci() => panic!("CI=true but CHECKIN_TEST_POSTGRES_URL is not set: {test} cannot run"),
        _ => {
            eprintln!("skipped {test}: set CHECKIN_TEST_POSTGRES_URL to run it on PostgreSQL");
            None
        }
    }
}

/// A database made for one test and dropped after it.
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub fn create(admin_url: &str) -> PgDatabase {
        let name = format!("checkin_test_{}", checkin::auth::random_token(6));
        let mut admin = PgConnection::establish(admin_url).unwrap_or_else(|e| {
            panic!("cannot reach PostgreSQL at CHECKIN_TEST_POSTGRES_URL: {e}")
        });
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("create the test database");
        let base = admin_url
            .rsplit_once('/')
            .map(|(base, _)| base)
            .expect("a postgres URL with a database name");
        PgDatabase {
            admin_url: admin_url.to_string(),
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

pub fn settings_for(database_url: &str, data_dir: &std::path::Path) -> Settings {
    let mut settings = Settings::from_env(|_| None).expect("default settings");
    settings.database_url = database_url.to_string();
    settings.data_dir = data_dir.to_path_buf();
    settings.db_pool_size = 4;
    settings
}

impl TestApp {
    pub async fn sqlite() -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("checkin.db").display());
        Self::start(url, dir, None, "sqlite").await
    }

    pub async fn postgres(test: &str) -> Option<TestApp> {
        let admin_url = postgres_url(test)?;
        let db = actix_web::web::block(move || PgDatabase::create(&admin_url))
            .await
            .expect("create database");
        let dir = tempfile::tempdir().expect("temp dir");
        let url = db.url.clone();
        Some(Self::start(url, dir, Some(db), "postgres").await)
    }

    async fn start(
        url: String,
        dir: tempfile::TempDir,
        pg: Option<PgDatabase>,
        backend: &'static str,
    ) -> TestApp {
        let settings = settings_for(&url, dir.path());
        let clock = TestClock::new(test_start());
        let shared: checkin::clock::SharedClock = clock.clone();
        let state = actix_web::web::block(move || prepare(settings, shared))
            .await
            .expect("blocking task")
            .unwrap_or_else(|e| panic!("the app did not start: {e}"));
        TestApp {
            state,
            clock,
            backend,
            _dir: dir,
            pg,
        }
    }

    pub async fn call(&self, req: test::TestRequest) -> Reply {
        let app = test::init_service(build_app(self.state.clone())).await;
        let response = test::call_service(&app, req.to_request()).await;
        let status = response.status();
        let headers = response.headers().clone();
        let body = test::read_body(response).await;
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(test::TestRequest::get().uri(path)).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // The pool's connections must close before the database is dropped;
        // `WITH (FORCE)` ends any that linger.
        let _ = self.pg.take();
    }
}

/// Runs an `async fn(TestApp)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                super::$name($crate::common::TestApp::sqlite().await).await;
            }

            #[actix_web::test]
            async fn postgres() {
                if let Some(app) = $crate::common::TestApp::postgres(concat!(module_path!())).await {
                    super::$name(app).await;
                }
            }
        }
    )+};
}

/// A signed-in user as a test drives them: the session cookie and its CSRF
/// token for pages, a bearer token for the API.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: i64,
    pub email: String,
    pub cookie: String,
    pub csrf: String,
    pub token: String,
}

pub const PASSWORD: &str = "a long test password";

/// The value of `name="csrf" value="..."` in a page.
pub fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    html.find(marker)
        .map(|i| &html[i + marker.len()..])
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string()
}

/// `name=value` of a Set-Cookie header.
pub fn set_cookie(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .get_all("set-cookie")
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}

impl TestApp {
    /// Creates an account directly (as `checkin user create` does).
    pub async fn create_user(
        &self,
        email: &str,
        roles: &[checkin::domain::Role],
        languages: &str,
    ) -> i64 {
        let db = self.state.db.clone();
        let args = checkin::cli::CreateUser {
            email: email.into(),
            name: format!("Test {}", email.split('@').next().unwrap_or("user")),
            roles: roles.to_vec(),
            languages: languages.into(),
            capacity: 4,
        };
        let now = test_start();
        actix_web::web::block(move || checkin::cli::create_user(&db, &args, PASSWORD, now))
            .await
            .expect("blocking")
            .expect("create user")
    }

    /// Signs in through the real sign-in form; returns the session cookie.
    pub async fn sign_in(&self, email: &str, password: &str) -> Reply {
        let page = self.get("/sign-in").await;
        let pre = set_cookie(&page, "checkin_csrf").expect("pre-session cookie");
        let csrf = csrf_in(&page.body);
        let form = format!(
            "csrf={}&email={}&password={}",
            csrf,
            urlencode(email),
            urlencode(password)
        );
        self.call(
            test::TestRequest::post()
                .uri("/sign-in")
                .insert_header(("cookie", pre))
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .set_payload(form),
        )
        .await
    }

    /// A user with these roles, signed in on a page and holding a token.
    pub async fn actor(&self, email: &str, roles: &[checkin::domain::Role]) -> Actor {
        let id = self.create_user(email, roles, "en").await;
        self.actor_for(id, email).await
    }

    pub async fn actor_for(&self, id: i64, email: &str) -> Actor {
        let reply = self.sign_in(email, PASSWORD).await;
        assert_eq!(
            reply.status,
            StatusCode::SEE_OTHER,
            "sign-in failed: {}",
            reply.body
        );
        let cookie = set_cookie(&reply, "checkin_session").expect("session cookie");
        let home = self
            .call(
                test::TestRequest::get()
                    .uri("/account")
                    .insert_header(("cookie", cookie.clone())),
            )
            .await;
        let csrf = csrf_in(&home.body);
        let token = self
            .call(
                test::TestRequest::post()
                    .uri("/api/v1/tokens")
                    .set_json(serde_json::json!({"email": email, "password": PASSWORD})),
            )
            .await
            .json()["token"]
            .as_str()
            .expect("token")
            .to_string();
        Actor {
            id,
            email: email.to_string(),
            cookie,
            csrf,
            token,
        }
    }

    pub async fn page(&self, who: &Actor, path: &str) -> Reply {
        self.call(
            test::TestRequest::get()
                .uri(path)
                .insert_header(("cookie", who.cookie.clone())),
        )
        .await
    }

    /// Posts a form as `who`, with their CSRF token unless `csrf` is false.
    pub async fn post_form(
        &self,
        who: &Actor,
        path: &str,
        form: &[(&str, &str)],
        csrf: bool,
    ) -> Reply {
        let mut pairs: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect();
        if csrf {
            pairs.push(format!("csrf={}", who.csrf));
        }
        self.call(
            test::TestRequest::post()
                .uri(path)
                .insert_header(("cookie", who.cookie.clone()))
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .set_payload(pairs.join("&")),
        )
        .await
    }

    pub async fn api_get(&self, who: &Actor, path: &str) -> Reply {
        self.call(
            test::TestRequest::get()
                .uri(path)
                .insert_header(("authorization", format!("Bearer {}", who.token))),
        )
        .await
    }

    pub async fn api_send(
        &self,
        who: &Actor,
        method: actix_web::http::Method,
        path: &str,
        body: serde_json::Value,
    ) -> Reply {
        self.call(
            test::TestRequest::default()
                .method(method)
                .uri(path)
                .insert_header(("authorization", format!("Bearer {}", who.token)))
                .set_json(body),
        )
        .await
    }

    /// Runs SQL on the test database (for setting up and for tampering).
    pub async fn sql(&self, statement: &str) -> usize {
        let statement = statement.to_string();
        self.state
            .db
            .read(move |c| Ok(diesel::sql_query(statement).execute(c)?))
            .await
            .unwrap_or_else(|e| panic!("SQL failed: {e}"))
    }

    pub async fn count(&self, table_and_filter: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let q = format!("SELECT COUNT(*) AS n FROM {table_and_filter}");
        self.state
            .db
            .read(move |c| Ok(diesel::sql_query(q).get_result::<N>(c)?.n))
            .await
            .expect("count")
    }

    /// A patient enrolled by `physician`, paired with `student` if given.
    pub async fn add_patient(
        &self,
        given: &str,
        family: &str,
        physician: i64,
        student: Option<i64>,
    ) -> i64 {
        let (given, family) = (given.to_string(), family.to_string());
        let now = test_start().naive_utc();
        let today = now.date();
        self.state
            .db
            .write(move |c| {
                use checkin::db::calls::NewAssignment;
                use checkin::db::patients::NewPatient;
                use checkin::domain::{Cadence, ContactMode, PatientStatus};
                let id = checkin::insert_returning_id!(
                    c,
                    checkin::db::schema::patients::table,
                    NewPatient {
                        id: None,
                        given_name: &given,
                        family_name: &family,
                        phone: "+12155550123",
                        preferred_language: "es",
                        interpreter_needed: false,
                        best_times: "mornings",
                        contact_mode: ContactMode::Phone,
                        enrolment_reason_other: None,
                        interest_confirmed: true,
                        cadence: Cadence::Weekly,
                        enrolled_on: today,
                        enrolled_by: physician,
                        date_of_birth: None,
                        clinic_record_number: None,
                        status: PatientStatus::Active,
                        discharge_due_on: today + chrono::Duration::days(56),
                        next_call_at: None,
                        last_call_at: None,
                        last_call_outcome: None,
                        failed_attempts: 0,
                        final_call_since: None,
                        discharge_due_since: None,
                        discharged_at: None,
                        discharged_by: None,
                        discharge_reason: None,
                        discharge_summary: None,
                        created_at: now,
                        updated_at: now,
                    },
                    checkin::db::schema::patients::id
                )?;
                if let Some(student) = student {
                    checkin::insert_returning_id!(
                        c,
                        checkin::db::schema::assignments::table,
                        NewAssignment {
                            id: None,
                            patient_id: id,
                            student_id: student,
                            started_at: now,
                            started_by: physician,
                            note: "",
                            ended_at: None,
                            ended_by: None,
                            handoff_note: None,
                        },
                        checkin::db::schema::assignments::id
                    )?;
                }
                Ok(id)
            })
            .await
            .expect("add patient")
    }
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A real SMTP server (Debian's aiosmtpd) delivering into a Maildir, started
/// per test on a free loopback port. Without it a test says so on one line and
/// returns, unless CI=true.
pub struct SmtpServer {
    child: Option<std::process::Child>,
    pub port: u16,
    _dir: tempfile::TempDir,
    pub maildir: std::path::PathBuf,
}

impl SmtpServer {
    pub fn start(test: &str) -> Option<SmtpServer> {
        Self::start_on(test, process::free_port())
    }

    pub fn start_on(test: &str, port: u16) -> Option<SmtpServer> {
        let python = "/usr/bin/python3";
        let available = std::process::Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !available {
            if ci() {
                panic!("CI=true but Debian's python3-aiosmtpd is missing: {test} cannot run");
            }
            eprintln!(
                "skipped {test}: install python3-aiosmtpd to run it against a real SMTP server"
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let maildir = dir.path().join("maildir");
        let child = std::process::Command::new(python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(15),
                "aiosmtpd did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(SmtpServer {
            child: Some(child),
            port,
            _dir: dir,
            maildir,
        })
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every delivered message, raw.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}
