//! Languages as ISO 639-1 codes ("es", "en"): what a patient prefers and what
//! a student speaks. The programme serves English and Spanish first.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Every ISO 639-1 code.
const ISO_639_1: &[&str] = &[
    "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bi",
    "bm", "bn", "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da", "de",
    "dv", "dz", "ee", "el", "en", "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr", "fy",
    "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he", "hi", "ho", "hr", "ht", "hu", "hy", "hz", "ia",
    "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv", "ka", "kg", "ki", "kj", "kk",
    "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li", "ln", "lo",
    "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb", "nd",
    "ne", "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi", "pl",
    "ps", "pt", "qu", "rm", "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk", "sl",
    "sm", "sn", "so", "sq", "sr", "ss", "st", "su", "sv", "sw", "ta", "te", "tg", "th", "ti", "tk",
    "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk", "ur", "uz", "ve", "vi", "vo", "wa",
    "wo", "xh", "yi", "yo", "za", "zh", "zu",
];

/// Names for the languages a US primary-care practice meets most; others show
/// their code.
const NAMES: &[(&str, &str)] = &[
    ("en", "English"),
    ("es", "Spanish"),
    ("ar", "Arabic"),
    ("bn", "Bengali"),
    ("fr", "French"),
    ("ht", "Haitian Creole"),
    ("hi", "Hindi"),
    ("it", "Italian"),
    ("ko", "Korean"),
    ("pl", "Polish"),
    ("pt", "Portuguese"),
    ("ru", "Russian"),
    ("so", "Somali"),
    ("tl", "Tagalog"),
    ("uk", "Ukrainian"),
    ("ur", "Urdu"),
    ("vi", "Vietnamese"),
    ("zh", "Chinese"),
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Language(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an ISO 639-1 language code such as en or es")]
pub struct UnknownLanguage(pub String);

impl Language {
    pub fn parse(code: &str) -> Result<Self, UnknownLanguage> {
        let code = code.trim().to_ascii_lowercase();
        if ISO_639_1.binary_search(&code.as_str()).is_ok() {
            Ok(Language(code))
        } else {
            Err(UnknownLanguage(code))
        }
    }

    pub fn code(&self) -> &str {
        &self.0
    }

    pub fn name(&self) -> &str {
        NAMES
            .iter()
            .find(|(code, _)| *code == self.0)
            .map(|(_, name)| *name)
            .unwrap_or(&self.0)
    }

    /// A comma-separated list such as "es, en"; every entry must be valid.
    pub fn parse_list(list: &str) -> Result<Vec<Self>, UnknownLanguage> {
        let mut out: Vec<Language> = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let language = Language::parse(part)?;
            if !out.contains(&language) {
                out.push(language);
            }
        }
        Ok(out)
    }
}

impl TryFrom<String> for Language {
    type Error = UnknownLanguage;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Language::parse(&value)
    }
}

impl From<Language> for String {
    fn from(value: Language) -> Self {
        value.0
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_iso_639_1() {
        assert!(
            ISO_639_1.windows(2).all(|w| w[0] < w[1]),
            "the list must stay sorted"
        );
        assert_eq!(ISO_639_1.len(), 183);
        assert_eq!(Language::parse(" ES ").unwrap().code(), "es");
        assert_eq!(Language::parse("es").unwrap().name(), "Spanish");
        for bad in ["xx", "", "spa", "e", "español"] {
            assert!(Language::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn lists_parse_whole_or_not_at_all() {
        let list = Language::parse_list("es, en,es").unwrap();
        assert_eq!(
            list.iter().map(Language::code).collect::<Vec<_>>(),
            ["es", "en"]
        );
        assert_eq!(Language::parse_list("es,xx").unwrap_err().0, "xx");
    }
}
