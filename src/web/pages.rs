//! Server-rendered pages: the templates (compiled into the binary and loaded
//! once), the stylesheet, the front page and the HTML error page.

use std::sync::OnceLock;

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use tera::{Context, Tera};

use crate::error::{AppError, PageError};
use crate::startup::AppState;
use crate::web::identity::{Page, Principal};

/// Every template, compiled in so the binary runs from any folder. Names end
/// in `.html`, so Tera escapes every value.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("home.html", include_str!("../../templates/home.html")),
    ("sign_in.html", include_str!("../../templates/sign_in.html")),
    (
        "set_password.html",
        include_str!("../../templates/set_password.html"),
    ),
    ("message.html", include_str!("../../templates/message.html")),
    ("account.html", include_str!("../../templates/account.html")),
    ("patient.html", include_str!("../../templates/patient.html")),
    (
        "patients.html",
        include_str!("../../templates/patients.html"),
    ),
    ("enrol.html", include_str!("../../templates/enrol.html")),
    ("pairing.html", include_str!("../../templates/pairing.html")),
    (
        "checkins.html",
        include_str!("../../templates/checkins.html"),
    ),
    ("call.html", include_str!("../../templates/call.html")),
    (
        "discharge_queue.html",
        include_str!("../../templates/discharge_queue.html"),
    ),
    (
        "protocol.html",
        include_str!("../../templates/protocol.html"),
    ),
    (
        "dashboard_student.html",
        include_str!("../../templates/dashboard_student.html"),
    ),
    (
        "debriefs.html",
        include_str!("../../templates/debriefs.html"),
    ),
    ("debrief.html", include_str!("../../templates/debrief.html")),
    ("report.html", include_str!("../../templates/report.html")),
    (
        "dashboard.html",
        include_str!("../../templates/dashboard.html"),
    ),
    (
        "admin_settings.html",
        include_str!("../../templates/admin_settings.html"),
    ),
    (
        "pairing_patient.html",
        include_str!("../../templates/pairing_patient.html"),
    ),
    (
        "admin_users.html",
        include_str!("../../templates/admin_users.html"),
    ),
    (
        "admin_user_form.html",
        include_str!("../../templates/admin_user_form.html"),
    ),
    (
        "admin_link.html",
        include_str!("../../templates/admin_link.html"),
    ),
    (
        "admin_audit.html",
        include_str!("../../templates/admin_audit.html"),
    ),
];

/// Email parts: the subject and plain text (`.txt`, not escaped) and the
/// HTML body (`.html`, escaped like every page).
const EMAIL_TEMPLATES: &[(&str, &str)] = &[
    (
        "emails/layout.html",
        include_str!("../../templates/emails/layout.html"),
    ),
    (
        "emails/account_setup.subject.txt",
        include_str!("../../templates/emails/account_setup.subject.txt"),
    ),
    (
        "emails/account_setup.txt",
        include_str!("../../templates/emails/account_setup.txt"),
    ),
    (
        "emails/account_setup.html",
        include_str!("../../templates/emails/account_setup.html"),
    ),
    (
        "emails/password_reset.subject.txt",
        include_str!("../../templates/emails/password_reset.subject.txt"),
    ),
    (
        "emails/password_reset.txt",
        include_str!("../../templates/emails/password_reset.txt"),
    ),
    (
        "emails/password_reset.html",
        include_str!("../../templates/emails/password_reset.html"),
    ),
    (
        "emails/urgent_concern.subject.txt",
        include_str!("../../templates/emails/urgent_concern.subject.txt"),
    ),
    (
        "emails/urgent_concern.txt",
        include_str!("../../templates/emails/urgent_concern.txt"),
    ),
    (
        "emails/urgent_concern.html",
        include_str!("../../templates/emails/urgent_concern.html"),
    ),
    (
        "emails/discharge_notice.subject.txt",
        include_str!("../../templates/emails/discharge_notice.subject.txt"),
    ),
    (
        "emails/discharge_notice.txt",
        include_str!("../../templates/emails/discharge_notice.txt"),
    ),
    (
        "emails/discharge_notice.html",
        include_str!("../../templates/emails/discharge_notice.html"),
    ),
    (
        "emails/student_digest.subject.txt",
        include_str!("../../templates/emails/student_digest.subject.txt"),
    ),
    (
        "emails/student_digest.txt",
        include_str!("../../templates/emails/student_digest.txt"),
    ),
    (
        "emails/student_digest.html",
        include_str!("../../templates/emails/student_digest.html"),
    ),
    (
        "emails/leader_weekly_summary.subject.txt",
        include_str!("../../templates/emails/leader_weekly_summary.subject.txt"),
    ),
    (
        "emails/leader_weekly_summary.txt",
        include_str!("../../templates/emails/leader_weekly_summary.txt"),
    ),
    (
        "emails/leader_weekly_summary.html",
        include_str!("../../templates/emails/leader_weekly_summary.html"),
    ),
];

const STYLESHEET: &str = include_str!("app.css");

static TERA: OnceLock<Tera> = OnceLock::new();

/// Compiles the templates; start-up calls this so a broken template stops the
/// service before it listens.
pub fn load_templates() -> Result<&'static Tera, tera::Error> {
    if let Some(tera) = TERA.get() {
        return Ok(tera);
    }
    let mut tera = Tera::default();
    tera.autoescape_on(vec![".html"]);
    tera.register_filter("local", local_time);
    tera.register_filter(
        "phone",
        |value: &tera::Value, _: &std::collections::HashMap<String, tera::Value>| {
            Ok(match value.as_str() {
                Some(e164) => tera::Value::String(crate::domain::phone::Phone::for_people(e164)),
                None => value.clone(),
            })
        },
    );
    tera.add_raw_templates(
        TEMPLATES
            .iter()
            .copied()
            .chain(EMAIL_TEMPLATES.iter().copied()),
    )?;
    Ok(TERA.get_or_init(|| tera))
}

static PROGRAMME_TZ: OnceLock<chrono_tz::Tz> = OnceLock::new();

/// The zone the `local` filter shows times in; set once at start-up.
pub fn set_programme_timezone(tz: chrono_tz::Tz) {
    let _ = PROGRAMME_TZ.set(tz);
}

/// `{{ t | local }}`: a UTC timestamp shown in programme time, e.g.
/// "Mon 30 Nov, 10:00"; `format` takes a strftime pattern.
fn local_time(
    value: &tera::Value,
    args: &std::collections::HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let Some(text) = value.as_str() else {
        return Ok(value.clone());
    };
    let at = match text.parse::<chrono::DateTime<chrono::Utc>>() {
        Ok(at) => at,
        // Naive timestamps from the database hold UTC.
        Err(_) => match text.parse::<chrono::NaiveDateTime>() {
            Ok(naive) => naive.and_utc(),
            Err(_) => return Ok(value.clone()),
        },
    };
    let tz = PROGRAMME_TZ
        .get()
        .copied()
        .unwrap_or(chrono_tz::America::New_York);
    let format = args
        .get("format")
        .and_then(|f| f.as_str())
        .unwrap_or("%a %-d %b, %H:%M");
    Ok(tera::Value::String(
        at.with_timezone(&tz).format(format).to_string(),
    ))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(stylesheet).service(home);
}

/// Renders a page, or a 500 that says nothing internal.
pub fn render(template: &str, context: &Context) -> Result<HttpResponse, AppError> {
    let tera = load_templates().map_err(|e| AppError::internal(e.to_string()))?;
    let html = tera
        .render(template, context)
        .map_err(|e| AppError::internal(format!("rendering {template}: {e:?}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// The HTML error page, through the base layout. Falls back to plain text if
/// the templates themselves are broken.
pub fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    let mut context = Context::new();
    context.insert("status", &status.as_u16());
    context.insert("reason", status.canonical_reason().unwrap_or("Error"));
    context.insert("message", message);
    let body = load_templates()
        .ok()
        .and_then(|tera| tera.render("error.html", &context).ok());
    let mut response = HttpResponse::build(status);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header(("Retry-After", "5"));
    }
    match body {
        Some(html) => response.content_type("text/html; charset=utf-8").body(html),
        None => response
            .content_type("text/plain")
            .body(message.to_string()),
    }
}

#[get("/static/app.css")]
async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(STYLESHEET)
}

/// What every page's layout needs: who is signed in, their roles (for the
/// menu) and the CSRF token for the forms on the page.
pub fn page_context(state: &AppState, user: &Principal) -> Context {
    let mut context = Context::new();
    let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
    context.insert(
        "me",
        &serde_json::json!({
            "id": user.user_id,
            "given_name": user.given_name,
            "roles": roles,
        }),
    );
    context.insert("csrf", user.csrf());
    context.insert("programme_weeks", &state.settings.programme_weeks);
    context.insert("protocol_version", &state.protocol.version);
    context
}

/// The signed-in home: what this user can do. Anonymous visitors are sent
/// to the sign-in page by the `Page` guard.
#[get("/")]
async fn home(user: Page, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    // A leader's home is the dashboard; a student caller's, their check-ins.
    if user.has(crate::domain::Role::Leader) {
        return Ok(HttpResponse::SeeOther()
            .insert_header(("Location", "/dashboard"))
            .finish());
    }
    if user.roles == [crate::domain::Role::Student] {
        return Ok(HttpResponse::SeeOther()
            .insert_header(("Location", "/checkins"))
            .finish());
    }
    let mut context = page_context(&state, &user);
    if user.has(crate::domain::Role::Physician) {
        // Urgent concerns stay on the enrolling physician's page until acknowledged.
        let who = user.0.clone();
        let now = state.clock.now().naive_utc();
        let concerns = crate::audit::read_recorded(&state.db, now, move |c| {
            let rows = crate::web::dashboard::open_concerns(c, &who)?;
            let entry = (!rows.is_empty())
                .then(|| who.audit("concerns.listed", "patient_list", None, None));
            Ok((rows, entry))
        })
        .await?;
        context.insert("concerns", &concerns);
    }
    Ok(render("home.html", &context)?)
}
