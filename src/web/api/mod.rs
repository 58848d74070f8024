//! The JSON API under `/api/v1`, described by the OpenAPI document that
//! `utoipa` builds from the handlers' annotations.

use actix_web::{get, web, HttpResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{AppError, ErrorBody};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "checkin",
        description = "The JSON API of checkin, a student-to-patient check-in call programme. \
            Authenticate with `Authorization: Bearer <token>` (POST /api/v1/tokens). \
            Errors are `{\"error\": code, \"message\": text, \"fields\": {field: [messages]}}`."
    ),
    paths(
        crate::web::health::healthz,
        crate::web::health::readyz,
        crate::web::health::metrics,
        openapi_json,
        crate::web::auth::create_token,
        crate::web::auth::revoke_token,
        crate::web::auth::me,
        crate::web::admin::create_user_api,
        crate::web::patients::get_patient,
        crate::web::enrol::enrol_api,
        crate::web::enrol::list_api,
        crate::web::pairing::put_assignment,
        crate::web::pairing::delete_assignment,
        crate::web::pairing::get_suggestions,
        crate::web::checkins::checkins_api,
        crate::web::checkins::log_api,
        crate::web::call_records::get_call,
        crate::web::call_records::correct_api,
        crate::web::call_records::comment_api,
        crate::web::discharge::queue_api,
        crate::web::discharge::discharge_api,
        crate::web::dashboard::workload_api,
        crate::web::dashboard::concerns_api,
        crate::web::dashboard::acknowledge_api,
        crate::web::exports::calls_csv,
        crate::web::debriefs::list_api,
        crate::web::protocol_pages::protocol_api,
        crate::web::exports::patients_csv,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(openapi_json)
        .default_service(web::route().to(|| async { Err::<HttpResponse, _>(AppError::NotFound) }));
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "api", security(("bearer" = [])), responses((status = 200, description = "the OpenAPI 3.1 document")))]
#[get("/openapi.json")]
pub async fn openapi_json(_user: crate::web::identity::Api) -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// JSON bodies: 1 MiB at most (413), and a body that is not the expected JSON
/// is a 422 that says where, or a 400 when it is not JSON at all.
pub fn json_config() -> web::JsonConfig {
    use actix_web::error::JsonPayloadError;
    web::JsonConfig::default()
        .limit(crate::startup::MAX_BODY_BYTES)
        .error_handler(|err, _req| {
            let app_error = match &err {
                JsonPayloadError::OverflowKnownLength { .. }
                | JsonPayloadError::Overflow { .. } => AppError::PayloadTooLarge,
                JsonPayloadError::ContentType => {
                    AppError::BadRequest("send the body as application/json".into())
                }
                JsonPayloadError::Deserialize(e) if e.is_data() => {
                    AppError::invalid("body", e.to_string())
                }
                JsonPayloadError::Deserialize(e) => {
                    AppError::BadRequest(format!("the body is not valid JSON: {e}"))
                }
                _ => AppError::BadRequest("the body could not be read".into()),
            };
            app_error.into()
        })
}
