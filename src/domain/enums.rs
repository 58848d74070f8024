//! The programme's fixed vocabularies (SPEC.md, rules 3, 6, 8 and 9).
//!
//! Every one is stored as its lowercase snake_case text — in the database,
//! in JSON and in forms — so that SQLite and PostgreSQL hold the same thing,
//! a CSV export reads plainly, and adding a value needs no migration of
//! existing rows. `text_enum!` writes the conversions once; parsing is
//! exact (no trimming or case folding) because the text *is* the stored form.

/// A text that is not one of an enum's values, e.g. a cadence of `"daily"`.
///
/// One error for every enum, so the web layer maps all of them to a single
/// field message; the message lists what would have been accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?} (expected one of: {})", .expected.join(", "))]
pub struct UnknownValue {
    /// What was being parsed, in words ("cadence", "contact mode").
    pub kind: &'static str,
    /// The text that was refused, as given.
    pub value: String,
    /// The accepted texts, in declaration order.
    pub expected: &'static [&'static str],
}

/// Defines a fieldless enum stored as lowercase snake_case text.
///
/// ```text
/// text_enum! {
///     /// How often a patient is called.
///     pub enum Cadence("cadence") {
///         Weekly = "weekly",
///         Biweekly = "biweekly",
///     }
/// }
/// ```
///
/// The texts are written out (a `macro_rules!` macro cannot derive them from
/// the variant names); serde's `rename_all = "snake_case"` must agree with
/// them, which the tests check for every enum. Declaration order is the sort
/// order.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($kind:literal) {
            $( $(#[$variant_meta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            ::serde::Serialize, ::serde::Deserialize,
        )]
        #[serde(rename_all = "snake_case")]
        $vis enum $name {
            $( $(#[$variant_meta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration (and sort) order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
            /// The stored text of every value, in the order of `ALL`.
            pub const TEXTS: &'static [&'static str] = &[$($text),+];
            /// What this enum is called in error messages.
            pub const KIND: &'static str = $kind;

            /// The stored text of this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::domain::enums::UnknownValue;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    _ => Err($crate::domain::enums::UnknownValue {
                        kind: $kind,
                        value: text.to_owned(),
                        expected: Self::TEXTS,
                    }),
                }
            }
        }

        impl TryFrom<&str> for $name {
            type Error = $crate::domain::enums::UnknownValue;

            fn try_from(text: &str) -> Result<Self, Self::Error> {
                text.parse()
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::domain::enums::UnknownValue;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                text.parse()
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.as_str().to_owned()
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                // `pad` so that width and alignment work in tables and logs.
                f.pad(self.as_str())
            }
        }
    };
}

/// Other modules of the crate may define their own text enums the same way
/// (`crate::domain::enums::text_enum!`).
#[allow(unused_imports)] // unused until another module needs it
pub(crate) use text_enum;

text_enum! {
    /// What a signed-in person may do (SPEC.md rule 2).
    pub enum Role("role") {
        /// Enrols patients and hears about their own patients.
        Physician = "physician",
        /// A volunteer caller; sees only the patients assigned to them now.
        Student = "student",
        /// A student leader: pairing, workload, discharges, debriefs.
        Leader = "leader",
        /// Manages accounts and settings.
        Admin = "admin",
    }
}

text_enum! {
    /// How often a patient is called.
    pub enum Cadence("cadence") {
        Weekly = "weekly",
        Biweekly = "biweekly",
    }
}

impl Cadence {
    /// Calendar days between calls, counted in programme time.
    pub fn days(self) -> i64 {
        match self {
            Cadence::Weekly => 7,
            Cadence::Biweekly => 14,
        }
    }

    /// Calls per week this patient adds to a student's workload: a biweekly
    /// patient counts half (SPEC.md, workload row).
    pub fn weight(self) -> f64 {
        match self {
            Cadence::Weekly => 1.0,
            Cadence::Biweekly => 0.5,
        }
    }
}

text_enum! {
    /// How a call was made, always through the telehealth app so that the
    /// student's own number is never shown.
    pub enum ContactMode("contact mode") {
        Phone = "phone",
        Video = "video",
    }
}

text_enum! {
    /// What came of one call attempt (SPEC.md rule 3).
    pub enum Outcome("outcome") {
        /// The check-in took place.
        Completed = "completed",
        NoAnswer = "no_answer",
        Voicemail = "voicemail",
        /// The patient answered and did not want a check-in this time.
        Declined = "declined",
        WrongNumber = "wrong_number",
        /// The patient answered but no interpreter could be had.
        InterpreterUnavailable = "interpreter_unavailable",
        /// The patient answered and asked for another time.
        Rescheduled = "rescheduled",
    }
}

/// How many unsuccessful attempts in a row flag a patient "unreachable"
/// (SPEC.md rule 9).
pub const UNREACHABLE_AFTER: usize = 3;

impl Outcome {
    /// Whether someone talked to the patient on this call.
    ///
    /// `completed`, `declined` and `rescheduled` mean the patient was
    /// reached: they can be called again, so these end an "unreachable" run.
    /// `no_answer`, `voicemail`, `wrong_number` and `interpreter_unavailable`
    /// are unsuccessful attempts and count towards "unreachable": with no
    /// interpreter the patient could not be spoken with either, and that is
    /// exactly the pattern leaders need to see.
    pub fn reached_patient(self) -> bool {
        match self {
            Outcome::Completed | Outcome::Declined | Outcome::Rescheduled => true,
            Outcome::NoAnswer
            | Outcome::Voicemail
            | Outcome::WrongNumber
            | Outcome::InterpreterUnavailable => false,
        }
    }
}

/// Whether a patient's latest calls make them "unreachable" (SPEC.md rule 9):
/// the newest [`UNREACHABLE_AFTER`] outcomes all exist and none reached the
/// patient. Give the outcomes newest first; older ones are ignored.
pub fn is_unreachable(recent_outcomes_newest_first: &[Outcome]) -> bool {
    recent_outcomes_newest_first
        .get(..UNREACHABLE_AFTER)
        .is_some_and(|latest| latest.iter().all(|outcome| !outcome.reached_patient()))
}

text_enum! {
    /// A concern the caller flags on a call (SPEC.md rule 8).
    pub enum ConcernLevel("concern level") {
        None = "none",
        NonUrgent = "non_urgent",
        /// Emails the enrolling physician and the leaders at once.
        Urgent = "urgent",
    }
}

text_enum! {
    /// Why a patient left the programme (SPEC.md rule 6).
    pub enum DischargeReason("discharge reason") {
        /// Finished the programme.
        Completed = "completed",
        Unreachable = "unreachable",
        Withdrew = "withdrew",
        Transferred = "transferred",
        Other = "other",
    }
}

text_enum! {
    /// Whether a patient is still in the programme; calls can only be logged
    /// for active patients (SPEC.md rule 7).
    pub enum PatientStatus("patient status") {
        Active = "active",
        Discharged = "discharged",
    }
}

text_enum! {
    /// Why the physician enrolled the patient.
    pub enum EnrolmentReason("enrolment reason") {
        MentalHealth = "mental_health",
        SocialIsolation = "social_isolation",
        LivingCircumstances = "living_circumstances",
        CovidWorries = "covid_worries",
        Other = "other",
    }
}

text_enum! {
    /// Where an email in the outbox stands (SPEC.md rule 11).
    pub enum EmailStatus("email status") {
        Pending = "pending",
        Sent = "sent",
        /// Gave up after the last retry.
        Failed = "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{de::DeserializeOwned, Serialize};
    use std::fmt::{Debug, Display};
    use std::str::FromStr;

    /// Every value's text parses back, converts both ways, displays as
    /// itself, and is what serde writes and reads.
    fn check_round_trips<T>(all: &[T], texts: &[&str], as_str: fn(T) -> &'static str)
    where
        T: Copy
            + Debug
            + PartialEq
            + Display
            + FromStr<Err = UnknownValue>
            + for<'a> TryFrom<&'a str, Error = UnknownValue>
            + TryFrom<String, Error = UnknownValue>
            + Into<String>
            + Serialize
            + DeserializeOwned,
    {
        assert_eq!(all.len(), texts.len());
        for (&value, &text) in all.iter().zip(texts) {
            assert_eq!(as_str(value), text);
            assert_eq!(text.parse::<T>(), Ok(value));
            assert_eq!(T::try_from(text), Ok(value));
            assert_eq!(T::try_from(text.to_owned()), Ok(value));
            assert_eq!(Into::<String>::into(value), text);
            assert_eq!(value.to_string(), text);
            let json = serde_json::to_string(&value).expect("serialises");
            assert_eq!(json, format!("\"{text}\""), "serde text of {value:?}");
            assert_eq!(serde_json::from_str::<T>(&json).expect("parses"), value);
            assert!(
                text.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{text} is not lowercase snake_case"
            );
        }
    }

    #[test]
    fn every_enum_round_trips_through_its_text() {
        check_round_trips(Role::ALL, Role::TEXTS, Role::as_str);
        check_round_trips(Cadence::ALL, Cadence::TEXTS, Cadence::as_str);
        check_round_trips(ContactMode::ALL, ContactMode::TEXTS, ContactMode::as_str);
        check_round_trips(Outcome::ALL, Outcome::TEXTS, Outcome::as_str);
        check_round_trips(ConcernLevel::ALL, ConcernLevel::TEXTS, ConcernLevel::as_str);
        check_round_trips(
            DischargeReason::ALL,
            DischargeReason::TEXTS,
            DischargeReason::as_str,
        );
        check_round_trips(
            PatientStatus::ALL,
            PatientStatus::TEXTS,
            PatientStatus::as_str,
        );
        check_round_trips(
            EnrolmentReason::ALL,
            EnrolmentReason::TEXTS,
            EnrolmentReason::as_str,
        );
        check_round_trips(EmailStatus::ALL, EmailStatus::TEXTS, EmailStatus::as_str);
    }

    #[test]
    fn values_are_the_ones_the_spec_names() {
        assert_eq!(
            Outcome::TEXTS,
            [
                "completed",
                "no_answer",
                "voicemail",
                "declined",
                "wrong_number",
                "interpreter_unavailable",
                "rescheduled"
            ]
        );
        assert_eq!(Role::TEXTS, ["physician", "student", "leader", "admin"]);
        assert_eq!(ConcernLevel::TEXTS, ["none", "non_urgent", "urgent"]);
        assert_eq!(
            DischargeReason::TEXTS,
            [
                "completed",
                "unreachable",
                "withdrew",
                "transferred",
                "other"
            ]
        );
    }

    #[test]
    fn unknown_text_names_the_kind_and_the_accepted_values() {
        let error = "daily".parse::<Cadence>().unwrap_err();
        assert_eq!(error.kind, "cadence");
        assert_eq!(error.value, "daily");
        assert_eq!(
            error.to_string(),
            r#"unknown cadence "daily" (expected one of: weekly, biweekly)"#
        );
        assert_eq!(
            ContactMode::try_from("fax").unwrap_err().to_string(),
            r#"unknown contact mode "fax" (expected one of: phone, video)"#
        );
        assert_eq!(
            ConcernLevel::try_from(String::from("Urgent"))
                .unwrap_err()
                .to_string(),
            r#"unknown concern level "Urgent" (expected one of: none, non_urgent, urgent)"#
        );
    }

    #[test]
    fn parsing_is_exact() {
        for text in ["Weekly", " weekly", "weekly ", "WEEKLY", ""] {
            assert!(text.parse::<Cadence>().is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn serde_refuses_unknown_text() {
        assert!(serde_json::from_str::<Outcome>(r#""no answer""#).is_err());
        assert!(serde_json::from_str::<Outcome>(r#""NoAnswer""#).is_err());
        assert_eq!(
            serde_json::from_str::<Outcome>(r#""interpreter_unavailable""#).unwrap(),
            Outcome::InterpreterUnavailable
        );
    }

    #[test]
    fn display_honours_width() {
        assert_eq!(format!("[{:<8}]", Cadence::Weekly), "[weekly  ]");
    }

    #[test]
    fn order_is_declaration_order() {
        assert!(ConcernLevel::None < ConcernLevel::NonUrgent);
        assert!(ConcernLevel::NonUrgent < ConcernLevel::Urgent);
        let mut sorted = Outcome::ALL.to_vec();
        sorted.sort();
        assert_eq!(sorted, Outcome::ALL);
    }

    #[test]
    fn cadence_days_and_weight() {
        assert_eq!(Cadence::Weekly.days(), 7);
        assert_eq!(Cadence::Biweekly.days(), 14);
        assert_eq!(Cadence::Weekly.weight(), 1.0);
        assert_eq!(Cadence::Biweekly.weight(), 0.5);
    }

    #[test]
    fn reached_patient_splits_outcomes() {
        let reached: Vec<_> = Outcome::ALL
            .iter()
            .copied()
            .filter(|o| o.reached_patient())
            .collect();
        assert_eq!(
            reached,
            [Outcome::Completed, Outcome::Declined, Outcome::Rescheduled]
        );
    }

    #[test]
    fn unreachable_after_three_unsuccessful_attempts_in_a_row() {
        use Outcome::*;
        assert!(!is_unreachable(&[]));
        assert!(!is_unreachable(&[NoAnswer, Voicemail]));
        assert!(is_unreachable(&[NoAnswer, Voicemail, WrongNumber]));
        assert!(is_unreachable(&[
            InterpreterUnavailable,
            NoAnswer,
            NoAnswer,
            Completed
        ]));
        // A reached patient anywhere in the newest three resets the run.
        assert!(!is_unreachable(&[NoAnswer, NoAnswer, Declined, NoAnswer]));
        assert!(!is_unreachable(&[Completed, NoAnswer, NoAnswer, NoAnswer]));
        assert!(!is_unreachable(&[NoAnswer, Rescheduled, NoAnswer]));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn reference(outcomes: &[Outcome]) -> bool {
            let mut unsuccessful_in_a_row = 0;
            for outcome in outcomes {
                if outcome.reached_patient() {
                    break;
                }
                unsuccessful_in_a_row += 1;
            }
            unsuccessful_in_a_row >= 3
        }

        proptest! {
            #[test]
            fn is_unreachable_matches_a_naive_reference(
                outcomes in prop::collection::vec(prop::sample::select(Outcome::ALL), 0..8)
            ) {
                prop_assert_eq!(is_unreachable(&outcomes), reference(&outcomes));
            }

            #[test]
            fn any_other_text_is_refused(text in "\\PC{0,20}") {
                let parsed = text.parse::<Outcome>();
                prop_assert_eq!(parsed.is_ok(), Outcome::TEXTS.contains(&text.as_str()));
                if let Err(error) = parsed {
                    prop_assert_eq!(error.kind, "outcome");
                    prop_assert_eq!(error.value, text);
                }
            }
        }
    }
}
