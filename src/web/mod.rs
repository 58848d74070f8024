//! HTTP handlers by audience. Pages answer errors as HTML, `/api/v1` as JSON.

pub mod admin;
pub mod api;
pub mod auth;
pub mod calendar;
pub mod call_records;
pub mod checkins;
pub mod dashboard;
pub mod debriefs;
pub mod discharge;
pub mod enrol;
pub mod exports;
pub mod health;
pub mod identity;
pub mod input;
pub mod pages;
pub mod pairing;
pub mod patients;
pub mod protocol_pages;
pub mod reports;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::{AppError, PageError};

/// Every route of the service.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::routes)
        .service(
            web::scope("/api/v1")
                .configure(auth::api_routes)
                .configure(admin::api_routes)
                .configure(enrol::api_routes)
                .configure(patients::api_routes)
                .configure(checkins::api_routes)
                .configure(dashboard::api_routes)
                .configure(protocol_pages::api_routes)
                .configure(debriefs::api_routes)
                .configure(exports::api_routes)
                .configure(discharge::api_routes)
                .configure(call_records::api_routes)
                .configure(pairing::api_routes)
                .configure(api::routes),
        )
        .configure(pages::routes)
        .configure(auth::page_routes)
        .configure(admin::page_routes)
        .configure(enrol::page_routes)
        .configure(patients::page_routes)
        .configure(checkins::page_routes)
        .configure(dashboard::page_routes)
        .configure(protocol_pages::page_routes)
        .configure(reports::page_routes)
        .configure(debriefs::page_routes)
        .configure(discharge::page_routes)
        .configure(calendar::page_routes)
        .configure(call_records::page_routes)
        .configure(pairing::page_routes);
}

/// Unknown paths: a JSON 404 under `/api/`, an HTML one elsewhere.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, actix_web::Error> {
    if req.path().starts_with("/api/") {
        Err(AppError::NotFound.into())
    } else {
        Err(PageError(AppError::NotFound).into())
    }
}
