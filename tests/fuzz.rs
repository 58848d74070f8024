//! Property tests over the JSON API bodies: whatever arrives, the answer is a
//! clear 4xx (or a success), never a 500 and never a panic.

mod common;

use actix_web::http::Method;
use checkin::domain::Role;
use common::{Actor, TestApp};
use proptest::prelude::*;
use serde_json::{Map, Value};

const FIELDS: &[&str] = &[
    "given_name",
    "family_name",
    "phone",
    "preferred_language",
    "interpreter_needed",
    "best_times",
    "contact_mode",
    "enrolment_reasons",
    "enrolment_reason_other",
    "interest_confirmed",
    "cadence",
    "enrolled_on",
    "date_of_birth",
    "clinic_record_number",
    "occurred_at",
    "mode",
    "outcome",
    "duration_minutes",
    "interpreter_used",
    "sections",
    "resources",
    "concern",
    "notes",
    "next_call_at",
    "student_id",
    "note",
    "confirm_over_capacity",
    "reason",
    "summary",
    "status",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("2026-11-30"),
            Just("2026-11-30T10:00:00-05:00"),
            Just("(215) 555-0123"),
            Just("es"),
            Just("weekly"),
            Just("completed"),
            Just("urgent"),
            Just("opening"),
            Just("lifeline-988"),
            Just("-1"),
            Just("9999999999999999999999"),
            Just("=cmd|' /C calc'!A0"),
            Just("\u{0}"),
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn body() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::collection::btree_map(prop::sample::select(FIELDS), value(), 0..12)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        value(),
    ]
}

struct World {
    app: TestApp,
    doc: Actor,
    leader: Actor,
    student: Actor,
    patient: i64,
}

#[test]
fn no_body_makes_a_500() {
    let system = actix_web::rt::System::new();
    let world = system.block_on(async {
        let app = TestApp::sqlite().await;
        let doc = app.actor("doc@example.org", &[Role::Physician]).await;
        let leader = app.actor("leader@example.org", &[Role::Leader]).await;
        let student = app.actor("student@example.org", &[Role::Student]).await;
        let patient = app
            .add_patient("Rosa", "Fuzz", doc.id, Some(student.id))
            .await;
        World {
            app,
            doc,
            leader,
            student,
            patient,
        }
    });
    let routes: Vec<(Method, String, usize)> = vec![
        (Method::POST, "/api/v1/patients".into(), 0),
        (
            Method::POST,
            format!("/api/v1/patients/{}/calls", world.patient),
            2,
        ),
        (
            Method::PUT,
            format!("/api/v1/patients/{}/assignment", world.patient),
            1,
        ),
        (
            Method::POST,
            format!("/api/v1/patients/{}/discharge", world.patient),
            1,
        ),
        (Method::POST, "/api/v1/users".into(), 1),
        (Method::POST, "/api/v1/tokens".into(), 0),
    ];
    let config = ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(route in 0..routes.len(), body in body(), raw in prop::bool::weighted(0.1))| {
        let (method, path, who) = &routes[route];
        let actor = match who { 0 => &world.doc, 1 => &world.leader, _ => &world.student };
        let reply = system.block_on(async {
            let mut req = actix_web::test::TestRequest::default()
                .method(method.clone())
                .uri(path)
                .insert_header(("authorization", format!("Bearer {}", actor.token)));
            req = if raw {
                // Not JSON at all, or truncated JSON.
                let text = body.to_string();
                // Cut at a byte: possibly inside a character, so not even UTF-8.
                req.insert_header(("content-type", "application/json"))
                    .set_payload(text.as_bytes()[..text.len() / 2].to_vec())
            } else {
                req.set_json(&body)
            };
            world.app.call(req).await
        });
        prop_assert!(reply.status.as_u16() < 500, "{method} {path} {body} -> {}: {}", reply.status, reply.body);
        if reply.status.is_client_error() {
            let json = reply.json();
            prop_assert!(json["error"].is_string() && json["message"].is_string(), "{}", reply.body);
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every parser of what people type: any text gives a value or an
    /// error with a message, never a panic; a value reads back the same way.
    #[test]
    fn the_domain_parsers_never_panic(text in any::<String>(), near in "[ +()0-9a-zA-Z@._-]{0,24}") {
        use checkin::domain::{language::Language, people::{Email, PersonName}, phone::Phone};
        for input in [text.as_str(), near.as_str()] {
            if let Ok(phone) = Phone::parse(input) {
                prop_assert!(phone.as_str().starts_with('+'));
                prop_assert_eq!(Phone::parse(phone.as_str()).map(|p| p.as_str().to_string()).ok(), Some(phone.as_str().to_string()));
            } else if let Err(e) = Phone::parse(input) {
                prop_assert!(!e.to_string().is_empty());
            }
            if let Ok(name) = PersonName::parse(input) {
                prop_assert_eq!(PersonName::parse(name.as_str()).map(|n| n.as_str().to_string()).ok(), Some(name.as_str().to_string()));
            }
            if let Ok(email) = Email::parse(input) {
                prop_assert!(email.as_str().contains('@'));
            }
            let _ = Language::parse(input);
            let _ = Language::parse_list(input);
            let _ = checkin::calls::parse_instant(input, chrono_tz::America::New_York);
            let _ = input.parse::<checkin::domain::Outcome>();
            let _ = input.parse::<checkin::domain::Cadence>();
        }
    }
}
