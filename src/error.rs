//! One error type for the whole app, with one mapping to HTTP.
//!
//! `AppError` answers the JSON API with SPEC.md's error body; page handlers
//! return `PageError`, the same error rendered through the base template.
//! Nothing internal (SQL, stack traces, patient data) reaches a response:
//! unexpected errors are logged with the request id and answered with a
//! plain 500.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// Messages per field, reported all at once.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("sign in first")]
    Unauthorized,
    #[error("you may not do that")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    /// Enrolling someone with an active enrolment; carries that patient's id.
    #[error("this person is already enrolled (patient {0})")]
    DuplicatePatient(i64),
    #[error("the request body is larger than 1 MiB")]
    PayloadTooLarge,
    #[error("{message}")]
    Validation {
        message: String,
        fields: FieldErrors,
    },
    #[error("too many attempts; try again later")]
    TooManyRequests,
    #[error("the database is unavailable; try again in a moment")]
    Unavailable,
    #[error("something went wrong on our side")]
    Internal(String),
}

impl AppError {
    pub fn internal(detail: impl Into<String>) -> Self {
        AppError::Internal(detail.into())
    }

    /// One invalid field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let mut fields = FieldErrors::new();
        fields.insert(field.to_string(), vec![message.into()]);
        Self::invalid_fields(fields)
    }

    pub fn invalid_fields(fields: FieldErrors) -> Self {
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        AppError::Validation {
            message: format!("invalid: {}", names.join(", ")),
            fields,
        }
    }

    /// The machine-readable code in the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden => "forbidden",
            AppError::NotFound => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::DuplicatePatient(_) => "already_enrolled",
            AppError::PayloadTooLarge => "payload_too_large",
            AppError::Validation { .. } => "invalid",
            AppError::TooManyRequests => "too_many_requests",
            AppError::Unavailable => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }

    pub fn fields(&self) -> Option<&FieldErrors> {
        match self {
            AppError::Validation { fields, .. } => Some(fields),
            _ => None,
        }
    }

    /// Logs what the response will not say.
    fn log(&self) {
        match self {
            AppError::Internal(detail) => tracing::error!(detail = %detail, "internal error"),
            AppError::Unavailable => tracing::warn!("answered 503: database unavailable"),
            _ => {}
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => AppError::NotFound,
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                AppError::Conflict("that already exists".into())
            }
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => AppError::Unavailable,
            Error::DatabaseError(_, info) if is_unavailable(info.message()) => {
                AppError::Unavailable
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}

/// Connection-level failures a driver reports as plain database errors.
fn is_unavailable(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("server closed the connection")
        || m.contains("connection refused")
        || m.contains("terminating connection")
        || m.contains("no connection to the server")
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Machine-readable: bad_request, unauthorized, forbidden, not_found,
    /// conflict, payload_too_large, invalid, too_many_requests, unavailable,
    /// internal.
    pub error: String,
    pub message: String,
    /// For `invalid`: every failing field with its messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<FieldErrors>,
    /// For `already_enrolled`: the patient with the active enrolment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_patient_id: Option<i64>,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Conflict(_) | AppError::DuplicatePatient(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, AppError::Unavailable) {
            response.insert_header(("Retry-After", "5"));
        }
        if let AppError::DuplicatePatient(id) = self {
            response.insert_header(("Location", format!("/api/v1/patients/{id}")));
        }
        response.json(ErrorBody {
            error: self.code().to_string(),
            message: self.to_string(),
            fields: self.fields().cloned(),
            existing_patient_id: match self {
                AppError::DuplicatePatient(id) => Some(*id),
                _ => None,
            },
        })
    }
}

/// The same error, answered as an HTML page for a person.
#[derive(Debug)]
pub struct PageError(pub AppError);

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: Into<AppError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self.0 {
            AppError::Unauthorized => StatusCode::FOUND,
            _ => self.0.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.0.log();
        if matches!(self.0, AppError::Unauthorized) {
            // A person without a session belongs on the sign-in page.
            return HttpResponse::Found()
                .insert_header(("Location", "/sign-in"))
                .finish();
        }
        crate::web::pages::error_page(self.status_code(), &self.0.to_string())
    }
}
