//! Builds the app once: `main` and the tests use the same functions.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Compress, DefaultHeaders};
use actix_web::{web, App, HttpServer};

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::db::{Db, DbSetupError};
use crate::telemetry::Metrics;

/// Bodies over 1 MiB are refused with 413 (SECURITY.md 15).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler can reach. Holds no programme state: that lives in the
/// database, so several instances can serve one programme.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
    pub secret_key: Arc<String>,
    /// The call protocol, parsed once at start-up.
    pub protocol: Arc<crate::protocol::Protocol>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot use the data folder {path:?}: {reason}. Create it, make it writable, or set CHECKIN_DATA_DIR")]
    DataFolder { path: String, reason: String },
    #[error(transparent)]
    Database(#[from] DbSetupError),
    #[error("the call protocol cannot be read: {0}")]
    Protocol(#[from] crate::protocol::ProtocolError),
    #[error("the page templates do not compile: {0}")]
    Templates(String),
    #[error("cannot listen on {bind}: {reason}")]
    Listen { bind: String, reason: String },
}

/// Everything `serve` needs before it listens: the data folder, the database
/// (created and migrated), the secret key and the templates.
pub fn prepare(settings: Settings, clock: SharedClock) -> Result<AppState, StartupError> {
    let protocol = match &settings.protocol_dir {
        Some(dir) => crate::protocol::Protocol::from_dir(dir)?,
        None => crate::protocol::Protocol::embedded()?,
    };
    prepare_data_folder(&settings.data_dir)?;
    let db = Db::connect(&settings.database_url, settings.db_pool_size)?;
    let applied = db.migrate()?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, database = %db.target(), "database migrated");
    }
    let secret_key = settings
        .resolve_secret_key()
        .map_err(|e| StartupError::DataFolder {
            path: settings.data_dir.display().to_string(),
            reason: e.to_string(),
        })?;
    crate::web::pages::load_templates().map_err(|e| StartupError::Templates(format!("{e:?}")))?;
    crate::web::pages::set_programme_timezone(settings.timezone);
    Ok(AppState {
        settings: Arc::new(settings),
        db,
        clock,
        metrics: Arc::new(Metrics::new()),
        secret_key: Arc::new(secret_key),
        protocol: Arc::new(protocol),
    })
}

fn prepare_data_folder(path: &Path) -> Result<(), StartupError> {
    let fail = |reason: String| StartupError::DataFolder {
        path: path.display().to_string(),
        reason,
    };
    if path.exists() && !path.is_dir() {
        return Err(fail("it is a file, not a folder".into()));
    }
    std::fs::create_dir_all(path).map_err(|e| fail(e.to_string()))?;
    let probe = path.join(format!(".checkin-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| fail(e.to_string()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// The app: routes, middleware, shared state. Tests build exactly this.
pub fn build_app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::new(state))
        .app_data(crate::web::api::json_config())
        .app_data(web::FormConfig::default().limit(MAX_BODY_BYTES))
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .configure(crate::web::routes)
        .default_service(web::route().to(crate::web::not_found))
        .wrap(Compress::default())
        .wrap(security_headers())
        .wrap(from_fn(crate::telemetry::observe))
}

/// SECURITY.md 17, on every response. Pages carry patient data, so nothing
/// is cached unless a handler says otherwise (the stylesheet does).
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Cache-Control", "no-store"))
}

/// Binds the listener first, so a port in use is reported before anything
/// else happens.
pub fn bind(settings: &Settings) -> Result<TcpListener, StartupError> {
    TcpListener::bind(&settings.bind).map_err(|e| StartupError::Listen {
        bind: settings.bind.clone(),
        reason: match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "the port is already in use; stop the other program or set CHECKIN_BIND to another address".into()
            }
            std::io::ErrorKind::PermissionDenied => {
                "permission denied; use a port above 1024 or set CHECKIN_BIND".into()
            }
            _ => e.to_string(),
        },
    })
}

/// Serves until SIGTERM or Ctrl-C; requests in flight get 30 seconds to finish.
pub async fn serve(state: AppState, listener: TcpListener) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    tracing::info!(%address, database = %state.db.target(), "checkin is listening on http://{address}");
    HttpServer::new(move || build_app(state.clone()))
        .workers(workers)
        .shutdown_timeout(30)
        .listen(listener)?
        .run()
        .await
}
