//! Email: the outbox (SPEC.md rule 11).
//!
//! An email is a row written in the same transaction as the change that
//! causes it; a background sender delivers it later with retries. Each row has
//! a deduplication key, so the same email is never queued twice. Emails carry
//! no clinical detail and no patient surname: they say what is waiting and
//! link to it.

pub mod sender;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::outbox;
use crate::db::DbConn;

/// One email, ready to queue.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    pub dedup_key: String,
    pub template: &'static str,
    pub recipient_user_id: Option<i64>,
    pub to_address: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
}

#[derive(Insertable)]
#[diesel(table_name = outbox)]
struct NewOutboxRow<'a> {
    dedup_key: &'a str,
    template: &'a str,
    recipient_user_id: Option<i64>,
    to_address: &'a str,
    subject: &'a str,
    body_text: &'a str,
    body_html: &'a str,
    status: &'a str,
    attempts: i32,
    next_attempt_at: NaiveDateTime,
    created_at: NaiveDateTime,
}

/// Queues the email in the caller's transaction; returns false when an email
/// with the same key was queued before (nothing is written then).
pub fn enqueue(conn: &mut DbConn, email: &OutgoingEmail, now: NaiveDateTime) -> QueryResult<bool> {
    let row = NewOutboxRow {
        dedup_key: &email.dedup_key,
        template: email.template,
        recipient_user_id: email.recipient_user_id,
        to_address: &email.to_address,
        subject: &email.subject,
        body_text: &email.body_text,
        body_html: &email.body_html,
        status: "pending",
        attempts: 0,
        next_attempt_at: now,
        created_at: now,
    };
    let written = match conn {
        DbConn::Sqlite(c) => diesel::insert_into(outbox::table)
            .values(&row)
            .on_conflict(outbox::dedup_key)
            .do_nothing()
            .execute(c)?,
        DbConn::Pg(c) => diesel::insert_into(outbox::table)
            .values(&row)
            .on_conflict(outbox::dedup_key)
            .do_nothing()
            .execute(c)?,
    };
    Ok(written == 1)
}

/// Escapes text for the HTML body.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// An email with a greeting, one paragraph and one link.
pub fn with_link(
    greeting_name: &str,
    paragraph: &str,
    link: &str,
    after: &str,
) -> (String, String) {
    let text = format!("Hello {greeting_name},\n\n{paragraph}\n\n{link}\n\n{after}\n\n— checkin\n");
    let html = format!(
        "<p>Hello {},</p><p>{}</p><p><a href=\"{}\">{}</a></p><p>{}</p><p>— checkin</p>",
        html_escape(greeting_name),
        html_escape(paragraph),
        html_escape(link),
        html_escape(link),
        html_escape(after),
    );
    (text, html)
}

/// The account set-up or password-reset email: only a link.
pub fn account_link_email(
    user_id: i64,
    to: &str,
    given_name: &str,
    purpose: &str,
    link: &str,
    link_id: i64,
) -> OutgoingEmail {
    let (subject, paragraph, after) = if purpose == "password_reset" {
        (
            "Reset your checkin password",
            "Someone (probably an admin, at your request) asked to reset your checkin password. Choose a new one here:",
            "The link works once, for 24 hours. If you did not ask for this, tell your programme's admin.",
        )
    } else {
        (
            "Your checkin account",
            "An account on checkin, the check-in call programme, was made for you. Choose your password here:",
            "The link works once, for 7 days.",
        )
    };
    let (body_text, body_html) = with_link(given_name, paragraph, link, after);
    OutgoingEmail {
        dedup_key: format!("{purpose}:{link_id}"),
        template: if purpose == "password_reset" {
            "password_reset"
        } else {
            "account_setup"
        },
        recipient_user_id: Some(user_id),
        to_address: to.to_string(),
        subject: subject.to_string(),
        body_text,
        body_html,
    }
}
