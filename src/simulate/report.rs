//! Figures for leaders, and the report in Markdown.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::behaviour::*;
use super::{Promise, World};
use crate::db::schema::{calls, outbox};
use crate::domain::schedule;

/// Counts kept while the programme runs.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub calls: usize,
    pub skipped: usize,
    pub pairings: usize,
    pub discharged: usize,
    pub withdrew: usize,
    pub students_left: usize,
    pub stale_attempts: usize,
    pub stale_refused: usize,
    pub emails_sent: usize,
    pub urgent_concerns: usize,
    pub concerns: usize,
    /// Patients checked against each promise.
    pub checks: std::collections::HashMap<Promise, usize>,
    /// Where the run's time went, by phase.
    pub seconds: BTreeMap<&'static str, f64>,
    /// Each morning: (day, overdue follow-ups, paired active patients).
    pub daily_overdue: Vec<(NaiveDate, usize, usize)>,
    /// Each morning, each student: (weighted load, patients, overdue).
    pub load_samples: Vec<(f64, usize, usize)>,
}

impl Tally {
    pub fn time(&mut self, phase: &'static str, since: std::time::Instant) {
        *self.seconds.entry(phase).or_default() += since.elapsed().as_secs_f64();
    }
}

/// One programme week (Monday to Sunday).
#[derive(Debug, Clone)]
pub struct Week {
    pub monday: NaiveDate,
    pub calls: usize,
    pub calling_students: usize,
    pub calls_per_student: f64,
    pub interpreter_calls: usize,
    /// Patients active the whole week, and how many of them were reached.
    pub active_patients: usize,
    pub reached: usize,
}

#[derive(Debug, Clone)]
pub struct Figures {
    pub weeks: Vec<Week>,
    pub interpreter_calls: usize,
    pub calls: usize,
    pub completed: usize,
    /// Highest share of paired patients overdue on one morning.
    pub peak_overdue_share: f64,
    pub mean_overdue_share: f64,
    /// The largest weighted load at which students' overdue share stayed
    /// under 5 %, and the students needed at the peak at that load.
    pub load_under_five_percent: Option<f64>,
    pub peak_weighted_patients: f64,
    pub students_needed: Option<usize>,
    pub emails_by_kind: BTreeMap<String, usize>,
}

pub(super) fn figures(world: &World) -> anyhow::Result<Figures> {
    let tz = world.tz();
    type Call = (i64, i64, NaiveDateTime, String, bool);
    let (rows, emails): (Vec<Call>, Vec<(String, i64)>) = world
        .state
        .db
        .read_blocking(|c| {
            let rows = calls::table
                .select((
                    calls::student_id,
                    calls::patient_id,
                    calls::occurred_at,
                    calls::outcome,
                    calls::interpreter_used,
                ))
                .load(c)?;
            let emails = outbox::table
                .group_by(outbox::template)
                .select((outbox::template, diesel::dsl::count_star()))
                .load(c)?;
            Ok((rows, emails))
        })
        .map_err(anyhow::Error::msg)?;
    let mut weeks: BTreeMap<NaiveDate, (usize, HashSet<i64>, usize, HashSet<i64>)> =
        BTreeMap::new();
    for (student, patient, at, outcome, interpreter) in &rows {
        let day = schedule::local_date(at.and_utc(), tz);
        let w = weeks.entry(schedule::week_start(day)).or_default();
        w.0 += 1;
        w.1.insert(*student);
        w.2 += usize::from(*interpreter);
        if outcome == "completed" {
            w.3.insert(*patient);
        }
    }
    let weeks: Vec<Week> = weeks
        .into_iter()
        .map(|(monday, (calls, students, interpreter, reached))| {
            let sunday = monday + Duration::days(6);
            let active: Vec<i64> = world
                .patients
                .values()
                .filter(|p| p.enrolled_on <= monday)
                .filter(|p| {
                    p.discharged_at
                        .is_none_or(|d| schedule::local_date(d, tz) > sunday)
                })
                .map(|p| p.id)
                .collect();
            Week {
                monday,
                calls,
                calling_students: students.len(),
                calls_per_student: calls as f64 / students.len().max(1) as f64,
                interpreter_calls: interpreter,
                reached: active.iter().filter(|id| reached.contains(id)).count(),
                active_patients: active.len(),
            }
        })
        .collect();
    let shares: Vec<f64> = world
        .tally
        .daily_overdue
        .iter()
        .filter(|(_, _, active)| *active > 0)
        .map(|(_, overdue, active)| *overdue as f64 / *active as f64)
        .collect();
    // Overdue share by load, rounded to whole weekly patients.
    let mut by_load: BTreeMap<i64, (usize, usize)> = BTreeMap::new();
    for (load, patients, overdue) in &world.tally.load_samples {
        let e = by_load.entry(load.round() as i64).or_default();
        e.0 += patients;
        e.1 += overdue;
    }
    let load_under_five_percent = by_load
        .iter()
        .filter(|(_, (patients, _))| *patients >= 100)
        .filter(|(_, (patients, overdue))| (*overdue as f64) < 0.05 * *patients as f64)
        .map(|(load, _)| *load as f64)
        .next_back();
    let peak_weighted_patients = peak_weighted(world);
    Ok(Figures {
        interpreter_calls: rows.iter().filter(|r| r.4).count(),
        calls: rows.len(),
        completed: rows.iter().filter(|r| r.3 == "completed").count(),
        peak_overdue_share: shares.iter().copied().fold(0.0, f64::max),
        mean_overdue_share: shares.iter().sum::<f64>() / shares.len().max(1) as f64,
        students_needed: load_under_five_percent
            .filter(|l| *l > 0.0)
            .map(|l| (peak_weighted_patients / l).ceil() as usize),
        load_under_five_percent,
        peak_weighted_patients,
        weeks,
        emails_by_kind: emails.into_iter().map(|(k, n)| (k, n as usize)).collect(),
    })
}

/// The most weekly-equivalent patients active on any one day.
fn peak_weighted(world: &World) -> f64 {
    let tz = world.tz();
    let mut change: BTreeMap<NaiveDate, f64> = BTreeMap::new();
    for p in world.patients.values() {
        *change.entry(p.enrolled_on).or_default() += p.cadence.weight();
        if let Some(d) = p.discharged_at {
            *change.entry(schedule::local_date(d, tz)).or_default() -= p.cadence.weight();
        }
    }
    let mut now = 0.0;
    let mut peak: f64 = 0.0;
    for delta in change.values() {
        now += delta;
        peak = peak.max(now);
    }
    peak
}

fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        "–".into()
    } else {
        format!("{:.1} %", 100.0 * part as f64 / whole as f64)
    }
}

pub(super) fn markdown(world: &World, f: &Figures, elapsed: std::time::Duration) -> String {
    let a = &world.args;
    let t = &world.tally;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Simulation: {} patients, {} students, {} weeks\n",
        a.patients, a.students, a.weeks
    );
    let _ = writeln!(
        out,
        "Seed {}, first enrolments on {}, skip rate {}, urgent rate {}; database {}; {:.1} s.\n",
        a.seed,
        a.start,
        a.skip_rate,
        a.urgent_rate,
        match world.state.db.backend() {
            crate::db::Backend::Sqlite => "SQLite",
            crate::db::Backend::Postgres => "PostgreSQL",
        },
        elapsed.as_secs_f64()
    );
    let _ = writeln!(out, "## Promises\n");
    for promise in Promise::ALL {
        let broken: HashSet<i64> = world
            .broken
            .iter()
            .filter(|b| b.promise == promise)
            .map(|b| b.patient_id)
            .collect();
        let checks = t.checks.get(&promise).copied().unwrap_or(0);
        let verdict = if broken.is_empty() {
            format!("held ({checks} checks)")
        } else {
            format!("**broken for {} patients** ({checks} checks)", broken.len())
        };
        let _ = writeln!(out, "- {}: {verdict}", promise.describe());
    }
    let _ = writeln!(out, "\n## What happened\n");
    let _ = writeln!(
        out,
        "- {} calls logged ({} completed, {}), {} due follow-ups put off for a day, {} pairings",
        f.calls,
        f.completed,
        percent(f.completed, f.calls),
        t.skipped,
        t.pairings
    );
    let _ = writeln!(
        out,
        "- {} concerns raised, {} urgent; {} students left the programme and their patients were paired again",
        t.concerns, t.urgent_concerns, t.students_left
    );
    let _ = writeln!(
        out,
        "- {} patients discharged ({} withdrew early); {} calls tried after a discharge, {} refused",
        t.discharged, t.withdrew, t.stale_attempts, t.stale_refused
    );
    let kinds: Vec<String> = f
        .emails_by_kind
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    let _ = writeln!(out, "- emails: {}", kinds.join(", "));
    let _ = writeln!(out, "\n## Week by week\n");
    let _ = writeln!(
        out,
        "| week of | calls | students calling | calls per student | patients active all week | reached that week | interpreter calls |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for w in &f.weeks {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {} | {} | {} |",
            w.monday,
            w.calls,
            w.calling_students,
            w.calls_per_student,
            w.active_patients,
            percent(w.reached, w.active_patients),
            w.interpreter_calls
        );
    }
    let _ = writeln!(out, "\n## Staffing\n");
    let _ = writeln!(
        out,
        "- Overdue follow-ups, as a share of paired patients each morning: mean {:.1} %, peak {:.1} %.",
        100.0 * f.mean_overdue_share,
        100.0 * f.peak_overdue_share
    );
    let _ = writeln!(
        out,
        "- At the peak, {:.0} weekly-equivalent patients were active (a biweekly patient counts half).",
        f.peak_weighted_patients
    );
    match (f.load_under_five_percent, f.students_needed) {
        (Some(load), Some(needed)) => {
            let _ = writeln!(
                out,
                "- Students carrying up to {load:.0} weekly-equivalent patients kept their overdue follow-ups under 5 %; \
                 a programme of this size needs about **{needed} students** calling as these did."
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "- No load level kept overdue follow-ups under 5 % in this run: with this skip rate, \
                 more students alone would not get there."
            );
        }
    }
    let phases: Vec<String> = t
        .seconds
        .iter()
        .map(|(phase, s)| format!("{phase} {s:.1} s"))
        .collect();
    let _ = writeln!(out, "\nRun time by phase: {}.", phases.join(", "));
    let _ = writeln!(
        out,
        "\nHow the simulated people behave: physicians enrol on weekdays 9:00–16:00 over the first {ENROLMENT_WEEKS} weeks; \
         leaders pair at 10:00 and 18:00 (over capacity only when nobody has room), discharge the day after the point, \
         acknowledge urgent concerns within {URGENT_ACK_MAX_HOURS} hours; a student calls every day but one day off a week, \
         between 16:00 and 21:00, up to {CALLS_PER_SITTING} calls a sitting, reaches a patient {:.0} % of the time (hard-to-reach patients {:.0} %), \
         and tries again the next day after a missed call. The app is checked each day at {CHECK_HOUR}:00 and concerns every hour.",
        100.0 * REACH_CHANCE,
        100.0 * HARD_TO_REACH_CHANCE,
    );
    out
}
