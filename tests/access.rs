//! Who may reach what (SECURITY.md 1-6, SPEC.md rule 2), on both backends:
//!
//! - a role × route matrix covering every route the app registers, with a
//!   test that fails when a route is added without a row;
//! - two students (and two physicians) trying each other's patients: 404
//!   exactly like a patient that does not exist, an audit row per refusal,
//!   and the other patient's sentinel name in no response body;
//! - ending an assignment or disabling an account takes effect on the very
//!   next request;
//! - extra fields in a new account's body change nothing.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use actix_web::http::{Method, StatusCode};
use actix_web::test::TestRequest;
use checkin::domain::Role;
use common::{csrf_in, set_cookie, urlencode, Actor, Reply, TestApp, PASSWORD};
use serde_json::{json, Value};

/// Family names seeded on the two patients, looked for in every body.
const SENTINEL: &str = "Zyxwvut";
const OTHER_SENTINEL: &str = "Qponmlk";
/// A patient id nobody created: the answer every refusal must look like.
const NO_SUCH_PATIENT: i64 = 999_999;

// ---------------------------------------------------------------------------
// The matrix
// ---------------------------------------------------------------------------

/// The matrix's columns, in the order of `Row::expect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Physician,
    Student,
    Leader,
    Admin,
}

const EVERYONE: [Who; 5] = [
    Who::Anonymous,
    Who::Physician,
    Who::Student,
    Who::Leader,
    Who::Admin,
];

/// How a row's request carries who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// A page: the session cookie, and the session's CSRF token in a POST.
    Session,
    /// The JSON API (and `/healthz`, `/readyz`, `/metrics`): a bearer token.
    Bearer,
    /// A form shown before sign-in: the double-submit cookie and its token
    /// from the sign-in page, plus the session cookie when signed in.
    PreSession,
}

/// One route and what each column gets. Paths and body values may hold
/// placeholders that `fill` replaces per caller: `{patient}`, `{user}`,
/// `{link}`, `{my_token}`, `{my_other_token}`, `{email}`, `{password}`, `{me}`.
struct Row {
    method: Method,
    path: &'static str,
    via: Via,
    body: &'static [(&'static str, &'static str)],
    /// The request ends the session it is sent with (sign-out), so it is sent
    /// with a throw-away session rather than the caller's own.
    spends_session: bool,
    /// Anonymous, physician, student, leader, admin.
    expect: [u16; 5],
}

impl Row {
    fn new(method: Method, path: &'static str, via: Via, expect: [u16; 5]) -> Row {
        Row {
            method,
            path,
            via,
            body: &[],
            spends_session: false,
            expect,
        }
    }

    fn body(mut self, body: &'static [(&'static str, &'static str)]) -> Row {
        self.body = body;
        self
    }

    fn spends_session(mut self) -> Row {
        self.spends_session = true;
        self
    }

    fn expected(&self, who: Who) -> u16 {
        self.expect[EVERYONE.iter().position(|w| *w == who).unwrap_or(0)]
    }
}

/// A valid enrolment; the family name differs per caller so none is a duplicate.
const ENROLMENT: &[(&str, &str)] = &[
    ("given_name", "Matrix"),
    ("family_name", "Caller{me}"),
    ("phone", "(215) 555-0142"),
    ("preferred_language", "es"),
    ("enrolment_reasons", "mental_health"),
    ("interest_confirmed", "true"),
    ("cadence", "weekly"),
];

/// A valid call for the test's "now" (2026-11-29 10:00 in New York).
const CALL: &[(&str, &str)] = &[
    ("outcome", "completed"),
    ("mode", "phone"),
    ("duration_minutes", "10"),
    ("next_call_at", "2026-12-06T10:00"),
];

const ENROLMENT_BY_API: &[(&str, &str)] = &[
    ("given_name", "Scripted"),
    ("family_name", "Caller{me}"),
    ("phone", "(215) 555-0142"),
    ("preferred_language", "es"),
    ("enrolment_reasons", "mental_health"),
    ("interest_confirmed", "true"),
    ("cadence", "weekly"),
];

/// Every route the app registers. Anonymous callers are sent to the sign-in
/// page (302) by pages and refused (401) by the API; a role a route does not
/// serve gets 403. The public routes are health, the stylesheet, sign-in and
/// one-time links (SECURITY.md 1).
// Kept as a table by hand: one row per route, the five columns aligned.
#[rustfmt::skip]
fn matrix() -> Vec<Row> {
    use Via::{Bearer, PreSession, Session};
    let (get, post, delete, put) = (Method::GET, Method::POST, Method::DELETE, Method::PUT);
    vec![
        //       method        path                                     via          anon phys stud lead admin
        // Public: health, the stylesheet, sign-in, one-time links.
        Row::new(get.clone(),  "/healthz",                              Bearer,     [200, 200, 200, 200, 200]),
        Row::new(get.clone(),  "/readyz",                               Bearer,     [200, 200, 200, 200, 200]),
        Row::new(get.clone(),  "/static/app.css",                       Session,    [200, 200, 200, 200, 200]),
        Row::new(get.clone(),  "/sign-in",                              Session,    [200, 200, 200, 200, 200]),
        // The caller's own email and password; anonymous is nobody@, unknown.
        Row::new(post.clone(), "/sign-in",                              PreSession, [401, 303, 303, 303, 303])
            .body(&[("email", "{email}"), ("password", "{password}")]),
        Row::new(get.clone(),  "/link/{link}",                          Session,    [200, 200, 200, 200, 200]),
        // Passwords that do not match: the form is reached, the link stays unused.
        Row::new(post.clone(), "/link/{link}",                          PreSession, [422, 422, 422, 422, 422])
            .body(&[("password", "{password}"), ("password_again", "something else entirely")]),
        // Any signed-in user.
        // A student's home is their check-ins.
        Row::new(get.clone(),  "/",                                     Session,    [302, 200, 303, 303, 200]),
        Row::new(get.clone(),  "/account",                              Session,    [302, 200, 200, 200, 200]),
        Row::new(post.clone(), "/account/tokens",                       Session,    [302, 200, 200, 200, 200])
            .body(&[("label", "matrix")]),
        Row::new(post.clone(), "/account/tokens/{my_token}/revoke",     Session,    [302, 303, 303, 303, 303]),
        Row::new(post.clone(), "/sign-out",                             Session,    [302, 303, 303, 303, 303])
            .spends_session(),
        // The patient the physician enrolled and the student is assigned to.
        Row::new(get.clone(),  "/patients/{patient}",                   Session,    [302, 200, 200, 200, 200]),
        Row::new(get.clone(),  "/patients",                             Session,    [302, 200, 200, 200, 200]),
        // Enrolment: physicians and leaders. Each caller enrols a different person.
        Row::new(get.clone(),  "/enrol",                                Session,    [302, 200, 403, 200, 403]),
        Row::new(post.clone(), "/enrol",                                Session,    [302, 303, 403, 303, 403])
            .body(ENROLMENT),
        // Students' check-ins and calls: the assigned student only. Calls by
        // id aim at a call that does not exist: the student reaches the handler.
        Row::new(get.clone(),  "/checkins",                             Session,    [302, 403, 200, 403, 403]),
        Row::new(get.clone(),  "/patients/{patient}/call",              Session,    [302, 403, 200, 403, 403]),
        Row::new(post.clone(), "/patients/{patient}/call",              Session,    [302, 403, 303, 403, 403])
            .body(CALL),
        Row::new(get.clone(),  "/patients/{patient}/calls/{absent}/edit", Session,  [302, 403, 404, 403, 403]),
        Row::new(post.clone(), "/patients/{patient}/calls/{absent}/edit", Session,  [302, 403, 404, 403, 403])
            .body(CALL),
        Row::new(post.clone(), "/patients/{patient}/calls/{absent}/comments", Session, [302, 403, 403, 404, 403])
            .body(&[("body", "Read it, thank you.")]),
        Row::new(post.clone(), "/account/calendar",                     Session,    [302, 403, 200, 403, 403]),
        Row::new(post.clone(), "/account/calendar/revoke",              Session,    [302, 403, 303, 403, 403]),
        // The calendar feed is reached by its secret; a wrong one is a 404 for anyone.
        Row::new(get.clone(),  "/calendar/{absent}.ics",                Session,    [404, 404, 404, 404, 404]),
        // Pairing: leaders. Changes aim at a patient that does not exist, so
        // the other rows keep their pairing; the leader reaches the handler (404).
        Row::new(get.clone(),  "/pairing",                              Session,    [302, 403, 403, 200, 403]),
        Row::new(get.clone(),  "/pairing/{patient}",                    Session,    [302, 403, 403, 200, 403]),
        Row::new(post.clone(), "/pairing/{absent}",                       Session,    [302, 403, 403, 404, 403])
            .body(&[("student_id", "{user}")]),
        Row::new(post.clone(), "/pairing/{absent}/unassign",              Session,    [302, 403, 403, 404, 403]),
        // Admins only.
        Row::new(get.clone(),  "/admin/users",                          Session,    [302, 403, 403, 403, 200]),
        Row::new(get.clone(),  "/admin/users/new",                      Session,    [302, 403, 403, 403, 200]),
        Row::new(post.clone(), "/admin/users",                          Session,    [302, 403, 403, 403, 200])
            .body(&[("email", "form-by-{me}@example.org"), ("given_name", "Formed"),
                    ("roles", "student"), ("languages", "en")]),
        Row::new(get.clone(),  "/admin/users/{user}",                   Session,    [302, 403, 403, 403, 200]),
        Row::new(post.clone(), "/admin/users/{user}",                   Session,    [302, 403, 403, 403, 303])
            .body(&[("given_name", "Edited"), ("family_name", "User"), ("roles", "student"),
                    ("languages", "en"), ("capacity", "4")]),
        Row::new(post.clone(), "/admin/users/{user}/reset-password",    Session,    [302, 403, 403, 403, 200]),
        Row::new(get.clone(),  "/admin/settings",                       Session,    [302, 403, 403, 403, 200]),
        Row::new(post.clone(), "/admin/settings",                       Session,    [302, 403, 403, 403, 303])
            .body(&[("reminder_hour", "9"), ("student_digest", "on")]),
        // The discharge queue: leaders and physicians. Discharging aims at a
        // patient that does not exist (404 once past the role check).
        // The leader dashboard; concerns for leaders and physicians (404 for a concern that does not exist).
        Row::new(get.clone(),  "/dashboard",                            Session,    [302, 403, 403, 200, 403]),
        Row::new(post.clone(), "/concerns/{absent}/acknowledge",        Session,    [302, 404, 403, 404, 403])
            .body(&[("note", "Handled.")]),
        Row::new(get.clone(),  "/debriefs",                             Session,    [302, 403, 403, 200, 403]),
        Row::new(post.clone(), "/debriefs",                             Session,    [302, 403, 403, 303, 403])
            .body(&[("title", "Matrix debrief"), ("scheduled_for", "2026-12-01T18:00")]),
        Row::new(get.clone(),  "/debriefs/{absent}",                    Session,    [302, 403, 403, 404, 403]),
        Row::new(post.clone(), "/debriefs/{absent}",                    Session,    [302, 403, 403, 404, 403])
            .body(&[("notes", "x")]),
        Row::new(get.clone(),  "/reports",                              Session,    [302, 403, 403, 200, 403]),
        Row::new(get.clone(),  "/api/v1/debriefs",                      Bearer,     [401, 403, 403, 200, 403]),
        // The protocol: anyone signed in.
        Row::new(get.clone(),  "/protocol",                             Session,    [302, 200, 200, 200, 200]),
        Row::new(get.clone(),  "/api/v1/protocol",                      Bearer,     [401, 200, 200, 200, 200]),
        Row::new(get.clone(),  "/dashboard/students/{absent}",          Session,    [302, 403, 403, 404, 403]),
        Row::new(get.clone(),  "/api/v1/workload",                      Bearer,     [401, 403, 403, 200, 403]),
        Row::new(get.clone(),  "/api/v1/concerns",                      Bearer,     [401, 200, 403, 200, 403]),
        Row::new(post.clone(), "/api/v1/concerns/{absent}/acknowledge", Bearer,     [401, 404, 403, 404, 403])
            .body(&[("note", "Handled.")]),
        Row::new(get.clone(),  "/api/v1/exports/calls.csv",             Bearer,     [401, 403, 403, 200, 403]),
        Row::new(get.clone(),  "/api/v1/exports/patients.csv",          Bearer,     [401, 403, 403, 200, 403]),
        Row::new(get.clone(),  "/discharge-queue",                      Session,    [302, 200, 403, 200, 403]),
        Row::new(post.clone(), "/patients/{absent}/discharge",          Session,    [302, 404, 403, 404, 403])
            .body(&[("reason", "completed"), ("summary", "Finished the programme.")]),
        Row::new(get.clone(),  "/api/v1/discharge-queue",               Bearer,     [401, 200, 403, 200, 403]),
        Row::new(post.clone(), "/api/v1/patients/{absent}/discharge",   Bearer,     [401, 404, 403, 404, 403])
            .body(&[("reason", "completed"), ("summary", "Finished the programme.")]),
        Row::new(get.clone(),  "/admin/audit",                          Session,    [302, 403, 403, 403, 200]),
        Row::new(get.clone(),  "/metrics",                              Bearer,     [401, 403, 403, 403, 200]),
        // The JSON API. Exchanging a password for a token needs no token.
        Row::new(post.clone(), "/api/v1/tokens",                        Bearer,     [401, 201, 201, 201, 201])
            .body(&[("email", "{email}"), ("password", "{password}")]),
        Row::new(delete.clone(), "/api/v1/tokens/{my_other_token}",       Bearer,     [401, 204, 204, 204, 204]),
        Row::new(get.clone(),  "/api/v1/me",                            Bearer,     [401, 200, 200, 200, 200]),
        Row::new(post.clone(), "/api/v1/users",                         Bearer,     [401, 403, 403, 403, 201])
            .body(&[("email", "api-by-{me}@example.org"), ("given_name", "Scripted"),
                    ("roles", "student")]),
        Row::new(get.clone(),  "/api/v1/patients/{patient}",            Bearer,     [401, 200, 200, 200, 200]),
        Row::new(get.clone(),  "/api/v1/patients",                      Bearer,     [401, 200, 200, 200, 200]),
        Row::new(get.clone(),  "/api/v1/me/checkins",                   Bearer,     [401, 403, 200, 403, 403]),
        Row::new(post.clone(), "/api/v1/patients/{patient}/calls",      Bearer,     [401, 403, 201, 403, 403])
            .body(CALL),
        Row::new(get.clone(),  "/api/v1/patients/{patient}/calls/{absent}", Bearer, [401, 404, 404, 404, 404]),
        Row::new(put.clone(),  "/api/v1/patients/{patient}/calls/{absent}", Bearer, [401, 403, 404, 403, 403])
            .body(CALL),
        Row::new(post.clone(), "/api/v1/patients/{patient}/calls/{absent}/comments", Bearer, [401, 403, 403, 404, 403])
            .body(&[("body", "Read it, thank you.")]),
        Row::new(post.clone(), "/api/v1/patients",                      Bearer,     [401, 201, 403, 201, 403])
            .body(ENROLMENT_BY_API),
        Row::new(get.clone(),  "/api/v1/patients/{patient}/pairing-suggestions", Bearer, [401, 403, 403, 200, 403]),
        Row::new(put.clone(),  "/api/v1/patients/{absent}/assignment",    Bearer,     [401, 403, 403, 404, 403])
            .body(&[("student_id", "{user}")]),
        Row::new(delete,       "/api/v1/patients/{absent}/assignment",  Bearer,     [401, 403, 403, 404, 403]),
        Row::new(get,          "/api/v1/openapi.json",                  Bearer,     [401, 200, 200, 200, 200]),
    ]
}

// ---------------------------------------------------------------------------
// The people and records every test starts from
// ---------------------------------------------------------------------------

struct World {
    physician: Actor,
    student: Actor,
    leader: Actor,
    admin: Actor,
    other_physician: Actor,
    other_student: Actor,
    /// SENTINEL: enrolled by `physician`, assigned to `student`.
    patient: i64,
    /// OTHER_SENTINEL: enrolled by `other_physician`, assigned to `other_student`.
    other_patient: i64,
    /// An account none of the actors is, for `/admin/users/{id}`.
    other_user: i64,
    /// The token of that account's unused set-up link.
    link: String,
}

impl World {
    async fn new(app: &TestApp) -> World {
        let physician = app.actor("physician@example.org", &[Role::Physician]).await;
        let student = app.actor("student@example.org", &[Role::Student]).await;
        let leader = app.actor("leader@example.org", &[Role::Leader]).await;
        let admin = app.actor("admin@example.org", &[Role::Admin]).await;
        let other_physician = app
            .actor("physician2@example.org", &[Role::Physician])
            .await;
        let other_student = app.actor("student2@example.org", &[Role::Student]).await;
        let patient = app
            .add_patient("Alma", SENTINEL, physician.id, Some(student.id))
            .await;
        let other_patient = app
            .add_patient(
                "Berta",
                OTHER_SENTINEL,
                other_physician.id,
                Some(other_student.id),
            )
            .await;
        let created = app
            .api_send(
                &admin,
                Method::POST,
                "/api/v1/users",
                json!({"email": "other@example.org", "given_name": "Other", "roles": ["student"]}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let created = created.json();
        let other_user = created["id"].as_i64().expect("new user id");
        let link = created["setup_url"]
            .as_str()
            .and_then(|url| url.rsplit_once("/link/"))
            .map(|(_, token)| token.to_string())
            .expect("a set-up link");
        World {
            physician,
            student,
            leader,
            admin,
            other_physician,
            other_student,
            patient,
            other_patient,
            other_user,
            link,
        }
    }

    fn actor(&self, who: Who) -> Option<&Actor> {
        match who {
            Who::Anonymous => None,
            Who::Physician => Some(&self.physician),
            Who::Student => Some(&self.student),
            Who::Leader => Some(&self.leader),
            Who::Admin => Some(&self.admin),
        }
    }

    /// The matrix's seat for one column. Anonymous aims at real tokens of the
    /// admin, so that only the missing sign-in can explain a refusal.
    async fn seat(&self, app: &TestApp, who: Who) -> Seat {
        let minter = self.actor(who).unwrap_or(&self.admin);
        self.seat_for(app, self.actor(who), minter, self.patient)
            .await
    }

    async fn seat_for(
        &self,
        app: &TestApp,
        actor: Option<&Actor>,
        minter: &Actor,
        patient: i64,
    ) -> Seat {
        Seat {
            actor: actor.cloned(),
            patient,
            user: self.other_user,
            link: self.link.clone(),
            my_token: spare_token(app, minter).await,
            my_other_token: spare_token(app, minter).await,
        }
    }
}

/// Who sends a row's request, and the ids that fill its placeholders.
struct Seat {
    actor: Option<Actor>,
    patient: i64,
    user: i64,
    link: String,
    /// Two spare API tokens of the caller, to revoke (page and API).
    my_token: i64,
    my_other_token: i64,
}

impl Seat {
    fn fill(&self, template: &str) -> String {
        let me = self
            .actor
            .as_ref()
            .map_or("anonymous".to_string(), |a| a.id.to_string());
        let email = self
            .actor
            .as_ref()
            .map_or("nobody@example.org", |a| a.email.as_str());
        let filled = template
            .replace("{patient}", &self.patient.to_string())
            .replace("{user}", &self.user.to_string())
            .replace("{link}", &self.link)
            .replace("{my_token}", &self.my_token.to_string())
            .replace("{my_other_token}", &self.my_other_token.to_string())
            .replace("{email}", email)
            .replace("{password}", PASSWORD)
            .replace("{me}", &me)
            .replace("{absent}", "999999");
        assert!(
            !filled.contains('{'),
            "a placeholder in {template:?} has no value"
        );
        filled
    }
}

/// Issues an API token for `who` through the account page and returns its id.
async fn spare_token(app: &TestApp, who: &Actor) -> i64 {
    let reply = app
        .post_form(who, "/account/tokens", &[("label", "spare")], true)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "issuing a spare token");
    scalar(
        app,
        &format!(
            "SELECT MAX(id) AS n FROM api_tokens WHERE user_id = {}",
            who.id
        ),
    )
    .await
}

/// One number from the test database.
async fn scalar(app: &TestApp, query: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let query = query.to_string();
    app.state
        .db
        .read(move |c| {
            use diesel::RunQueryDsl;
            Ok(diesel::sql_query(query).get_result::<N>(c)?.n)
        })
        .await
        .expect("scalar query")
}

/// Sends one row's request from one seat.
async fn send(app: &TestApp, row: &Row, seat: &Seat) -> Reply {
    let throwaway = match (&seat.actor, row.spends_session) {
        (Some(a), true) => Some(app.actor_for(a.id, &a.email).await),
        _ => None,
    };
    let actor = throwaway.as_ref().or(seat.actor.as_ref());
    let mut fields: Vec<(String, String)> = row
        .body
        .iter()
        .map(|(k, v)| (k.to_string(), seat.fill(v)))
        .collect();
    let mut req = TestRequest::default()
        .method(row.method.clone())
        .uri(&seat.fill(row.path));
    match row.via {
        Via::Bearer => {
            if let Some(a) = actor {
                req = req.insert_header(("authorization", format!("Bearer {}", a.token)));
            }
            if !fields.is_empty() {
                let object: serde_json::Map<String, Value> = fields
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                req = req.set_json(Value::Object(object));
            }
        }
        Via::Session => {
            if let Some(a) = actor {
                req = req.insert_header(("cookie", a.cookie.clone()));
                if row.method == Method::POST {
                    fields.push(("csrf".into(), a.csrf.clone()));
                }
            }
            if row.method == Method::POST {
                req = form(req, &fields);
            }
        }
        Via::PreSession => {
            let page = app.get("/sign-in").await;
            let pre = set_cookie(&page, "checkin_csrf").expect("pre-session cookie");
            fields.push(("csrf".into(), csrf_in(&page.body)));
            let cookies = match actor {
                Some(a) => format!("{}; {pre}", a.cookie),
                None => pre,
            };
            req = form(req.insert_header(("cookie", cookies)), &fields);
        }
    }
    app.call(req).await
}

fn form(req: TestRequest, fields: &[(String, String)]) -> TestRequest {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect();
    req.insert_header(("content-type", "application/x-www-form-urlencoded"))
        .set_payload(body.join("&"))
}

fn describe(row: &Row) -> String {
    format!("{} {}", row.method, row.path)
}

/// SECURITY.md 1-2: every route, every role, one table. All mismatches are
/// reported together, each naming method, path, role, expected and actual.
async fn role_route_matrix(app: TestApp) {
    let world = World::new(&app).await;
    let rows = matrix();
    let mut failures = Vec::new();
    // Anonymous first: its rows aim at the admin's spare tokens.
    for who in EVERYONE {
        let seat = world.seat(&app, who).await;
        for row in &rows {
            let reply = send(&app, row, &seat).await;
            let expected = row.expected(who);
            let location = reply.header("location").unwrap_or_default().to_string();
            // A 302 is only right when it sends the visitor to sign in.
            let ok =
                reply.status.as_u16() == expected && (expected != 302 || location == "/sign-in");
            if !ok {
                failures.push(format!(
                    "{} {} as {who:?}: expected {expected}, got {} (location {location:?}): {}",
                    row.method,
                    seat.fill(row.path),
                    reply.status.as_u16(),
                    reply.body.chars().take(160).collect::<String>(),
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} matrix cells are wrong:\n{}",
        failures.len(),
        rows.len() * EVERYONE.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------
// The matrix covers every route
// ---------------------------------------------------------------------------

/// A path with every `{name}` written `{}`, so `/patients/{id}` in the source
/// and `/patients/{patient}` in the table compare equal.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_brace = false;
    for ch in path.chars() {
        match ch {
            '{' => {
                in_brace = true;
                out.push_str("{}");
            }
            '}' => in_brace = false,
            _ if in_brace => {}
            _ => out.push(ch),
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/web") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The handler names a `fn <name>(cfg)` registers with `.service(...)`.
fn services_in(source: &str, function: &str) -> BTreeSet<String> {
    let Some(start) = source.find(&format!("fn {function}(")) else {
        return BTreeSet::new();
    };
    let body = &source[start..];
    let body = &body[..body.find("\n}").unwrap_or(body.len())];
    body.split(".service(")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|name| name.trim().to_string())
        .collect()
}

/// Every `#[get("...")]`-style route in `src/web`, as (METHOD, shape), with
/// `/api/v1` in front of the handlers `web/mod.rs` mounts under that scope:
/// everything in `src/web/api/` and each module's `api_routes`.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let web = root.join("src/web");
    let mod_rs = std::fs::read_to_string(web.join("mod.rs")).expect("read src/web/mod.rs");
    let mut files = Vec::new();
    rust_files(&web, &mut files);
    let mut scopes = 0;
    let mut routes = BTreeSet::new();
    for file in files.iter().chain([&root.join("src/startup.rs")]) {
        let source = std::fs::read_to_string(file).expect("read a source file");
        let name = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        // Routes registered any other way would escape this scan: refuse them
        // here, so whoever adds one teaches the scan (and the matrix) about it.
        for unscanned in ["web::resource(", ".route(\"", "#[route(", "#[actix_web::"] {
            assert!(
                !source.contains(unscanned),
                "{name} registers a route with `{unscanned}`, which this test does not read; extend routes_in_source"
            );
        }
        scopes += source.matches("web::scope(").count();
        let api_handlers = services_in(&source, "api_routes");
        if !api_handlers.is_empty() {
            let module = file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            assert!(
                mod_rs.contains(&format!("{module}::api_routes")),
                "{name} has api_routes that web/mod.rs does not mount under /api/v1"
            );
        }
        let under_api = file.starts_with(web.join("api"));
        let lines: Vec<&str> = source.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            for method in ["get", "post", "put", "patch", "delete", "head"] {
                let Some(rest) = line.trim_start().strip_prefix(&format!("#[{method}(\"")) else {
                    continue;
                };
                let path = rest.split('"').next().unwrap_or_default();
                let handler = lines[i + 1..]
                    .iter()
                    .find_map(|l| l.split("fn ").nth(1))
                    .and_then(|rest| rest.split(['(', '<']).next())
                    .unwrap_or_default()
                    .trim();
                let prefix = if under_api || api_handlers.contains(handler) {
                    "/api/v1"
                } else {
                    ""
                };
                routes.insert((method.to_uppercase(), shape(&format!("{prefix}{path}"))));
            }
        }
    }
    assert_eq!(
        scopes, 1,
        "routes are mounted under a scope other than /api/v1; extend routes_in_source"
    );
    assert!(mod_rs.contains("web::scope(\"/api/v1\")"));
    routes
}

/// A route added later without a matrix row fails here; so does a row left
/// behind for a route that is gone, and an API operation the OpenAPI document
/// describes that the table does not list.
async fn every_route_has_a_matrix_row(app: TestApp) {
    let rows = matrix();
    let table: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r.method.to_string(), shape(r.path)))
        .collect();
    assert_eq!(table.len(), rows.len(), "the matrix lists a route twice");

    let source = routes_in_source();
    let missing: Vec<_> = source.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "routes in src/web with no row in the access matrix: {missing:?}"
    );
    let stale: Vec<_> = table.difference(&source).collect();
    assert!(
        stale.is_empty(),
        "matrix rows for routes that src/web does not define: {stale:?}"
    );

    let someone = app.actor("reader@example.org", &[Role::Student]).await;
    let doc = app.api_get(&someone, "/api/v1/openapi.json").await.json();
    let paths = doc["paths"]
        .as_object()
        .expect("paths in the OpenAPI document");
    for (path, operations) in paths {
        for method in operations.as_object().into_iter().flat_map(|o| o.keys()) {
            if !["get", "post", "put", "patch", "delete", "head"].contains(&method.as_str()) {
                continue;
            }
            let route = (method.to_uppercase(), shape(path));
            assert!(
                table.contains(&route),
                "the OpenAPI document describes {route:?}, which has no matrix row"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Rule 2: whose patients a user reaches
// ---------------------------------------------------------------------------

async fn refusals(app: &TestApp, user: i64, patient: i64) -> i64 {
    app.count(&format!(
        "audit_log WHERE action = 'patient.refused' AND user_id = {user} AND record_id = {patient}"
    ))
    .await
}

async fn reads(app: &TestApp, user: i64, patient: i64) -> i64 {
    app.count(&format!(
        "audit_log WHERE action = 'patient.read' AND user_id = {user} AND patient_id = {patient}"
    ))
    .await
}

/// The two routes that read one patient, as page and API.
fn patient_paths(id: i64) -> [(Via, String); 2] {
    [
        (Via::Session, format!("/patients/{id}")),
        (Via::Bearer, format!("/api/v1/patients/{id}")),
    ]
}

async fn fetch(app: &TestApp, who: &Actor, via: Via, path: &str) -> Reply {
    match via {
        Via::Bearer => app.api_get(who, path).await,
        _ => app.page(who, path).await,
    }
}

/// `who` cannot see `patient`: each route answers exactly what it answers
/// for a patient that does not exist, and each refusal is audited.
async fn assert_refused(app: &TestApp, who: &Actor, patient: i64, sentinel: &str) {
    for (via, path) in patient_paths(patient) {
        let before = refusals(app, who.id, patient).await;
        let refused = fetch(app, who, via, &path).await;
        let absent_path = path.replace(&patient.to_string(), &NO_SUCH_PATIENT.to_string());
        let absent = fetch(app, who, via, &absent_path).await;
        assert_eq!(
            refused.status,
            StatusCode::NOT_FOUND,
            "{path} for user {}",
            who.id
        );
        assert_eq!(absent.status, StatusCode::NOT_FOUND, "{absent_path}");
        assert_eq!(
            refused.body, absent.body,
            "{path} answers user {} differently from a patient that does not exist",
            who.id
        );
        assert!(!refused.body.contains(sentinel), "{path} leaks {sentinel}");
        assert_eq!(
            refusals(app, who.id, patient).await,
            before + 1,
            "{path}: one patient.refused audit row for user {}",
            who.id
        );
    }
}

/// `who` sees `patient`: 200 with the patient's name, each read audited.
async fn assert_visible(app: &TestApp, who: &Actor, patient: i64, sentinel: &str) {
    for (via, path) in patient_paths(patient) {
        let before = reads(app, who.id, patient).await;
        let reply = fetch(app, who, via, &path).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{path} for user {}: {}",
            who.id,
            reply.body
        );
        assert!(
            reply.body.contains(sentinel),
            "{path} does not show {sentinel}"
        );
        assert_eq!(
            reads(app, who.id, patient).await,
            before + 1,
            "{path}: one patient.read row"
        );
    }
}

/// SECURITY.md 3: two students try each other's patient on every route.
async fn students_reach_only_their_own_patients(app: TestApp) {
    let world = World::new(&app).await;
    let pairs = [
        (
            &world.student,
            world.patient,
            SENTINEL,
            world.other_patient,
            OTHER_SENTINEL,
        ),
        (
            &world.other_student,
            world.other_patient,
            OTHER_SENTINEL,
            world.patient,
            SENTINEL,
        ),
    ];
    for (me, mine, my_sentinel, theirs, their_sentinel) in pairs {
        // The check below is not vacuous: the student's own patient shows.
        assert_visible(&app, me, mine, my_sentinel).await;
        assert_refused(&app, me, theirs, their_sentinel).await;

        let rows = matrix();
        // Every route in the matrix that takes a patient id and serves
        // students, page or API, GET or POST: the other student's patient is
        // a patient that does not exist. (Routes students may not use at all
        // answer 403 whatever the id, which reveals nothing.)
        for row in rows
            .iter()
            .filter(|r| r.path.contains("{patient}") && r.expected(Who::Student) != 403)
        {
            let theirs_seat = world.seat_for(&app, Some(me), me, theirs).await;
            let absent_seat = world.seat_for(&app, Some(me), me, NO_SUCH_PATIENT).await;
            let before = refusals(&app, me.id, theirs).await;
            let refused = send(&app, row, &theirs_seat).await;
            let absent = send(&app, row, &absent_seat).await;
            assert_eq!(
                refused.status,
                StatusCode::NOT_FOUND,
                "{} as student {}",
                describe(row),
                me.id
            );
            assert_eq!(
                refused.body,
                absent.body,
                "{} as student {}",
                describe(row),
                me.id
            );
            assert_eq!(
                refusals(&app, me.id, theirs).await,
                before + 1,
                "{} audited",
                describe(row)
            );
        }

        // Every route in the matrix, aimed at the student's own patient and at
        // the other one: the other patient's name is in no body.
        for patient in [mine, theirs] {
            let seat = world.seat_for(&app, Some(me), me, patient).await;
            for row in &rows {
                let reply = send(&app, row, &seat).await;
                assert!(
                    !reply.body.contains(their_sentinel),
                    "{} {} as student {} shows {their_sentinel}",
                    row.method,
                    seat.fill(row.path),
                    me.id
                );
            }
        }
    }
}

/// Rule 2: a physician sees the patients they enrolled, not another's.
async fn physicians_see_the_patients_they_enrolled(app: TestApp) {
    let world = World::new(&app).await;
    assert_visible(&app, &world.physician, world.patient, SENTINEL).await;
    assert_refused(&app, &world.physician, world.other_patient, OTHER_SENTINEL).await;
    assert_visible(
        &app,
        &world.other_physician,
        world.other_patient,
        OTHER_SENTINEL,
    )
    .await;
    assert_refused(&app, &world.other_physician, world.patient, SENTINEL).await;
}

/// Rule 2: leaders and admins see every patient.
async fn leaders_and_admins_see_every_patient(app: TestApp) {
    let world = World::new(&app).await;
    for who in [&world.leader, &world.admin] {
        assert_visible(&app, who, world.patient, SENTINEL).await;
        assert_visible(&app, who, world.other_patient, OTHER_SENTINEL).await;
    }
}

/// SECURITY.md 6: an ended assignment is refused on the very next request.
async fn an_ended_assignment_is_refused_on_the_next_request(app: TestApp) {
    let world = World::new(&app).await;
    assert_visible(&app, &world.student, world.patient, SENTINEL).await;
    let ended = app
        .sql(&format!(
            "UPDATE assignments SET ended_at = '2026-11-29 15:30:00', ended_by = {} \
             WHERE patient_id = {} AND student_id = {} AND ended_at IS NULL",
            world.leader.id, world.patient, world.student.id
        ))
        .await;
    assert_eq!(ended, 1, "one active assignment ended");
    assert_refused(&app, &world.student, world.patient, SENTINEL).await;
    // Nobody else lost anything.
    assert_visible(&app, &world.physician, world.patient, SENTINEL).await;
    assert_visible(
        &app,
        &world.other_student,
        world.other_patient,
        OTHER_SENTINEL,
    )
    .await;
}

/// SECURITY.md 6: a disabled account's session and token stop working on the
/// very next request, and it cannot sign in again.
async fn a_disabled_account_is_refused_on_the_next_request(app: TestApp) {
    let world = World::new(&app).await;
    let student = &world.student;
    assert_eq!(app.page(student, "/account").await.status, StatusCode::OK);
    assert_eq!(
        app.api_get(student, "/api/v1/me").await.status,
        StatusCode::OK
    );

    let disabled = app
        .sql(&format!(
            "UPDATE users SET disabled_at = '2026-11-29 15:30:00' WHERE id = {}",
            student.id
        ))
        .await;
    assert_eq!(disabled, 1);

    for (via, path) in [
        (Via::Session, "/".to_string()),
        (Via::Session, format!("/patients/{}", world.patient)),
        (Via::Bearer, "/api/v1/me".to_string()),
        (Via::Bearer, format!("/api/v1/patients/{}", world.patient)),
    ] {
        let reply = fetch(&app, student, via, &path).await;
        match via {
            Via::Bearer => assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}"),
            _ => {
                assert_eq!(reply.status, StatusCode::FOUND, "{path}");
                assert_eq!(reply.header("location"), Some("/sign-in"), "{path}");
            }
        }
        assert!(!reply.body.contains(SENTINEL), "{path} leaks {SENTINEL}");
    }
    assert_eq!(
        app.count(&format!("sessions WHERE user_id = {}", student.id))
            .await,
        0,
        "the disabled account's session is gone"
    );
    let again = app.sign_in(&student.email, PASSWORD).await;
    assert_eq!(
        again.status,
        StatusCode::UNAUTHORIZED,
        "a disabled account signs in"
    );
    // The other student is untouched.
    assert_eq!(
        app.page(&world.other_student, "/account").await.status,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------
// SECURITY.md 5: no mass assignment
// ---------------------------------------------------------------------------

/// Fields an account body must never set, with values that would show if
/// they were applied.
const FORGED_ID: i64 = 424_242;
const FORGED_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";

async fn assert_untouched(app: &TestApp, email: &str, id: i64) {
    assert_ne!(id, FORGED_ID, "{email}: the id came from the body");
    assert_eq!(app.count(&format!("users WHERE id = {FORGED_ID}")).await, 0);
    let clean = format!(
        "users WHERE id = {id} AND email = '{email}' AND disabled_at IS NULL \
         AND password_hash IS NULL AND created_at > '2020-01-01 00:00:00'"
    );
    assert_eq!(
        app.count(&clean).await,
        1,
        "{email}: disabled_at, password_hash or created_at came from the body"
    );
    assert_eq!(
        app.count(&format!("user_roles WHERE user_id = {id}")).await,
        1,
        "{email}: only the role asked for"
    );
    let sign_in = app.sign_in(email, "a forged password").await;
    assert_eq!(sign_in.status, StatusCode::UNAUTHORIZED);
}

async fn extra_fields_in_a_new_account_change_nothing(app: TestApp) {
    let admin = app.actor("admin@example.org", &[Role::Admin]).await;

    let reply = app
        .api_send(
            &admin,
            Method::POST,
            "/api/v1/users",
            json!({
                "email": "mass@example.org",
                "given_name": "Mass",
                "family_name": "Assignment",
                "roles": ["student"],
                "id": FORGED_ID,
                "disabled_at": "2001-01-01T00:00:00Z",
                "password_hash": FORGED_HASH,
                "created_at": "2001-01-01T00:00:00Z",
                "updated_at": "2001-01-01T00:00:00Z",
                "calendar_token_hash": "forged",
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let id = reply.json()["id"].as_i64().expect("id");
    assert_untouched(&app, "mass@example.org", id).await;

    // The admin form reads the same fields the same way.
    let reply = app
        .post_form(
            &admin,
            "/admin/users",
            &[
                ("email", "mass-form@example.org"),
                ("given_name", "Mass"),
                ("roles", "student"),
                ("id", "424242"),
                ("disabled_at", "2001-01-01 00:00:00"),
                ("password_hash", FORGED_HASH),
                ("created_at", "2001-01-01 00:00:00"),
            ],
            true,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let id = scalar(
        &app,
        "SELECT id AS n FROM users WHERE email = 'mass-form@example.org'",
    )
    .await;
    assert_untouched(&app, "mass-form@example.org", id).await;
}

on_both_backends!(
    role_route_matrix,
    every_route_has_a_matrix_row,
    students_reach_only_their_own_patients,
    physicians_see_the_patients_they_enrolled,
    leaders_and_admins_see_every_patient,
    an_ended_assignment_is_refused_on_the_next_request,
    a_disabled_account_is_refused_on_the_next_request,
    extra_fields_in_a_new_account_change_nothing,
);
