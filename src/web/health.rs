//! `/healthz` (the process is up), `/readyz` (the database answers) and
//! `/metrics` (Prometheus text, for an admin's token). None says anything
//! about patients.

use actix_web::{get, web, HttpResponse};

use crate::startup::AppState;
use crate::web::identity::{Admins, Api};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics);
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "up")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// The database answers within 2 seconds.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "the database answers"),
    (status = 503, description = "the database is unavailable")))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let db = state.db.clone();
    let ready = web::block(move || db.ping()).await.unwrap_or(false);
    if ready {
        HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n")
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .content_type("text/plain")
            .body("the database is unavailable\n")
    }
}

/// Prometheus text format: requests by route and status, latency, pool use.
/// Scrapers authenticate with an admin's bearer token.
#[utoipa::path(get, path = "/metrics", tag = "health", security(("bearer" = [])), responses((status = 200, description = "Prometheus text format")))]
#[get("/metrics")]
pub async fn metrics(_admin: Api<Admins>, state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(state.db.pool_state()))
}
