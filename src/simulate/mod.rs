//! `checkin simulate`: a whole programme in fast-forward.
//!
//! A fresh database, a [`TestClock`] moved hour by hour, and simulated
//! people doing what the real ones do through the same library code the
//! pages and the API call: physicians enrol, leaders pair from the waiting
//! list and discharge from the queue and acknowledge concerns, students open
//! their check-ins and log calls (skipping some, failing to reach some,
//! raising concerns), a few students leave the programme. The real
//! background work runs as the worker would: the jobs every hour, the outbox
//! into a folder seconds after anything is queued.
//!
//! The simulation keeps its own account of every patient (when they were
//! enrolled, paired, called, booked, discharged) and each simulated day
//! compares it with what the app shows its users. A difference is a broken
//! promise, named with the patient ([`promises`]). At the end it reports
//! figures for leaders ([`report`]).

mod actors;
mod promises;
mod report;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Timelike, Utc};
use clap::Args;
use rand::rngs::StdRng;

use crate::clock::{SharedClock, TestClock};
use crate::config::Settings;
use crate::domain::schedule;
use crate::domain::Cadence;
use crate::mail::sender::Transport;
use crate::startup::AppState;

pub use promises::{Broken, Promise};
pub use report::Figures;

#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    #[arg(long, default_value_t = 200)]
    pub patients: usize,
    #[arg(long, default_value_t = 20)]
    pub students: usize,
    /// Programme length: the discharge point is this many weeks after
    /// enrolment.
    #[arg(long, default_value_t = 8)]
    pub weeks: u32,
    /// Share of due follow-ups a student puts off on a day they call.
    #[arg(long, default_value_t = 0.2)]
    pub skip_rate: f64,
    /// Share of completed calls that raise an urgent concern.
    #[arg(long, default_value_t = 0.01)]
    pub urgent_rate: f64,
    /// The same seed gives the same programme.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The Monday the first patients are enrolled (programme time). The
    /// default crosses the March change to summer time.
    #[arg(long, default_value = "2027-02-01")]
    pub start: NaiveDate,
    /// Folder for the database (unless --database-url) and the emails
    /// (mail/); default: a new temporary folder, removed at the end.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// An empty database to use instead of a new SQLite file, e.g. a new
    /// PostgreSQL database.
    #[arg(long)]
    pub database_url: Option<String>,
}

impl Default for SimulateArgs {
    fn default() -> Self {
        SimulateArgs {
            patients: 200,
            students: 20,
            weeks: 8,
            skip_rate: 0.2,
            urgent_rate: 0.01,
            seed: 1,
            start: NaiveDate::from_ymd_opt(2027, 2, 1).expect("a date"),
            out: None,
            database_url: None,
        }
    }
}

/// Things that go wrong on purpose, so tests can show a broken promise is
/// caught and named. Never set by the command line.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// The background jobs do not run at all on this programme day (0 = the
    /// first day).
    pub skip_jobs_on_day: Option<i64>,
    /// The outbox is not drained for this many hours from the start of
    /// this programme day.
    pub outbox_stalled: Option<(i64, i64)>,
}

/// How the simulated people behave; fixed, written in the report.
pub(crate) mod behaviour {
    /// Patients are enrolled on weekdays, 9:00 to 16:00, over this many weeks.
    pub const ENROLMENT_WEEKS: i64 = 2;
    /// A student sits down to call every day but one fixed day off a week,
    /// at their own hour between 16:00 and 20:00.
    /// Calls in one sitting, twelve minutes apart.
    pub const CALLS_PER_SITTING: usize = 4;
    pub const MINUTES_PER_CALL: i64 = 12;
    /// Chance of reaching a patient; hard-to-reach patients (one in twenty)
    /// are reached less often.
    pub const REACH_CHANCE: f64 = 0.8;
    pub const HARD_TO_REACH_CHANCE: f64 = 0.3;
    pub const HARD_TO_REACH_SHARE: f64 = 0.05;
    /// Share of completed calls with a non-urgent concern.
    pub const CONCERN_RATE: f64 = 0.03;
    /// Share of students who leave the programme in weeks 2 to 6 (at least
    /// one in a programme of ten students or more). Their patients are paired
    /// again after 1 to 4 days, once a leader has found someone.
    pub const DROPOUT_SHARE: f64 = 0.03;
    pub const REPAIR_AFTER_HOURS: std::ops::Range<i64> = 24..96;
    /// Share of patients who withdraw early (discharged by their physician).
    pub const EARLY_WITHDRAWAL_SHARE: f64 = 0.02;
    /// Leaders look at the waiting list at these hours every day (the
    /// report says 10:00 and 18:00).
    pub const PAIRING_HOURS: [u32; 2] = [10, 18];
    /// Leaders discharge from the queue at this hour, the day after the
    /// discharge point (so final calls on the day itself can be logged).
    pub const DISCHARGE_HOUR: u32 = 11;
    /// An urgent concern is acknowledged within this many hours (at random),
    /// a non-urgent one at this hour the next day.
    pub const URGENT_ACK_MAX_HOURS: i64 = 6;
    pub const ROUTINE_ACK_HOUR: u32 = 12;
    /// The app is checked against the simulation's own account at this hour.
    pub const CHECK_HOUR: u32 = 8;
    /// A student who had a patient just discharged tries to log a call for
    /// them anyway (a page left open) this often; the app must refuse.
    pub const STALE_CALL_CHANCE: f64 = 0.1;
}

/// The simulation's own account of one patient.
#[derive(Debug, Clone)]
pub(crate) struct SimPatient {
    pub id: i64,
    pub enrolled_on: NaiveDate,
    pub discharge_point: NaiveDate,
    pub cadence: Cadence,
    pub interpreter: bool,
    pub enrolled_by: i64,
    pub hard_to_reach: bool,
    pub withdraws_at: Option<DateTime<Utc>>,
    pub student: Option<i64>,
    /// Since when no enabled student has had this patient.
    pub unpaired_since: Option<DateTime<Utc>>,
    /// A leader pairs them again no sooner than this (after a student left).
    pub repair_after: Option<DateTime<Utc>>,
    pub booked: Option<DateTime<Utc>>,
    pub any_call: bool,
    pub discharged_at: Option<DateTime<Utc>>,
}

impl SimPatient {
    /// The day the follow-up is due, by the simulation's own reckoning of
    /// SPEC rule 5: the booked call's day, or for a patient never called the
    /// end of the first-call window; none after the last call.
    pub fn due_on(&self, tz: chrono_tz::Tz) -> Option<NaiveDate> {
        match self.booked {
            Some(at) => Some(schedule::local_date(at, tz)),
            None if !self.any_call => Some(self.enrolled_on + Duration::days(3)),
            None => None,
        }
    }

    pub fn active(&self) -> bool {
        self.discharged_at.is_none()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SimStudent {
    pub id: i64,
    pub calling_hour: u32,
    pub calling_minute: i64,
    pub day_off: chrono::Weekday,
    pub leaves_at: Option<DateTime<Utc>>,
    pub left: bool,
}

/// An urgent or non-urgent concern the simulation raised.
#[derive(Debug, Clone)]
pub(crate) struct SimConcern {
    pub id: i64,
    pub patient_id: i64,
    pub urgent: bool,
    pub raised_at: DateTime<Utc>,
    pub acknowledge_at: DateTime<Utc>,
    pub acknowledged: bool,
}

/// Everything the run keeps between hours.
pub(crate) struct World {
    pub state: AppState,
    pub clock: Arc<TestClock>,
    pub transport: Transport,
    pub holder: String,
    pub args: SimulateArgs,
    pub faults: Faults,
    pub rng: StdRng,
    pub admin: i64,
    pub leaders: Vec<i64>,
    pub physicians: Vec<i64>,
    pub students: Vec<SimStudent>,
    pub spanish_speakers: Vec<i64>,
    pub patients: BTreeMap<i64, SimPatient>,
    pub concerns: Vec<SimConcern>,
    pub enrolled: usize,
    pub broken: Vec<Broken>,
    pub tally: report::Tally,
}

impl World {
    pub fn tz(&self) -> chrono_tz::Tz {
        self.state.settings.timezone
    }

    pub fn now(&self) -> DateTime<Utc> {
        crate::clock::Clock::now(&*self.clock)
    }

    pub fn day_index(&self, today: NaiveDate) -> i64 {
        (today - self.args.start).num_days()
    }

    /// The worker's outbox pass, at the clock's time, unless stalled.
    pub fn drain_outbox(&mut self) -> anyhow::Result<()> {
        let today = schedule::local_date(self.now(), self.tz());
        let hours_in = (self.now() - schedule::start_of_day(today, self.tz())).num_hours();
        if let Some((day, hours)) = self.faults.outbox_stalled {
            if self.day_index(today) == day && hours_in < hours {
                return Ok(());
            }
        }
        let clock = self.clock.clone();
        let report = crate::mail::sender::drain(
            &self.state.db,
            &self.transport,
            &self.state.settings.mail_from,
            &self.holder,
            move || crate::clock::Clock::now(&*clock),
        )
        .map_err(|e| anyhow::anyhow!("the outbox sender failed: {e}"))?;
        self.tally.emails_sent += report.sent;
        Ok(())
    }

    /// Counts one patient checked for `promise`, so a report can show no
    /// promise "held" only because nothing put it to the test.
    pub fn checked(&mut self, promise: Promise, times: usize) {
        *self.tally.checks.entry(promise).or_default() += times;
    }

    pub fn break_promise(&mut self, patient_id: i64, promise: Promise, detail: String) {
        self.broken.push(Broken {
            patient_id,
            promise,
            detail,
        });
    }
}

/// What a run found.
pub struct Outcome {
    pub figures: Figures,
    pub broken: Vec<Broken>,
    /// The report in Markdown, figures and promises.
    pub report: String,
}

/// Runs a simulation with the database and mail folder `settings` name.
/// The database must hold no accounts yet.
pub fn run(mut settings: Settings, args: &SimulateArgs, faults: Faults) -> anyhow::Result<Outcome> {
    check_args(args)?;
    let started = Instant::now();
    settings.programme_weeks = args.weeks;
    settings.smtp_url = None;
    let tz = settings.timezone;
    let start = schedule::start_of_day(args.start, tz);
    let clock = TestClock::new(start);
    let shared: SharedClock = clock.clone();
    let state = crate::startup::prepare(settings, shared).map_err(|e| anyhow::anyhow!("{e}"))?;
    let transport = Transport::from_settings(&state.settings).map_err(anyhow::Error::msg)?;
    let mut world = actors::build(state, clock, transport, args.clone(), faults)?;

    // Everyone enrolled by the end of the enrolment weeks reaches the point
    // 8 weeks later; leaders discharge the day after; two days to spare.
    let last_enrolment = args.start + Duration::weeks(behaviour::ENROLMENT_WEEKS);
    let end_day = schedule::discharge_point(last_enrolment, args.weeks) + Duration::days(3);
    let end = schedule::start_of_day(end_day, tz);
    let mut hour = start;
    while hour < end {
        world.clock.set(hour);
        step(&mut world, hour)?;
        hour += Duration::hours(1);
    }
    world.clock.set(end);
    promises::check_at_end(&mut world)?;
    let figures = report::figures(&world)?;
    let elapsed = started.elapsed();
    let report = report::markdown(&world, &figures, elapsed);
    Ok(Outcome {
        figures,
        broken: std::mem::take(&mut world.broken),
        report,
    })
}

fn check_args(args: &SimulateArgs) -> anyhow::Result<()> {
    if args.patients == 0 || args.students == 0 {
        bail!("--patients and --students must each be at least 1");
    }
    if !(1..=52).contains(&args.weeks) {
        bail!("--weeks must be 1 to 52, not {}", args.weeks);
    }
    for (name, rate) in [
        ("--skip-rate", args.skip_rate),
        ("--urgent-rate", args.urgent_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            bail!("{name} must be between 0 and 1, not {rate}");
        }
    }
    Ok(())
}

/// One hour of the programme, in the order things happen.
fn step(world: &mut World, hour: DateTime<Utc>) -> anyhow::Result<()> {
    let tz = world.tz();
    let local = hour.with_timezone(&tz);
    let today = local.date_naive();
    // The worker: jobs, then the outbox.
    let t = Instant::now();
    if world.faults.skip_jobs_on_day != Some(world.day_index(today)) {
        crate::jobs::run_due(&world.state, &world.holder)
            .map_err(|e| anyhow::anyhow!("the background jobs failed: {e}"))?;
    }
    world.clock.set(hour + Duration::seconds(5));
    world.drain_outbox()?;
    world.clock.set(hour);
    world.tally.time("background work", t);
    let t = Instant::now();
    if local.hour() == behaviour::CHECK_HOUR {
        promises::check_daily(world, today)?;
    }
    promises::check_concerns_open(world)?;
    world.tally.time("checks", t);
    let t = Instant::now();
    actors::leave(world, hour)?;
    actors::enrol(world, hour)?;
    if behaviour::PAIRING_HOURS.contains(&local.hour()) {
        actors::pair(world, hour)?;
    }
    if local.hour() == behaviour::DISCHARGE_HOUR {
        actors::discharge(world, hour, today)?;
    }
    actors::withdraw(world, hour)?;
    actors::acknowledge(world, hour)?;
    world.tally.time("physicians and leaders", t);
    let t = Instant::now();
    actors::call(world, hour, local.hour())?;
    world.tally.time("students' calls", t);
    Ok(())
}

/// `checkin simulate`: a fresh database in `--out` (or a temporary folder),
/// the report on standard output, a failure naming each broken promise.
pub fn command(mut settings: Settings, args: &SimulateArgs) -> anyhow::Result<()> {
    let temp;
    let out = match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the folder {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("checkin-simulation-")
                .tempdir()
                .context("cannot make a temporary folder")?;
            temp.path().to_path_buf()
        }
    };
    settings.data_dir = out.clone();
    settings.database_url = match &args.database_url {
        Some(url) => url.clone(),
        None => {
            let file = out.join("simulation.db");
            if file.exists() {
                bail!(
                    "{} already exists; the simulation needs a fresh database. Remove it or choose another --out",
                    file.display()
                );
            }
            format!("sqlite://{}", file.display())
        }
    };
    let outcome = run(settings, args, Faults::default())?;
    println!("{}", outcome.report);
    if !outcome.broken.is_empty() {
        for broken in outcome.broken.iter().take(50) {
            eprintln!("{broken}");
        }
        bail!(
            "{} promise(s) broken; the first are listed above",
            outcome.broken.len()
        );
    }
    Ok(())
}

/// The local time `minutes` after the start of `hour`.
pub(crate) fn at_minute(hour: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
    hour + Duration::minutes(minutes)
}

/// `hour`:00 on `day`, programme time.
pub(crate) fn at_local_hour(day: NaiveDate, hour: u32, tz: chrono_tz::Tz) -> DateTime<Utc> {
    let time = NaiveTime::from_hms_opt(hour.min(23), 0, 0).unwrap_or(NaiveTime::MIN);
    schedule::local_to_utc(day, time, tz)
}

/// Students' active patients, by the simulation's account.
pub(crate) fn patients_by_student(world: &World) -> HashMap<i64, Vec<i64>> {
    let mut by: HashMap<i64, Vec<i64>> = HashMap::new();
    for p in world.patients.values().filter(|p| p.active()) {
        if let (Some(s), None) = (p.student, p.unpaired_since) {
            by.entry(s).or_default().push(p.id);
        }
    }
    by
}
