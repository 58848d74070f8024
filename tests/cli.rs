//! The real binary, as an operator meets it: start-up, the first-run hint,
//! clear one-line errors, user creation, the demo, and SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::process::{
    api_token, checkin, demo_email, early_patient, free_port, get, no_answer_call, run, Server,
};

/// The first run: creates data/checkin.db, answers health and readiness,
/// prints how to make the first admin, and stops cleanly on SIGTERM.
#[test]
fn serve_on_sqlite_with_nothing_configured() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut server = Server::spawn(
        checkin(dir.path(), &[("CHECKIN_BIND", &bind)])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
        port,
    );
    let stdout = server.child().stdout.take().unwrap();
    // Read everything (not just the first line): a pipe closed early would
    // make the server's later writes fail.
    let first_line = std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        for _ in lines {}
        first
    });
    assert_eq!(get(port, "/readyz"), Some(200));
    assert!(dir.path().join("data/checkin.db").exists());
    assert!(dir.path().join("data/secret.key").exists());
    let status = server.terminate();
    assert!(status.success(), "SIGTERM exit: {status}");
    let hint = first_line.join().unwrap();
    assert!(hint.contains("no accounts yet"), "first line: {hint:?}");
}

#[test]
fn serve_on_postgres_from_the_same_binary() {
    let Some(admin_url) = common::postgres_url("serve_on_postgres_from_the_same_binary") else {
        return;
    };
    let db = common::PgDatabase::create(&admin_url);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = [("CHECKIN_DATABASE_URL", db.url.as_str())];
    let (ok, out, err) = run(checkin(dir.path(), &env).arg("demo"), "");
    assert!(ok, "demo on PostgreSQL failed: {err}");
    assert!(out.contains("16 patients"), "{out}");
    let mut server = Server::start(dir.path(), &env, port);
    assert_eq!(get(port, "/readyz"), Some(200));
    assert!(server.terminate().success());
    assert!(
        !dir.path().join("data/checkin.db").exists(),
        "PostgreSQL run made a SQLite file"
    );
}

fn assert_one_clear_line(args: &[&str], env: &[(&str, &str)], dir: &Path, expect: &[&str]) {
    let (ok, _out, err) = run(checkin(dir, env).args(args), "");
    assert!(!ok, "{args:?} {env:?} succeeded");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    for word in expect {
        assert!(err.contains(word), "{err:?} does not mention {word:?}");
    }
}

#[test]
fn mistakes_get_one_clear_line_and_a_failure_exit() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    assert_one_clear_line(
        &["serve"],
        &[
            ("CHECKIN_DATABASE_URL", "mysql://root:hunter22@db/checkin"),
            ("CHECKIN_BIND", &bind),
        ],
        dir.path(),
        &["CHECKIN_DATABASE_URL", "sqlite://"],
    );
    assert_one_clear_line(
        &["serve"],
        &[
            ("CHECKIN_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"),
            ("CHECKIN_BIND", &bind),
        ],
        dir.path(),
        &["cannot connect", "127.0.0.1:1"],
    );
    std::fs::write(dir.path().join("not-a-folder"), "").unwrap();
    assert_one_clear_line(
        &["serve"],
        &[
            ("CHECKIN_DATA_DIR", "not-a-folder"),
            ("CHECKIN_BIND", &bind),
        ],
        dir.path(),
        &["not-a-folder", "not a folder"],
    );
    assert_one_clear_line(
        &["migrate"],
        &[("CHECKIN_DATABASE_URL", "sqlite://not-a-folder/checkin.db")],
        dir.path(),
        &["not-a-folder"],
    );
    assert_one_clear_line(
        &["serve"],
        &[
            ("CHECKIN_TIMEZONE", "Mars/Olympus"),
            ("CHECKIN_BIND", &bind),
        ],
        dir.path(),
        &["CHECKIN_TIMEZONE"],
    );
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_bind = taken.local_addr().unwrap().to_string();
    assert_one_clear_line(
        &["serve"],
        &[("CHECKIN_BIND", &taken_bind)],
        dir.path(),
        &[&taken_bind, "already in use", "CHECKIN_BIND"],
    );
    let (ok, _, err) = run(
        checkin(
            dir.path(),
            &[("CHECKIN_DATABASE_URL", "mysql://root:hunter22@db/x")],
        )
        .arg("migrate"),
        "",
    );
    assert!(
        !ok && !err.contains("hunter22"),
        "a password reached the message: {err}"
    );
}

#[test]
fn user_create_reads_the_password_from_stdin_and_checks_every_argument() {
    let dir = tempfile::tempdir().unwrap();
    let create = |args: &[&str], password: &str| {
        let mut c = checkin(dir.path(), &[]);
        c.args(["user", "create"]).args(args);
        run(&mut c, &format!("{password}\n"))
    };
    let (ok, out, err) = create(
        &[
            "--email",
            "Lead@Clinic.org",
            "--name",
            "Lucía Reyes",
            "--role",
            "leader,student",
            "--languages",
            "es,en",
            "--capacity",
            "3",
        ],
        "twelve chars ok",
    );
    assert!(ok, "{err}");
    assert!(out.contains("lead@clinic.org"), "{out}");

    let (ok, _, err) = create(
        &[
            "--email",
            "lead@clinic.org",
            "--name",
            "Again",
            "--role",
            "admin",
        ],
        "twelve chars ok",
    );
    assert!(!ok && err.contains("already exists"), "{err}");

    let (ok, _, err) = create(
        &[
            "--email",
            "nope",
            "--name",
            "",
            "--role",
            "student",
            "--languages",
            "xx",
        ],
        "short",
    );
    assert!(!ok);
    for named in ["--email", "--name", "--languages", "password"] {
        assert!(err.contains(named), "{named} not named in: {err}");
    }
    assert!(err.contains("nothing was created"));

    let (ok, _, err) = create(
        &["--email", "a@b.org", "--name", "A", "--role", "superuser"],
        "twelve chars ok",
    );
    assert!(!ok && err.contains("superuser"), "{err}");
}

#[test]
fn audit_verify_names_the_first_broken_row() {
    use checkin::audit::{record, AuditEntry};
    use diesel::RunQueryDsl;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("data/checkin.db").display());
    let db = checkin::db::Db::connect(&url, 2).unwrap();
    db.migrate().unwrap();
    db.write_blocking(|c| {
        for action in ["sign_in", "patient.read", "patient.read", "sign_out"] {
            let entry = AuditEntry {
                user_id: Some(1),
                action,
                record_type: "user",
                ..AuditEntry::default()
            };
            record(c, &entry, common::test_start().naive_utc())?;
        }
        Ok(())
    })
    .unwrap();
    let verify = || {
        run(
            checkin(dir.path(), &[("CHECKIN_DATABASE_URL", &url)]).args(["audit", "verify"]),
            "",
        )
    };
    let (ok, out, err) = verify();
    assert!(ok, "{err}");
    assert!(out.contains("4 rows"), "{out}");

    db.read_blocking(|c| {
        Ok(diesel::sql_query("UPDATE audit_log SET user_id = 2 WHERE id = 3").execute(c)?)
    })
    .unwrap();
    let (ok, _, err) = verify();
    assert!(!ok);
    assert!(err.contains("audit row 3"), "{err}");

    db.read_blocking(|c| {
        Ok(diesel::sql_query("UPDATE audit_log SET user_id = 1 WHERE id = 3").execute(c)?)
    })
    .unwrap();
    db.read_blocking(|c| Ok(diesel::sql_query("DELETE FROM audit_log WHERE id = 4").execute(c)?))
        .unwrap();
    let (ok, _, err) = verify();
    assert!(!ok);
    assert!(err.contains("after row 3"), "{err}");
}

/// SECURITY.md 28: a consistent copy of a live database that restores and
/// passes `checkin audit verify`.
/// One audit row, as a sign-in writes it.
fn sign_in_row(c: &mut checkin::db::DbConn) -> diesel::QueryResult<()> {
    let entry = checkin::audit::AuditEntry {
        user_id: Some(1),
        action: "sign_in",
        record_type: "user",
        ..Default::default()
    };
    checkin::audit::record(c, &entry, common::test_start().naive_utc())
}

#[test]
fn backup_makes_a_copy_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("data/checkin.db").display());
    let (ok, _, err) = run(
        checkin(dir.path(), &[("CHECKIN_DATABASE_URL", &url)]).arg("demo"),
        "",
    );
    assert!(ok, "{err}");
    let db = checkin::db::Db::connect(&url, 2).unwrap();
    db.write_blocking(|c| Ok(sign_in_row(c)?)).unwrap();
    let copy = dir.path().join("backups/copy.db");
    let (ok, out, err) = run(
        checkin(dir.path(), &[("CHECKIN_DATABASE_URL", &url)])
            .args(["backup", copy.to_str().unwrap()]),
        "",
    );
    assert!(ok, "{err}");
    assert!(out.contains("backed up"));
    let copy_url = format!("sqlite://{}", copy.display());
    let (ok, out, err) = run(
        checkin(dir.path(), &[("CHECKIN_DATABASE_URL", &copy_url)]).args(["audit", "verify"]),
        "",
    );
    assert!(ok, "{err}");
    assert!(out.contains("intact"));
    let restored = checkin::db::Db::connect(&copy_url, 1).unwrap();
    let patients = restored
        .read_blocking(|c| {
            use diesel::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct Check {
                #[diesel(sql_type = diesel::sql_types::Text)]
                integrity_check: String,
            }
            #[derive(diesel::QueryableByName)]
            struct Count {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let check = diesel::sql_query("PRAGMA integrity_check").get_result::<Check>(c)?;
            assert_eq!(check.integrity_check, "ok");
            Ok(diesel::sql_query("SELECT COUNT(*) AS n FROM patients")
                .get_result::<Count>(c)?
                .n)
        })
        .unwrap();
    assert_eq!(patients, 16);
    // Refuses to overwrite.
    let (ok, _, err) = run(
        checkin(dir.path(), &[("CHECKIN_DATABASE_URL", &url)])
            .args(["backup", copy.to_str().unwrap()]),
        "",
    );
    assert!(!ok && err.contains("already exists"), "{err}");
}

/// SECURITY.md 22: kill -9 during a stream of call logs; after a restart
/// every call that was answered 201 is there and the database is intact.
#[test]
fn every_acknowledged_call_survives_kill_9() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("data/checkin.db").display());
    let (ok, _, err) = run(
        checkin(dir.path(), &[("CHECKIN_DATABASE_URL", &url)]).arg("demo"),
        "",
    );
    assert!(ok, "{err}");
    let port = free_port();
    let env = [("CHECKIN_DATABASE_URL", url.as_str())];
    let mut server = Server::start(dir.path(), &env, port);
    let base = server.base();
    let token = api_token(&base, &demo_email("student1"), checkin::demo::DEMO_PASSWORD);
    let patient = early_patient(&base, &token);
    let acknowledged = Arc::new(Mutex::new(Vec::<i64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acknowledged, stop, base, token) = (
            acknowledged.clone(),
            stop.clone(),
            base.clone(),
            token.clone(),
        );
        std::thread::spawn(move || {
            for i in 0..5000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let reply = ureq::post(&format!("{base}/api/v1/patients/{patient}/calls"))
                    .set("authorization", &format!("Bearer {token}"))
                    .set("idempotency-key", &format!("kill-{i}"))
                    .timeout(Duration::from_secs(5))
                    .send_json(no_answer_call());
                match reply {
                    Ok(r) if r.status() == 201 => {
                        let id = r.into_json::<serde_json::Value>().unwrap()["id"]
                            .as_i64()
                            .unwrap();
                        acknowledged.lock().unwrap().push(id);
                    }
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(ureq::Error::Status(code, r)) => {
                        panic!("{code}: {}", r.into_string().unwrap_or_default())
                    }
                    Err(_) => break, // the server died mid-request: not acknowledged
                }
            }
        })
    };
    // Let a stream build up, then kill without warning.
    let started = Instant::now();
    while acknowledged.lock().unwrap().len() < 50 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill(); // SIGKILL
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 50,
        "only {} calls before the kill",
        acknowledged.len()
    );
    // Restart: the service comes back on the same files.
    let mut server = Server::start(dir.path(), &env, port);
    assert_eq!(get(port, "/readyz"), Some(200));
    assert!(server.terminate().success());
    let db = checkin::db::Db::connect(&url, 1).unwrap();
    let (missing, integrity) = db
        .read_blocking(|c| {
            use checkin::db::schema::calls;
            use diesel::prelude::*;
            let stored: Vec<i64> = calls::table
                .filter(calls::id.eq_any(&acknowledged))
                .select(calls::id)
                .load(c)?;
            #[derive(diesel::QueryableByName)]
            struct Check {
                #[diesel(sql_type = diesel::sql_types::Text)]
                integrity_check: String,
            }
            let check = diesel::sql_query("PRAGMA integrity_check").get_result::<Check>(c)?;
            Ok((acknowledged.len() - stored.len(), check.integrity_check))
        })
        .unwrap();
    assert_eq!(missing, 0, "acknowledged calls lost after kill -9");
    assert_eq!(integrity, "ok");
}

/// `checkin jobs run-once` (cron deployments): sweeps, queues the day's
/// digests and writes the mail to data/mail without SMTP; a second run the
/// same day finds the work done.
#[test]
fn jobs_run_once_does_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(checkin(dir.path(), &[]).arg("demo"), "");
    assert!(ok, "{err}");
    let (ok, out, err) = run(checkin(dir.path(), &[]).args(["jobs", "run-once"]), "");
    assert!(ok, "{err}");
    assert!(out.contains("sweep ran"), "{out}");
    assert!(out.contains("data/mail"), "{out}");
    let (ok, out, _) = run(checkin(dir.path(), &[]).args(["jobs", "run-once"]), "");
    assert!(ok && out.contains("already done today"), "{out}");
}

/// The service keeps its SQLite locks on the database file while its
/// checkpoint thread syncs that file through a descriptor of its own. On
/// Linux, closing any descriptor of a file drops every POSIX lock the
/// process holds on it; without its shared lock, a service's database can
/// be checkpointed and its WAL deleted by another process (a backup, an
/// import) that takes itself for the last user (sqlite.org/howtocorrupt.html,
/// 2.2). Checked in /proc/locks; and another process still sees every
/// acknowledged write.
#[actix_web::test]
async fn the_service_keeps_its_lock_on_the_database_while_it_syncs() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkin.db");
    let url = format!("sqlite://{}", file.display());
    let env = [("CHECKIN_DATABASE_URL", url.as_str())];
    let (ok, _, err) = run(checkin(dir.path(), &env).arg("migrate"), "");
    assert!(ok, "{err}");
    let db = checkin::db::Db::connect(&url, 2).unwrap();
    async fn record(db: &checkin::db::Db) {
        db.write(|c| Ok(sign_in_row(c)?))
            .await
            .expect("an audit row written")
    }
    let inode = format!(":{} ", std::fs::metadata(&file).unwrap().ino());
    let pid = std::process::id().to_string();
    let locked = || {
        std::fs::read_to_string("/proc/locks")
            .unwrap()
            .lines()
            .any(|l| l.contains(&inode) && l.split_whitespace().nth(4) == Some(pid.as_str()))
    };
    let verified = |what: &str| {
        let (ok, out, err) = run(checkin(dir.path(), &env).args(["audit", "verify"]), "");
        assert!(ok && out.contains("intact"), "{what}: {out}{err}");
        out.split_whitespace()
            .find_map(|w| w.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{what}: no row count in {out:?}"))
    };
    // Writes, then time for several checkpoint passes to copy and sync them.
    for _ in 0..20 {
        record(&db).await;
    }
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert!(locked(), "the service lost its lock on the database file");
    let before = verified("while the service runs");
    for _ in 0..20 {
        record(&db).await;
    }
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert!(locked(), "the service lost its lock on the database file");
    assert_eq!(
        verified("after 20 more acknowledged writes"),
        before + 20,
        "acknowledged writes are missing for another process"
    );
}
