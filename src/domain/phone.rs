//! A patient's phone number, parsed with libphonenumber's rules and stored as
//! E.164 (`+12155550123`). Numbers written without a country code are read
//! as US numbers, the way a US practice writes them.

use std::fmt;

use phonenumber::country::Id;
use phonenumber::Mode;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("is required")]
    Empty,
    #[error("is not a phone number (write it as (215) 555-0123 or +52 55 1234 5678)")]
    Unreadable,
    #[error("is not a valid phone number for its country (check the number of digits)")]
    Invalid,
}

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(PhoneError::Empty);
        }
        if raw.chars().count() > 40 {
            return Err(PhoneError::Unreadable);
        }
        let number = phonenumber::parse(Some(Id::US), raw).map_err(|_| PhoneError::Unreadable)?;
        if !phonenumber::is_valid(&number) {
            return Err(PhoneError::Invalid);
        }
        Ok(Phone(number.format().mode(Mode::E164).to_string()))
    }

    /// E.164
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How people read it: a US number as (215) 555-0123, any other in
    /// international form (+52 55 1234 5678). Text that is not a number is
    /// returned as it is.
    pub fn for_people(e164: &str) -> String {
        match phonenumber::parse(None, e164) {
            Ok(number) if number.code().value() == 1 => {
                number.format().mode(Mode::National).to_string()
            }
            Ok(number) => number.format().mode(Mode::International).to_string(),
            Err(_) => e164.to_string(),
        }
    }
}

impl TryFrom<String> for Phone {
    type Error = PhoneError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Phone::parse(&value)
    }
}

impl From<Phone> for String {
    fn from(value: Phone) -> Self {
        value.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_shown_the_way_people_write_them() {
        assert_eq!(Phone::for_people("+12155550123"), "(215) 555-0123");
        assert_eq!(Phone::for_people("+525512345678"), "+52 55 1234 5678");
        assert_eq!(Phone::for_people("not a number"), "not a number");
    }

    #[test]
    fn us_numbers_are_accepted_as_written_locally() {
        for written in [
            "(201) 555-0123",
            "201-555-0123",
            "2015550123",
            "+1 201 555 0123",
            "1 (201) 555-0123",
        ] {
            assert_eq!(
                Phone::parse(written).unwrap().as_str(),
                "+12015550123",
                "{written}"
            );
        }
        assert_eq!(
            Phone::parse("+52 55 1234 5678").unwrap().as_str(),
            "+525512345678"
        );
    }

    #[test]
    fn bad_numbers_are_refused() {
        assert_eq!(Phone::parse(""), Err(PhoneError::Empty));
        for bad in ["555", "+1 (856) 555-01234", "call me", "12", "+999 123"] {
            assert!(Phone::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
