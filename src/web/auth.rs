//! Signing in and out, one-time links (first admin, account set-up, password
//! reset), the account page with API tokens, and `POST /api/v1/tokens`.
//!
//! Unknown email and wrong password get the same answer in about the same
//! time (a dummy hash is checked when there is no account). Failures are
//! recorded and audited; 10 failures in 15 minutes for an account or from an
//! address answer 429 until the window passes.

use actix_web::cookie::Cookie;
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tera::Context;

use crate::audit::{self, AuditEntry};
use crate::auth::{hash_password, on_password_thread, random_token, token_hash, verify_password};
use crate::db::sessions::{self, NewApiToken, NewOneTimeLink, NewSession, NewSignInAttempt};
use crate::db::users;
use crate::domain::people::{Email, PersonName};
use crate::domain::Role;
use crate::error::{AppError, PageError};
use crate::startup::AppState;
use crate::web::identity::{
    pre_session_token, request_facts, secure_cookie, AnonForm, Api, Page, PageForm, Principal,
    PRE_SESSION_COOKIE, SESSION_ABSOLUTE, SESSION_COOKIE, TOKEN_LIFETIME,
};
use crate::web::input::{Fields, JsonFields};
use crate::web::pages::{page_context, render};

pub const THROTTLE_WINDOW: Duration = Duration::minutes(15);
pub const THROTTLE_FAILURES: i64 = 10;
pub const FIRST_ADMIN_LINK_LIFETIME: Duration = Duration::hours(24);
pub const SETUP_LINK_LIFETIME: Duration = Duration::days(7);
pub const RESET_LINK_LIFETIME: Duration = Duration::hours(24);

/// A hash of a password nobody has, checked when the account does not exist
/// so the answer takes as long as a real check.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_token(16)).unwrap_or_default())
}

pub fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(sign_in_page)
        .service(sign_in)
        .service(sign_out)
        .service(link_page)
        .service(use_link)
        .service(account_page)
        .service(create_token_from_page)
        .service(revoke_token_from_page);
}

pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(create_token).service(revoke_token).service(me);
}

enum SignIn {
    Ok(i64),
    Refused,
    Throttled,
}

/// Checks the password (off the async workers) and records the attempt and
/// its audit row in one transaction.
async fn check_credentials(
    state: &AppState,
    raw_email: &str,
    password: &str,
    request_id: &str,
    address: &str,
) -> Result<SignIn, AppError> {
    let email = raw_email.trim().to_lowercase();
    let now = state.clock.now().naive_utc();
    let since = now - THROTTLE_WINDOW;
    let (lookup_email, lookup_address) = (email.clone(), address.to_string());
    let (failures, user) = state
        .db
        .read(move |c| {
            let failures = sessions::recent_failures(c, &lookup_email, &lookup_address, since)?;
            Ok((failures, users::find_by_email(c, &lookup_email)?))
        })
        .await?;
    let throttled = failures.0 >= THROTTLE_FAILURES || failures.1 >= THROTTLE_FAILURES;
    let password = password.to_string();
    let candidate = user
        .as_ref()
        .filter(|u| u.disabled_at.is_none())
        .and_then(|u| u.password_hash.clone());
    let verified = if throttled {
        false
    } else {
        on_password_thread(move || match candidate {
            Some(hash) => verify_password(&password, &hash),
            None => {
                verify_password(&password, dummy_hash());
                false
            }
        })
        .await
    };
    let user_id = user.as_ref().map(|u| u.id);
    let entry = AuditEntry {
        user_id,
        action: if throttled {
            "sign_in.throttled"
        } else if verified {
            "sign_in"
        } else {
            "sign_in.failed"
        },
        record_type: "user",
        record_id: user_id,
        patient_id: None,
        request_id: request_id.to_string(),
        address: address.to_string(),
    };
    let address = address.to_string();
    state
        .db
        .write(move |c| {
            sessions::record_attempt(
                c,
                &NewSignInAttempt {
                    email: &email,
                    address: &address,
                    succeeded: verified,
                    attempted_at: now,
                },
            )?;
            audit::record(c, &entry, now)?;
            Ok(())
        })
        .await?;
    Ok(match (throttled, verified, user_id) {
        (true, _, _) => SignIn::Throttled,
        (false, true, Some(id)) => SignIn::Ok(id),
        _ => SignIn::Refused,
    })
}

fn sign_in_context(
    req: &HttpRequest,
    email: &str,
    error: Option<&str>,
    state: &AppState,
    needs_first_admin: bool,
) -> (Context, Option<Cookie<'static>>) {
    let (csrf, cookie) = pre_session_token(req);
    let mut context = Context::new();
    context.insert("csrf", &csrf);
    context.insert("email", email);
    context.insert("error", &error);
    context.insert("needs_first_admin", &needs_first_admin);
    context.insert("programme_weeks", &state.settings.programme_weeks);
    (context, cookie)
}

fn with_cookie(mut response: HttpResponse, cookie: Option<Cookie<'static>>) -> HttpResponse {
    if let Some(cookie) = cookie {
        let _ = response.add_cookie(&cookie);
    }
    response
}

#[get("/sign-in")]
async fn sign_in_page(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let no_users = state.db.read(|c| Ok(users::count(c)? == 0)).await?;
    let (context, cookie) = sign_in_context(&req, "", None, &state, no_users);
    Ok(with_cookie(render("sign_in.html", &context)?, cookie))
}

#[post("/sign-in")]
async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    AnonForm(mut fields): AnonForm,
) -> Result<HttpResponse, PageError> {
    let email = fields.text("email", false, 254).unwrap_or_default();
    let password = fields.text("password", false, 1000).unwrap_or_default();
    let (request_id, address) = request_facts(&req);
    match check_credentials(&state, &email, &password, &request_id, &address).await? {
        SignIn::Ok(user_id) => {
            let token = random_token(32);
            let csrf = random_token(32);
            let now = state.clock.now().naive_utc();
            let hash = token_hash(&token);
            // A new session id at every sign-in; any cookie the browser had is replaced.
            state
                .db
                .write(move |c| {
                    sessions::create_session(
                        c,
                        &NewSession {
                            token_hash: &hash,
                            user_id,
                            csrf_token: &csrf,
                            created_at: now,
                            last_seen_at: now,
                            expires_at: now + SESSION_ABSOLUTE,
                        },
                    )?;
                    Ok(())
                })
                .await?;
            let mut response = HttpResponse::SeeOther()
                .insert_header(("Location", "/"))
                .finish();
            let _ = response.add_cookie(&secure_cookie(&req, SESSION_COOKIE, token));
            Ok(response)
        }
        SignIn::Refused => {
            let (context, cookie) = sign_in_context(
                &req,
                &email,
                Some("Wrong email or password."),
                &state,
                false,
            );
            let mut response = render("sign_in.html", &context)?;
            *response.status_mut() = actix_web::http::StatusCode::UNAUTHORIZED;
            Ok(with_cookie(response, cookie))
        }
        SignIn::Throttled => Err(AppError::TooManyRequests.into()),
    }
}

#[post("/sign-out")]
async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: PageForm,
) -> Result<HttpResponse, PageError> {
    let user = form.user;
    let now = state.clock.now().naive_utc();
    let session_id = user.session.as_ref().map(|(id, _)| *id);
    state
        .db
        .write(move |c| {
            if let Some(id) = session_id {
                sessions::delete_session(c, id)?;
            }
            audit::record(
                c,
                &user.audit("sign_out", "user", Some(user.user_id), None),
                now,
            )?;
            Ok(())
        })
        .await?;
    let mut gone = secure_cookie(&req, SESSION_COOKIE, String::new());
    gone.make_removal();
    let mut response = HttpResponse::SeeOther()
        .insert_header(("Location", "/sign-in"))
        .finish();
    let _ = response.add_cookie(&gone);
    Ok(response)
}

/// Makes a one-time link and returns its URL; the caller's transaction writes it.
pub fn make_link(
    c: &mut crate::db::DbConn,
    state: &AppState,
    purpose: &str,
    user_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(String, i64), AppError> {
    make_link_on(c, &state.settings.base_url, purpose, user_id, now)
}

/// `make_link` for work done outside the web service (the spreadsheet
/// import), which has the settings' base URL but no `AppState`.
pub fn make_link_on(
    c: &mut crate::db::DbConn,
    base_url: &str,
    purpose: &str,
    user_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(String, i64), AppError> {
    let token = random_token(32);
    let lifetime = match purpose {
        "first_admin" => FIRST_ADMIN_LINK_LIFETIME,
        "password_reset" => RESET_LINK_LIFETIME,
        _ => SETUP_LINK_LIFETIME,
    };
    let id = sessions::create_link(
        c,
        &NewOneTimeLink {
            token_hash: &token_hash(&token),
            purpose,
            user_id,
            created_at: now.naive_utc(),
            expires_at: (now + lifetime).naive_utc(),
        },
    )?;
    Ok((format!("{base_url}/link/{token}"), id))
}

#[get("/link/{token}")]
async fn link_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let hash = token_hash(&token);
    let now = state.clock.now().naive_utc();
    let link = state
        .db
        .read(move |c| Ok(sessions::find_usable_link(c, &hash, now)?))
        .await?
        .ok_or_else(|| AppError::Conflict("This link has expired or was already used. Ask your programme's admin for a new one.".into()))?;
    let (csrf, cookie) = pre_session_token(&req);
    let mut context = Context::new();
    context.insert("csrf", &csrf);
    context.insert("first_admin", &(link.purpose == "first_admin"));
    context.insert("token", token.as_str());
    context.insert("errors", &crate::error::FieldErrors::new());
    context.insert("entered", &serde_json::Map::new());
    Ok(with_cookie(render("set_password.html", &context)?, cookie))
}

#[post("/link/{token}")]
async fn use_link(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
    AnonForm(mut fields): AnonForm,
) -> Result<HttpResponse, PageError> {
    let hash = token_hash(&token);
    let now = state.clock.now();
    let at = now.naive_utc();
    let lookup = hash.clone();
    let link = state
        .db
        .read(move |c| Ok(sessions::find_usable_link(c, &lookup, at)?))
        .await?
        .ok_or_else(|| AppError::Conflict("This link has expired or was already used. Ask your programme's admin for a new one.".into()))?;
    let first_admin = link.purpose == "first_admin";
    let (email, name) = if first_admin {
        (
            fields.parsed("email", true, Email::parse),
            fields.parsed("name", true, PersonName::split_full),
        )
    } else {
        (None, None)
    };
    let password = fields.text("password", true, 1000);
    let again = fields.text("password_again", true, 1000);
    if let Some(p) = &password {
        if let Err(e) = crate::auth::check_password(p) {
            fields.error("password", e.to_string());
        } else if again.as_deref() != Some(p.as_str()) {
            fields.error("password_again", "does not match the password");
        }
    }
    if fields.has_errors() {
        let (csrf, _) = pre_session_token(&req);
        let mut context = Context::new();
        context.insert("csrf", &csrf);
        context.insert("first_admin", &first_admin);
        context.insert("token", token.as_str());
        let mut entered = fields.entered();
        entered.remove("password");
        entered.remove("password_again");
        context.insert("entered", &entered);
        context.insert("errors", fields.errors());
        let mut response = render("set_password.html", &context)?;
        *response.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(response);
    }
    let password = password.unwrap_or_default();
    let password_hash = on_password_thread(move || hash_password(&password))
        .await
        .map_err(|e| AppError::invalid("password", e.to_string()))?;
    let (request_id, address) = request_facts(&req);
    state
        .db
        .write(move |c| {
            if sessions::use_link(c, link.id, at)? == 0 {
                return Err(AppError::Conflict("This link was already used.".into()));
            }
            let user_id = if first_admin {
                if users::count(c)? > 0 {
                    return Err(AppError::Conflict(
                        "The first admin already exists; sign in instead.".into(),
                    ));
                }
                let email = email.ok_or_else(|| AppError::internal("email checked above"))?;
                let (given, family) =
                    name.ok_or_else(|| AppError::internal("name checked above"))?;
                users::create(
                    c,
                    &users::NewUser {
                        id: None,
                        email: email.as_str(),
                        given_name: given.as_str(),
                        family_name: &family,
                        password_hash: Some(&password_hash),
                        capacity: 0,
                        created_at: at,
                        updated_at: at,
                    },
                    &[Role::Admin],
                    &[],
                )?
            } else {
                let user_id = link
                    .user_id
                    .ok_or_else(|| AppError::internal("a link without a user"))?;
                users::set_password(c, user_id, &password_hash, at)?;
                // A new password ends every session and token of the account.
                sessions::delete_sessions_of(c, user_id)?;
                sessions::revoke_tokens_of(c, user_id, at)?;
                user_id
            };
            let entry = AuditEntry {
                user_id: Some(user_id),
                action: if first_admin {
                    "user.first_admin"
                } else {
                    "user.password_set"
                },
                record_type: "user",
                record_id: Some(user_id),
                patient_id: None,
                request_id,
                address,
            };
            audit::record(c, &entry, at)?;
            Ok(())
        })
        .await?;
    let mut context = Context::new();
    context.insert("title", "Password set");
    context.insert(
        "message",
        "Your password is set. Sign in with your email and new password.",
    );
    context.insert("link", "/sign-in");
    context.insert("link_text", "Sign in");
    let mut response = render("message.html", &context)?;
    let mut gone = secure_cookie(&req, PRE_SESSION_COOKIE, String::new());
    gone.make_removal();
    let _ = response.add_cookie(&gone);
    Ok(response)
}

#[derive(Serialize)]
struct TokenRow {
    id: i64,
    label: String,
    created_at: String,
    expires_at: String,
    last_used_at: Option<String>,
    active: bool,
}

async fn account_response(
    state: &AppState,
    user: &Principal,
    new_token: Option<String>,
) -> Result<HttpResponse, AppError> {
    let user_id = user.user_id;
    let now = state.clock.now().naive_utc();
    let (tokens, languages) = state
        .db
        .read(move |c| {
            Ok((
                sessions::tokens_of(c, user_id)?,
                users::languages_of(c, user_id)?,
            ))
        })
        .await?;
    let rows: Vec<TokenRow> = tokens
        .into_iter()
        .map(|t| TokenRow {
            id: t.id,
            label: t.label,
            created_at: t.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            expires_at: t.expires_at.format("%Y-%m-%d").to_string(),
            last_used_at: t
                .last_used_at
                .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string()),
            active: t.revoked_at.is_none() && t.expires_at > now,
        })
        .collect();
    let mut context = page_context(state, user);
    context.insert("tokens", &rows);
    context.insert("new_token", &new_token);
    context.insert("languages", &languages);
    render("account.html", &context)
}

#[get("/account")]
async fn account_page(user: Page, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    Ok(account_response(&state, &user, None).await?)
}

/// Issues a token and returns it once; only its hash is kept.
async fn issue_token(
    state: &AppState,
    user_id: i64,
    label: String,
) -> Result<(String, DateTime<Utc>, i64), AppError> {
    let token = format!("ck_{}", random_token(32));
    let now = state.clock.now();
    let expires = now + TOKEN_LIFETIME;
    let hash = token_hash(&token);
    state
        .db
        .write(move |c| {
            Ok(sessions::create_token(
                c,
                &NewApiToken {
                    token_hash: &hash,
                    user_id,
                    label: &label,
                    created_at: now.naive_utc(),
                    expires_at: expires.naive_utc(),
                },
            )?)
        })
        .await
        .map(|id| (token, expires, id))
}

#[post("/account/tokens")]
async fn create_token_from_page(
    state: web::Data<AppState>,
    mut form: PageForm,
) -> Result<HttpResponse, PageError> {
    let label = form.fields.text("label", false, 100).unwrap_or_default();
    let (token, _, _) = issue_token(&state, form.user.user_id, label).await?;
    Ok(account_response(&state, &form.user, Some(token)).await?)
}

#[post("/account/tokens/{id}/revoke")]
async fn revoke_token_from_page(
    state: web::Data<AppState>,
    form: PageForm,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let (user_id, id) = (form.user.user_id, id.into_inner());
    let now = state.clock.now().naive_utc();
    let revoked = state
        .db
        .write(move |c| Ok(sessions::revoke_token(c, user_id, id, now)?))
        .await?;
    if revoked == 0 {
        return Err(AppError::NotFound.into());
    }
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", "/account"))
        .finish())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenIssued {
    /// For revoking it: DELETE /api/v1/tokens/{id}.
    pub id: i64,
    /// Send as `Authorization: Bearer <token>`. Shown once; only its hash is kept.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct TokenRequest {
    email: String,
    password: String,
    /// What the token is for, e.g. "EHR import".
    label: Option<String>,
}

/// Exchange an email and password for a bearer token (valid 30 days).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "auth", request_body = TokenRequest,
    responses(
        (status = 201, body = TokenIssued),
        (status = 401, body = crate::error::ErrorBody, description = "wrong email or password"),
        (status = 429, body = crate::error::ErrorBody, description = "too many failures")))]
#[post("/tokens")]
async fn create_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonFields(mut fields): JsonFields,
) -> Result<HttpResponse, AppError> {
    let email = fields.text("email", true, 254);
    let password = fields.text("password", true, 1000);
    let label = fields
        .text("label", false, 100)
        .unwrap_or_else(|| "API".into());
    fields.finish()?;
    let (request_id, address) = request_facts(&req);
    let (email, password) = (email.unwrap_or_default(), password.unwrap_or_default());
    match check_credentials(&state, &email, &password, &request_id, &address).await? {
        SignIn::Ok(user_id) => {
            let (token, expires_at, id) = issue_token(&state, user_id, label).await?;
            Ok(HttpResponse::Created().json(TokenIssued {
                id,
                token,
                expires_at,
            }))
        }
        SignIn::Refused => Err(AppError::Unauthorized),
        SignIn::Throttled => Err(AppError::TooManyRequests),
    }
}

/// Revoke one of your own tokens.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
#[delete("/tokens/{id}")]
async fn revoke_token(
    user: Api,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let (user_id, id) = (user.user_id, id.into_inner());
    let now = state.clock.now().naive_utc();
    let revoked = state
        .db
        .write(move |c| Ok(sessions::revoke_token(c, user_id, id, now)?))
        .await?;
    if revoked == 0 {
        return Err(AppError::NotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    pub id: i64,
    pub email: String,
    pub given_name: String,
    pub roles: Vec<String>,
}

/// Who the token belongs to.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = crate::error::ErrorBody)))]
#[get("/me")]
async fn me(user: Api) -> HttpResponse {
    HttpResponse::Ok().json(Me {
        id: user.user_id,
        email: user.email.clone(),
        given_name: user.given_name.clone(),
        roles: user.roles.iter().map(|r| r.as_str().to_string()).collect(),
    })
}

/// For forms re-shown with errors: only the fields, no password.
pub fn entered_without_secrets(
    fields: &Fields,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    let mut entered = fields.entered();
    for secret in ["password", "password_again", "csrf"] {
        entered.remove(secret);
    }
    entered
}
