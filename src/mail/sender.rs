//! Delivering the outbox: SMTP through lettre (TLS when the URL asks for it:
//! `smtps://` or `?tls=required`), or, with no SMTP configured, `.eml` files in
//! `data/mail/`.
//!
//! Each row is claimed with a conditional update (a lease), so two instances
//! draining one database never send the same email; a failure is retried with
//! capped exponential back-off and, a day after the email was queued, marked
//! failed for admins to see. If a process dies between sending and marking a
//! row sent, the lease lapses and the row is sent again: SMTP offers no way to
//! make that step exactly-once, so the window is kept to one statement.

use std::path::PathBuf;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use lettre::message::{Mailbox, MultiPart};
use lettre::{Message, SmtpTransport, Transport as _};

use crate::db::schema::outbox;
use crate::db::Db;
use crate::error::AppError;

pub const LEASE: Duration = Duration::minutes(2);
pub const GIVE_UP_AFTER: Duration = Duration::hours(24);
const BATCH: i64 = 50;

/// Where emails go.
pub enum Transport {
    Smtp(Box<SmtpTransport>),
    Folder(PathBuf),
}

impl Transport {
    /// SMTP from `CHECKIN_SMTP_URL`, or the mail folder when it is unset.
    pub fn from_settings(settings: &crate::config::Settings) -> Result<Transport, String> {
        match &settings.smtp_url {
            Some(url) => {
                let transport = SmtpTransport::from_url(url)
                    .map_err(|e| format!("CHECKIN_SMTP_URL is not a usable SMTP URL: {e}"))?
                    .timeout(Some(StdDuration::from_secs(15)))
                    .build();
                Ok(Transport::Smtp(Box::new(transport)))
            }
            None => Ok(Transport::Folder(settings.mail_dir())),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp(_) => "SMTP".into(),
            Transport::Folder(dir) => {
                format!("the folder {} (CHECKIN_SMTP_URL is not set)", dir.display())
            }
        }
    }

    fn send(&self, row: &OutboxRow, from: &str) -> Result<(), String> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("CHECKIN_MAIL_FROM: {e}"))?;
        let to: Mailbox = row
            .to_address
            .parse()
            .map_err(|e| format!("recipient address: {e}"))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(row.subject.clone())
            .message_id(Some(format!("<checkin-{}@checkin>", row.id)))
            .multipart(MultiPart::alternative_plain_html(
                row.body_text.clone(),
                row.body_html.clone(),
            ))
            .map_err(|e| format!("building the message: {e}"))?;
        match self {
            Transport::Smtp(smtp) => smtp.send(&message).map(|_| ()).map_err(|e| e.to_string()),
            Transport::Folder(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                let path = dir.join(format!("{:08}-{}.eml", row.id, row.template));
                let tmp = dir.join(format!(".{:08}.tmp", row.id));
                std::fs::write(&tmp, message.formatted()).map_err(|e| e.to_string())?;
                std::fs::rename(&tmp, &path).map_err(|e| e.to_string())
            }
        }
    }
}

#[derive(Debug, Clone, Queryable)]
struct OutboxRow {
    id: i64,
    template: String,
    to_address: String,
    subject: String,
    body_text: String,
    body_html: String,
    attempts: i32,
    created_at: NaiveDateTime,
}

/// What one drain did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// Back-off before the next attempt: 30 s doubling, at most 30 minutes.
pub fn backoff(attempts: i32) -> Duration {
    let seconds = 30i64.saturating_mul(1i64 << attempts.clamp(0, 16));
    Duration::seconds(seconds.min(30 * 60))
}

/// Sends every email that is due, claiming each first.
pub fn drain(
    db: &Db,
    transport: &Transport,
    from: &str,
    holder: &str,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<DrainReport, AppError> {
    let mut report = DrainReport::default();
    loop {
        let at = now().naive_utc();
        let candidates: Vec<i64> = db.read_blocking(|c| {
            Ok(outbox::table
                .filter(outbox::status.eq("pending"))
                .filter(outbox::next_attempt_at.le(at))
                .filter(
                    outbox::claimed_until
                        .is_null()
                        .or(outbox::claimed_until.lt(at)),
                )
                .order(outbox::id)
                .limit(BATCH)
                .select(outbox::id)
                .load(c)?)
        })?;
        if candidates.is_empty() {
            return Ok(report);
        }
        let mut claimed_any = false;
        for id in candidates {
            let at = now().naive_utc();
            let claimed = db.write_blocking(|c| {
                Ok(diesel::update(
                    outbox::table
                        .filter(outbox::id.eq(id))
                        .filter(outbox::status.eq("pending"))
                        .filter(
                            outbox::claimed_until
                                .is_null()
                                .or(outbox::claimed_until.lt(at)),
                        ),
                )
                .set((
                    outbox::claimed_by.eq(holder),
                    outbox::claimed_until.eq(at + LEASE),
                ))
                .execute(c)?)
            })?;
            if claimed != 1 {
                continue;
            }
            claimed_any = true;
            let row: OutboxRow = db.read_blocking(|c| {
                Ok(outbox::table
                    .find(id)
                    .select((
                        outbox::id,
                        outbox::template,
                        outbox::to_address,
                        outbox::subject,
                        outbox::body_text,
                        outbox::body_html,
                        outbox::attempts,
                        outbox::created_at,
                    ))
                    .get_result(c)?)
            })?;
            let result = transport.send(&row, from);
            let at = now().naive_utc();
            db.write_blocking(|c| {
                let mine = outbox::table
                    .filter(outbox::id.eq(id))
                    .filter(outbox::claimed_by.eq(holder));
                match &result {
                    Ok(()) => {
                        diesel::update(mine)
                            .set((
                                outbox::status.eq("sent"),
                                outbox::sent_at.eq(Some(at)),
                                outbox::attempts.eq(row.attempts + 1),
                                outbox::claimed_until.eq(None::<NaiveDateTime>),
                            ))
                            .execute(c)?;
                        report.sent += 1;
                    }
                    Err(error) => {
                        let give_up = at - row.created_at >= GIVE_UP_AFTER;
                        diesel::update(mine)
                            .set((
                                outbox::status.eq(if give_up { "failed" } else { "pending" }),
                                outbox::attempts.eq(row.attempts + 1),
                                outbox::next_attempt_at.eq(at + backoff(row.attempts)),
                                outbox::last_error
                                    .eq(Some(error.chars().take(500).collect::<String>())),
                                outbox::claimed_until.eq(None::<NaiveDateTime>),
                            ))
                            .execute(c)?;
                        if give_up {
                            report.failed += 1;
                            tracing::error!(
                                outbox_id = id,
                                "email failed for a day; marked failed"
                            );
                        } else {
                            report.retrying += 1;
                            tracing::warn!(
                                outbox_id = id,
                                attempts = row.attempts + 1,
                                "email not sent; will retry"
                            );
                        }
                    }
                }
                Ok(())
            })?;
        }
        if !claimed_any {
            // Everything due is someone else's now.
            return Ok(report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(0), Duration::seconds(30));
        assert_eq!(backoff(1), Duration::seconds(60));
        assert_eq!(backoff(5), Duration::seconds(960));
        assert_eq!(backoff(6), Duration::minutes(30));
        assert_eq!(backoff(60), Duration::minutes(30));
    }
}
