//! Admin: accounts (list, create, edit roles, languages, capacity, disable,
//! password-reset links) and the audit log; `POST /api/v1/users` for scripts.
//!
//! A new account has no password: the admin's action queues an email with a
//! one-time set-up link (shown to the admin as well, for programmes that have
//! no mail server yet). Disabling an account ends its sessions and tokens in
//! the same transaction.

use actix_web::{get, post, web, HttpResponse};
use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};
use tera::Context;

use crate::audit::{self, AuditQuery};
use crate::db::{sessions, users, DbConn};
use crate::domain::language::Language;
use crate::domain::people::{Email, PersonName};
use crate::domain::Role;
use crate::error::{AppError, PageError};
use crate::mail;
use crate::startup::AppState;
use crate::web::auth::make_link;
use crate::web::identity::{Admins, Api, Page, PageForm, Principal};
use crate::web::input::{Fields, JsonFields};
use crate::web::pages::{page_context, render};

pub fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list_users)
        .service(new_user_page)
        .service(create_user_from_page)
        .service(edit_user_page)
        .service(update_user)
        .service(reset_password)
        .service(audit_page)
        .service(settings_page)
        .service(save_settings);
}

pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(create_user_api);
}

/// A checked account form or body.
pub struct UserInput {
    pub email: Option<Email>,
    pub given_name: PersonName,
    pub family_name: String,
    pub roles: Vec<Role>,
    pub languages: Vec<Language>,
    pub capacity: i32,
    pub disabled: bool,
}

/// Reads every field, collecting every problem. `email` only when creating.
fn read_user(fields: &mut Fields, creating: bool) -> Option<UserInput> {
    let email = if creating {
        fields.parsed("email", true, Email::parse)
    } else {
        None
    };
    let given_name = fields.parsed("given_name", true, PersonName::parse);
    let family_name = fields.text("family_name", false, crate::domain::people::NAME_MAX_CHARS);
    let roles = fields.list("roles", |s| s.parse::<Role>());
    if roles.as_ref().is_some_and(Vec::is_empty) {
        fields.error("roles", "choose at least one role");
    }
    let languages = fields.list("languages", Language::parse);
    let capacity = fields.integer("capacity", false, 0..=100).unwrap_or(4) as i32;
    let disabled = fields.boolean("disabled", false);
    if fields.has_errors() {
        return None;
    }
    Some(UserInput {
        email,
        given_name: given_name?,
        family_name: family_name.unwrap_or_default(),
        roles: roles?,
        languages: languages?,
        capacity,
        disabled: disabled?,
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UserCreated {
    pub id: i64,
    pub email: String,
    pub roles: Vec<String>,
    /// One-time link to choose a password (also emailed), valid 7 days.
    pub setup_url: String,
}

/// Creates the account, its set-up link and email, and the audit row, in one
/// transaction.
async fn create_account(
    state: &AppState,
    admin: &Principal,
    input: UserInput,
) -> Result<UserCreated, AppError> {
    let admin = admin.clone();
    let app = state.clone();
    let now = state.clock.now();
    state
        .db
        .write(move |c| {
            let email = input
                .email
                .ok_or_else(|| AppError::internal("email read when creating"))?;
            if users::find_by_email(c, email.as_str())?.is_some() {
                return Err(AppError::invalid(
                    "email",
                    "an account with this email already exists",
                ));
            }
            let at = now.naive_utc();
            let languages: Vec<String> = input.languages.into_iter().map(String::from).collect();
            let id = users::create(
                c,
                &users::NewUser {
                    id: None,
                    email: email.as_str(),
                    given_name: input.given_name.as_str(),
                    family_name: &input.family_name,
                    password_hash: None,
                    capacity: input.capacity,
                    created_at: at,
                    updated_at: at,
                },
                &input.roles,
                &languages,
            )?;
            let (url, link_id) = make_link(c, &app, "account_setup", Some(id), now)?;
            mail::enqueue(
                c,
                &mail::account_link_email(
                    id,
                    email.as_str(),
                    input.given_name.as_str(),
                    "account_setup",
                    &url,
                    link_id,
                )?,
                at,
            )?;
            audit::record(c, &admin.audit("user.created", "user", Some(id), None), at)?;
            Ok(UserCreated {
                id,
                email: email.to_string(),
                roles: input.roles.iter().map(|r| r.as_str().to_string()).collect(),
                setup_url: url,
            })
        })
        .await
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct NewUserRequest {
    email: String,
    given_name: String,
    family_name: Option<String>,
    /// physician, student, leader, admin
    roles: Vec<String>,
    /// ISO 639-1 codes
    languages: Option<Vec<String>>,
    /// Weighted patient load for students (weekly 1, biweekly 0.5); default 4.
    capacity: Option<i32>,
}

/// Create a physician, student, leader or admin (admins only).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    request_body = NewUserRequest,
    responses(
        (status = 201, body = UserCreated),
        (status = 403, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
#[post("/users")]
async fn create_user_api(
    admin: Api<Admins>,
    state: web::Data<AppState>,
    JsonFields(mut fields): JsonFields,
) -> Result<HttpResponse, AppError> {
    let input = read_user(&mut fields, true);
    fields.finish()?;
    let input = input.ok_or_else(|| AppError::internal("input read without errors"))?;
    let created = create_account(&state, &admin, input).await?;
    Ok(HttpResponse::Created().json(created))
}

#[derive(Deserialize)]
struct UserSearch {
    #[serde(default)]
    q: String,
}

#[get("/admin/users")]
async fn list_users(
    admin: Page<Admins>,
    state: web::Data<AppState>,
    search: web::Query<UserSearch>,
) -> Result<HttpResponse, PageError> {
    let q = search.into_inner().q;
    let term = q.clone();
    let accounts = state
        .db
        .read(move |c| Ok(users::list_accounts(c, &term, 500)?))
        .await?;
    let mut context = page_context(&state, &admin);
    context.insert("accounts", &accounts);
    context.insert("q", &q);
    Ok(render("admin_users.html", &context)?)
}

fn user_form_context(
    state: &AppState,
    admin: &Principal,
    fields: Option<&Fields>,
    account: Option<&users::Account>,
) -> Context {
    let mut context = page_context(state, admin);
    context.insert(
        "all_roles",
        &Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
    );
    context.insert("account", &account);
    context.insert(
        "errors",
        &fields.map(|f| f.errors().clone()).unwrap_or_default(),
    );
    context.insert(
        "entered",
        &fields.map(crate::web::auth::entered_without_secrets),
    );
    context
}

#[get("/admin/users/new")]
async fn new_user_page(
    admin: Page<Admins>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    Ok(render(
        "admin_user_form.html",
        &user_form_context(&state, &admin, None, None),
    )?)
}

fn invalid_form(template: &str, context: &Context) -> Result<HttpResponse, PageError> {
    let mut response = render(template, context)?;
    *response.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    Ok(response)
}

fn link_page(
    state: &AppState,
    admin: &Principal,
    title: &str,
    email: &str,
    url: &str,
) -> Result<HttpResponse, PageError> {
    let mut context = page_context(state, admin);
    context.insert("title", title);
    context.insert("email", email);
    context.insert("url", url);
    Ok(render("admin_link.html", &context)?)
}

#[post("/admin/users")]
async fn create_user_from_page(
    state: web::Data<AppState>,
    form: PageForm<Admins>,
) -> Result<HttpResponse, PageError> {
    let PageForm {
        user: admin,
        mut fields,
        ..
    } = form;
    let input = read_user(&mut fields, true);
    let Some(input) = input.filter(|_| !fields.has_errors()) else {
        return invalid_form(
            "admin_user_form.html",
            &user_form_context(&state, &admin, Some(&fields), None),
        );
    };
    match create_account(&state, &admin, input).await {
        Ok(created) => link_page(
            &state,
            &admin,
            "Account created",
            &created.email,
            &created.setup_url,
        ),
        Err(AppError::Validation {
            fields: problems, ..
        }) => {
            for (field, messages) in problems {
                for m in messages {
                    fields.error(&field, m);
                }
            }
            invalid_form(
                "admin_user_form.html",
                &user_form_context(&state, &admin, Some(&fields), None),
            )
        }
        Err(e) => Err(e.into()),
    }
}

async fn account_by_id(state: &AppState, id: i64) -> Result<users::Account, AppError> {
    state
        .db
        .read(move |c| {
            let user = users::find(c, id)?.ok_or(AppError::NotFound)?;
            users::list_accounts(c, &user.email, 1)?
                .into_iter()
                .find(|a| a.id == id)
                .ok_or(AppError::NotFound)
        })
        .await
}

#[get("/admin/users/{id}")]
async fn edit_user_page(
    admin: Page<Admins>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let account = account_by_id(&state, id.into_inner()).await?;
    Ok(render(
        "admin_user_form.html",
        &user_form_context(&state, &admin, None, Some(&account)),
    )?)
}

/// Applies an admin's edit; audits role changes and disabling separately.
fn apply_changes(
    c: &mut DbConn,
    admin: &Principal,
    id: i64,
    input: &UserInput,
    now: chrono::NaiveDateTime,
) -> Result<(), AppError> {
    let before = users::find(c, id)?.ok_or(AppError::NotFound)?;
    let old_roles = users::roles_of(c, id)?;
    if id == admin.user_id && (input.disabled || !input.roles.contains(&Role::Admin)) {
        return Err(AppError::invalid(
            "roles",
            "you cannot remove your own admin role or disable yourself",
        ));
    }
    let disabled_at = match (before.disabled_at, input.disabled) {
        (None, true) => Some(Some(now)),
        (Some(_), false) => Some(None),
        _ => None,
    };
    users::update(
        c,
        id,
        &users::UserChanges {
            given_name: input.given_name.as_str(),
            family_name: &input.family_name,
            capacity: input.capacity,
            disabled_at,
            updated_at: now,
        },
    )?;
    let mut roles = input.roles.clone();
    roles.sort();
    if roles != old_roles {
        users::set_roles(c, id, &roles)?;
        audit::record(
            c,
            &admin.audit("user.roles_changed", "user", Some(id), None),
            now,
        )?;
    }
    let languages: Vec<String> = input.languages.iter().cloned().map(String::from).collect();
    users::set_languages(c, id, &languages)?;
    match disabled_at {
        Some(Some(_)) => {
            // Takes effect on the account's next request.
            sessions::delete_sessions_of(c, id)?;
            sessions::revoke_tokens_of(c, id, now)?;
            audit::record(
                c,
                &admin.audit("user.disabled", "user", Some(id), None),
                now,
            )?;
        }
        Some(None) => audit::record(c, &admin.audit("user.enabled", "user", Some(id), None), now)?,
        None => {}
    }
    audit::record(c, &admin.audit("user.updated", "user", Some(id), None), now)?;
    Ok(())
}

#[post("/admin/users/{id}")]
async fn update_user(
    state: web::Data<AppState>,
    form: PageForm<Admins>,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let PageForm {
        user: admin,
        mut fields,
        ..
    } = form;
    let id = id.into_inner();
    let account = account_by_id(&state, id).await?;
    let input = read_user(&mut fields, false);
    let Some(input) = input.filter(|_| !fields.has_errors()) else {
        return invalid_form(
            "admin_user_form.html",
            &user_form_context(&state, &admin, Some(&fields), Some(&account)),
        );
    };
    let now = state.clock.now().naive_utc();
    let who = admin.clone();
    let result = state
        .db
        .write(move |c| apply_changes(c, &who, id, &input, now))
        .await;
    match result {
        Ok(()) => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", "/admin/users"))
            .finish()),
        Err(AppError::Validation {
            fields: problems, ..
        }) => {
            for (field, messages) in problems {
                for m in messages {
                    fields.error(&field, m);
                }
            }
            invalid_form(
                "admin_user_form.html",
                &user_form_context(&state, &admin, Some(&fields), Some(&account)),
            )
        }
        Err(e) => Err(e.into()),
    }
}

#[post("/admin/users/{id}/reset-password")]
async fn reset_password(
    state: web::Data<AppState>,
    form: PageForm<Admins>,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let admin = form.user;
    let id = id.into_inner();
    let now = state.clock.now();
    let app = state.get_ref().clone();
    let who = admin.clone();
    let (email, url) = state
        .db
        .write(move |c| {
            let user = users::find(c, id)?.ok_or(AppError::NotFound)?;
            let (url, link_id) = make_link(c, &app, "password_reset", Some(id), now)?;
            mail::enqueue(
                c,
                &mail::account_link_email(
                    id,
                    &user.email,
                    &user.given_name,
                    "password_reset",
                    &url,
                    link_id,
                )?,
                now.naive_utc(),
            )?;
            audit::record(
                c,
                &who.audit("user.password_reset_link", "user", Some(id), None),
                now.naive_utc(),
            )?;
            Ok((user.email, url))
        })
        .await?;
    link_page(&state, &admin, "Password-reset link made", &email, &url)
}

#[derive(Deserialize)]
struct AuditSearch {
    user_id: Option<String>,
    patient_id: Option<String>,
    from: Option<String>,
    until: Option<String>,
}

#[get("/admin/audit")]
async fn audit_page(
    admin: Page<Admins>,
    state: web::Data<AppState>,
    search: web::Query<AuditSearch>,
) -> Result<HttpResponse, PageError> {
    let search = search.into_inner();
    let mut problems = Vec::new();
    let mut number = |name: &str, v: &Option<String>| -> Option<i64> {
        let v = v.as_deref().map(str::trim).filter(|v| !v.is_empty())?;
        v.parse()
            .map_err(|_| problems.push(format!("{name} must be a number")))
            .ok()
    };
    let user_id = number("user", &search.user_id);
    let patient_id = number("patient", &search.patient_id);
    let tz = state.settings.timezone;
    let mut day = |name: &str, v: &Option<String>, next: bool| -> Option<chrono::NaiveDateTime> {
        let v = v.as_deref().map(str::trim).filter(|v| !v.is_empty())?;
        match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
            Ok(d) => {
                let d = if next { d.succ_opt().unwrap_or(d) } else { d };
                Some(crate::domain::schedule::local_to_utc(d, NaiveTime::MIN, tz).naive_utc())
            }
            Err(_) => {
                problems.push(format!("{name} must be a date such as 2026-11-29"));
                None
            }
        }
    };
    let query = AuditQuery {
        user_id,
        patient_id,
        from: day("from", &search.from, false),
        until: day("until", &search.until, true),
    };
    let rows = state
        .db
        .read(move |c| Ok(audit::search(c, &query, 500)?))
        .await?;
    let mut context = page_context(&state, &admin);
    context.insert("rows", &rows);
    context.insert("problems", &problems);
    context.insert(
        "search",
        &serde_json::json!({
            "user_id": search.user_id, "patient_id": search.patient_id,
            "from": search.from, "until": search.until,
        }),
    );
    Ok(render("admin_audit.html", &context)?)
}

async fn settings_response(
    state: &AppState,
    admin: &Principal,
    fields: Option<&Fields>,
) -> Result<HttpResponse, PageError> {
    use crate::db::schema::outbox;
    use diesel::prelude::*;
    type Failed = (
        i64,
        String,
        String,
        chrono::NaiveDateTime,
        i32,
        Option<String>,
    );
    let (settings, counts, failed) = state
        .db
        .read(|c| {
            let settings = crate::jobs::reminder_settings(c)?;
            let mut counts = std::collections::BTreeMap::new();
            for status in ["pending", "sent", "failed"] {
                let n: i64 = outbox::table
                    .filter(outbox::status.eq(status))
                    .count()
                    .get_result(c)?;
                counts.insert(status, n);
            }
            let failed: Vec<Failed> = outbox::table
                .filter(outbox::status.eq("failed"))
                .order(outbox::id.desc())
                .limit(100)
                .select((
                    outbox::id,
                    outbox::to_address,
                    outbox::template,
                    outbox::created_at,
                    outbox::attempts,
                    outbox::last_error,
                ))
                .load(c)?;
            Ok((settings, counts, failed))
        })
        .await?;
    let transport = crate::mail::sender::Transport::from_settings(&state.settings)
        .map(|t| t.describe())
        .unwrap_or_else(|e| e);
    let mut context = page_context(state, admin);
    context.insert("settings", &settings);
    context.insert("outbox", &counts);
    context.insert("failed", &failed);
    context.insert("transport", &transport);
    context.insert(
        "errors",
        &fields.map(|f| f.errors().clone()).unwrap_or_default(),
    );
    Ok(render("admin_settings.html", &context)?)
}

#[get("/admin/settings")]
async fn settings_page(
    admin: Page<Admins>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    settings_response(&state, &admin, None).await
}

#[post("/admin/settings")]
async fn save_settings(
    state: web::Data<AppState>,
    form: PageForm<Admins>,
) -> Result<HttpResponse, PageError> {
    let PageForm {
        user: admin,
        mut fields,
        ..
    } = form;
    let hour = fields.integer("reminder_hour", true, 0..=23);
    let digest = fields.boolean("student_digest", false);
    let weekly = fields.boolean("leader_weekly_summary", false);
    let (Some(hour), Some(digest), Some(weekly), false) =
        (hour, digest, weekly, fields.has_errors())
    else {
        let mut response = settings_response(&state, &admin, Some(&fields)).await?;
        *response.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(response);
    };
    let new = crate::jobs::ReminderSettings {
        reminder_hour: hour as u32,
        student_digest: digest,
        leader_weekly_summary: weekly,
    };
    let (who, now) = (admin.clone(), state.clock.now().naive_utc());
    state
        .db
        .write(move |c| {
            crate::jobs::save_reminder_settings(c, &new, who.user_id, now)?;
            audit::record(
                c,
                &who.audit("settings.changed", "settings", None, None),
                now,
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", "/admin/settings"))
        .finish())
}
