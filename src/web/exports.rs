//! CSV exports for leaders, streamed: rows are read 5,000 at a time by id and
//! written as they are read, so memory stays flat however many calls there
//! are. Cells that a spreadsheet would read as a formula (starting with
//! `= + - @`, a tab or a carriage return) are neutralised with a leading `'`.

use actix_web::{get, web, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use futures_util::stream;

use crate::db::schema::{call_resources, call_sections, calls, patients};
use crate::error::AppError;
use crate::startup::AppState;
use crate::web::identity::{Api, Leaders};

const CHUNK: i64 = 5000;

pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(calls_csv).service(patients_csv);
}

/// A cell a spreadsheet will show as text (SECURITY.md 16).
pub fn neutralise(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_string(),
    }
}

fn time(t: Option<NaiveDateTime>) -> String {
    t.map(|t| t.and_utc().to_rfc3339()).unwrap_or_default()
}

fn to_csv(rows: Vec<Vec<String>>) -> Result<web::Bytes, AppError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer
            .write_record(row.iter().map(|c| neutralise(c)))
            .map_err(|e| AppError::internal(e.to_string()))?;
    }
    writer
        .into_inner()
        .map(web::Bytes::from)
        .map_err(|e| AppError::internal(e.to_string()))
}

type CallRow = (
    i64,
    i64,
    i64,
    NaiveDateTime,
    String,
    String,
    i32,
    bool,
    String,
    String,
    String,
    Option<NaiveDateTime>,
);

/// Calls with id above `after`, with their sections and resources.
fn calls_after(c: &mut crate::db::DbConn, after: i64) -> Result<Vec<Vec<String>>, AppError> {
    let rows: Vec<CallRow> = calls::table
        .filter(calls::id.gt(after))
        .order(calls::id)
        .limit(CHUNK)
        .select((
            calls::id,
            calls::patient_id,
            calls::student_id,
            calls::occurred_at,
            calls::mode,
            calls::outcome,
            calls::duration_minutes,
            calls::interpreter_used,
            calls::protocol_version,
            calls::concern,
            calls::notes,
            calls::next_call_at,
        ))
        .load(c)?;
    let (Some(first), Some(last)) = (rows.first().map(|r| r.0), rows.last().map(|r| r.0)) else {
        return Ok(Vec::new());
    };
    // Ranges, not IN lists: the children of this chunk's calls by key order.
    let sections: Vec<(i64, String)> = call_sections::table
        .filter(call_sections::call_id.between(first, last))
        .select((call_sections::call_id, call_sections::section_id))
        .load(c)?;
    let resources: Vec<(i64, String)> = call_resources::table
        .filter(call_resources::call_id.between(first, last))
        .select((call_resources::call_id, call_resources::resource_id))
        .load(c)?;
    let joined = |list: &[(i64, String)], id: i64| {
        list.iter()
            .filter(|(c, _)| *c == id)
            .map(|(_, s)| s.as_str())
            .collect::<Vec<_>>()
            .join(";")
    };
    Ok(rows
        .into_iter()
        .map(|r| {
            vec![
                r.0.to_string(),
                r.1.to_string(),
                r.2.to_string(),
                time(Some(r.3)),
                r.4,
                r.5,
                r.6.to_string(),
                r.7.to_string(),
                r.8,
                joined(&sections, r.0),
                joined(&resources, r.0),
                r.9,
                r.10,
                time(r.11),
            ]
        })
        .collect())
}

type PatientRow = (
    i64,
    String,
    String,
    String,
    String,
    bool,
    String,
    chrono::NaiveDate,
    i64,
    String,
    chrono::NaiveDate,
    Option<NaiveDateTime>,
    Option<String>,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    Option<String>,
);

fn patients_after(c: &mut crate::db::DbConn, after: i64) -> Result<Vec<Vec<String>>, AppError> {
    let rows: Vec<PatientRow> = patients::table
        .filter(patients::id.gt(after))
        .order(patients::id)
        .limit(CHUNK)
        .select((
            patients::id,
            patients::given_name,
            patients::family_name,
            patients::phone,
            patients::preferred_language,
            patients::interpreter_needed,
            patients::cadence,
            patients::enrolled_on,
            patients::enrolled_by,
            patients::status,
            patients::discharge_due_on,
            patients::discharged_at,
            patients::discharge_reason,
            patients::next_call_at,
            patients::last_call_at,
            patients::last_call_outcome,
        ))
        .load(c)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            vec![
                r.0.to_string(),
                r.1,
                r.2,
                r.3,
                r.4,
                r.5.to_string(),
                r.6,
                r.7.to_string(),
                r.8.to_string(),
                r.9,
                r.10.to_string(),
                time(r.11),
                r.12.unwrap_or_default(),
                time(r.13),
                time(r.14),
                r.15.unwrap_or_default(),
            ]
        })
        .collect())
}

type Fetch = fn(&mut crate::db::DbConn, i64) -> Result<Vec<Vec<String>>, AppError>;

/// A streamed CSV: the header, then chunk after chunk until one is empty.
fn stream_csv(
    state: AppState,
    header: &'static [&'static str],
    fetch: Fetch,
    filename: &str,
) -> HttpResponse {
    let header_row = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    let start = (state, Some(header_row), 0i64, false);
    let body = stream::unfold(start, move |(state, header, after, done)| async move {
        if done {
            return None;
        }
        if let Some(header) = header {
            return Some((
                to_csv(header).map_err(actix_web::Error::from),
                (state, None, after, false),
            ));
        }
        let rows = state.db.read(move |c| fetch(c, after)).await;
        match rows {
            Ok(rows) if rows.is_empty() => None,
            Ok(rows) => {
                let next = rows
                    .last()
                    .and_then(|r| r[0].parse().ok())
                    .unwrap_or(i64::MAX);
                Some((
                    to_csv(rows).map_err(actix_web::Error::from),
                    (state, None, next, false),
                ))
            }
            Err(e) => Some((Err(actix_web::Error::from(e)), (state, None, after, true))),
        }
    });
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{filename}\""),
        ))
        .streaming(body)
}

async fn audit_export(
    state: &AppState,
    user: &crate::web::identity::Principal,
    action: &'static str,
) -> Result<(), AppError> {
    let who = user.clone();
    let now = state.clock.now().naive_utc();
    state
        .db
        .write(move |c| {
            Ok(crate::audit::record(
                c,
                &who.audit(action, "export", None, None),
                now,
            )?)
        })
        .await
}

/// Every call, streamed as CSV (leaders).
#[utoipa::path(get, path = "/api/v1/exports/calls.csv", tag = "leaders", security(("bearer" = [])),
    responses((status = 200, description = "text/csv: call_id, patient_id, student_id, occurred_at, mode, outcome, duration_minutes, interpreter_used, protocol_version, sections, resources, concern, notes, next_call_at")))]
#[get("/exports/calls.csv")]
async fn calls_csv(
    user: Api<Leaders>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    audit_export(&state, &user, "export.calls").await?;
    const HEADER: &[&str] = &[
        "call_id",
        "patient_id",
        "student_id",
        "occurred_at",
        "mode",
        "outcome",
        "duration_minutes",
        "interpreter_used",
        "protocol_version",
        "sections",
        "resources",
        "concern",
        "notes",
        "next_call_at",
    ];
    Ok(stream_csv(
        state.get_ref().clone(),
        HEADER,
        calls_after,
        "calls.csv",
    ))
}

/// Every patient, streamed as CSV (leaders).
#[utoipa::path(get, path = "/api/v1/exports/patients.csv", tag = "leaders", security(("bearer" = [])),
    responses((status = 200, description = "text/csv, one row per patient")))]
#[get("/exports/patients.csv")]
async fn patients_csv(
    user: Api<Leaders>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    audit_export(&state, &user, "export.patients").await?;
    const HEADER: &[&str] = &[
        "patient_id",
        "given_name",
        "family_name",
        "phone",
        "preferred_language",
        "interpreter_needed",
        "cadence",
        "enrolled_on",
        "enrolled_by",
        "status",
        "discharge_due_on",
        "discharged_at",
        "discharge_reason",
        "next_call_at",
        "last_call_at",
        "last_call_outcome",
    ];
    Ok(stream_csv(
        state.get_ref().clone(),
        HEADER,
        patients_after,
        "patients.csv",
    ))
}
