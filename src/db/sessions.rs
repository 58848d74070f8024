//! Sign-in records: server-side sessions, API tokens, one-time links and
//! sign-in attempts. Secrets are stored only as SHA-256 hashes.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{api_tokens, one_time_links, sessions, sign_in_attempts};
use super::DbConn;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: i64,
    pub token_hash: String,
    pub user_id: i64,
    pub csrf_token: String,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    pub token_hash: &'a str,
    pub user_id: i64,
    pub csrf_token: &'a str,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn create_session(conn: &mut DbConn, new: &NewSession<'_>) -> QueryResult<i64> {
    crate::insert_returning_id!(conn, sessions::table, new, sessions::id)
}

pub fn find_session(conn: &mut DbConn, token_hash: &str) -> QueryResult<Option<Session>> {
    sessions::table
        .filter(sessions::token_hash.eq(token_hash))
        .select(Session::as_select())
        .get_result(conn)
        .optional()
}

pub fn touch_session(conn: &mut DbConn, id: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(sessions::table.find(id))
        .set(sessions::last_seen_at.eq(now))
        .execute(conn)
}

pub fn delete_session(conn: &mut DbConn, id: i64) -> QueryResult<usize> {
    diesel::delete(sessions::table.find(id)).execute(conn)
}

/// Ends every session of a user (disabled account, new password).
pub fn delete_sessions_of(conn: &mut DbConn, user_id: i64) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = api_tokens)]
pub struct ApiToken {
    pub id: i64,
    #[serde(skip)]
    pub token_hash: String,
    pub user_id: i64,
    pub label: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct NewApiToken<'a> {
    pub token_hash: &'a str,
    pub user_id: i64,
    pub label: &'a str,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn create_token(conn: &mut DbConn, new: &NewApiToken<'_>) -> QueryResult<i64> {
    crate::insert_returning_id!(conn, api_tokens::table, new, api_tokens::id)
}

pub fn find_token(conn: &mut DbConn, token_hash: &str) -> QueryResult<Option<ApiToken>> {
    api_tokens::table
        .filter(api_tokens::token_hash.eq(token_hash))
        .select(ApiToken::as_select())
        .get_result(conn)
        .optional()
}

pub fn touch_token(conn: &mut DbConn, id: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(api_tokens::table.find(id))
        .set(api_tokens::last_used_at.eq(now))
        .execute(conn)
}

pub fn tokens_of(conn: &mut DbConn, user_id: i64) -> QueryResult<Vec<ApiToken>> {
    api_tokens::table
        .filter(api_tokens::user_id.eq(user_id))
        .order(api_tokens::created_at.desc())
        .select(ApiToken::as_select())
        .load(conn)
}

/// Revokes one of the user's own tokens; 0 when it is not theirs.
pub fn revoke_token(
    conn: &mut DbConn,
    user_id: i64,
    id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        api_tokens::table
            .filter(api_tokens::id.eq(id))
            .filter(api_tokens::user_id.eq(user_id))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(now))
    .execute(conn)
}

pub fn revoke_tokens_of(conn: &mut DbConn, user_id: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        api_tokens::table
            .filter(api_tokens::user_id.eq(user_id))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(now))
    .execute(conn)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = one_time_links)]
pub struct OneTimeLink {
    pub id: i64,
    pub token_hash: String,
    pub purpose: String,
    pub user_id: Option<i64>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = one_time_links)]
pub struct NewOneTimeLink<'a> {
    pub token_hash: &'a str,
    pub purpose: &'a str,
    pub user_id: Option<i64>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn create_link(conn: &mut DbConn, new: &NewOneTimeLink<'_>) -> QueryResult<i64> {
    crate::insert_returning_id!(conn, one_time_links::table, new, one_time_links::id)
}

/// A link that is unused and unexpired at `now`.
pub fn find_usable_link(
    conn: &mut DbConn,
    token_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<OneTimeLink>> {
    one_time_links::table
        .filter(one_time_links::token_hash.eq(token_hash))
        .filter(one_time_links::used_at.is_null())
        .filter(one_time_links::expires_at.gt(now))
        .select(OneTimeLink::as_select())
        .get_result(conn)
        .optional()
}

/// Marks the link used; 0 when another request used it first.
pub fn use_link(conn: &mut DbConn, id: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        one_time_links::table
            .filter(one_time_links::id.eq(id))
            .filter(one_time_links::used_at.is_null()),
    )
    .set(one_time_links::used_at.eq(now))
    .execute(conn)
}

#[derive(Debug, Insertable)]
#[diesel(table_name = sign_in_attempts)]
pub struct NewSignInAttempt<'a> {
    pub email: &'a str,
    pub address: &'a str,
    pub succeeded: bool,
    pub attempted_at: NaiveDateTime,
}

pub fn record_attempt(conn: &mut DbConn, new: &NewSignInAttempt<'_>) -> QueryResult<usize> {
    diesel::insert_into(sign_in_attempts::table)
        .values(new)
        .execute(conn)
}

/// Failures for this account and from this address since `since`.
pub fn recent_failures(
    conn: &mut DbConn,
    email: &str,
    address: &str,
    since: NaiveDateTime,
) -> QueryResult<(i64, i64)> {
    let by_account = sign_in_attempts::table
        .filter(sign_in_attempts::email.eq(email))
        .filter(sign_in_attempts::succeeded.eq(false))
        .filter(sign_in_attempts::attempted_at.gt(since))
        .count()
        .get_result(conn)?;
    let by_address = sign_in_attempts::table
        .filter(sign_in_attempts::address.eq(address))
        .filter(sign_in_attempts::succeeded.eq(false))
        .filter(sign_in_attempts::attempted_at.gt(since))
        .count()
        .get_result(conn)?;
    Ok((by_account, by_address))
}
