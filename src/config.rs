//! One `Settings` struct: defaults that work with nothing set, then an optional
//! `checkin.toml`, then `CHECKIN_*` environment variables (the last one wins).

use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde::Deserialize;

use crate::domain::schedule::DEFAULT_PROGRAMME_WEEKS;

/// Everything an operator can set. Field names are the `checkin.toml` keys;
/// the environment variable is the upper-cased name with `CHECKIN_` before it.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub bind: String,
    pub base_url: String,
    pub smtp_url: Option<String>,
    pub mail_from: String,
    pub timezone: Tz,
    pub programme_weeks: u32,
    pub secret_key: Option<String>,
    pub data_dir: PathBuf,
    pub db_pool_size: u32,
    pub log_format: LogFormat,
    /// The health system's phone interpreter line, shown on call pages.
    pub interpreter_line: String,
    /// How a patient's number becomes a link: `{phone}` is replaced by the
    /// E.164 number (a telehealth app's URL scheme, or `tel:`).
    pub call_link_template: String,
    /// A folder laid out like `protocol/` to use instead of the built-in one.
    pub protocol_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The raw form of `checkin.toml`; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    database_url: Option<String>,
    bind: Option<String>,
    base_url: Option<String>,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    timezone: Option<String>,
    programme_weeks: Option<u32>,
    secret_key: Option<String>,
    data_dir: Option<String>,
    db_pool_size: Option<u32>,
    log_format: Option<String>,
    interpreter_line: Option<String>,
    call_link_template: Option<String>,
    protocol_dir: Option<String>,
}

/// A setting that cannot be used, named the way the operator wrote it.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    fn new(key: &str, problem: impl Into<String>) -> Self {
        Self {
            key: key.to_string(),
            problem: problem.into(),
        }
    }
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/checkin.db";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

impl Settings {
    /// Settings from `checkin.toml` (or the file named by `CHECKIN_CONFIG`) and
    /// the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        let explicit = std::env::var("CHECKIN_CONFIG").ok();
        let path = explicit.clone().unwrap_or_else(|| "checkin.toml".into());
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str::<FileSettings>(&text).map_err(|e| {
                ConfigError::new(
                    &path,
                    format!("cannot be read as settings: {}", e.message()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
                FileSettings::default()
            }
            Err(e) => return Err(ConfigError::new(&path, format!("cannot be read: {e}"))),
        };
        Self::from_sources(file, |key| std::env::var(key).ok())
    }

    /// Settings from the environment alone, as a test or a tool would build them.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_sources(FileSettings::default(), env)
    }

    fn from_sources(
        file: FileSettings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let pick = |key: &str, from_file: Option<String>| -> Option<String> {
            env(&format!("CHECKIN_{}", key.to_uppercase()))
                .filter(|v| !v.trim().is_empty())
                .or(from_file)
        };
        let database_url =
            pick("database_url", file.database_url).unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        let bind = pick("bind", file.bind).unwrap_or_else(|| DEFAULT_BIND.into());
        if bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "CHECKIN_BIND",
                format!("{bind:?} is not an address and port such as 127.0.0.1:8080"),
            ));
        }
        let base_url = pick("base_url", file.base_url)
            .unwrap_or_else(|| format!("http://{bind}"))
            .trim_end_matches('/')
            .to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ConfigError::new(
                "CHECKIN_BASE_URL",
                "must start with http:// or https://",
            ));
        }
        let timezone_name =
            pick("timezone", file.timezone).unwrap_or_else(|| "America/New_York".into());
        let timezone = timezone_name.parse::<Tz>().map_err(|_| {
            ConfigError::new(
                "CHECKIN_TIMEZONE",
                format!("{timezone_name:?} is not an IANA time zone such as America/New_York"),
            )
        })?;
        let programme_weeks = match env("CHECKIN_PROGRAMME_WEEKS").filter(|v| !v.is_empty()) {
            Some(v) => v.trim().parse::<u32>().map_err(|_| {
                ConfigError::new("CHECKIN_PROGRAMME_WEEKS", format!("{v:?} is not a number"))
            })?,
            None => file.programme_weeks.unwrap_or(DEFAULT_PROGRAMME_WEEKS),
        };
        if !(1..=52).contains(&programme_weeks) {
            return Err(ConfigError::new(
                "CHECKIN_PROGRAMME_WEEKS",
                "must be between 1 and 52",
            ));
        }
        let db_pool_size = match env("CHECKIN_DB_POOL_SIZE").filter(|v| !v.is_empty()) {
            Some(v) => v.trim().parse::<u32>().map_err(|_| {
                ConfigError::new("CHECKIN_DB_POOL_SIZE", format!("{v:?} is not a number"))
            })?,
            None => file.db_pool_size.unwrap_or(10),
        };
        if !(1..=200).contains(&db_pool_size) {
            return Err(ConfigError::new(
                "CHECKIN_DB_POOL_SIZE",
                "must be between 1 and 200",
            ));
        }
        let log_format = match pick("log_format", file.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::new(
                    "CHECKIN_LOG_FORMAT",
                    format!("{other:?} is not one of: text, json"),
                ))
            }
        };
        let data_dir =
            PathBuf::from(pick("data_dir", file.data_dir).unwrap_or_else(|| "data".into()));
        let call_link_template = pick("call_link_template", file.call_link_template)
            .unwrap_or_else(|| "tel:{phone}".into());
        if !call_link_template.contains("{phone}") {
            return Err(ConfigError::new(
                "CHECKIN_CALL_LINK_TEMPLATE",
                "must contain {phone}, e.g. tel:{phone}",
            ));
        }
        Ok(Settings {
            database_url,
            bind,
            base_url,
            smtp_url: pick("smtp_url", file.smtp_url),
            mail_from: pick("mail_from", file.mail_from)
                .unwrap_or_else(|| "checkin <checkin@localhost>".into()),
            timezone,
            programme_weeks,
            secret_key: pick("secret_key", file.secret_key),
            data_dir,
            db_pool_size,
            log_format,
            interpreter_line: pick("interpreter_line", file.interpreter_line).unwrap_or_default(),
            call_link_template,
            protocol_dir: pick("protocol_dir", file.protocol_dir).map(PathBuf::from),
        })
    }

    /// Where emails go when no SMTP server is configured.
    pub fn mail_dir(&self) -> PathBuf {
        self.data_dir.join("mail")
    }

    /// The key that signs and hashes secrets: the configured one, or one made
    /// once and kept in the data folder so restarts keep sessions valid.
    pub fn resolve_secret_key(&self) -> std::io::Result<String> {
        if let Some(key) = &self.secret_key {
            return Ok(key.clone());
        }
        let path = self.data_dir.join("secret.key");
        match std::fs::read_to_string(&path) {
            Ok(key) if !key.trim().is_empty() => return Ok(key.trim().to_string()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let key = crate::auth::random_token(32);
        write_private(&path, &key)?;
        Ok(key)
    }
}

/// Creates `path` readable only by its owner. Refuses to replace a file another
/// instance wrote a moment before: that one's key is then read back.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut f) => {
            f.write_all(contents.as_bytes())?;
            f.sync_all()
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    #[test]
    fn defaults_work_with_nothing_set() {
        let s = Settings::from_env(env_of(&[])).unwrap();
        assert_eq!(s.database_url, "sqlite://data/checkin.db");
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert_eq!(s.base_url, "http://127.0.0.1:8080");
        assert_eq!(s.timezone, chrono_tz::America::New_York);
        assert_eq!(s.programme_weeks, 8);
        assert!(s.smtp_url.is_none());
    }

    #[test]
    fn environment_overrides_and_bad_values_are_named() {
        let s = Settings::from_env(env_of(&[
            ("CHECKIN_TIMEZONE", "America/Chicago"),
            ("CHECKIN_PROGRAMME_WEEKS", "10"),
            ("CHECKIN_BASE_URL", "https://checkin.example.org/"),
        ]))
        .unwrap();
        assert_eq!(s.timezone, chrono_tz::America::Chicago);
        assert_eq!(s.programme_weeks, 10);
        assert_eq!(s.base_url, "https://checkin.example.org");

        let bad = |k: &str, v: &str| Settings::from_env(env_of(&[(k, v)])).unwrap_err().key;
        assert_eq!(bad("CHECKIN_TIMEZONE", "Mars/Olympus"), "CHECKIN_TIMEZONE");
        assert_eq!(
            bad("CHECKIN_PROGRAMME_WEEKS", "0"),
            "CHECKIN_PROGRAMME_WEEKS"
        );
        assert_eq!(
            bad("CHECKIN_PROGRAMME_WEEKS", "eight"),
            "CHECKIN_PROGRAMME_WEEKS"
        );
        assert_eq!(bad("CHECKIN_BIND", "localhost"), "CHECKIN_BIND");
        assert_eq!(bad("CHECKIN_LOG_FORMAT", "xml"), "CHECKIN_LOG_FORMAT");
    }

    #[test]
    fn the_toml_file_is_read_and_the_environment_wins() {
        let file: FileSettings = toml::from_str(
            "timezone = \"Europe/London\"\nprogramme_weeks = 6\nbind = \"127.0.0.1:9000\"",
        )
        .unwrap();
        let s =
            Settings::from_sources(file, env_of(&[("CHECKIN_BIND", "127.0.0.1:9100")])).unwrap();
        assert_eq!(s.timezone, chrono_tz::Europe::London);
        assert_eq!(s.programme_weeks, 6);
        assert_eq!(s.bind, "127.0.0.1:9100");
        assert!(toml::from_str::<FileSettings>("colour = \"red\"").is_err());
    }

    #[test]
    fn the_secret_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Settings::from_env(env_of(&[])).unwrap();
        s.data_dir = dir.path().to_path_buf();
        let first = s.resolve_secret_key().unwrap();
        let second = s.resolve_secret_key().unwrap();
        assert_eq!(first, second);
        assert!(first.len() >= 43);
    }
}
