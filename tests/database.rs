//! The data model on both backends: migrations, the schema diesel knows
//! against the live tables, constraints enforced by the database itself,
//! write transactions, concurrent writers and the demo programme.

mod common;

use chrono::NaiveDate;
use common::TestApp;
use diesel::prelude::*;

use checkin::db::schema::*;
use checkin::db::users::NewUser;
use checkin::demo::{self, DemoArgs};
use checkin::domain::schedule::{self, FollowUp};
use checkin::domain::Role;
use checkin::error::AppError;

async fn migrations_are_embedded_and_idempotent(app: TestApp) {
    let db = app.state.db.clone();
    let again = actix_web::web::block(move || db.migrate())
        .await
        .unwrap()
        .unwrap();
    assert!(again.is_empty(), "migrations ran twice: {again:?}");
}

/// Every column in `schema.rs` exists in the migrated database.
async fn the_schema_matches_the_migrations(app: TestApp) {
    app.state
        .db
        .read(|c| {
            macro_rules! check {
                ($($t:ident),+) => {$(
                    $t::table.select($t::all_columns).limit(0).execute(c)
                        .unwrap_or_else(|e| panic!("table {}: {e}", stringify!($t)));
                )+};
            }
            check!(
                users,
                user_roles,
                user_languages,
                sessions,
                api_tokens,
                one_time_links,
                sign_in_attempts,
                patients,
                enrolment_reasons,
                assignments,
                protocol_versions,
                calls,
                call_sections,
                call_resources,
                call_revisions,
                call_comments,
                concerns,
                debriefs,
                debrief_attendance,
                outbox,
                audit_log,
                audit_chain_head,
                settings,
                job_leases
            );
            Ok(())
        })
        .await
        .unwrap();
}

async fn load_demo(app: &TestApp, args: DemoArgs) -> String {
    let db = app.state.db.clone();
    let settings = (*app.state.settings).clone();
    let now = app.clock_now();
    actix_web::web::block(move || demo::load(&db, &settings, &args, now))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("demo failed: {e:#}"))
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

async fn the_database_enforces_its_rules(app: TestApp) {
    load_demo(&app, DemoArgs::default()).await;
    let results = app
        .state
        .db
        .read(|c| {
            let attempts = [
                "UPDATE patients SET cadence = 'daily' WHERE id = 1",
                "UPDATE patients SET status = 'lost' WHERE id = 1",
                "UPDATE calls SET outcome = 'maybe' WHERE id = 1",
                "UPDATE calls SET patient_id = 999999 WHERE id = 1",
                "UPDATE calls SET duration_minutes = -5 WHERE id = 1",
                "UPDATE patients SET interest_confirmed = FALSE WHERE id = 1",
                "INSERT INTO user_roles (user_id, role) VALUES (1, 'superuser')",
                // A second active pairing for a patient who has one.
                "INSERT INTO assignments (patient_id, student_id, started_at, started_by, note) \
                 SELECT patient_id, student_id, started_at, started_by, 'again' FROM assignments \
                 WHERE ended_at IS NULL AND id = (SELECT MIN(id) FROM assignments WHERE ended_at IS NULL)",
                "UPDATE patients SET status = 'discharged' WHERE id = 1 AND discharged_at IS NULL",
            ];
            Ok(attempts
                .iter()
                .map(|sql| (sql.to_string(), diesel::sql_query(*sql).execute(c)))
                .collect::<Vec<_>>())
        })
        .await
        .unwrap();
    for (sql, result) in results {
        assert!(result.is_err(), "the database accepted: {sql}");
    }
}

/// A student account with no password, as the write tests create them.
fn create_student(
    c: &mut checkin::db::DbConn,
    email: &str,
    given_name: &str,
    family_name: &str,
    languages: &[String],
    now: chrono::NaiveDateTime,
) -> diesel::QueryResult<i64> {
    let new = NewUser {
        id: None,
        email,
        given_name,
        family_name,
        password_hash: None,
        capacity: 4,
        created_at: now,
        updated_at: now,
    };
    checkin::db::users::create(c, &new, &[Role::Student], languages)
}

async fn a_failed_write_leaves_nothing_behind(app: TestApp) {
    let now = app.clock_now().naive_utc();
    let result: Result<(), AppError> = app
        .state
        .db
        .write(move |c| {
            create_student(
                c,
                "half@example.org",
                "Half",
                "Written",
                &["es".into()],
                now,
            )?;
            Err(AppError::Conflict("changed my mind".into()))
        })
        .await;
    assert!(matches!(result, Err(AppError::Conflict(_))));
    let (users, roles) = app
        .state
        .db
        .read(|c| {
            Ok((
                users::table.count().get_result::<i64>(c)?,
                user_roles::table.count().get_result::<i64>(c)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!((users, roles), (0, 0));
}

/// SECURITY.md 24: 32 writers at once, no "database is locked" and no error.
async fn thirty_two_concurrent_writers_all_succeed(app: TestApp) {
    let now = app.clock_now().naive_utc();
    let writes = (0..32).map(|i| {
        let db = app.state.db.clone();
        async move {
            db.write(move |c| {
                let email = format!("writer{i}@example.org");
                Ok(create_student(c, &email, "Writer", "", &[], now)?)
            })
            .await
        }
    });
    let results = futures_join_all(writes).await;
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    let count = app
        .state
        .db
        .read(|c| Ok(users::table.count().get_result::<i64>(c)?))
        .await
        .unwrap();
    assert_eq!(count, 32);
}

/// On SQLite, writes queued together share one commit (src/db/writer.rs).
/// Each must still be all-or-nothing on its own: 64 writes queue up behind a
/// slow one; each writes a user, and every third then fails. The failed ones
/// leave nothing and answer their own error; the rest are all kept.
async fn writes_sharing_a_commit_stay_all_or_nothing(app: TestApp) {
    let now = app.clock_now().naive_utc();
    let slow = {
        let db = app.state.db.clone();
        std::thread::spawn(move || {
            db.write_blocking(|_| {
                std::thread::sleep(std::time::Duration::from_millis(300));
                Ok(())
            })
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    let writes = (0..64).map(|i| {
        let db = app.state.db.clone();
        async move {
            db.write(move |c| {
                let email = format!("batch{i}@example.org");
                create_student(c, &email, "Batch", "", &["es".into()], now)?;
                if i % 3 == 0 {
                    return Err(AppError::Conflict(format!("write {i} changed its mind")));
                }
                Ok(i)
            })
            .await
        }
    });
    let results = futures_join_all(writes).await;
    slow.join().unwrap().unwrap();
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(n) => assert!(i % 3 != 0 && *n == i, "write {i}: {r:?}"),
            Err(AppError::Conflict(m)) => {
                assert!(i % 3 == 0 && *m == format!("write {i} changed its mind"))
            }
            Err(e) => panic!("write {i}: {e:?}"),
        }
    }
    let (emails, roles, languages) = app
        .state
        .db
        .read(|c| {
            Ok((
                users::table
                    .select(users::email)
                    .order(users::email)
                    .load::<String>(c)?,
                user_roles::table.count().get_result::<i64>(c)?,
                user_languages::table.count().get_result::<i64>(c)?,
            ))
        })
        .await
        .unwrap();
    let mut kept: Vec<String> = (0..64)
        .filter(|i| i % 3 != 0)
        .map(|i| format!("batch{i}@example.org"))
        .collect();
    kept.sort();
    assert_eq!(emails, kept);
    assert_eq!((roles, languages), (42, 42));
}

/// A write that panics is answered (503), keeps nothing, and the writes
/// after it work.
async fn a_write_that_panics_is_answered_and_the_next_write_works(app: TestApp) {
    let now = app.clock_now().naive_utc();
    let create = move |c: &mut checkin::db::DbConn, email: &str| {
        create_student(c, email, "Panic", "", &[], now)
    };
    let result: Result<(), AppError> = app
        .state
        .db
        .write(move |c| {
            create(c, "panics@example.org")?;
            panic!("a bug in a handler");
        })
        .await;
    assert!(result.is_err(), "{result:?}");
    let after = app
        .state
        .db
        .write(move |c| Ok(create(c, "after@example.org")?))
        .await;
    assert!(after.is_ok(), "{after:?}");
    let emails = app
        .state
        .db
        .read(|c| Ok(users::table.select(users::email).load::<String>(c)?))
        .await
        .unwrap();
    assert_eq!(emails, vec!["after@example.org".to_string()]);
}

async fn futures_join_all<F: std::future::Future + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: 'static,
{
    let handles: Vec<_> = futures.map(actix_web::rt::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("writer task"));
    }
    out
}

async fn the_default_demo_shows_every_stage_of_the_programme(app: TestApp) {
    let report = load_demo(&app, DemoArgs::default()).await;
    assert!(report.contains("16 patients"), "{report}");
    let tz = app.state.settings.timezone;
    let today = schedule::local_date(app.clock_now(), tz);
    type Row = (
        i64,
        NaiveDate,
        NaiveDate,
        Option<chrono::NaiveDateTime>,
        String,
        Option<NaiveDate>,
    );
    let (patients, students, physicians, leaders, unassigned, calls): (
        Vec<Row>,
        i64,
        i64,
        i64,
        i64,
        i64,
    ) = app
        .state
        .db
        .read(|c| {
            let rows = patients::table
                .select((
                    patients::id,
                    patients::enrolled_on,
                    patients::discharge_due_on,
                    patients::next_call_at,
                    patients::status,
                    patients::discharge_due_since,
                ))
                .load::<Row>(c)?;
            let role = |r: &'static str, c: &mut checkin::db::DbConn| {
                user_roles::table
                    .filter(user_roles::role.eq(r))
                    .count()
                    .get_result::<i64>(c)
            };
            let unassigned = patients::table
                .filter(diesel::dsl::not(diesel::dsl::exists(
                    assignments::table
                        .filter(assignments::patient_id.eq(patients::id))
                        .filter(assignments::ended_at.is_null()),
                )))
                .count()
                .get_result::<i64>(c)?;
            Ok((
                rows,
                role("student", c)?,
                role("physician", c)?,
                role("leader", c)?,
                unassigned,
                calls::table.count().get_result::<i64>(c)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(patients.len(), 16);
    assert_eq!((students, physicians, leaders), (14, 3, 2));
    assert_eq!(unassigned, 1, "the newest patient waits to be paired");
    assert!(calls > 16, "{calls} calls");
    let stage_of = |dp: NaiveDate| schedule::discharge_stage(dp, today);
    use schedule::DischargeStage::*;
    assert!(
        patients.iter().any(|p| stage_of(p.2) == FinalCall),
        "someone in the final week"
    );
    assert!(
        patients.iter().any(|p| stage_of(p.2) == DischargeDue),
        "someone at the discharge point"
    );
    assert!(patients.iter().any(|p| stage_of(p.2) == InProgramme));
    assert!(patients
        .iter()
        .filter(|p| stage_of(p.2) == DischargeDue)
        .all(|p| p.5.is_some()));
    let overdue = patients
        .iter()
        .filter(|p| {
            let next = p.3.map(|n| n.and_utc());
            schedule::follow_up(next, p.1, true, today, tz) == FollowUp::Overdue
        })
        .count();
    assert!(overdue >= 1, "some follow-ups are overdue");
    for p in &patients {
        assert_eq!(p.2, schedule::discharge_point(p.1, 8));
    }
}

/// Every demo call obeys rule 4, and a fixed `--calls` total is exact.
async fn a_large_demo_has_exactly_the_calls_asked_for(app: TestApp) {
    let args = DemoArgs {
        patients: 300,
        students: 30,
        calls: Some(3000),
        ..DemoArgs::default()
    };
    load_demo(&app, args).await;
    let tz = app.state.settings.timezone;
    let rows = app
        .state
        .db
        .read(|c| {
            Ok(calls::table
                .inner_join(patients::table)
                .select((
                    calls::occurred_at,
                    calls::next_call_at,
                    patients::discharge_due_on,
                ))
                .load::<(
                    chrono::NaiveDateTime,
                    Option<chrono::NaiveDateTime>,
                    NaiveDate,
                )>(c)?)
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 3000);
    for (occurred, next, dp) in rows {
        if let Some(next) = next {
            assert!(next > occurred);
            assert!(schedule::local_date(next.and_utc(), tz) <= dp);
        }
    }
    // A second load is refused: the demo never mixes into a programme.
    let db = app.state.db.clone();
    let settings = (*app.state.settings).clone();
    let now = app.clock_now();
    let again =
        actix_web::web::block(move || demo::load(&db, &settings, &DemoArgs::default(), now))
            .await
            .unwrap();
    assert!(again
        .unwrap_err()
        .to_string()
        .contains("already holds a programme"));
}

on_both_backends!(
    migrations_are_embedded_and_idempotent,
    the_schema_matches_the_migrations,
    the_database_enforces_its_rules,
    a_failed_write_leaves_nothing_behind,
    thirty_two_concurrent_writers_all_succeed,
    writes_sharing_a_commit_stay_all_or_nothing,
    a_write_that_panics_is_answered_and_the_next_write_works,
    the_default_demo_shows_every_stage_of_the_programme,
    a_large_demo_has_exactly_the_calls_asked_for,
);
