//! The programme's calendar, in the programme's words (SPEC.md rules 4–6, 10).
//!
//! - **Programme time** (rule 10). Moments — when a call happened, when the
//!   next one is booked — are stored as UTC instants. Days — "today", the
//!   day a follow-up is due, the discharge day — are calendar days in the
//!   programme's time zone (default `America/New_York`). A patient booked
//!   for 10:00 is called at 10:00 on the clock at the practice, also in the
//!   week the clocks change.
//! - **Follow-up** (rule 4). Before hanging up the student books the next
//!   call (`next_call_at`). The form proposes the same time of day one
//!   cadence later (7 days weekly, 14 biweekly). The booking must be after
//!   the call and not after the discharge point. Only the last call before
//!   the discharge point may leave it empty.
//! - **Due and overdue** (rule 5). A follow-up is *due* on its day and
//!   *overdue* once a whole day has passed without a call logged after it.
//!   A newly enrolled patient's first call is due within
//!   [`FIRST_CALL_WITHIN_DAYS`] days of enrolment.
//! - **Discharge point** (rule 6). A patient reaches the discharge point
//!   on `enrolled_on` + the programme length (default 8 weeks, 56 days).
//!   From [`FINAL_CALL_DAYS`] days before it they are flagged "final call";
//!   on the day and after, "discharge due" until someone discharges them;
//!   after [`DISCHARGE_OVERDUE_DAYS`] more days the leaders see it as
//!   overdue.
//! - **Programme week**. The workload "calls due this week" and the
//!   calls-per-week chart count Monday to Sunday in programme time.
//!
//! Nothing here reads a clock: "now" and "today" are always arguments, so a
//! test can walk a patient through eight weeks in a few lines.

use chrono::{
    DateTime, Datelike, Days, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Utc,
};
use chrono_tz::{GapInfo, Tz};
use serde::Serialize;

use super::enums::Cadence;

/// Programme length when the settings name none (SPEC.md: 8 weeks).
pub const DEFAULT_PROGRAMME_WEEKS: u32 = 8;
/// Days before the discharge point from which a patient is flagged "final call".
pub const FINAL_CALL_DAYS: i64 = 7;
/// Days after enrolment by which the first call is due.
pub const FIRST_CALL_WITHIN_DAYS: i64 = 3;
/// Days past the discharge point after which an undischarged patient is
/// flagged "discharge overdue" for the leaders.
pub const DISCHARGE_OVERDUE_DAYS: i64 = 14;

/// Moves a day by `days` calendar days; `None` only past the ends of
/// chrono's calendar (around the years ±262,000).
fn add_days(date: NaiveDate, days: i64) -> Option<NaiveDate> {
    let amount = Days::new(days.unsigned_abs());
    if days >= 0 {
        date.checked_add_days(amount)
    } else {
        date.checked_sub_days(amount)
    }
}

/// The wall-clock reading of `at` in programme time.
///
/// chrono's own `naive_local` panics when the offset pushes the reading past
/// the end of its calendar; a timestamp from a request body can be that far
/// out, so there the UTC reading stands in rather than taking the server down.
fn local_datetime(at: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
    let utc = at.naive_utc();
    let offset = tz.offset_from_utc_datetime(&utc).fix();
    utc.checked_add_offset(offset).unwrap_or(utc)
}

/// The programme-time calendar day that `at` falls on — what "today" means
/// when `at` is now.
pub fn local_date(at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    local_datetime(at, tz).date()
}

/// The day a patient reaches the discharge point: `enrolled_on` plus the
/// programme length. Saturates at the end of the calendar instead of
/// panicking on absurd inputs.
pub fn discharge_point(enrolled_on: NaiveDate, programme_weeks: u32) -> NaiveDate {
    enrolled_on
        .checked_add_days(Days::new(u64::from(programme_weeks) * 7))
        .unwrap_or(NaiveDate::MAX)
}

/// The instant at which programme-time clocks read `time` on `date`.
///
/// Wall-clock times are what people book, so they are resolved the way a
/// person would expect across daylight-saving changes:
/// - a time that happens twice (the hour repeated in autumn) is the first
///   of the two, so a reminder is never late;
/// - a time that never happens (the hour skipped in spring) moves forward to
///   the first instant after the gap: 02:30 on the spring-forward day in
///   New York is 03:00 EDT.
///
/// Never panics; at the very ends of chrono's calendar, where no offset can
/// be applied, the wall-clock reading is taken as UTC.
pub fn local_to_utc(date: NaiveDate, time: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let local = date.and_time(time);
    match tz.from_local_datetime(&local) {
        MappedLocalTime::Single(at) => at.with_timezone(&Utc),
        MappedLocalTime::Ambiguous(first, second) => first.min(second).with_timezone(&Utc),
        MappedLocalTime::None => end_of_gap(local, tz).unwrap_or_else(|| local.and_utc()),
    }
}

/// The first instant after the daylight-saving gap that `local` falls in.
fn end_of_gap(local: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    let gap = GapInfo::new(&local, &tz)?;
    if let Some(end) = gap.end {
        return Some(end.with_timezone(&Utc));
    }
    // No known end (the time zone data runs out): read the time with the
    // offset in force before the gap, which also lands after it.
    let (_, offset_before) = gap.begin?;
    Some(local.checked_sub_offset(offset_before.fix())?.and_utc())
}

/// The instant a programme day begins: local midnight, or the end of the
/// gap in zones whose clocks skip midnight.
pub fn start_of_day(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    local_to_utc(date, NaiveTime::MIN, tz)
}

/// The follow-up the call form proposes (rule 4): the same wall-clock time,
/// [`Cadence::days`] programme-time days after the call, so a 10:00 patient
/// stays a 10:00 patient when the clocks change.
///
/// `None` when that day would be after the discharge point: this call is
/// then the last one before it, and no follow-up is needed.
pub fn proposed_next_call(
    occurred_at: DateTime<Utc>,
    cadence: Cadence,
    discharge_point: NaiveDate,
    tz: Tz,
) -> Option<DateTime<Utc>> {
    let local = local_datetime(occurred_at, tz);
    let day = add_days(local.date(), cadence.days())?;
    (day <= discharge_point).then(|| local_to_utc(day, local.time(), tz))
}

/// Whether a call at `occurred_at` is the last before the discharge point,
/// i.e. one more cadence would pass it.
pub fn is_last_call(
    occurred_at: DateTime<Utc>,
    cadence: Cadence,
    discharge_point: NaiveDate,
    tz: Tz,
) -> bool {
    proposed_next_call(occurred_at, cadence, discharge_point, tz).is_none()
}

/// Why a call's `next_call_at` was refused. The messages complete a
/// sentence that starts with the field's name ("next call ...").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NextCallError {
    #[error("is required unless this is the last call before the discharge point")]
    Missing,
    #[error("must be after the call's time")]
    NotAfterCall,
    #[error("must not be after the discharge point ({0})")]
    AfterDischargePoint(NaiveDate),
}

/// Checks a call's `next_call_at` against rule 4: required unless this is
/// the last call before the discharge point, strictly after the call, and
/// on a programme day no later than the discharge point.
pub fn check_next_call(
    occurred_at: DateTime<Utc>,
    next_call_at: Option<DateTime<Utc>>,
    cadence: Cadence,
    discharge_point: NaiveDate,
    tz: Tz,
) -> Result<(), NextCallError> {
    let Some(next_call_at) = next_call_at else {
        return if is_last_call(occurred_at, cadence, discharge_point, tz) {
            Ok(())
        } else {
            Err(NextCallError::Missing)
        };
    };
    if next_call_at <= occurred_at {
        return Err(NextCallError::NotAfterCall);
    }
    if local_date(next_call_at, tz) > discharge_point {
        return Err(NextCallError::AfterDischargePoint(discharge_point));
    }
    Ok(())
}

/// Where a patient's follow-up stands (rule 5). The derived order is the
/// order a student's list shows them in: overdue first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUp {
    /// A whole programme day has passed since it was due.
    Overdue,
    /// Due today (or, for a new patient, within the first-call window).
    Due,
    /// Booked for a later day.
    Upcoming,
    /// Nothing booked: the last call before the discharge point was logged.
    None,
}

impl FollowUp {
    /// The text used in JSON and page flags.
    pub fn as_str(self) -> &'static str {
        match self {
            FollowUp::Overdue => "overdue",
            FollowUp::Due => "due",
            FollowUp::Upcoming => "upcoming",
            FollowUp::None => "none",
        }
    }
}

/// The last day on which a newly enrolled patient's first call is on time.
pub fn first_call_due_by(enrolled_on: NaiveDate) -> NaiveDate {
    add_days(enrolled_on, FIRST_CALL_WITHIN_DAYS).unwrap_or(NaiveDate::MAX)
}

/// The programme day the patient's follow-up is due: the day of
/// `next_call_at`; for a patient with no call logged and none booked, the
/// end of the first-call window; `None` once the last call was logged.
/// A booked `next_call_at` wins over the first-call window.
pub fn follow_up_due_on(
    next_call_at: Option<DateTime<Utc>>,
    enrolled_on: NaiveDate,
    any_call_logged: bool,
    tz: Tz,
) -> Option<NaiveDate> {
    match next_call_at {
        Some(at) => Some(local_date(at, tz)),
        None if !any_call_logged => Some(first_call_due_by(enrolled_on)),
        None => None,
    }
}

/// Where a patient's follow-up stands on `today` (rule 5).
///
/// The caller replaces `next_call_at` whenever a call is logged, so a
/// `next_call_at` whose day has wholly passed means no call came after it.
pub fn follow_up(
    next_call_at: Option<DateTime<Utc>>,
    enrolled_on: NaiveDate,
    any_call_logged: bool,
    today: NaiveDate,
    tz: Tz,
) -> FollowUp {
    let Some(due_on) = follow_up_due_on(next_call_at, enrolled_on, any_call_logged, tz) else {
        return FollowUp::None;
    };
    if next_call_at.is_none() {
        // A new patient's first call is a window ending on `due_on`, not a day.
        return if today <= due_on {
            FollowUp::Due
        } else {
            FollowUp::Overdue
        };
    }
    match today.cmp(&due_on) {
        std::cmp::Ordering::Less => FollowUp::Upcoming,
        std::cmp::Ordering::Equal => FollowUp::Due,
        std::cmp::Ordering::Greater => FollowUp::Overdue,
    }
}

/// Where a patient stands against the discharge point (rule 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DischargeStage {
    /// More than [`FINAL_CALL_DAYS`] days to go.
    InProgramme,
    /// The last week before the discharge point: the next call is the last.
    FinalCall,
    /// At or past the discharge point and not yet discharged.
    DischargeDue,
    /// [`DISCHARGE_OVERDUE_DAYS`] or more past it and still not discharged.
    DischargeOverdue,
}

impl DischargeStage {
    /// The text used in JSON and page flags.
    pub fn as_str(self) -> &'static str {
        match self {
            DischargeStage::InProgramme => "in_programme",
            DischargeStage::FinalCall => "final_call",
            DischargeStage::DischargeDue => "discharge_due",
            DischargeStage::DischargeOverdue => "discharge_overdue",
        }
    }
}

/// Where an active patient stands on `today` against their discharge point.
pub fn discharge_stage(discharge_point: NaiveDate, today: NaiveDate) -> DischargeStage {
    let days_past = today.signed_duration_since(discharge_point).num_days();
    if days_past >= DISCHARGE_OVERDUE_DAYS {
        DischargeStage::DischargeOverdue
    } else if days_past >= 0 {
        DischargeStage::DischargeDue
    } else if days_past >= -FINAL_CALL_DAYS {
        DischargeStage::FinalCall
    } else {
        DischargeStage::InProgramme
    }
}

/// The Monday on or before `date`: programme weeks run Monday to Sunday.
pub fn week_start(date: NaiveDate) -> NaiveDate {
    let since_monday = i64::from(date.weekday().num_days_from_monday());
    add_days(date, -since_monday).unwrap_or(NaiveDate::MIN)
}

/// The programme week containing `date` as UTC instants: from the start of
/// its Monday (inclusive) to the start of the next Monday (exclusive). A
/// week with a clock change is 167 or 169 hours long, which is why this is
/// not `start + 7 days`.
pub fn week_bounds_utc(date: NaiveDate, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let monday = week_start(date);
    let next_monday = add_days(monday, 7).unwrap_or(NaiveDate::MAX);
    (start_of_day(monday, tz), start_of_day(next_monday, tz))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("test instant")
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("test date")
    }

    fn time(text: &str) -> NaiveTime {
        text.parse().expect("test time")
    }

    /// Far enough away never to make a call the last one.
    fn far() -> NaiveDate {
        day("2100-01-01")
    }

    #[test]
    fn local_date_near_midnight_utc() {
        let cases = [
            // 23:00 EDT on June 30.
            ("2026-07-01T03:00:00Z", New_York, "2026-06-30"),
            ("2026-07-01T03:59:59Z", New_York, "2026-06-30"),
            ("2026-07-01T04:00:00Z", New_York, "2026-07-01"),
            // Winter: EST is UTC-5, and the year ends later in New York.
            ("2027-01-01T04:59:59Z", New_York, "2026-12-31"),
            ("2027-01-01T05:00:00Z", New_York, "2027-01-01"),
            (
                "2026-06-30T14:00:00Z",
                chrono_tz::Australia::Sydney,
                "2026-07-01",
            ),
            ("2026-06-30T23:30:00Z", chrono_tz::UTC, "2026-06-30"),
        ];
        for (instant, tz, expected) in cases {
            assert_eq!(
                local_date(at(instant), tz),
                day(expected),
                "{instant} in {tz}"
            );
        }
    }

    #[test]
    fn discharge_point_is_programme_length_after_enrolment() {
        assert_eq!(
            discharge_point(day("2026-01-05"), DEFAULT_PROGRAMME_WEEKS),
            day("2026-03-02")
        );
        assert_eq!(discharge_point(day("2026-11-10"), 8), day("2027-01-05"));
        assert_eq!(discharge_point(day("2028-02-01"), 4), day("2028-02-29"));
        assert_eq!(discharge_point(NaiveDate::MAX, 1), NaiveDate::MAX);
    }

    #[test]
    fn local_to_utc_across_daylight_saving_changes() {
        let cases = [
            // New York springs forward 02:00 EST -> 03:00 EDT on 2026-03-08.
            ("2026-03-08", "01:59:59", New_York, "2026-03-08T06:59:59Z"),
            ("2026-03-08", "02:00:00", New_York, "2026-03-08T07:00:00Z"),
            ("2026-03-08", "02:30:00", New_York, "2026-03-08T07:00:00Z"),
            ("2026-03-08", "02:59:59.5", New_York, "2026-03-08T07:00:00Z"),
            ("2026-03-08", "03:00:00", New_York, "2026-03-08T07:00:00Z"),
            ("2026-03-08", "10:00:00", New_York, "2026-03-08T14:00:00Z"),
            // And falls back 02:00 EDT -> 01:00 EST on 2026-11-01: 01:xx happens twice.
            ("2026-11-01", "00:59:00", New_York, "2026-11-01T04:59:00Z"),
            ("2026-11-01", "01:00:00", New_York, "2026-11-01T05:00:00Z"),
            ("2026-11-01", "01:30:00", New_York, "2026-11-01T05:30:00Z"),
            ("2026-11-01", "02:00:00", New_York, "2026-11-01T07:00:00Z"),
            ("2026-11-01", "10:00:00", New_York, "2026-11-01T15:00:00Z"),
            // Other zones' gaps.
            (
                "2026-03-29",
                "01:30:00",
                chrono_tz::Europe::London,
                "2026-03-29T01:00:00Z",
            ),
            (
                "2026-10-04",
                "02:30:00",
                chrono_tz::Australia::Sydney,
                "2026-10-03T16:00:00Z",
            ),
            (
                "2026-10-25",
                "01:30:00",
                chrono_tz::Europe::London,
                "2026-10-25T00:30:00Z",
            ),
        ];
        for (date, clock, tz, expected) in cases {
            assert_eq!(
                local_to_utc(day(date), time(clock), tz),
                at(expected),
                "{date} {clock} in {tz}"
            );
        }
    }

    #[test]
    fn start_of_day_where_midnight_is_skipped() {
        // Brazil's clocks went from 00:00 to 01:00 on 2018-11-04.
        assert_eq!(
            start_of_day(day("2018-11-04"), chrono_tz::America::Sao_Paulo),
            at("2018-11-04T03:00:00Z")
        );
        assert_eq!(
            start_of_day(day("2026-03-08"), New_York),
            at("2026-03-08T05:00:00Z")
        );
        assert_eq!(
            start_of_day(day("2026-03-09"), New_York),
            at("2026-03-09T04:00:00Z")
        );
    }

    #[test]
    fn local_to_utc_at_the_ends_of_the_calendar() {
        for tz in [
            New_York,
            chrono_tz::Asia::Tokyo,
            chrono_tz::Pacific::Kiritimati,
        ] {
            local_to_utc(NaiveDate::MAX, NaiveTime::MIN, tz);
            local_to_utc(NaiveDate::MAX, time("23:59:59"), tz);
            local_to_utc(NaiveDate::MIN, NaiveTime::MIN, tz);
            local_to_utc(NaiveDate::MIN, time("23:59:59"), tz);
            local_date(DateTime::<Utc>::MAX_UTC, tz);
            local_date(DateTime::<Utc>::MIN_UTC, tz);
        }
    }

    #[test]
    fn proposed_next_call_keeps_the_wall_clock_time() {
        use Cadence::{Biweekly, Weekly};
        let cases = [
            // 10:00 and 18:30 EST -> EDT across the spring change.
            ("2026-03-05T15:00:00Z", Weekly, "2026-03-12T14:00:00Z"),
            ("2026-03-05T23:30:00Z", Weekly, "2026-03-12T22:30:00Z"),
            ("2026-02-26T15:00:00Z", Biweekly, "2026-03-12T14:00:00Z"),
            // 10:00 and 18:30 EDT -> EST across the autumn change.
            ("2026-10-29T14:00:00Z", Weekly, "2026-11-05T15:00:00Z"),
            ("2026-10-29T22:30:00Z", Weekly, "2026-11-05T23:30:00Z"),
            ("2026-10-22T22:30:00Z", Biweekly, "2026-11-05T23:30:00Z"),
            // 23:30 local on the Saturday before each change: already Sunday in UTC.
            ("2026-03-08T04:30:00Z", Weekly, "2026-03-15T03:30:00Z"),
            ("2026-03-08T04:30:00Z", Biweekly, "2026-03-22T03:30:00Z"),
            ("2026-11-01T03:30:00Z", Weekly, "2026-11-08T04:30:00Z"),
            // 02:30 a week before the spring change lands in the gap: 03:00 EDT.
            ("2026-03-01T07:30:00Z", Weekly, "2026-03-08T07:00:00Z"),
            // 01:30 a week before the autumn change: the earlier 01:30 (EDT).
            ("2026-10-25T05:30:00Z", Weekly, "2026-11-01T05:30:00Z"),
            // Month and year ends, leap and common Februaries.
            ("2026-12-28T15:00:00Z", Weekly, "2027-01-04T15:00:00Z"),
            ("2027-01-01T04:30:00Z", Weekly, "2027-01-08T04:30:00Z"),
            ("2026-12-24T15:00:00Z", Biweekly, "2027-01-07T15:00:00Z"),
            ("2026-02-25T15:00:00Z", Weekly, "2026-03-04T15:00:00Z"),
            ("2028-02-24T15:00:00Z", Weekly, "2028-03-02T15:00:00Z"),
            ("2026-06-30T14:00:00Z", Weekly, "2026-07-07T14:00:00Z"),
        ];
        for (occurred, cadence, expected) in cases {
            assert_eq!(
                proposed_next_call(at(occurred), cadence, far(), New_York),
                Some(at(expected)),
                "{cadence} after {occurred}"
            );
        }
    }

    #[test]
    fn no_proposal_past_the_discharge_point() {
        let point = day("2026-03-02");
        // A call 7 days before lands exactly on the discharge day: fine.
        assert_eq!(
            proposed_next_call(at("2026-02-23T15:00:00Z"), Cadence::Weekly, point, New_York),
            Some(at("2026-03-02T15:00:00Z"))
        );
        // 23:30 local on Feb 23 is Feb 24 in UTC, but the programme day counts.
        assert!(!is_last_call(
            at("2026-02-24T04:30:00Z"),
            Cadence::Weekly,
            point,
            New_York
        ));
        assert!(is_last_call(
            at("2026-02-24T15:00:00Z"),
            Cadence::Weekly,
            point,
            New_York
        ));
        assert!(is_last_call(
            at("2026-02-17T15:00:00Z"),
            Cadence::Biweekly,
            point,
            New_York
        ));
        assert!(!is_last_call(
            at("2026-02-16T15:00:00Z"),
            Cadence::Biweekly,
            point,
            New_York
        ));
    }

    #[test]
    fn check_next_call_applies_rule_4() {
        let point = day("2026-03-02");
        let call = at("2026-02-16T15:00:00Z");
        let check = |next: Option<&str>| {
            check_next_call(call, next.map(at), Cadence::Weekly, point, New_York)
        };
        assert_eq!(check(Some("2026-02-23T15:00:00Z")), Ok(()));
        assert_eq!(check(None), Err(NextCallError::Missing));
        assert_eq!(
            check(Some("2026-02-16T15:00:00Z")),
            Err(NextCallError::NotAfterCall)
        );
        assert_eq!(
            check(Some("2026-02-16T14:59:59Z")),
            Err(NextCallError::NotAfterCall)
        );
        assert_eq!(check(Some("2026-02-16T15:00:01Z")), Ok(()));
        // On the discharge day, to its last local minute, is fine ...
        assert_eq!(check(Some("2026-03-02T15:00:00Z")), Ok(()));
        assert_eq!(check(Some("2026-03-03T04:59:00Z")), Ok(()));
        // ... the next programme day is not.
        assert_eq!(
            check(Some("2026-03-03T05:00:00Z")),
            Err(NextCallError::AfterDischargePoint(point))
        );
        assert_eq!(
            check(Some("2026-03-03T15:00:00Z")),
            Err(NextCallError::AfterDischargePoint(point))
        );
    }

    #[test]
    fn the_last_call_needs_no_follow_up() {
        let point = day("2026-03-02");
        let last = at("2026-02-24T15:00:00Z");
        assert_eq!(
            check_next_call(last, None, Cadence::Weekly, point, New_York),
            Ok(())
        );
        // One may still be booked, on or before the discharge day.
        assert_eq!(
            check_next_call(
                last,
                Some(at("2026-03-01T15:00:00Z")),
                Cadence::Weekly,
                point,
                New_York
            ),
            Ok(())
        );
        // A call past the discharge point (discharge due) needs none either.
        assert_eq!(
            check_next_call(
                at("2026-03-05T15:00:00Z"),
                None,
                Cadence::Weekly,
                point,
                New_York
            ),
            Ok(())
        );
    }

    #[test]
    fn next_call_errors_read_as_field_messages() {
        assert_eq!(
            NextCallError::Missing.to_string(),
            "is required unless this is the last call before the discharge point"
        );
        assert_eq!(
            NextCallError::NotAfterCall.to_string(),
            "must be after the call's time"
        );
        assert_eq!(
            NextCallError::AfterDischargePoint(day("2026-03-02")).to_string(),
            "must not be after the discharge point (2026-03-02)"
        );
    }

    #[test]
    fn follow_up_turns_at_local_midnight() {
        let enrolled = day("2026-10-01");
        // 10:00 EST on Sunday 2026-11-29.
        let next = Some(at("2026-11-29T15:00:00Z"));
        let on = |now: &str| {
            follow_up(
                next,
                enrolled,
                true,
                local_date(at(now), New_York),
                New_York,
            )
        };
        assert_eq!(on("2026-11-29T04:59:59Z"), FollowUp::Upcoming);
        assert_eq!(on("2026-11-29T05:00:00Z"), FollowUp::Due);
        assert_eq!(on("2026-11-29T20:00:00Z"), FollowUp::Due);
        // Still the 29th in New York.
        assert_eq!(on("2026-11-30T04:59:00Z"), FollowUp::Due);
        assert_eq!(on("2026-11-30T05:00:00Z"), FollowUp::Overdue);
        assert_eq!(on("2026-12-05T12:00:00Z"), FollowUp::Overdue);
        assert_eq!(
            follow_up_due_on(next, enrolled, true, New_York),
            Some(day("2026-11-29"))
        );
    }

    #[test]
    fn follow_up_day_is_the_local_day() {
        // 23:30 EST on Nov 29 is Nov 30 in UTC.
        let next = Some(at("2026-11-30T04:30:00Z"));
        let enrolled = day("2026-10-01");
        assert_eq!(
            follow_up_due_on(next, enrolled, true, New_York),
            Some(day("2026-11-29"))
        );
        assert_eq!(
            follow_up(next, enrolled, true, day("2026-11-30"), New_York),
            FollowUp::Overdue
        );
    }

    #[test]
    fn new_patient_first_call_window() {
        let enrolled = day("2026-11-02");
        let on = |today: &str| follow_up(None, enrolled, false, day(today), New_York);
        for today in ["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"] {
            assert_eq!(on(today), FollowUp::Due, "{today}");
        }
        assert_eq!(on("2026-11-06"), FollowUp::Overdue);
        assert_eq!(
            follow_up_due_on(None, enrolled, false, New_York),
            Some(day("2026-11-05"))
        );
        assert_eq!(first_call_due_by(day("2026-12-30")), day("2027-01-02"));
    }

    #[test]
    fn booked_first_call_follows_its_day() {
        let enrolled = day("2026-11-02");
        let next = Some(at("2026-11-10T15:00:00Z"));
        assert_eq!(
            follow_up(next, enrolled, false, day("2026-11-06"), New_York),
            FollowUp::Upcoming
        );
    }

    #[test]
    fn no_follow_up_after_the_last_call() {
        let enrolled = day("2026-11-02");
        assert_eq!(
            follow_up(None, enrolled, true, day("2026-12-30"), New_York),
            FollowUp::None
        );
        assert_eq!(follow_up_due_on(None, enrolled, true, New_York), None);
    }

    #[test]
    fn follow_up_sorts_overdue_first() {
        let mut states = [
            FollowUp::None,
            FollowUp::Upcoming,
            FollowUp::Overdue,
            FollowUp::Due,
        ];
        states.sort();
        assert_eq!(
            states,
            [
                FollowUp::Overdue,
                FollowUp::Due,
                FollowUp::Upcoming,
                FollowUp::None
            ]
        );
        for state in states {
            assert_eq!(
                serde_json::to_string(&state).expect("serialises"),
                format!("\"{}\"", state.as_str())
            );
        }
    }

    #[test]
    fn discharge_stage_boundaries() {
        let point = day("2026-03-02");
        let cases = [
            (-30, DischargeStage::InProgramme),
            (-8, DischargeStage::InProgramme),
            (-7, DischargeStage::FinalCall),
            (-1, DischargeStage::FinalCall),
            (0, DischargeStage::DischargeDue),
            (13, DischargeStage::DischargeDue),
            (14, DischargeStage::DischargeOverdue),
            (400, DischargeStage::DischargeOverdue),
        ];
        for (offset, expected) in cases {
            let today = add_days(point, offset).expect("in range");
            assert_eq!(discharge_stage(point, today), expected, "day {offset}");
            assert_eq!(
                serde_json::to_string(&expected).expect("serialises"),
                format!("\"{}\"", expected.as_str())
            );
        }
    }

    #[test]
    fn weeks_run_monday_to_sunday() {
        let cases = [
            ("2026-03-02", "2026-03-02"),
            ("2026-03-08", "2026-03-02"),
            ("2026-03-09", "2026-03-09"),
            ("2026-01-01", "2025-12-29"),
            ("2028-03-01", "2028-02-28"),
        ];
        for (date, monday) in cases {
            assert_eq!(week_start(day(date)), day(monday), "{date}");
        }
    }

    #[test]
    fn week_bounds_across_clock_changes() {
        let cases = [
            // 167 hours: the spring-forward week.
            (
                "2026-03-04",
                "2026-03-02T05:00:00Z",
                "2026-03-09T04:00:00Z",
                167,
            ),
            // 169 hours: the fall-back week.
            (
                "2026-11-01",
                "2026-10-26T04:00:00Z",
                "2026-11-02T05:00:00Z",
                169,
            ),
            (
                "2026-12-31",
                "2026-12-28T05:00:00Z",
                "2027-01-04T05:00:00Z",
                168,
            ),
        ];
        for (date, start, end, hours) in cases {
            let (from, to) = week_bounds_utc(day(date), New_York);
            assert_eq!((from, to), (at(start), at(end)), "{date}");
            assert_eq!((to - from).num_hours(), hours, "{date}");
        }
    }

    mod properties {
        use super::*;
        use chrono::Duration;
        use proptest::prelude::*;

        const ZONES: [Tz; 5] = [
            chrono_tz::America::New_York,
            chrono_tz::America::Los_Angeles,
            chrono_tz::Europe::London,
            chrono_tz::Australia::Sydney,
            chrono_tz::UTC,
        ];

        fn date_between(from: &str, to: &str) -> impl Strategy<Value = NaiveDate> {
            let start = day(from);
            let span = day(to).signed_duration_since(start).num_days();
            (0..span).prop_map(move |offset| add_days(start, offset).expect("in range"))
        }

        fn instant_between(from: &str, to: &str) -> impl Strategy<Value = DateTime<Utc>> {
            let (start, end) = (at(from).timestamp(), at(to).timestamp());
            (start..end, 0..1_000_000_000u32)
                .prop_map(|(secs, nanos)| DateTime::from_timestamp(secs, nanos).expect("in range"))
        }

        fn any_time() -> impl Strategy<Value = NaiveTime> {
            (0..86_400u32, 0..1_000_000_000u32).prop_map(|(secs, nanos)| {
                NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos).expect("in range")
            })
        }

        /// The proposal's promises for one call: `cadence.days()` programme days
        /// later, at the same wall-clock time (or just after a gap), and after
        /// the call.
        fn check_proposal(
            occurred_at: DateTime<Utc>,
            tz: Tz,
            cadence: Cadence,
        ) -> Result<(), TestCaseError> {
            let next = proposed_next_call(occurred_at, cadence, far(), tz);
            prop_assert!(next.is_some());
            let next = next.expect("checked above");
            prop_assert!(next > occurred_at);

            let was = local_datetime(occurred_at, tz);
            let is = local_datetime(next, tz);
            prop_assert_eq!(
                is.date().signed_duration_since(was.date()).num_days(),
                cadence.days()
            );
            let wanted = is.date().and_time(was.time());
            match tz.from_local_datetime(&wanted) {
                MappedLocalTime::Single(_) => prop_assert_eq!(is, wanted),
                MappedLocalTime::Ambiguous(first, _) => {
                    prop_assert_eq!(is, wanted);
                    prop_assert_eq!(next, first.with_timezone(&Utc));
                }
                MappedLocalTime::None => {
                    let moved = is - wanted;
                    prop_assert!(moved > Duration::zero() && moved <= Duration::hours(1));
                    prop_assert!(is_end_of_gap(next, wanted, tz));
                }
            }
            prop_assert!(!is_last_call(occurred_at, cadence, far(), tz));
            prop_assert_eq!(
                check_next_call(occurred_at, Some(next), cadence, far(), tz),
                Ok(())
            );
            Ok(())
        }

        /// Instants within three hours of one cadence before each clock
        /// change of [`ZONES`] in 2020–2039, so that proposals land in gaps
        /// and repeated hours far more often than uniform sampling would.
        fn before_clock_changes() -> impl Strategy<Value = (Tz, Cadence, DateTime<Utc>)> {
            let mut changes = Vec::new();
            for tz in ZONES {
                let offset = |at: DateTime<Utc>| tz.offset_from_utc_datetime(&at.naive_utc()).fix();
                let mut noon = at("2020-01-01T12:00:00Z");
                while noon < at("2040-01-01T00:00:00Z") {
                    let next_noon = noon + Duration::days(1);
                    if offset(noon) != offset(next_noon) {
                        // Clocks change on the hour (UTC) in all of these zones.
                        let change = (1..=24)
                            .map(|hours| noon + Duration::hours(hours))
                            .find(|&hour| offset(hour) != offset(noon))
                            .expect("the change lies within the day");
                        changes.push((tz, change));
                    }
                    noon = next_noon;
                }
            }
            // Two a year in each zone but UTC (160 with today's rules).
            assert!(
                changes.len() >= 100,
                "too few clock changes: {}",
                changes.len()
            );
            (
                prop::sample::select(changes),
                prop::sample::select(Cadence::ALL),
                -3 * 3600..3 * 3600i64,
            )
                .prop_map(|((tz, change), cadence, jitter)| {
                    let occurred_at =
                        change - Duration::days(cadence.days()) + Duration::seconds(jitter);
                    (tz, cadence, occurred_at)
                })
        }

        /// Whether `at` is the first instant after a gap: just before it the
        /// clocks read earlier than `wanted`.
        fn is_end_of_gap(at: DateTime<Utc>, wanted: NaiveDateTime, tz: Tz) -> bool {
            local_datetime(at - Duration::nanoseconds(1), tz) < wanted
        }

        proptest! {
            #[test]
            fn discharge_point_is_whole_weeks_after_enrolment(
                enrolled_on in date_between("2000-01-01", "2100-01-01"),
                weeks in 1..=52u32,
            ) {
                let point = discharge_point(enrolled_on, weeks);
                prop_assert_eq!(
                    point.signed_duration_since(enrolled_on).num_days(),
                    i64::from(weeks) * 7
                );
            }

            #[test]
            fn proposal_is_cadence_days_later_at_the_same_time(
                occurred_at in instant_between("2020-01-01T00:00:00Z", "2040-01-01T00:00:00Z"),
                tz in prop::sample::select(&ZONES[..]),
                cadence in prop::sample::select(Cadence::ALL),
            ) {
                check_proposal(occurred_at, tz, cadence)?;
            }

            #[test]
            fn proposal_keeps_its_promises_across_clock_changes(
                (tz, cadence, occurred_at) in before_clock_changes(),
            ) {
                check_proposal(occurred_at, tz, cadence)?;
            }

            #[test]
            fn local_to_utc_reads_back_as_the_wall_clock_or_just_after_a_gap(
                date in date_between("1900-01-01", "2100-01-01"),
                time in any_time(),
                tz in prop::sample::select(chrono_tz::TZ_VARIANTS.as_slice()),
            ) {
                let wanted = date.and_time(time);
                let resolved = local_to_utc(date, time, tz);
                let read_back = local_datetime(resolved, tz);
                match tz.from_local_datetime(&wanted) {
                    MappedLocalTime::Single(_) => prop_assert_eq!(read_back, wanted),
                    MappedLocalTime::Ambiguous(first, second) => {
                        prop_assert_eq!(read_back, wanted);
                        prop_assert_eq!(resolved, first.min(second).with_timezone(&Utc));
                    }
                    MappedLocalTime::None => {
                        // Gaps are at most a day long (Samoa skipped 2011-12-30).
                        prop_assert!(read_back > wanted);
                        prop_assert!(read_back - wanted <= Duration::days(1));
                        prop_assert!(is_end_of_gap(resolved, wanted, tz));
                    }
                }
            }

            #[test]
            fn local_to_utc_never_panics(
                days in i64::from(NaiveDate::MIN.num_days_from_ce())
                    ..=i64::from(NaiveDate::MAX.num_days_from_ce()),
                time in any_time(),
                tz in prop::sample::select(chrono_tz::TZ_VARIANTS.as_slice()),
            ) {
                let date = i32::try_from(days)
                    .ok()
                    .and_then(NaiveDate::from_num_days_from_ce_opt)
                    .expect("in range");
                let at = local_to_utc(date, time, tz);
                local_date(at, tz);
                proposed_next_call(at, Cadence::Biweekly, NaiveDate::MAX, tz);
                week_bounds_utc(date, tz);
            }
        }
    }
}
