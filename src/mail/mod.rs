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

/// Renders `templates/emails/{template}.subject.txt`, `.txt` and `.html`
/// (only the HTML part is escaped) into an email for one recipient.
pub fn compose(
    template: &'static str,
    dedup_key: String,
    recipient_user_id: Option<i64>,
    to_address: &str,
    context: &tera::Context,
) -> Result<OutgoingEmail, crate::error::AppError> {
    let tera = crate::web::pages::load_templates()
        .map_err(|e| crate::error::AppError::internal(e.to_string()))?;
    let render = |suffix: &str| {
        tera.render(&format!("emails/{template}{suffix}"), context)
            .map_err(|e| {
                crate::error::AppError::internal(format!("email {template}{suffix}: {e:?}"))
            })
    };
    Ok(OutgoingEmail {
        dedup_key,
        template,
        recipient_user_id,
        to_address: to_address.to_string(),
        subject: render(".subject.txt")?.trim().to_string(),
        body_text: render(".txt")?,
        body_html: render(".html")?,
    })
}

/// The account set-up or password-reset email: only a link.
pub fn account_link_email(
    user_id: i64,
    to: &str,
    given_name: &str,
    purpose: &str,
    link: &str,
    link_id: i64,
) -> Result<OutgoingEmail, crate::error::AppError> {
    let template = if purpose == "password_reset" {
        "password_reset"
    } else {
        "account_setup"
    };
    let mut context = tera::Context::new();
    context.insert("greeting", given_name);
    context.insert("link", link);
    compose(
        template,
        format!("{purpose}:{link_id}"),
        Some(user_id),
        to,
        &context,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_email_renders_and_only_its_html_is_escaped() {
        for template in [
            "account_setup",
            "password_reset",
            "urgent_concern",
            "discharge_notice",
            "student_digest",
            "leader_weekly_summary",
        ] {
            let mut context = tera::Context::new();
            for key in [
                "calls_made",
                "completed",
                "active",
                "overdue",
                "open_urgent",
                "at_discharge",
                "due",
            ] {
                context.insert(key, &1);
            }
            context.insert("greeting", "O'Brien <b>");
            context.insert("patient_first_name", "Rosa");
            context.insert("link", "https://checkin.example.org/x");
            let email = compose(template, "k".into(), None, "a@example.org", &context).unwrap();
            assert!(!email.subject.is_empty(), "{template}");
            assert!(
                email.body_text.contains("O'Brien <b>"),
                "{template} text: {}",
                email.body_text
            );
            assert!(
                email.body_html.contains("O&#x27;Brien &lt;b&gt;"),
                "{template} html"
            );
            assert!(
                email.body_text.contains("https://checkin.example.org/x"),
                "{template} carries its link"
            );
        }
    }
}
