//! The promises the programme makes, checked against what the app shows
//! its users. Each broken one names the patient.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::prelude::*;

use super::{patients_by_student, World};
use crate::db::schema::{calls, concerns, outbox, patients};
use crate::domain::Role;
use crate::web::identity::Principal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Promise {
    OverdueAtTheTop,
    OverdueOnTheDashboard,
    UrgentEmailWithinFiveMinutes,
    ConcernOpenUntilAcknowledged,
    DischargeQueueOnTheDay,
    NoCallAfterDischarge,
    UnpairedOnTheDashboard,
}

impl Promise {
    pub const ALL: [Promise; 7] = [
        Promise::OverdueAtTheTop,
        Promise::OverdueOnTheDashboard,
        Promise::UrgentEmailWithinFiveMinutes,
        Promise::ConcernOpenUntilAcknowledged,
        Promise::DischargeQueueOnTheDay,
        Promise::NoCallAfterDischarge,
        Promise::UnpairedOnTheDashboard,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            Promise::OverdueAtTheTop => {
                "an overdue follow-up is at the top of its student's check-ins within 24 hours"
            }
            Promise::OverdueOnTheDashboard => {
                "an overdue follow-up is counted on the leader dashboard within 24 hours"
            }
            Promise::UrgentEmailWithinFiveMinutes => {
                "an urgent concern's emails leave the outbox within 5 minutes"
            }
            Promise::ConcernOpenUntilAcknowledged => {
                "a concern stays open on the dashboards until it is acknowledged"
            }
            Promise::DischargeQueueOnTheDay => {
                "a patient reaches the discharge queue on the day of the discharge point"
            }
            Promise::NoCallAfterDischarge => "no call is logged after a patient's discharge",
            Promise::UnpairedOnTheDashboard => {
                "a patient without an active student for 2 days is on the leader dashboard"
            }
        }
    }
}

/// A promise the app broke, for one patient.
#[derive(Debug, Clone)]
pub struct Broken {
    pub patient_id: i64,
    pub promise: Promise,
    pub detail: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "patient {}: promise broken: {}: {}",
            self.patient_id,
            self.promise.describe(),
            self.detail
        )
    }
}

fn leader(world: &World) -> Principal {
    Principal {
        user_id: world.leaders[0],
        given_name: String::new(),
        email: String::new(),
        roles: vec![Role::Leader],
        session: None,
        request_id: "simulation-check".into(),
        address: "simulation".into(),
    }
}

/// The morning look: every student's check-ins, the dashboard's workload,
/// waiting list and discharge queue, against the simulation's account.
pub(super) fn check_daily(world: &mut World, today: NaiveDate) -> anyhow::Result<()> {
    let tz = world.tz();
    let now = world.now();
    let by_student = patients_by_student(world);
    let who = leader(world);
    let students: Vec<i64> = by_student.keys().copied().collect();
    let (lists, workload, waiting, queue) = world
        .state
        .db
        .read_blocking(|c| {
            let mut lists = HashMap::new();
            for &s in &students {
                lists.insert(s, crate::web::checkins::checkins_of(c, s, now, tz)?);
            }
            Ok((
                lists,
                crate::workload::workload(c, now, tz)?,
                crate::pairing::unassigned(c, crate::web::dashboard::WAITING_SHOWN)?,
                crate::discharge::queue(c, &who, today)?,
            ))
        })
        .map_err(anyhow::Error::msg)?;
    let overdue_counted: HashMap<i64, i64> = workload
        .iter()
        .map(|r| (r.student_id, r.overdue_follow_ups))
        .collect();
    let mut overdue_total = 0usize;
    let mut active_total = 0usize;
    for (student, ids) in &by_student {
        let list = &lists[student];
        let top: HashSet<i64> = list
            .iter()
            .take_while(|r| r.follow_up == "overdue")
            .map(|r| r.patient_id)
            .collect();
        let overdue: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| world.patients[id].due_on(tz).is_some_and(|due| due < today))
            .collect();
        active_total += ids.len();
        overdue_total += overdue.len();
        world.tally.load_samples.push((
            ids.iter()
                .map(|id| world.patients[id].cadence.weight())
                .sum(),
            ids.len(),
            overdue.len(),
        ));
        world.checked(super::Promise::OverdueAtTheTop, overdue.len());
        world.checked(super::Promise::OverdueOnTheDashboard, overdue.len());
        for &id in &overdue {
            if !top.contains(&id) {
                let due = world.patients[&id].due_on(tz);
                world.break_promise(
                    id,
                    super::Promise::OverdueAtTheTop,
                    format!(
                        "due {due:?}, on {today} it is not among the overdue at the top of student {student}'s check-ins"
                    ),
                );
            }
        }
        let counted = overdue_counted.get(student).copied().unwrap_or(0);
        if counted != overdue.len() as i64 {
            for &id in &overdue {
                world.break_promise(
                    id,
                    super::Promise::OverdueOnTheDashboard,
                    format!(
                        "on {today} the dashboard counts {counted} overdue for student {student}, who has {} overdue",
                        overdue.len()
                    ),
                );
            }
        }
    }
    world
        .tally
        .daily_overdue
        .push((today, overdue_total, active_total));

    let waiting: HashSet<i64> = waiting.iter().map(|w| w.id).collect();
    let two_days_ago = now - Duration::days(2);
    let long_unpaired: Vec<(i64, DateTime<Utc>)> = world
        .patients
        .values()
        .filter(|p| p.active())
        .filter_map(|p| p.unpaired_since.map(|since| (p.id, since)))
        .filter(|(_, since)| *since <= two_days_ago)
        .collect();
    world.checked(super::Promise::UnpairedOnTheDashboard, long_unpaired.len());
    let unseen: Vec<(i64, DateTime<Utc>)> = long_unpaired
        .into_iter()
        .filter(|(id, _)| !waiting.contains(id))
        .collect();
    for (id, since) in unseen {
        world.break_promise(
            id,
            super::Promise::UnpairedOnTheDashboard,
            format!(
                "without a student since {since}, not on the dashboard's waiting list on {today}"
            ),
        );
    }

    let in_queue: HashSet<i64> = queue.iter().map(|q| q.patient_id).collect();
    let marked: HashMap<i64, Option<NaiveDate>> = world
        .state
        .db
        .read_blocking(|c| {
            Ok(patients::table
                .filter(patients::discharge_due_on.eq(today))
                .select((patients::id, patients::discharge_due_since))
                .load::<(i64, Option<NaiveDate>)>(c)?
                .into_iter()
                .collect())
        })
        .map_err(anyhow::Error::msg)?;
    let reaching: Vec<i64> = world
        .patients
        .values()
        .filter(|p| p.active() && p.discharge_point == today)
        .map(|p| p.id)
        .collect();
    world.checked(super::Promise::DischargeQueueOnTheDay, reaching.len());
    for id in reaching {
        if !in_queue.contains(&id) {
            world.break_promise(
                id,
                super::Promise::DischargeQueueOnTheDay,
                format!(
                    "the discharge point is {today}, but the queue does not list them that day"
                ),
            );
        } else if marked.get(&id).copied().flatten() != Some(today) {
            world.break_promise(
                id,
                super::Promise::DischargeQueueOnTheDay,
                format!(
                    "the discharge point is {today}, but the programme recorded it on {:?} (the daily sweep did not run that day)",
                    marked.get(&id).copied().flatten()
                ),
            );
        }
    }
    Ok(())
}

/// Every hour: each concern not yet acknowledged is on the leader
/// dashboard and on the enrolling physician's home page.
pub(super) fn check_concerns_open(world: &mut World) -> anyhow::Result<()> {
    let open: Vec<(i64, i64)> = world
        .concerns
        .iter()
        .filter(|c| !c.acknowledged)
        .map(|c| (c.id, c.patient_id))
        .collect();
    if open.is_empty() {
        return Ok(());
    }
    let who = leader(world);
    let physicians: HashSet<i64> = open
        .iter()
        .map(|(_, p)| world.patients[p].enrolled_by)
        .collect();
    let (listed, by_physician) = world
        .state
        .db
        .read_blocking(|c| {
            let listed: HashSet<i64> = crate::web::dashboard::open_concerns(c, &who)?
                .into_iter()
                .map(|o| o.id)
                .collect();
            let mut by_physician: HashMap<i64, HashSet<i64>> = HashMap::new();
            for &p in &physicians {
                let mut physician = who.clone();
                physician.user_id = p;
                physician.roles = vec![Role::Physician];
                by_physician.insert(
                    p,
                    crate::web::dashboard::open_concerns(c, &physician)?
                        .into_iter()
                        .map(|o| o.id)
                        .collect(),
                );
            }
            Ok((listed, by_physician))
        })
        .map_err(anyhow::Error::msg)?;
    let now = world.now();
    world.checked(super::Promise::ConcernOpenUntilAcknowledged, open.len());
    for (concern, patient) in open {
        let physician = world.patients[&patient].enrolled_by;
        if !listed.contains(&concern) || !by_physician[&physician].contains(&concern) {
            world.break_promise(
                patient,
                super::Promise::ConcernOpenUntilAcknowledged,
                format!("concern {concern} is not acknowledged, but at {now} a dashboard does not show it"),
            );
        }
    }
    Ok(())
}

/// After the run: each urgent concern's emails, and calls after discharge.
pub(super) fn check_at_end(world: &mut World) -> anyhow::Result<()> {
    type Email = (
        String,
        String,
        chrono::NaiveDateTime,
        Option<chrono::NaiveDateTime>,
    );
    let (emails, late_calls) = world
        .state
        .db
        .read_blocking(|c| {
            let emails: Vec<Email> = outbox::table
                .filter(outbox::template.eq("urgent_concern"))
                .select((
                    outbox::dedup_key,
                    outbox::status,
                    outbox::created_at,
                    outbox::sent_at,
                ))
                .load(c)?;
            let late_calls: Vec<(i64, chrono::NaiveDateTime, Option<chrono::NaiveDateTime>)> =
                calls::table
                    .inner_join(patients::table)
                    .filter(patients::discharged_at.is_not_null())
                    .select((
                        calls::patient_id,
                        calls::occurred_at,
                        patients::discharged_at,
                    ))
                    .load(c)?;
            Ok((emails, late_calls))
        })
        .map_err(anyhow::Error::msg)?;
    let mut by_concern: HashMap<i64, Vec<&Email>> = HashMap::new();
    for email in &emails {
        let id = email
            .0
            .split(':')
            .nth(1)
            .and_then(|id| id.parse().ok())
            .unwrap_or(-1);
        by_concern.entry(id).or_default().push(email);
    }
    let urgent: Vec<(i64, i64, DateTime<Utc>)> = world
        .concerns
        .iter()
        .filter(|c| c.urgent)
        .map(|c| (c.id, c.patient_id, c.raised_at))
        .collect();
    world.checked(Promise::UrgentEmailWithinFiveMinutes, urgent.len());
    for (concern, patient, raised) in urgent {
        let sent = by_concern.remove(&concern).unwrap_or_default();
        if sent.is_empty() {
            world.break_promise(
                patient,
                Promise::UrgentEmailWithinFiveMinutes,
                format!("urgent concern {concern} raised at {raised} queued no email"),
            );
        }
        for (key, status, _, sent_at) in sent {
            let late = match sent_at {
                Some(at) => at.and_utc() - raised > Duration::minutes(5),
                None => true,
            };
            if late {
                world.break_promise(
                    patient,
                    Promise::UrgentEmailWithinFiveMinutes,
                    format!(
                        "urgent concern {concern} raised at {raised}: email {key} is {status}, sent at {sent_at:?}"
                    ),
                );
            }
        }
        world.tally.urgent_concerns += 1;
    }
    let concern_count: i64 = world
        .state
        .db
        .read_blocking(|c| Ok(concerns::table.count().get_result(c)?))
        .map_err(anyhow::Error::msg)?;
    world.tally.concerns = concern_count as usize;
    world.checked(Promise::NoCallAfterDischarge, late_calls.len());
    for (patient, occurred, discharged) in late_calls {
        if discharged.is_some_and(|d| occurred > d) {
            world.break_promise(
                patient,
                Promise::NoCallAfterDischarge,
                format!("a call at {occurred} was logged after the discharge at {discharged:?}"),
            );
        }
    }
    Ok(())
}
