//! The protocol to read and print, per language, and `GET /api/v1/protocol`.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;

use crate::error::{AppError, PageError};
use crate::startup::AppState;
use crate::web::identity::{Api, Page};
use crate::web::pages::{page_context, render};

pub fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(protocol_page);
}

pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(protocol_api);
}

/// The current protocol: version, languages, sections in order (titles,
/// purposes and scripts per language, as HTML) and resources.
#[utoipa::path(get, path = "/api/v1/protocol", tag = "calls", security(("bearer" = [])),
    responses((status = 200, description = "the protocol as JSON: title, version, languages, sections, resources")))]
#[get("/protocol")]
async fn protocol_api(_user: Api, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(state.protocol.as_ref()))
}

#[derive(Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

#[get("/protocol")]
async fn protocol_page(
    user: Page,
    state: web::Data<AppState>,
    query: web::Query<LangQuery>,
) -> Result<HttpResponse, PageError> {
    let protocol = &state.protocol;
    let lang = protocol
        .language_or_default(query.lang.as_deref().unwrap_or("en"))
        .to_string();
    let mut context = page_context(&state, &user);
    context.insert("protocol", protocol.as_ref());
    context.insert("script_language", &lang);
    Ok(render("protocol.html", &context)?)
}
