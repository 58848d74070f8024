//! The simulated people. Each acts through the library code a page or the
//! API calls, in a transaction of its own, as a request would.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use diesel::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::behaviour::*;
use super::{
    at_local_hour, at_minute, Faults, SimConcern, SimPatient, SimStudent, SimulateArgs, World,
};
use crate::calls::{self, CallContext, Logged};
use crate::clock::TestClock;
use crate::db::schema::{concerns, users};
use crate::domain::schedule;
use crate::domain::{Cadence, DischargeReason, Role};
use crate::error::AppError;
use crate::mail::sender::Transport;
use crate::startup::AppState;
use crate::web::identity::Principal;
use crate::web::input::Fields;

/// Accounts for everyone, in a database that must be empty.
pub(super) fn build(
    state: AppState,
    clock: Arc<TestClock>,
    transport: Transport,
    args: SimulateArgs,
    faults: Faults,
) -> anyhow::Result<World> {
    let existing: i64 = state
        .db
        .read_blocking(|c| Ok(users::table.count().get_result(c)?))
        .map_err(anyhow::Error::msg)?;
    if existing > 0 {
        anyhow::bail!(
            "the database already holds {existing} accounts; the simulation needs a fresh one"
        );
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let demo_args = crate::demo::DemoArgs {
        patients: 0,
        students: args.students,
        physicians: args.patients.div_ceil(250).max(1),
        leaders: args.students.div_ceil(40).max(1),
        calls: Some(0),
        seed: args.seed,
    };
    let staff = crate::demo::plan_staff(&demo_args, 1, &mut rng);
    let hash = crate::auth::hash_password(crate::demo::DEMO_PASSWORD)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = crate::clock::Clock::now(&*clock).naive_utc();
    state
        .db
        .write_blocking(|c| crate::demo::insert_staff(c, &staff, &hash, now))
        .map_err(anyhow::Error::msg)?;
    if state.db.backend() == crate::db::Backend::Postgres {
        state
            .db
            .write_blocking(crate::demo::reset_sequences)
            .map_err(anyhow::Error::msg)?;
    }
    let tz = state.settings.timezone;
    let start = schedule::start_of_day(args.start, tz);
    let mut students: Vec<SimStudent> = staff
        .spanish_speakers
        .iter()
        .chain(&staff.english_only)
        .map(|&id| SimStudent {
            id,
            calling_hour: rng.gen_range(16..=20),
            calling_minute: rng.gen_range(0..10),
            day_off: chrono::Weekday::try_from(rng.gen_range(0..7u8)).unwrap_or(Weekday::Sun),
            leaves_at: rng.gen_bool(DROPOUT_SHARE).then(|| {
                start + Duration::days(rng.gen_range(7..42)) + Duration::hours(rng.gen_range(9..17))
            }),
            left: false,
        })
        .collect();
    students.sort_by_key(|s| s.id);
    if students.len() >= 10 && students.iter().all(|s| s.leaves_at.is_none()) {
        let k = rng.gen_range(0..students.len());
        students[k].leaves_at =
            Some(start + Duration::days(rng.gen_range(7..42)) + Duration::hours(12));
    }
    Ok(World {
        state,
        clock,
        transport,
        holder: "simulation".into(),
        faults,
        rng,
        admin: staff.admin(),
        leaders: staff.leaders.clone(),
        physicians: staff.physicians.clone(),
        spanish_speakers: staff.spanish_speakers.clone(),
        students,
        patients: BTreeMap::new(),
        concerns: Vec::new(),
        enrolled: 0,
        broken: Vec::new(),
        tally: Default::default(),
        args,
    })
}

/// A signed-in user as the library sees one.
fn principal(id: i64, role: Role) -> Principal {
    Principal {
        user_id: id,
        given_name: String::new(),
        email: String::new(),
        roles: vec![role],
        session: None,
        request_id: "simulation".into(),
        address: "simulation".into(),
    }
}

fn leader(world: &World) -> Principal {
    principal(world.leaders[0], Role::Leader)
}

fn is_enrolment_hour(world: &World, hour: DateTime<Utc>) -> bool {
    let local = hour.with_timezone(&world.tz());
    let day = world.day_index(local.date_naive());
    let weekday = !matches!(local.weekday(), Weekday::Sat | Weekday::Sun);
    (0..ENROLMENT_WEEKS * 7).contains(&day)
        && weekday
        && (9..16).contains(&chrono::Timelike::hour(&local))
}

/// Physicians enrol this hour's share of patients through the API's reader.
pub(super) fn enrol(world: &mut World, hour: DateTime<Utc>) -> anyhow::Result<()> {
    if !is_enrolment_hour(world, hour) {
        return Ok(());
    }
    // Ten weekdays of seven hours each; the last hour takes what is left.
    let hours_total = (ENROLMENT_WEEKS * 5 * 7) as usize;
    let local = hour.with_timezone(&world.tz());
    let weekdays_before = (0..world.day_index(local.date_naive()))
        .filter(|d| {
            let day = world.args.start + Duration::days(*d);
            !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
        })
        .count();
    let slot = weekdays_before * 7 + (chrono::Timelike::hour(&local) as usize - 9);
    let target = (world.args.patients * (slot + 1)).div_ceil(hours_total);
    let target = target.min(world.args.patients);
    let tz = world.tz();
    while world.enrolled < target {
        let i = world.enrolled;
        let minute = (i % 50) as i64;
        let at = at_minute(hour, minute);
        world.clock.set(at);
        let physician = world.physicians[i % world.physicians.len()];
        let spanish = world.rng.gen_bool(0.35);
        let cadence = if world.rng.gen_bool(0.25) {
            Cadence::Biweekly
        } else {
            Cadence::Weekly
        };
        let interpreter =
            !spanish && world.rng.gen_bool(0.05) || spanish && world.spanish_speakers.is_empty();
        let (given, family, phone) = identity(i);
        let body = json!({
            "given_name": given,
            "family_name": family,
            "phone": phone,
            "preferred_language": if spanish { "es" } else { "en" },
            "interpreter_needed": interpreter,
            "best_times": "Afternoons",
            "enrolment_reasons": ["social_isolation"],
            "interest_confirmed": true,
            "cadence": cadence.as_str(),
        });
        let mut fields =
            Fields::from_json(body.to_string().as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let today = schedule::local_date(at, tz);
        let input = crate::enrolment::read(
            &mut fields,
            today,
            crate::enrolment::earliest_for_form(today),
        )
        .filter(|_| !fields.has_errors())
        .ok_or_else(|| {
            anyhow::anyhow!("a simulated enrolment was refused: {:?}", fields.errors())
        })?;
        let who = principal(physician, Role::Physician);
        let weeks = world.args.weeks;
        let id = world
            .state
            .db
            .write_blocking(|c| {
                crate::enrolment::enrol(
                    c,
                    &input,
                    physician,
                    weeks,
                    who.audit("", "", None, None),
                    at.naive_utc(),
                )
            })
            .map_err(|e| anyhow::anyhow!("enrolling patient {i}: {e}"))?;
        let hard_to_reach = world.rng.gen_bool(HARD_TO_REACH_SHARE);
        let withdraws_at = world.rng.gen_bool(EARLY_WITHDRAWAL_SHARE).then(|| {
            at + Duration::days(world.rng.gen_range(10..45))
                + Duration::hours(world.rng.gen_range(0..8))
        });
        world.patients.insert(
            id,
            SimPatient {
                id,
                enrolled_on: today,
                discharge_point: today + Duration::weeks(i64::from(weeks)),
                cadence,
                interpreter,
                enrolled_by: physician,
                hard_to_reach,
                withdraws_at,
                student: None,
                unpaired_since: Some(at),
                repair_after: None,
                booked: None,
                any_call: false,
                discharged_at: None,
            },
        );
        world.enrolled += 1;
    }
    world.clock.set(hour);
    Ok(())
}

/// A fictional name and number, distinct for each of the first 384,000.
fn identity(i: usize) -> (&'static str, &'static str, String) {
    use crate::demo::{FAMILY, GIVEN};
    let name = i % (GIVEN.len() * FAMILY.len());
    let number = i / (GIVEN.len() * FAMILY.len());
    let area = ["215", "267", "445", "610"][number % 4];
    (
        GIVEN[name % GIVEN.len()],
        FAMILY[name / GIVEN.len()],
        format!("+1{area}5550{:03}", 100 + (number / 4) % 100),
    )
}

/// A leader pairs everyone waiting with the best-ranked student, going over
/// capacity (confirmed) only when nobody has room: a patient left waiting
/// is called by no one.
pub(super) fn pair(world: &mut World, hour: DateTime<Utc>) -> anyhow::Result<()> {
    let tz = world.tz();
    let today = schedule::local_date(hour, tz);
    let (waiting, mut loads) = world
        .state
        .db
        .read_blocking(|c| {
            Ok((
                crate::pairing::unassigned(c, i64::MAX)?,
                crate::pairing::student_loads(c, today, tz)?,
            ))
        })
        .map_err(anyhow::Error::msg)?;
    if loads.is_empty() {
        return Ok(());
    }
    let who = leader(world);
    let waiting: Vec<_> = waiting
        .into_iter()
        .filter(|w| {
            world
                .patients
                .get(&w.id)
                .is_none_or(|p| p.repair_after.is_none_or(|t| t <= hour))
        })
        .collect();
    for (k, patient) in waiting.iter().enumerate() {
        let weight = patient
            .cadence
            .parse::<Cadence>()
            .map_or(1.0, Cadence::weight);
        let best =
            crate::pairing::rank(loads.clone(), &patient.preferred_language, weight).remove(0);
        let moving = world
            .patients
            .get(&patient.id)
            .is_some_and(|p| p.student.is_some());
        let request = crate::pairing::AssignRequest {
            student_id: best.load.student_id,
            note: if moving {
                "Your previous student has left the programme.".into()
            } else {
                String::new()
            },
            confirm_over_capacity: !best.fits,
        };
        let at = at_minute(hour, (k % 55) as i64);
        world.clock.set(at);
        world
            .state
            .db
            .write_blocking(|c| {
                crate::pairing::assign(c, &who, patient.id, &request, at.naive_utc(), today, tz)
            })
            .map_err(|e| anyhow::anyhow!("pairing patient {}: {e}", patient.id))?;
        if let Some(l) = loads
            .iter_mut()
            .find(|l| l.student_id == best.load.student_id)
        {
            l.weighted_load += weight;
            l.active_patients += 1;
        }
        if let Some(p) = world.patients.get_mut(&patient.id) {
            p.student = Some(best.load.student_id);
            p.unpaired_since = None;
            p.repair_after = None;
        }
        world.tally.pairings += 1;
    }
    world.clock.set(hour);
    Ok(())
}

/// The admin disables the accounts of students who leave this hour; their
/// patients wait to be paired again.
pub(super) fn leave(world: &mut World, hour: DateTime<Utc>) -> anyhow::Result<()> {
    let end = hour + Duration::hours(1);
    let leaving: Vec<(i64, DateTime<Utc>)> = world
        .students
        .iter()
        .filter(|s| !s.left && s.leaves_at.is_some_and(|t| t >= hour && t < end))
        .map(|s| (s.id, s.leaves_at.unwrap_or(hour)))
        .collect();
    for (id, at) in leaving {
        world.clock.set(at);
        let admin = principal(world.admin, Role::Admin);
        world
            .state
            .db
            .write_blocking(|c| {
                diesel::update(users::table.find(id))
                    .set((
                        users::disabled_at.eq(Some(at.naive_utc())),
                        users::updated_at.eq(at.naive_utc()),
                    ))
                    .execute(c)?;
                // What the admin's account page does on disabling.
                crate::db::sessions::delete_sessions_of(c, id)?;
                crate::db::sessions::revoke_tokens_of(c, id, at.naive_utc())?;
                crate::audit::record(
                    c,
                    &admin.audit("user.disabled", "user", Some(id), None),
                    at.naive_utc(),
                )?;
                Ok(())
            })
            .map_err(anyhow::Error::msg)?;
        if let Some(s) = world.students.iter_mut().find(|s| s.id == id) {
            s.left = true;
        }
        for p in world.patients.values_mut() {
            if p.active() && p.student == Some(id) {
                p.unpaired_since = Some(at);
                p.repair_after =
                    Some(at + Duration::hours(world.rng.gen_range(REPAIR_AFTER_HOURS)));
            }
        }
        world.tally.students_left += 1;
    }
    world.clock.set(hour);
    Ok(())
}

fn discharge_one(
    world: &mut World,
    by: &Principal,
    patient_id: i64,
    reason: DischargeReason,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    world.clock.set(at);
    let base = world.state.settings.base_url.clone();
    world
        .state
        .db
        .write_blocking(|c| {
            crate::discharge::discharge(
                c,
                by,
                patient_id,
                reason,
                "Simulated discharge.",
                at,
                &base,
            )
        })
        .map_err(|e| anyhow::anyhow!("discharging patient {patient_id}: {e}"))?;
    let student = world.patients.get_mut(&patient_id).and_then(|p| {
        p.discharged_at = Some(at);
        p.booked = None;
        p.student
    });
    world.tally.discharged += 1;
    // A student with the patient's page still open tries to log a call.
    if let Some(student) = student {
        if world.rng.gen_bool(STALE_CALL_CHANCE) {
            stale_call(world, student, patient_id, at + Duration::minutes(30))?;
        }
    }
    Ok(())
}

/// Leaders discharge everyone in the queue a day or more past the point.
pub(super) fn discharge(
    world: &mut World,
    hour: DateTime<Utc>,
    today: NaiveDate,
) -> anyhow::Result<()> {
    let who = leader(world);
    let queue = world
        .state
        .db
        .read_blocking(|c| Ok(crate::discharge::queue(c, &who, today)?))
        .map_err(anyhow::Error::msg)?;
    for (k, entry) in queue.iter().filter(|e| e.days_past >= 1).enumerate() {
        let at = at_minute(hour, (k % 55) as i64);
        discharge_one(
            world,
            &who,
            entry.patient_id,
            DischargeReason::Completed,
            at,
        )?;
    }
    world.clock.set(hour);
    Ok(())
}

/// Patients who withdraw are discharged early by their physician.
pub(super) fn withdraw(world: &mut World, hour: DateTime<Utc>) -> anyhow::Result<()> {
    let end = hour + Duration::hours(1);
    let due: Vec<(i64, i64, DateTime<Utc>)> = world
        .patients
        .values()
        .filter(|p| p.active() && p.withdraws_at.is_some_and(|t| t >= hour && t < end))
        .map(|p| (p.id, p.enrolled_by, p.withdraws_at.unwrap_or(hour)))
        .collect();
    for (id, physician, at) in due {
        let who = principal(physician, Role::Physician);
        discharge_one(world, &who, id, DischargeReason::Withdrew, at)?;
        world.tally.withdrew += 1;
    }
    world.clock.set(hour);
    Ok(())
}

/// The leader acknowledges concerns whose time has come, from the dashboard.
pub(super) fn acknowledge(world: &mut World, hour: DateTime<Utc>) -> anyhow::Result<()> {
    let end = hour + Duration::hours(1);
    let who = leader(world);
    for i in 0..world.concerns.len() {
        let concern = &world.concerns[i];
        if concern.acknowledged || concern.acknowledge_at >= end {
            continue;
        }
        let (id, at) = (concern.id, concern.acknowledge_at.max(hour));
        world.clock.set(at);
        world
            .state
            .db
            .write_blocking(|c| {
                crate::web::dashboard::acknowledge_concern(
                    c,
                    &who,
                    id,
                    "Called the patient back; physician informed.".into(),
                    at.naive_utc(),
                )
            })
            .map_err(|e| anyhow::anyhow!("acknowledging concern {id}: {e}"))?;
        world.concerns[i].acknowledged = true;
    }
    world.clock.set(hour);
    Ok(())
}

/// One planned call in a sitting.
struct Planned {
    at: DateTime<Utc>,
    student: i64,
    patient: i64,
}

/// Students whose calling hour this is open "My check-ins" and call the
/// patients it shows due or overdue, in its order, up to a sitting's worth,
/// putting some off. The calls of all sittings run in time order.
pub(super) fn call(world: &mut World, hour: DateTime<Utc>, local_hour: u32) -> anyhow::Result<()> {
    let tz = world.tz();
    let weekday = hour.with_timezone(&tz).weekday();
    let sitting: Vec<(i64, i64)> = world
        .students
        .iter()
        .filter(|s| !s.left && s.calling_hour == local_hour && s.day_off != weekday)
        .map(|s| (s.id, s.calling_minute))
        .collect();
    let mut planned: Vec<Planned> = Vec::new();
    for (student, minute) in sitting {
        let start = at_minute(hour, minute);
        world.clock.set(start);
        let list = world
            .state
            .db
            .read_blocking(|c| crate::web::checkins::checkins_of(c, student, start, tz))
            .map_err(anyhow::Error::msg)?;
        let mut k = 0;
        for row in list
            .iter()
            .filter(|r| r.follow_up == "overdue" || r.follow_up == "due")
        {
            if k == CALLS_PER_SITTING {
                break;
            }
            if world.rng.gen_bool(world.args.skip_rate) {
                world.tally.skipped += 1;
                continue;
            }
            planned.push(Planned {
                at: start + Duration::minutes(MINUTES_PER_CALL * k as i64),
                student,
                patient: row.patient_id,
            });
            k += 1;
        }
    }
    planned.sort_by_key(|p| (p.at, p.student));
    for p in planned {
        log_call(world, p)?;
    }
    world.clock.set(hour);
    Ok(())
}

/// The JSON body a student's phone would send for this call.
fn call_body(
    world: &mut World,
    patient: &SimPatient,
    at: DateTime<Utc>,
) -> (serde_json::Value, bool) {
    let tz = world.tz();
    let chance = if patient.hard_to_reach {
        HARD_TO_REACH_CHANCE
    } else {
        REACH_CHANCE
    };
    let reached = world.rng.gen_bool(chance);
    let next = if reached {
        schedule::proposed_next_call(at, patient.cadence, patient.discharge_point, tz)
    } else {
        // Try again tomorrow at the same time, unless that is past the point.
        Some(at + Duration::days(1))
            .filter(|t| schedule::local_date(*t, tz) <= patient.discharge_point)
    };
    let concern = if !reached {
        "none"
    } else if world.rng.gen_bool(world.args.urgent_rate) {
        "urgent"
    } else if world.rng.gen_bool(CONCERN_RATE) {
        "non_urgent"
    } else {
        "none"
    };
    let protocol = world.state.protocol.clone();
    let sections: Vec<&str> = if reached {
        protocol
            .sections
            .iter()
            .filter(|s| !s.optional)
            .map(|s| s.id.as_str())
            .collect()
    } else {
        Vec::new()
    };
    let shared = if reached {
        world.rng.gen_range(0..=2)
    } else {
        0
    };
    let resources: Vec<&str> = protocol
        .resources
        .choose_multiple(&mut world.rng, shared)
        .map(|r| r.id.as_str())
        .collect();
    let body = json!({
        "occurred_at": at.to_rfc3339(),
        "mode": "phone",
        "outcome": if reached { "completed" } else if world.rng.gen_bool(0.6) { "no_answer" } else { "voicemail" },
        "duration_minutes": if reached { world.rng.gen_range(8..=25) } else { 1 },
        "interpreter_used": reached && patient.interpreter,
        "sections": sections,
        "resources": resources,
        "concern": concern,
        "notes": if reached { "Doing well; went over the week." } else { "" },
        "next_call_at": next.map(|t| t.to_rfc3339()),
        "flagged_for_debrief": concern != "none",
    });
    (body, reached)
}

/// What the API does with a call's JSON body: read every field, then log
/// it in one transaction. A body the reader refuses is the simulation's
/// own mistake, so it stops the run.
fn submit(
    world: &World,
    student: i64,
    patient_id: i64,
    body: &serde_json::Value,
    at: DateTime<Utc>,
) -> anyhow::Result<(calls::CallInput, Result<Logged, AppError>)> {
    let tz = world.tz();
    let mut fields =
        Fields::from_json(body.to_string().as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let input = calls::read(&mut fields, &world.state.protocol, at, tz)
        .filter(|_| !fields.has_errors())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "a simulated call for patient {patient_id} was refused: {:?}",
                fields.errors()
            )
        })?;
    let who = principal(student, Role::Student);
    let state = &world.state;
    let logged = state.db.write_blocking(|c| {
        let ctx = CallContext {
            protocol: &state.protocol,
            tz,
            base_url: &state.settings.base_url,
            now: at,
        };
        calls::log(c, &who, patient_id, &input, None, &ctx)
    });
    Ok((input, logged))
}

/// Logs one call through the API's reader and `calls::log`, then lets the
/// worker send what it queued, seconds later.
fn log_call(world: &mut World, planned: Planned) -> anyhow::Result<()> {
    let Some(patient) = world.patients.get(&planned.patient).cloned() else {
        anyhow::bail!(
            "patient {} is on a list but was never enrolled",
            planned.patient
        );
    };
    let at = planned.at;
    world.clock.set(at);
    let (body, _reached) = call_body(world, &patient, at);
    let (input, logged) = submit(world, planned.student, patient.id, &body, at)?;
    let call = match logged {
        Ok(Logged::New(call)) | Ok(Logged::Repeat(call)) => call,
        Err(e) => anyhow::bail!("logging a call for patient {}: {e}", patient.id),
    };
    world.tally.calls += 1;
    if let Some(p) = world.patients.get_mut(&patient.id) {
        p.any_call = true;
        p.booked = input.next_call_at;
    }
    if call.concern != "none" {
        let concern_id: i64 = world
            .state
            .db
            .read_blocking(|c| {
                Ok(concerns::table
                    .filter(concerns::call_id.eq(call.id))
                    .select(concerns::id)
                    .get_result(c)?)
            })
            .map_err(anyhow::Error::msg)?;
        let urgent = call.concern == "urgent";
        let acknowledge_at = if urgent {
            at + Duration::minutes(world.rng.gen_range(30..URGENT_ACK_MAX_HOURS * 60))
        } else {
            let next_day = schedule::local_date(at, world.tz()) + Duration::days(1);
            at_local_hour(next_day, ROUTINE_ACK_HOUR, world.tz())
        };
        world.concerns.push(SimConcern {
            id: concern_id,
            patient_id: patient.id,
            urgent,
            raised_at: at,
            acknowledge_at,
            acknowledged: false,
        });
        if urgent {
            // The worker's next outbox pass, at most five seconds later.
            world.clock.set(at + Duration::seconds(5));
            world.drain_outbox()?;
        }
    }
    Ok(())
}

/// A call for a patient discharged a moment ago: the app must refuse it
/// (409) and write nothing.
fn stale_call(
    world: &mut World,
    student: i64,
    patient_id: i64,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    world.clock.set(at);
    let body = json!({
        "occurred_at": at.to_rfc3339(), "mode": "phone", "outcome": "no_answer",
        "duration_minutes": 1, "next_call_at": (at + Duration::days(1)).to_rfc3339(),
    });
    let (_, result) = submit(world, student, patient_id, &body, at)?;
    world.tally.stale_attempts += 1;
    world.checked(super::Promise::NoCallAfterDischarge, 1);
    match result {
        Err(AppError::Conflict(_)) => world.tally.stale_refused += 1,
        Ok(_) => world.break_promise(
            patient_id,
            super::Promise::NoCallAfterDischarge,
            format!("a call at {at} after discharge was accepted"),
        ),
        Err(e) => {
            anyhow::bail!("a call after discharge for patient {patient_id} failed oddly: {e}")
        }
    }
    Ok(())
}
