//! Accounts: users with their roles and languages.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{user_languages, user_roles, users};
use super::{lower, DbConn};
use crate::domain::Role;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub password_hash: Option<String>,
    pub capacity: i32,
    pub disabled_at: Option<NaiveDateTime>,
    pub calendar_token_hash: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    /// `None` lets the database choose; bulk loads choose their own.
    pub id: Option<i64>,
    pub email: &'a str,
    pub given_name: &'a str,
    pub family_name: &'a str,
    pub password_hash: Option<&'a str>,
    pub capacity: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = user_roles)]
pub struct NewUserRole {
    pub user_id: i64,
    #[diesel(serialize_as = String)]
    pub role: Role,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = user_languages)]
pub struct NewUserLanguage {
    pub user_id: i64,
    pub language: String,
}

pub fn count(conn: &mut DbConn) -> QueryResult<i64> {
    users::table.count().get_result(conn)
}

/// Creates a user with roles and languages; the caller's transaction makes
/// the three inserts one change.
pub fn create(
    conn: &mut DbConn,
    new: &NewUser<'_>,
    roles: &[Role],
    languages: &[String],
) -> QueryResult<i64> {
    let id = crate::insert_returning_id!(conn, users::table, new, users::id)?;
    let role_rows: Vec<NewUserRole> = roles
        .iter()
        .map(|&role| NewUserRole { user_id: id, role })
        .collect();
    crate::insert_batch!(conn, user_roles::table, role_rows)?;
    let language_rows: Vec<NewUserLanguage> = languages
        .iter()
        .map(|language| NewUserLanguage {
            user_id: id,
            language: language.clone(),
        })
        .collect();
    if !language_rows.is_empty() {
        crate::insert_batch!(conn, user_languages::table, language_rows)?;
    }
    Ok(id)
}

pub fn find_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .get_result(conn)
        .optional()
}

pub fn roles_of(conn: &mut DbConn, user_id: i64) -> QueryResult<Vec<Role>> {
    let names: Vec<String> = user_roles::table
        .filter(user_roles::user_id.eq(user_id))
        .select(user_roles::role)
        .order(user_roles::role)
        .load(conn)?;
    Ok(names.into_iter().filter_map(|n| n.parse().ok()).collect())
}

pub fn languages_of(conn: &mut DbConn, user_id: i64) -> QueryResult<Vec<String>> {
    user_languages::table
        .filter(user_languages::user_id.eq(user_id))
        .select(user_languages::language)
        .order(user_languages::language)
        .load(conn)
}

pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .get_result(conn)
        .optional()
}

pub fn set_password(
    conn: &mut DbConn,
    id: i64,
    hash: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((users::password_hash.eq(hash), users::updated_at.eq(now)))
        .execute(conn)
}

/// What an admin may change about an account.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges<'a> {
    pub given_name: &'a str,
    pub family_name: &'a str,
    pub capacity: i32,
    pub disabled_at: Option<Option<NaiveDateTime>>,
    pub updated_at: NaiveDateTime,
}

pub fn update(conn: &mut DbConn, id: i64, changes: &UserChanges<'_>) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set(changes)
        .execute(conn)
}

/// Replaces the user's roles.
pub fn set_roles(conn: &mut DbConn, id: i64, roles: &[Role]) -> QueryResult<()> {
    diesel::delete(user_roles::table.filter(user_roles::user_id.eq(id))).execute(conn)?;
    let rows: Vec<NewUserRole> = roles
        .iter()
        .map(|&role| NewUserRole { user_id: id, role })
        .collect();
    crate::insert_batch!(conn, user_roles::table, rows)?;
    Ok(())
}

/// Replaces the user's languages.
pub fn set_languages(conn: &mut DbConn, id: i64, languages: &[String]) -> QueryResult<()> {
    diesel::delete(user_languages::table.filter(user_languages::user_id.eq(id))).execute(conn)?;
    let rows: Vec<NewUserLanguage> = languages
        .iter()
        .map(|l| NewUserLanguage {
            user_id: id,
            language: l.clone(),
        })
        .collect();
    crate::insert_batch!(conn, user_languages::table, rows)?;
    Ok(())
}

/// An account with its roles and languages, for the admin list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Account {
    pub id: i64,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub roles: Vec<String>,
    pub languages: Vec<String>,
    pub capacity: i32,
    pub disabled: bool,
    pub has_password: bool,
}

/// Accounts whose email or name contains `search`, at most `limit`, by email.
pub fn list_accounts(conn: &mut DbConn, search: &str, limit: i64) -> QueryResult<Vec<Account>> {
    let pattern = format!("%{}%", search.replace(['%', '_'], "").to_lowercase());
    let found: Vec<User> = users::table
        .filter(
            users::email
                .like(&pattern)
                .or(lower(users::given_name).like(&pattern))
                .or(lower(users::family_name).like(&pattern)),
        )
        .order(users::email)
        .limit(limit)
        .select(User::as_select())
        .load(conn)?;
    let ids: Vec<i64> = found.iter().map(|u| u.id).collect();
    let roles: Vec<(i64, String)> = user_roles::table
        .filter(user_roles::user_id.eq_any(&ids))
        .select((user_roles::user_id, user_roles::role))
        .load(conn)?;
    let languages: Vec<(i64, String)> = user_languages::table
        .filter(user_languages::user_id.eq_any(&ids))
        .select((user_languages::user_id, user_languages::language))
        .load(conn)?;
    Ok(found
        .into_iter()
        .map(|u| Account {
            roles: roles
                .iter()
                .filter(|r| r.0 == u.id)
                .map(|r| r.1.clone())
                .collect(),
            languages: languages
                .iter()
                .filter(|l| l.0 == u.id)
                .map(|l| l.1.clone())
                .collect(),
            id: u.id,
            email: u.email,
            given_name: u.given_name,
            family_name: u.family_name,
            capacity: u.capacity,
            disabled: u.disabled_at.is_some(),
            has_password: u.password_hash.is_some(),
        })
        .collect())
}
