//! The test harness: the real app, built by the same function `main` uses,
//! on a fresh database per test — a temporary SQLite file, or a fresh
//! PostgreSQL database when `CHECKIN_TEST_POSTGRES_URL` is set.
//!
//! Without PostgreSQL a PostgreSQL test says so on one line and returns,
//! unless `CI=true`, where it fails: CI can never skip silently.

#![allow(dead_code)]

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
