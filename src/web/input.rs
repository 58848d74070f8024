//! Reading request bodies: a JSON object or a posted form, read into
//! `Fields`, from which each handler takes typed values. Every failing field
//! is collected and reported at once (422 naming each); fields a handler does
//! not take are ignored, so extra fields (role, status, enrolled_by) change
//! nothing.

use std::collections::BTreeMap;
use std::str::FromStr;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use serde_json::{Map, Value};

use crate::error::{AppError, FieldErrors};

/// A request body as named values, and the problems found so far.
#[derive(Debug, Default)]
pub struct Fields {
    values: Map<String, Value>,
    errors: FieldErrors,
}

impl Fields {
    /// A JSON object. Anything else is refused: 400 for bytes that are not
    /// JSON, 422 for JSON that is not an object.
    pub fn from_json(body: &[u8]) -> Result<Fields, AppError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| AppError::BadRequest(format!("the body is not valid JSON: {e}")))?;
        match value {
            Value::Object(values) => Ok(Fields {
                values,
                errors: FieldErrors::new(),
            }),
            _ => Err(AppError::invalid("body", "must be a JSON object")),
        }
    }

    /// An `application/x-www-form-urlencoded` body. A name given more than
    /// once (checkboxes) becomes a list.
    pub fn from_form(body: &[u8]) -> Fields {
        let mut values = Map::new();
        for (key, value) in form_urlencoded::parse(body) {
            let key = key.trim_end_matches("[]").to_string();
            let value = Value::String(value.into_owned());
            match values.get_mut(&key) {
                Some(Value::Array(list)) => list.push(value),
                Some(existing) => {
                    let first = existing.take();
                    *existing = Value::Array(vec![first, value]);
                }
                None => {
                    values.insert(key, value);
                }
            }
        }
        Fields {
            values,
            errors: FieldErrors::new(),
        }
    }

    /// Named texts, such as one row of a CSV file.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Fields {
        Fields {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
            errors: FieldErrors::new(),
        }
    }

    /// Sets a list value, as repeated form fields would.
    pub fn set_list(&mut self, name: &str, items: &[String]) {
        self.values.insert(
            name.to_string(),
            Value::Array(items.iter().cloned().map(Value::String).collect()),
        );
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors
            .entry(field.to_string())
            .or_default()
            .push(message.into());
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    pub fn errors(&self) -> &FieldErrors {
        &self.errors
    }

    /// The raw values, for re-showing a form as it was entered.
    pub fn entered(&self) -> BTreeMap<String, Value> {
        self.values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Ok when nothing failed; otherwise 422 naming every failing field.
    pub fn finish(self) -> Result<(), AppError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::invalid_fields(self.errors))
        }
    }

    fn present(&self, name: &str) -> Option<&Value> {
        match self.values.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(v) => Some(v),
        }
    }

    /// Text, trimmed, at most `max_chars`; `None` when absent or blank (an
    /// error then if `required`).
    pub fn text(&mut self, name: &str, required: bool, max_chars: usize) -> Option<String> {
        let value = match self.present(name) {
            None => {
                if required {
                    self.error(name, "is required");
                }
                return None;
            }
            Some(Value::String(s)) => s.trim().to_string(),
            Some(_) => {
                self.error(name, "must be text");
                return None;
            }
        };
        if value.chars().count() > max_chars {
            self.error(name, format!("must be at most {max_chars} characters"));
            return None;
        }
        Some(value)
    }

    /// A value read by a parser that explains its refusals.
    pub fn parsed<T, E: std::fmt::Display>(
        &mut self,
        name: &str,
        required: bool,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let text = self.text(name, required, 10_000)?;
        match parse(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(name, e.to_string());
                None
            }
        }
    }

    /// One of an enum's text values.
    pub fn choice<T: FromStr>(&mut self, name: &str, required: bool) -> Option<T>
    where
        T::Err: std::fmt::Display,
    {
        self.parsed(name, required, T::from_str)
    }

    /// A whole number within `range`, given as a JSON number or as text.
    pub fn integer(
        &mut self,
        name: &str,
        required: bool,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        let number = match self.present(name) {
            None => {
                if required {
                    self.error(name, "is required");
                }
                return None;
            }
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(_) => None,
        };
        match number {
            Some(n) if range.contains(&n) => Some(n),
            Some(_) => {
                self.error(
                    name,
                    format!("must be between {} and {}", range.start(), range.end()),
                );
                None
            }
            None => {
                self.error(name, "must be a whole number");
                None
            }
        }
    }

    /// true/false; a form's checkbox sends "on" when ticked and nothing
    /// when not, so absence is `false` unless the field is `required`.
    pub fn boolean(&mut self, name: &str, required: bool) -> Option<bool> {
        match self.present(name) {
            None if required => {
                self.error(name, "is required");
                None
            }
            None => Some(false),
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) => match s.trim() {
                "true" | "on" | "yes" | "1" => Some(true),
                "false" | "off" | "no" | "0" => Some(false),
                _ => {
                    self.error(name, "must be true or false");
                    None
                }
            },
            Some(_) => {
                self.error(name, "must be true or false");
                None
            }
        }
    }

    /// A list of texts (a JSON array, repeated form fields, or one text with
    /// commas), each parsed; duplicates dropped.
    pub fn list<T: PartialEq, E: std::fmt::Display>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Option<Vec<T>> {
        let items: Vec<String> = match self.present(name) {
            None => Vec::new(),
            Some(Value::Array(list)) => {
                let mut items = Vec::new();
                for item in list {
                    match item {
                        Value::String(s) => items.push(s.clone()),
                        _ => {
                            self.error(name, "must be a list of texts");
                            return None;
                        }
                    }
                }
                items
            }
            Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
            Some(_) => {
                self.error(name, "must be a list of texts");
                return None;
            }
        };
        let mut out = Vec::new();
        let mut failed = false;
        for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            match parse(item) {
                Ok(v) if !out.contains(&v) => out.push(v),
                Ok(_) => {}
                Err(e) => {
                    self.error(name, e.to_string());
                    failed = true;
                }
            }
        }
        (!failed).then_some(out)
    }
}

/// A JSON API body, read into `Fields` (1 MiB at most).
pub struct JsonFields(pub Fields);

impl FromRequest for JsonFields {
    type Error = AppError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let is_json = req
                .headers()
                .get(actix_web::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            if !is_json {
                return Err(AppError::BadRequest(
                    "send the body as application/json".into(),
                ));
            }
            let body = read_body(&req, &mut payload).await?;
            Ok(JsonFields(Fields::from_json(&body)?))
        })
    }
}

pub async fn read_body(req: &HttpRequest, payload: &mut Payload) -> Result<web::Bytes, AppError> {
    web::Bytes::from_request(req, payload).await.map_err(|e| {
        match e.as_response_error().status_code().as_u16() {
            413 => AppError::PayloadTooLarge,
            _ => AppError::BadRequest("the body could not be read".into()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failing_field_is_named_at_once() {
        let mut f = Fields::from_json(
            br#"{"name": "", "age": "x", "capacity": 500, "ok": "maybe", "roles": ["admin", 5]}"#,
        )
        .unwrap();
        f.text("name", true, 100);
        f.integer("age", true, 0..=120);
        f.integer("capacity", true, 0..=100);
        f.boolean("ok", false);
        f.list("roles", |s: &str| s.parse::<crate::domain::Role>());
        f.text("missing", true, 10);
        let err = f.finish().unwrap_err();
        let fields = err.fields().unwrap();
        for name in ["name", "age", "capacity", "ok", "roles", "missing"] {
            assert!(fields.contains_key(name), "{name} not named: {fields:?}");
        }
    }

    #[test]
    fn forms_read_like_json() {
        let mut f =
            Fields::from_form(b"name=Ana&languages=es&languages=en&interpreter=on&capacity=3");
        assert_eq!(f.text("name", true, 100).as_deref(), Some("Ana"));
        assert_eq!(
            f.list("languages", |s: &str| Ok::<_, String>(s.to_string())),
            Some(vec!["es".to_string(), "en".to_string()])
        );
        assert_eq!(f.boolean("interpreter", false), Some(true));
        assert_eq!(f.boolean("absent", false), Some(false));
        assert_eq!(f.integer("capacity", true, 0..=10), Some(3));
        assert!(f.finish().is_ok());
    }

    #[test]
    fn text_limits_count_characters() {
        let mut f = Fields::from_json(
            format!(
                r#"{{"a": "{}", "b": "{}"}}"#,
                "ñ".repeat(100),
                "x".repeat(101)
            )
            .as_bytes(),
        )
        .unwrap();
        assert!(f.text("a", true, 100).is_some());
        assert!(f.text("b", true, 100).is_none());
        assert!(f.errors().contains_key("b"));
    }

    #[test]
    fn bodies_that_are_not_objects_are_refused() {
        assert!(matches!(
            Fields::from_json(b"{not json"),
            Err(AppError::BadRequest(_))
        ));
        assert!(matches!(
            Fields::from_json(b"[1,2]"),
            Err(AppError::Validation { .. })
        ));
    }
}
