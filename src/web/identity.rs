//! Who is asking: the signed-in user behind a page (a session cookie) or an
//! API call (a bearer token), and the role guards handlers name in their
//! signatures: `Page<Leaders>`, `Api<Admins>`, `PageForm<T, Physicians>`.
//!
//! Pages accept only sessions and the API only bearer tokens. A session ends
//! after 30 idle minutes or 12 hours, at sign-out, and when the account is
//! disabled; every check happens on every request, against the database, so
//! several instances agree.

use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::audit::AuditEntry;
use crate::auth::token_hash;
use crate::db::schema::{user_roles, users};
use crate::db::{sessions, DbConn};
use crate::domain::Role;
use crate::error::{AppError, PageError};
use crate::startup::AppState;
use crate::telemetry::RequestId;
use crate::web::input::{read_body, Fields};

pub const SESSION_COOKIE: &str = "checkin_session";
/// The double-submit token of forms shown before sign-in.
pub const PRE_SESSION_COOKIE: &str = "checkin_csrf";
pub const SESSION_IDLE: Duration = Duration::minutes(30);
pub const SESSION_ABSOLUTE: Duration = Duration::hours(12);
pub const TOKEN_LIFETIME: Duration = Duration::days(30);
/// `last_seen_at` is rewritten at most this often, so reads stay reads.
const TOUCH_EVERY: Duration = Duration::seconds(60);

/// A signed-in user, as every handler sees them.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub given_name: String,
    pub email: String,
    pub roles: Vec<Role>,
    /// The session's id and CSRF token, for pages; `None` for the API.
    pub session: Option<(i64, String)>,
    pub request_id: String,
    pub address: String,
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn csrf(&self) -> &str {
        self.session.as_ref().map_or("", |(_, csrf)| csrf.as_str())
    }

    /// An audit row by this user in this request.
    pub fn audit(
        &self,
        action: &'static str,
        record_type: &'static str,
        record_id: Option<i64>,
        patient_id: Option<i64>,
    ) -> AuditEntry {
        AuditEntry {
            user_id: Some(self.user_id),
            action,
            record_type,
            record_id,
            patient_id,
            request_id: self.request_id.clone(),
            address: self.address.clone(),
        }
    }
}

/// Which roles a guard lets through; an empty list means any signed-in user.
pub trait Allowed {
    const ROLES: &'static [Role];
}

macro_rules! role_set {
    ($($(#[$doc:meta])* $name:ident = [$($role:ident),*];)+) => {$(
        $(#[$doc])*
        pub struct $name;
        impl Allowed for $name {
            const ROLES: &'static [Role] = &[$(Role::$role),*];
        }
    )+};
}

role_set! {
    /// Any signed-in user.
    Anyone = [];
    Admins = [Admin];
    Leaders = [Leader];
    Physicians = [Physician];
    Students = [Student];
    /// Who may enrol patients and read the discharge queue.
    LeadersOrPhysicians = [Leader, Physician];
}

fn check_roles<R: Allowed>(principal: &Principal) -> Result<(), AppError> {
    if R::ROLES.is_empty() || R::ROLES.iter().any(|r| principal.has(*r)) {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

/// Request facts every audit row carries.
pub fn request_facts(req: &HttpRequest) -> (String, String) {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    // The peer address, not X-Forwarded-For: a client can write that header.
    let address = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    (request_id, address)
}

pub fn state_of(req: &HttpRequest) -> Result<web::Data<AppState>, AppError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::internal("app state missing"))
}

struct Account {
    id: i64,
    given_name: String,
    email: String,
    disabled: bool,
    roles: Vec<Role>,
}

fn load_account(conn: &mut DbConn, user_id: i64) -> QueryResult<Option<Account>> {
    let user: Option<(i64, String, String, Option<NaiveDateTime>)> = users::table
        .find(user_id)
        .select((
            users::id,
            users::given_name,
            users::email,
            users::disabled_at,
        ))
        .get_result(conn)
        .optional()?;
    let Some((id, given_name, email, disabled_at)) = user else {
        return Ok(None);
    };
    let roles: Vec<String> = user_roles::table
        .filter(user_roles::user_id.eq(id))
        .select(user_roles::role)
        .order(user_roles::role)
        .load(conn)?;
    Ok(Some(Account {
        id,
        given_name,
        email,
        disabled: disabled_at.is_some(),
        roles: roles.iter().filter_map(|r| r.parse().ok()).collect(),
    }))
}

fn principal_of(account: Account, session: Option<(i64, String)>, req: &HttpRequest) -> Principal {
    let (request_id, address) = request_facts(req);
    Principal {
        user_id: account.id,
        given_name: account.given_name,
        email: account.email,
        roles: account.roles,
        session,
        request_id,
        address,
    }
}

/// The session named by the cookie, still valid now, with its user.
async fn session_principal(req: &HttpRequest) -> Result<Principal, AppError> {
    let state = state_of(req)?;
    let cookie = req.cookie(SESSION_COOKIE).ok_or(AppError::Unauthorized)?;
    let hash = token_hash(cookie.value());
    let now = state.clock.now().naive_utc();
    let found = state
        .db
        .read(move |c| {
            let Some(session) = sessions::find_session(c, &hash)? else {
                return Ok(None);
            };
            Ok(load_account(c, session.user_id)?.map(|account| (session, account)))
        })
        .await?;
    let Some((session, account)) = found else {
        return Err(AppError::Unauthorized);
    };
    let expired = now >= session.expires_at || now - session.last_seen_at > SESSION_IDLE;
    if expired || account.disabled {
        let id = session.id;
        state
            .db
            .write(move |c| Ok(sessions::delete_session(c, id)?))
            .await?;
        return Err(AppError::Unauthorized);
    }
    if now - session.last_seen_at >= TOUCH_EVERY {
        let id = session.id;
        state
            .db
            .write(move |c| Ok(sessions::touch_session(c, id, now)?))
            .await?;
    }
    Ok(principal_of(
        account,
        Some((session.id, session.csrf_token)),
        req,
    ))
}

/// The user behind `Authorization: Bearer <token>`.
async fn token_principal(req: &HttpRequest) -> Result<Principal, AppError> {
    let state = state_of(req)?;
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(AppError::Unauthorized)?;
    let token = header
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(AppError::Unauthorized)?;
    let hash = token_hash(token);
    let now = state.clock.now().naive_utc();
    let found = state
        .db
        .read(move |c| {
            let Some(token) = sessions::find_token(c, &hash)? else {
                return Ok(None);
            };
            Ok(load_account(c, token.user_id)?.map(|account| (token, account)))
        })
        .await?;
    let Some((token, account)) = found else {
        return Err(AppError::Unauthorized);
    };
    if token.revoked_at.is_some() || now >= token.expires_at || account.disabled {
        return Err(AppError::Unauthorized);
    }
    if token.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY) {
        let id = token.id;
        state
            .db
            .write(move |c| Ok(sessions::touch_token(c, id, now)?))
            .await?;
    }
    Ok(principal_of(account, None, req))
}

type Boxed<T, E> = Pin<Box<dyn Future<Output = Result<T, E>>>>;

/// A page's signed-in user holding one of `R`'s roles. Anonymous visitors are
/// sent to the sign-in page; a missing role is a 403.
pub struct Page<R: Allowed = Anyone>(pub Principal, PhantomData<R>);

impl<R: Allowed> Deref for Page<R> {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl<R: Allowed + 'static> FromRequest for Page<R> {
    type Error = PageError;
    type Future = Boxed<Self, PageError>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let principal = session_principal(&req).await?;
            check_roles::<R>(&principal)?;
            Ok(Page(principal, PhantomData))
        })
    }
}

/// An API caller holding one of `R`'s roles: 401 without a valid token, 403
/// without the role.
pub struct Api<R: Allowed = Anyone>(pub Principal, PhantomData<R>);

impl<R: Allowed> Deref for Api<R> {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl<R: Allowed + 'static> FromRequest for Api<R> {
    type Error = AppError;
    type Future = Boxed<Self, AppError>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let principal = token_principal(&req).await?;
            check_roles::<R>(&principal)?;
            Ok(Api(principal, PhantomData))
        })
    }
}

/// Compares in time independent of where the strings differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Reads a posted form whose `csrf` field must equal `expected` (403 before
/// anything else happens when it does not).
async fn read_form(
    req: &HttpRequest,
    payload: &mut Payload,
    expected: &str,
) -> Result<Fields, AppError> {
    let body = read_body(req, payload).await?;
    let mut fields = Fields::from_form(&body);
    let given = fields.text("csrf", false, 200).unwrap_or_default();
    if expected.is_empty() || !same_secret(&given, expected) {
        return Err(AppError::Forbidden);
    }
    Ok(fields)
}

/// A form posted by a signed-in user with role `R`, its CSRF token checked
/// against the session.
pub struct PageForm<R: Allowed = Anyone> {
    pub user: Principal,
    pub fields: Fields,
    _roles: PhantomData<R>,
}

impl<R: Allowed + 'static> FromRequest for PageForm<R> {
    type Error = PageError;
    type Future = Boxed<Self, PageError>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let principal = session_principal(&req).await?;
            check_roles::<R>(&principal)?;
            let fields = read_form(&req, &mut payload, principal.csrf()).await?;
            Ok(PageForm {
                user: principal,
                fields,
                _roles: PhantomData,
            })
        })
    }
}

/// A form posted before sign-in (sign-in itself, set-up links), protected by
/// a double-submit token: the form's `csrf` must equal the pre-session cookie.
pub struct AnonForm(pub Fields);

impl FromRequest for AnonForm {
    type Error = PageError;
    type Future = Boxed<Self, PageError>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let expected = req
                .cookie(PRE_SESSION_COOKIE)
                .map(|c| c.value().to_string())
                .unwrap_or_default();
            Ok(AnonForm(read_form(&req, &mut payload, &expected).await?))
        })
    }
}

/// The pre-session token for a form shown before sign-in: the cookie's, or a
/// new one to set.
pub fn pre_session_token(req: &HttpRequest) -> (String, Option<Cookie<'static>>) {
    match req.cookie(PRE_SESSION_COOKIE) {
        Some(c) if c.value().len() == 64 => (c.value().to_string(), None),
        _ => {
            let token = crate::auth::random_token(32);
            let cookie = secure_cookie(req, PRE_SESSION_COOKIE, token.clone());
            (token, Some(cookie))
        }
    }
}

/// HttpOnly, SameSite=Lax, Secure when served over HTTPS.
pub fn secure_cookie(req: &HttpRequest, name: &'static str, value: String) -> Cookie<'static> {
    let https = state_of(req)
        .map(|s| s.settings.base_url.starts_with("https://"))
        .unwrap_or(false);
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(https)
        .finish()
}
