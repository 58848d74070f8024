//! The audit trail (SPEC.md rule 12, SECURITY.md 20–21).
//!
//! One row per read or write of a patient's data, sign-in, refusal, and role
//! or assignment change, written by the caller inside the same transaction as
//! the change. Rows are never updated or deleted by the application, and each
//! row's hash covers the previous row's hash, so `checkin audit verify` finds
//! a row that was removed or altered. The chain's head lives in a one-row
//! table; on PostgreSQL it is locked `FOR UPDATE`, which orders audit writes
//! across instances (SQLite's `BEGIN IMMEDIATE` already does).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db::schema::{audit_chain_head, audit_log};
use crate::db::{Db, DbConn};
use crate::error::AppError;

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did what to which record, and in which request.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    pub user_id: Option<i64>,
    pub action: &'static str,
    pub record_type: &'static str,
    pub record_id: Option<i64>,
    pub patient_id: Option<i64>,
    pub request_id: String,
    pub address: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: i64,
    pub occurred_at: NaiveDateTime,
    pub user_id: Option<i64>,
    pub action: String,
    pub record_type: String,
    pub record_id: Option<i64>,
    pub patient_id: Option<i64>,
    pub request_id: String,
    pub address: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Insertable)]
#[diesel(table_name = audit_log)]
struct NewAuditRow<'a> {
    occurred_at: NaiveDateTime,
    user_id: Option<i64>,
    action: &'a str,
    record_type: &'a str,
    record_id: Option<i64>,
    patient_id: Option<i64>,
    request_id: &'a str,
    address: &'a str,
    prev_hash: &'a str,
    hash: &'a str,
}

/// The hash of a row: SHA-256 over the previous hash and every field but the
/// id, each field length-prefixed so no two rows can serialise alike.
#[allow(clippy::too_many_arguments)]
fn row_hash(
    prev_hash: &str,
    occurred_at: NaiveDateTime,
    user_id: Option<i64>,
    action: &str,
    record_type: &str,
    record_id: Option<i64>,
    patient_id: Option<i64>,
    request_id: &str,
    address: &str,
) -> String {
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let fields = [
        prev_hash.to_string(),
        occurred_at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        opt(user_id),
        action.to_string(),
        record_type.to_string(),
        opt(record_id),
        opt(patient_id),
        request_id.to_string(),
        address.to_string(),
    ];
    let mut hasher = Sha256::new();
    for field in &fields {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hex::encode(hasher.finalize())
}

fn head_for_update(conn: &mut DbConn) -> QueryResult<String> {
    let query = audit_chain_head::table
        .find(1)
        .select(audit_chain_head::last_hash);
    match conn {
        DbConn::Pg(c) => query.for_update().get_result(c),
        DbConn::Sqlite(c) => query.get_result(c),
    }
}

/// Appends one row. Call it inside the transaction that makes the change.
pub fn record(conn: &mut DbConn, entry: &AuditEntry, now: NaiveDateTime) -> QueryResult<()> {
    let prev_hash = head_for_update(conn)?;
    let hash = row_hash(
        &prev_hash,
        now,
        entry.user_id,
        entry.action,
        entry.record_type,
        entry.record_id,
        entry.patient_id,
        &entry.request_id,
        &entry.address,
    );
    let row = NewAuditRow {
        occurred_at: now,
        user_id: entry.user_id,
        action: entry.action,
        record_type: entry.record_type,
        record_id: entry.record_id,
        patient_id: entry.patient_id,
        request_id: &entry.request_id,
        address: &entry.address,
        prev_hash: &prev_hash,
        hash: &hash,
    };
    crate::native!(conn, |c| diesel::insert_into(audit_log::table)
        .values(&row)
        .execute(c))?;
    crate::native!(conn, |c| diesel::update(audit_chain_head::table.find(1))
        .set(audit_chain_head::last_hash.eq(&hash))
        .execute(c))?;
    Ok(())
}

/// Reads with `f`, then records the entry it returns (if any) in its own
/// small write; what was read is handed back only once that row is
/// committed, so nothing is shown unrecorded. For pages and API reads that
/// change nothing else.
///
/// Reading outside the write transaction matters: the dashboard takes a few
/// hundred milliseconds on a large programme, and inside a write it held up
/// every call being logged behind it (SQLite has one writer; on PostgreSQL
/// the chain head's row lock did the same).
pub async fn read_recorded<F, R>(db: &Db, now: NaiveDateTime, f: F) -> Result<R, AppError>
where
    F: FnOnce(&mut DbConn) -> Result<(R, Option<AuditEntry>), AppError> + Send + 'static,
    R: Send + 'static,
{
    let (value, entry) = db.read(f).await?;
    if let Some(entry) = entry {
        db.write(move |c| Ok(record(c, &entry, now)?)).await?;
    }
    Ok(value)
}

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokenChain {
    #[error("audit row {id}: its contents do not match its hash (the row was changed)")]
    Altered { id: i64 },
    #[error("audit row {id}: the row before it is missing or was changed")]
    Gap { id: i64 },
    #[error(
        "the last audit rows after row {last_id} are missing (the chain's head does not match)"
    )]
    TailMissing { last_id: i64 },
}

/// Walks the whole chain in id order, 10,000 rows at a time; returns how many
/// rows it checked, or the first broken link.
pub fn verify(conn: &mut DbConn) -> QueryResult<Result<u64, BrokenChain>> {
    let mut prev = GENESIS_HASH.to_string();
    let mut after = 0i64;
    let mut checked = 0u64;
    loop {
        let rows: Vec<AuditRow> = audit_log::table
            .filter(audit_log::id.gt(after))
            .order(audit_log::id)
            .limit(10_000)
            .select(AuditRow::as_select())
            .load(conn)?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            if row.prev_hash != prev {
                return Ok(Err(BrokenChain::Gap { id: row.id }));
            }
            let expected = row_hash(
                &row.prev_hash,
                row.occurred_at,
                row.user_id,
                &row.action,
                &row.record_type,
                row.record_id,
                row.patient_id,
                &row.request_id,
                &row.address,
            );
            if expected != row.hash {
                return Ok(Err(BrokenChain::Altered { id: row.id }));
            }
            prev = row.hash;
            after = row.id;
            checked += 1;
        }
    }
    let head: String = audit_chain_head::table
        .find(1)
        .select(audit_chain_head::last_hash)
        .get_result(conn)?;
    if head != prev {
        return Ok(Err(BrokenChain::TailMissing { last_id: after }));
    }
    Ok(Ok(checked))
}

/// What the admin page searches by.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AuditQuery {
    pub user_id: Option<i64>,
    pub patient_id: Option<i64>,
    pub from: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
}

/// The newest rows matching the query, at most `limit`.
pub fn search(conn: &mut DbConn, query: &AuditQuery, limit: i64) -> QueryResult<Vec<AuditRow>> {
    let mut q = audit_log::table.into_boxed();
    if let Some(user) = query.user_id {
        q = q.filter(audit_log::user_id.eq(user));
    }
    if let Some(patient) = query.patient_id {
        q = q.filter(audit_log::patient_id.eq(patient));
    }
    if let Some(from) = query.from {
        q = q.filter(audit_log::occurred_at.ge(from));
    }
    if let Some(until) = query.until {
        q = q.filter(audit_log::occurred_at.lt(until));
    }
    q.order(audit_log::id.desc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)
}
