//! `checkin demo`: a realistic programme to look at and to measure.
//!
//! By default: 14 students, 16 patients, 3 physicians, 2 leaders and an admin,
//! with calls spread over the past weeks, some follow-ups overdue, some
//! patients in their final week or at the discharge point, and the newest
//! waiting to be paired. `--patients N --students M --calls K` builds large
//! data sets quickly: rows are written in batches of 1,000 inside one
//! transaction per 2,000 patients. Everyone is fictional; phone numbers use the
//! 555-01xx range reserved for fiction.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{bail, Context};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use clap::Args;
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::config::Settings;
use crate::db::calls::{NewAssignment, NewCall, NewConcern};
use crate::db::patients::{NewEnrolmentReason, NewPatient};
use crate::db::schema::{
    assignments, calls, concerns, enrolment_reasons, patients, user_languages, user_roles, users,
};
use crate::db::users::{NewUser, NewUserLanguage, NewUserRole};
use crate::db::{Backend, Db, DbConn};
use crate::domain::schedule;
use crate::domain::{
    Cadence, ConcernLevel, ContactMode, DischargeReason, EnrolmentReason, Outcome, PatientStatus,
    Role,
};
use crate::error::AppError;

/// Every demo account signs in with this password.
pub const DEMO_PASSWORD: &str = "checkin-demo-password";
pub const DEMO_DOMAIN: &str = "demo.checkin.test";
/// Demo calls predate the versioned protocol; they say so.
pub const DEMO_PROTOCOL_VERSION: &str = "demo";

const BATCH_ROWS: usize = 1000;
const PATIENTS_PER_TRANSACTION: usize = 2000;

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    #[arg(long, default_value_t = 16)]
    pub patients: usize,
    #[arg(long, default_value_t = 14)]
    pub students: usize,
    #[arg(long, default_value_t = 3)]
    pub physicians: usize,
    #[arg(long, default_value_t = 2)]
    pub leaders: usize,
    /// Calls to log in all; by default each patient gets the calls its
    /// schedule gives, with some missed.
    #[arg(long)]
    pub calls: Option<usize>,
    /// The same seed gives the same programme.
    #[arg(long, default_value_t = 2020)]
    pub seed: u64,
}

impl Default for DemoArgs {
    fn default() -> Self {
        DemoArgs {
            patients: 16,
            students: 14,
            physicians: 3,
            leaders: 2,
            calls: None,
            seed: 2020,
        }
    }
}

pub(crate) const GIVEN: &[&str] = &[
    "María", "José", "Ana", "Luis", "Carmen", "Juan", "Rosa", "Carlos", "Lucía", "Miguel", "Sofía",
    "Jorge", "Elena", "Pedro", "Isabel", "Rafael", "Gloria", "Manuel", "Teresa", "Diego", "Mary",
    "James", "Linda", "Robert", "Patricia", "Michael", "Dorothy", "William", "Betty", "Samuel",
    "Grace", "Henry",
];
pub(crate) const FAMILY: &[&str] = &[
    "García",
    "Rodríguez",
    "Martínez",
    "Hernández",
    "López",
    "González",
    "Pérez",
    "Sánchez",
    "Ramírez",
    "Torres",
    "Flores",
    "Rivera",
    "Gómez",
    "Díaz",
    "Cruz",
    "Morales",
    "Reyes",
    "Ortiz",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Davis",
    "Miller",
    "Wilson",
    "Moore",
    "Taylor",
    "Thomas",
    "Jackson",
    "White",
];
const BEST_TIMES: &[&str] = &[
    "Weekday mornings",
    "After 5 pm",
    "Tuesdays and Thursdays, afternoons",
    "Any time before 7 pm",
    "Weekends",
];
const NOTES_REACHED: &[&str] = &[
    "Doing well this week. Went over the COVID-19 symptoms list again.",
    "Feeling lonely; talked about the senior centre's phone group.",
    "Asked where to get tested; shared the testing site list.",
    "Good spirits. Picked up groceries from the food bank.",
    "Worried about a family member; we talked through when to call the clinic.",
    "Short call, patient was busy. Will call at the usual time next week.",
];
const NOTES_MISSED: &[&str] = &["", "Left a short voicemail with my first name only.", ""];

/// Loads the demo into a database that holds no patients and no demo accounts.
pub fn load(
    db: &Db,
    settings: &Settings,
    args: &DemoArgs,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    if args.students == 0 || args.physicians == 0 || args.leaders == 0 {
        bail!("--students, --physicians and --leaders must each be at least 1");
    }
    let started = Instant::now();
    let (existing_patients, existing_demo, next_user_id) = db
        .read_blocking(|c| {
            let p: i64 = patients::table.count().get_result(c)?;
            let d: i64 = users::table
                .filter(users::email.like(format!("%@{DEMO_DOMAIN}")))
                .count()
                .get_result(c)?;
            let max: Option<i64> = users::table
                .select(diesel::dsl::max(users::id))
                .get_result(c)?;
            Ok((p, d, max.unwrap_or(0) + 1))
        })
        .map_err(anyhow::Error::msg)?;
    if existing_patients > 0 || existing_demo > 0 {
        bail!(
            "this database already holds a programme ({existing_patients} patients); \
             the demo loads only into an empty one. Point CHECKIN_DATABASE_URL at a new database"
        );
    }
    let password_hash =
        crate::auth::hash_password(DEMO_PASSWORD).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let staff = plan_staff(args, next_user_id, &mut rng);
    let created = now.naive_utc();
    db.write_blocking(|c| insert_staff(c, &staff, &password_hash, created))
        .map_err(anyhow::Error::msg)
        .context("writing the demo accounts")?;

    let tz = settings.timezone;
    let today = schedule::local_date(now, tz);
    let mut builder = Builder {
        tz,
        weeks: settings.programme_weeks,
        now,
        today,
        staff: &staff,
        rng,
        next_call_id: 1,
        next_assignment_id: 1,
        round_robin: [0, 0],
    };
    let allocation = allocate_calls(args, &mut builder);
    let mut totals = Totals::default();
    for chunk_start in (0..args.patients).step_by(PATIENTS_PER_TRANSACTION) {
        let chunk_end = (chunk_start + PATIENTS_PER_TRANSACTION).min(args.patients);
        let plans: Vec<PatientPlan> = (chunk_start..chunk_end)
            .map(|i| builder.patient(i, args.patients, &allocation))
            .collect();
        db.write_blocking(|c| insert_patients(c, &plans))
            .map_err(anyhow::Error::msg)
            .context("writing demo patients")?;
        for plan in &plans {
            totals.add(plan);
        }
    }
    if db.backend() == Backend::Postgres {
        db.write_blocking(reset_sequences)
            .map_err(anyhow::Error::msg)?;
        // Fresh statistics for the planner: before autovacuum gets to the
        // bulk load, PostgreSQL guessed the pairing queue's NOT EXISTS plan
        // and the leader dashboard took 6 s instead of 0.8 s.
        db.read_blocking(|c| Ok(diesel::sql_query("ANALYZE").execute(c)?))
            .map_err(anyhow::Error::msg)
            .context("analyzing the demo tables")?;
    }
    let mut report = String::new();
    let _ = write!(
        report,
        "Loaded the demo programme into {} in {:.1} s: {} patients ({} unassigned, {} discharged), \
         {} students, {} physicians, {} leaders, 1 admin, {} calls, {} concerns.\n\
         Sign in as admin1@{d}, leader1@{d}, physician1@{d} or student1@{d} with the password {}",
        db.target(),
        started.elapsed().as_secs_f64(),
        args.patients,
        totals.unassigned,
        totals.discharged,
        args.students,
        args.physicians,
        args.leaders,
        totals.calls,
        totals.concerns,
        DEMO_PASSWORD,
        d = DEMO_DOMAIN,
    );
    Ok(report)
}

pub(crate) struct StaffMember {
    pub(crate) id: i64,
    email: String,
    given: &'static str,
    family: &'static str,
    roles: Vec<Role>,
    languages: Vec<&'static str>,
    capacity: i32,
}

pub(crate) struct Staff {
    members: Vec<StaffMember>,
    pub(crate) leaders: Vec<i64>,
    pub(crate) physicians: Vec<i64>,
    /// Students who speak Spanish, and those who speak only English.
    pub(crate) spanish_speakers: Vec<i64>,
    pub(crate) english_only: Vec<i64>,
}

impl Staff {
    /// The one admin account, planned first.
    pub(crate) fn admin(&self) -> i64 {
        self.members[0].id
    }
}

pub(crate) fn plan_staff(args: &DemoArgs, first_id: i64, rng: &mut StdRng) -> Staff {
    let mut members = Vec::new();
    let mut next_id = first_id;
    let mut add = |prefix: &str, n: usize, roles: Vec<Role>, rng: &mut StdRng| -> Vec<i64> {
        (1..=n)
            .map(|k| {
                let id = next_id;
                next_id += 1;
                let speaks_spanish = roles.contains(&Role::Student) && k % 5 < 3;
                members.push(StaffMember {
                    id,
                    email: format!("{prefix}{k}@{DEMO_DOMAIN}"),
                    given: GIVEN[rng.gen_range(0..GIVEN.len())],
                    family: FAMILY[rng.gen_range(0..FAMILY.len())],
                    roles: roles.clone(),
                    languages: if speaks_spanish {
                        vec!["en", "es"]
                    } else {
                        vec!["en"]
                    },
                    capacity: 3 + (k % 4) as i32,
                });
                id
            })
            .collect()
    };
    add("admin", 1, vec![Role::Admin], rng);
    let leaders = add("leader", args.leaders, vec![Role::Leader], rng);
    let physicians = add("physician", args.physicians, vec![Role::Physician], rng);
    let students = add("student", args.students, vec![Role::Student], rng);
    let (spanish_speakers, english_only): (Vec<i64>, Vec<i64>) = students.iter().partition(|id| {
        members
            .iter()
            .any(|m| m.id == **id && m.languages.contains(&"es"))
    });
    Staff {
        members,
        leaders,
        physicians,
        spanish_speakers,
        english_only,
    }
}

pub(crate) fn insert_staff(
    c: &mut DbConn,
    staff: &Staff,
    password_hash: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let rows: Vec<NewUser> = staff
        .members
        .iter()
        .map(|m| NewUser {
            id: Some(m.id),
            email: &m.email,
            given_name: m.given,
            family_name: m.family,
            password_hash: Some(password_hash),
            capacity: m.capacity,
            created_at: now,
            updated_at: now,
        })
        .collect();
    let roles: Vec<NewUserRole> = staff
        .members
        .iter()
        .flat_map(|m| {
            m.roles.iter().map(|&role| NewUserRole {
                user_id: m.id,
                role,
            })
        })
        .collect();
    let languages: Vec<NewUserLanguage> = staff
        .members
        .iter()
        .flat_map(|m| {
            m.languages.iter().map(|l| NewUserLanguage {
                user_id: m.id,
                language: l.to_string(),
            })
        })
        .collect();
    for chunk in rows.chunks(BATCH_ROWS) {
        crate::insert_batch!(c, users::table, chunk.to_vec())?;
    }
    for chunk in roles.chunks(BATCH_ROWS) {
        crate::insert_batch!(c, user_roles::table, chunk.to_vec())?;
    }
    for chunk in languages.chunks(BATCH_ROWS) {
        crate::insert_batch!(c, user_languages::table, chunk.to_vec())?;
    }
    Ok(())
}

/// One patient with everything that happened to them, owned so a chunk of
/// plans can be borrowed by the insert structs.
struct PatientPlan {
    id: i64,
    given: &'static str,
    family: &'static str,
    phone: String,
    language: &'static str,
    interpreter_needed: bool,
    best_times: &'static str,
    mode: ContactMode,
    cadence: Cadence,
    reasons: Vec<EnrolmentReason>,
    enrolled_on: NaiveDate,
    enrolled_by: i64,
    discharge_point: NaiveDate,
    discharged: Option<(NaiveDateTime, i64, DischargeReason)>,
    assignment: Option<NewAssignment<'static>>,
    calls: Vec<NewCall<'static>>,
    concerns: Vec<NewConcern<'static>>,
    today: NaiveDate,
}

impl PatientPlan {
    fn as_new(&self) -> NewPatient<'_> {
        let last = self.calls.last();
        let failed = self
            .calls
            .iter()
            .rev()
            .take_while(|c| !c.outcome.reached_patient())
            .count() as i32;
        let active = self.discharged.is_none();
        let final_call_from = self.discharge_point - Duration::days(schedule::FINAL_CALL_DAYS);
        NewPatient {
            id: Some(self.id),
            given_name: self.given,
            family_name: self.family,
            phone: &self.phone,
            preferred_language: self.language,
            interpreter_needed: self.interpreter_needed,
            best_times: self.best_times,
            contact_mode: self.mode,
            enrolment_reason_other: None,
            interest_confirmed: true,
            cadence: self.cadence,
            enrolled_on: self.enrolled_on,
            enrolled_by: self.enrolled_by,
            date_of_birth: None,
            clinic_record_number: None,
            status: if active {
                PatientStatus::Active
            } else {
                PatientStatus::Discharged
            },
            discharge_due_on: self.discharge_point,
            next_call_at: if active {
                last.and_then(|c| c.next_call_at)
            } else {
                None
            },
            last_call_at: last.map(|c| c.occurred_at),
            last_call_outcome: last.map(|c| c.outcome.as_str()),
            failed_attempts: failed,
            final_call_since: (self.today >= final_call_from).then_some(final_call_from),
            discharge_due_since: (self.today >= self.discharge_point)
                .then_some(self.discharge_point),
            discharged_at: self.discharged.map(|d| d.0),
            discharged_by: self.discharged.map(|d| d.1),
            discharge_reason: self.discharged.map(|d| d.2.as_str()),
            discharge_summary: self
                .discharged
                .map(|_| "Completed the programme; handed back to the enrolling physician."),
            created_at: schedule::start_of_day(self.enrolled_on, chrono_tz::UTC).naive_utc(),
            updated_at: schedule::start_of_day(self.enrolled_on, chrono_tz::UTC).naive_utc(),
        }
    }
}

fn insert_patients(c: &mut DbConn, plans: &[PatientPlan]) -> Result<(), AppError> {
    let rows: Vec<NewPatient> = plans.iter().map(PatientPlan::as_new).collect();
    for chunk in rows.chunks(BATCH_ROWS) {
        crate::insert_batch!(c, patients::table, chunk.to_vec())?;
    }
    let reasons: Vec<NewEnrolmentReason> = plans
        .iter()
        .flat_map(|p| {
            p.reasons.iter().map(|&reason| NewEnrolmentReason {
                patient_id: p.id,
                reason,
            })
        })
        .collect();
    for chunk in reasons.chunks(BATCH_ROWS) {
        crate::insert_batch!(c, enrolment_reasons::table, chunk.to_vec())?;
    }
    let pairings: Vec<NewAssignment> = plans.iter().filter_map(|p| p.assignment.clone()).collect();
    for chunk in pairings.chunks(BATCH_ROWS) {
        crate::insert_batch!(c, assignments::table, chunk.to_vec())?;
    }
    let all_calls: Vec<NewCall> = plans.iter().flat_map(|p| p.calls.iter().cloned()).collect();
    for chunk in all_calls.chunks(BATCH_ROWS) {
        crate::insert_batch!(c, calls::table, chunk.to_vec())?;
    }
    let all_concerns: Vec<NewConcern> = plans
        .iter()
        .flat_map(|p| p.concerns.iter().cloned())
        .collect();
    for chunk in all_concerns.chunks(BATCH_ROWS) {
        crate::insert_batch!(c, concerns::table, chunk.to_vec())?;
    }
    Ok(())
}

/// Rows were written with their own ids; move PostgreSQL's sequences past them.
pub(crate) fn reset_sequences(c: &mut DbConn) -> Result<(), AppError> {
    for table in ["users", "patients", "assignments", "calls"] {
        diesel::sql_query(format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
             GREATEST((SELECT MAX(id) FROM {table}), 1))"
        ))
        .execute(c)?;
    }
    Ok(())
}

#[derive(Default)]
struct Totals {
    calls: usize,
    concerns: usize,
    unassigned: usize,
    discharged: usize,
}

impl Totals {
    fn add(&mut self, plan: &PatientPlan) {
        self.calls += plan.calls.len();
        self.concerns += plan.concerns.len();
        self.unassigned += usize::from(plan.assignment.is_none());
        self.discharged += usize::from(plan.discharged.is_some());
    }
}

struct Builder<'a> {
    tz: Tz,
    weeks: u32,
    now: DateTime<Utc>,
    today: NaiveDate,
    staff: &'a Staff,
    rng: StdRng,
    next_call_id: i64,
    next_assignment_id: i64,
    round_robin: [usize; 2],
}

/// How many calls each patient gets when `--calls` fixes the total: in
/// proportion to the time each has been in the programme.
struct Allocation {
    days_ago: Vec<i64>,
    calls: Option<Vec<usize>>,
}

fn allocate_calls(args: &DemoArgs, b: &mut Builder) -> Allocation {
    let n = args.patients;
    let programme_days = i64::from(b.weeks) * 7;
    // Small demos spread enrolment evenly over the last nine weeks, so every
    // stage of the programme shows; large ones over the past 400 days.
    let days_ago: Vec<i64> = match args.calls {
        None => (0..n)
            .map(|i| ((n - 1 - i) as i64 * (programme_days + 7)) / (n.max(2) - 1) as i64)
            .collect(),
        Some(_) => (0..n).map(|_| b.rng.gen_range(0..=400)).collect(),
    };
    let calls = args.calls.map(|total| {
        let spans: Vec<i64> = days_ago
            .iter()
            .map(|&d| (d.min(programme_days) - 1).max(0))
            .collect();
        let weight: i64 = spans.iter().sum::<i64>().max(1);
        let mut out: Vec<usize> = spans
            .iter()
            .map(|&s| (total as i128 * s as i128 / weight as i128) as usize)
            .collect();
        let mut left = total.saturating_sub(out.iter().sum());
        let mut i = 0;
        while left > 0 && n > 0 {
            if spans[i % n] > 0 {
                out[i % n] += 1;
                left -= 1;
            }
            i += 1;
            if i > 4 * n && left > 0 {
                // Everyone enrolled today: nothing can have been called yet.
                break;
            }
        }
        out
    });
    Allocation { days_ago, calls }
}

impl Builder<'_> {
    fn patient(&mut self, i: usize, n: usize, allocation: &Allocation) -> PatientPlan {
        let id = i as i64 + 1;
        let rng = &mut self.rng;
        let spanish = rng.gen_bool(0.7);
        let given = GIVEN[rng.gen_range(0..GIVEN.len())];
        let family = FAMILY[rng.gen_range(0..FAMILY.len())];
        let enrolled_on = self.today - Duration::days(allocation.days_ago[i]);
        let discharge_point = schedule::discharge_point(enrolled_on, self.weeks);
        let cadence = if rng.gen_bool(0.75) {
            Cadence::Weekly
        } else {
            Cadence::Biweekly
        };
        let mode = if rng.gen_bool(0.85) {
            ContactMode::Phone
        } else {
            ContactMode::Video
        };
        let mut reasons = vec![
            EnrolmentReason::MentalHealth,
            EnrolmentReason::SocialIsolation,
        ];
        reasons.truncate(rng.gen_range(1..=2));
        if rng.gen_bool(0.3) {
            reasons.push(EnrolmentReason::CovidWorries);
        }
        if rng.gen_bool(0.2) {
            reasons.push(EnrolmentReason::LivingCircumstances);
        }
        let area = ["215", "267", "445", "610"][i % 4];
        let phone = format!("+1{area}5550{:03}", 100 + (i % 100));
        let enrolled_by = self.staff.physicians[i % self.staff.physicians.len()];
        let leader = self.staff.leaders[i % self.staff.leaders.len()];
        let discharged = (self.today
            >= discharge_point + Duration::days(schedule::DISCHARGE_OVERDUE_DAYS))
        .then(|| {
            let at = schedule::local_to_utc(
                discharge_point + Duration::days(rng.gen_range(0..4)),
                NaiveTime::from_hms_opt(16, 0, 0).expect("valid time"),
                self.tz,
            );
            let reason = match rng.gen_range(0..20) {
                0 => DischargeReason::Unreachable,
                1 => DischargeReason::Withdrew,
                _ => DischargeReason::Completed,
            };
            (at.min(self.now).naive_utc(), leader, reason)
        });
        let small = allocation.calls.is_none();
        // The newest patients wait for a leader to pair them.
        let unassigned = if small {
            n > 1 && i + 1 == n
        } else {
            allocation.days_ago[i] == 0
        };
        let interpreter_needed = spanish && rng.gen_bool(0.4);
        let mut plan = PatientPlan {
            id,
            given,
            family,
            phone,
            language: if spanish { "es" } else { "en" },
            interpreter_needed,
            best_times: BEST_TIMES[i % BEST_TIMES.len()],
            mode,
            cadence,
            reasons,
            enrolled_on,
            enrolled_by,
            discharge_point,
            discharged,
            assignment: None,
            calls: Vec::new(),
            concerns: Vec::new(),
            today: self.today,
        };
        if !unassigned {
            self.pair_and_call(
                &mut plan,
                i,
                leader,
                allocation.calls.as_ref().map(|c| c[i]),
            );
        }
        plan
    }

    fn pair_and_call(
        &mut self,
        plan: &mut PatientPlan,
        i: usize,
        leader: i64,
        fixed_calls: Option<usize>,
    ) {
        let pool = if plan.language == "es" && !self.staff.spanish_speakers.is_empty() {
            0
        } else {
            1
        };
        let students = if pool == 0 || self.staff.english_only.is_empty() {
            &self.staff.spanish_speakers
        } else {
            &self.staff.english_only
        };
        let student = students[self.round_robin[pool] % students.len()];
        self.round_robin[pool] += 1;
        let tz = self.tz;
        let hour = 10 + (i % 8) as u32;
        let call_time = NaiveTime::from_hms_opt(hour, 0, 0).expect("valid time");
        let started = schedule::local_to_utc(
            plan.enrolled_on,
            NaiveTime::from_hms_opt(9, 0, 0).expect("valid time"),
            tz,
        )
        .min(self.now);
        let assignment_id = self.next_assignment_id;
        self.next_assignment_id += 1;
        // Calls stop at the discharge point (rule 4), at discharge, or now.
        let last_call_time = NaiveTime::from_hms_opt(20, 0, 0).expect("valid time");
        let mut end = self.now.min(schedule::local_to_utc(
            plan.discharge_point,
            last_call_time,
            tz,
        ));
        if let Some((at, _, _)) = plan.discharged {
            end = end.min(at.and_utc());
        }
        plan.assignment = Some(NewAssignment {
            id: Some(assignment_id),
            patient_id: plan.id,
            student_id: student,
            started_at: started.naive_utc(),
            started_by: leader,
            note: "",
            ended_at: plan.discharged.map(|d| d.0),
            ended_by: plan.discharged.map(|d| d.1),
            handoff_note: plan.discharged.map(|_| "Discharged: the programme ended."),
        });
        let first = schedule::local_to_utc(plan.enrolled_on + Duration::days(2), call_time, tz);
        let mut slots: Vec<DateTime<Utc>> = Vec::new();
        match fixed_calls {
            None => {
                let mut at = first;
                while at < end {
                    slots.push(at);
                    at = schedule::local_to_utc(
                        schedule::local_date(at, tz) + Duration::days(plan.cadence.days()),
                        call_time,
                        tz,
                    );
                }
                // A quarter of students have not made this week's call yet.
                if slots.len() > 1 && plan.discharged.is_none() && self.rng.gen_bool(0.25) {
                    slots.pop();
                }
            }
            Some(count) if count > 0 => {
                let start = plan.enrolled_on.and_time(call_time).and_utc() - Duration::hours(12);
                let span = (end - start).num_minutes().max(count as i64);
                let step = span / count as i64;
                slots = (0..count as i64)
                    .map(|k| start + Duration::minutes(k * step))
                    .collect();
            }
            Some(_) => {}
        }
        for (k, &at) in slots.iter().enumerate() {
            let next = match slots.get(k + 1) {
                Some(&next) => Some(next),
                None => schedule::proposed_next_call(at, plan.cadence, plan.discharge_point, tz),
            };
            self.call(plan, student, assignment_id, leader, at, next);
        }
    }

    fn call(
        &mut self,
        plan: &mut PatientPlan,
        student: i64,
        assignment_id: i64,
        leader: i64,
        at: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
    ) {
        let rng = &mut self.rng;
        let outcome = match rng.gen_range(0..100) {
            0..=71 => Outcome::Completed,
            72..=83 => Outcome::NoAnswer,
            84..=91 => Outcome::Voicemail,
            92..=94 => Outcome::Rescheduled,
            95..=96 => Outcome::Declined,
            97..=98 => Outcome::InterpreterUnavailable,
            _ => Outcome::WrongNumber,
        };
        let reached = outcome == Outcome::Completed;
        let concern = match rng.gen_range(0..1000) {
            0..=2 if reached => ConcernLevel::Urgent,
            3..=14 if reached => ConcernLevel::NonUrgent,
            _ => ConcernLevel::None,
        };
        let id = self.next_call_id;
        self.next_call_id += 1;
        let occurred = at.naive_utc();
        if concern != ConcernLevel::None {
            let acknowledged = at < self.now - Duration::days(3);
            plan.concerns.push(NewConcern {
                call_id: id,
                patient_id: plan.id,
                raised_by: student,
                level: concern,
                raised_at: occurred,
                acknowledged_at: acknowledged.then(|| (at + Duration::hours(2)).naive_utc()),
                acknowledged_by: acknowledged.then_some(leader),
                acknowledgement_note: acknowledged
                    .then_some("Spoke with the student and the physician."),
            });
        }
        let notes = if reached {
            NOTES_REACHED.choose(rng).copied().unwrap_or_default()
        } else {
            NOTES_MISSED.choose(rng).copied().unwrap_or_default()
        };
        plan.calls.push(NewCall {
            id: Some(id),
            patient_id: plan.id,
            student_id: student,
            assignment_id: Some(assignment_id),
            occurred_at: occurred,
            mode: plan.mode,
            outcome,
            duration_minutes: if reached {
                rng.gen_range(8..30)
            } else {
                rng.gen_range(0..3)
            },
            interpreter_used: plan.interpreter_needed && reached,
            protocol_version: DEMO_PROTOCOL_VERSION,
            concern,
            notes,
            next_call_at: next.filter(|n| *n > at).map(|n| n.naive_utc()),
            flagged_for_debrief: concern == ConcernLevel::Urgent,
            idempotency_key: None,
            created_at: occurred,
            updated_at: occurred,
        });
    }
}
