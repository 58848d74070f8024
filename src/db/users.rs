//! Accounts: users with their roles and languages.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{user_languages, user_roles, users};
use super::DbConn;
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
        .first(conn)
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
