//! Validated values about people: email addresses and names.

use std::fmt;

use serde::{Deserialize, Serialize};

pub const NAME_MAX_CHARS: usize = 100;

/// An email address, trimmed and lower-cased, so one person is one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("is required")]
    Empty,
    #[error("is not an email address such as name@example.org")]
    Malformed,
    #[error("is longer than 254 characters")]
    TooLong,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(EmailError::Empty);
        }
        if email.chars().count() > 254 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = email.split_once('@').ok_or(EmailError::Malformed)?;
        let well_formed = !local.is_empty()
            && local.len() <= 64
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !email
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c));
        // validator's check (the HTML5 rule) on top of ours.
        if well_formed && validator::ValidateEmail::validate_email(&email) {
            Ok(Email(email))
        } else {
            Err(EmailError::Malformed)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Email::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A given or family name: trimmed, 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("is required")]
    Empty,
    #[error("is longer than {NAME_MAX_CHARS} characters")]
    TooLong,
    #[error("contains control characters")]
    Control,
}

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let name = raw.trim();
        if name.is_empty() {
            Err(NameError::Empty)
        } else if name.chars().count() > NAME_MAX_CHARS {
            Err(NameError::TooLong)
        } else if name.chars().any(char::is_control) {
            Err(NameError::Control)
        } else {
            Ok(PersonName(name.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// "Ana María López" → ("Ana", "María López"): the first word is the
    /// given name, the rest the family name (which may be empty for staff).
    pub fn split_full(raw: &str) -> Result<(PersonName, String), NameError> {
        let full = PersonName::parse(raw)?;
        let (given, family) = match full.0.split_once(char::is_whitespace) {
            Some((given, family)) => (given.to_string(), family.trim().to_string()),
            None => (full.0.clone(), String::new()),
        };
        Ok((PersonName(given), family))
    }
}

impl TryFrom<String> for PersonName {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PersonName::parse(&value)
    }
}

impl From<PersonName> for String {
    fn from(value: PersonName) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse(" Ana@Clinic.ORG ").unwrap().as_str(),
            "ana@clinic.org"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@clinic.org",
            "ana@clinic",
            "a b@clinic.org",
            "a@b@c.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            Email::parse(&format!("{}@x.org", "a".repeat(250))),
            Err(EmailError::TooLong)
        );
    }

    #[test]
    fn names_are_bounded() {
        assert_eq!(PersonName::parse("  María ").unwrap().as_str(), "María");
        assert_eq!(PersonName::parse(" "), Err(NameError::Empty));
        assert_eq!(PersonName::parse(&"a".repeat(101)), Err(NameError::TooLong));
        assert!(PersonName::parse(&"ñ".repeat(100)).is_ok());
        assert_eq!(PersonName::parse("a\u{0}b"), Err(NameError::Control));
        let (given, family) = PersonName::split_full("Ana María López").unwrap();
        assert_eq!((given.as_str(), family.as_str()), ("Ana", "María López"));
    }
}
