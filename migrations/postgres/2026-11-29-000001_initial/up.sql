-- The whole data model of SPEC.md. Written once for PostgreSQL; the SQLite
-- migration of the same name is this file with `BIGSERIAL PRIMARY KEY` read as
-- `INTEGER PRIMARY KEY` (SQLite's rowid alias). Timestamps hold UTC, enums are
-- text with CHECK constraints, keys are 64-bit integers.

-- People ---------------------------------------------------------------------

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL,
    given_name TEXT NOT NULL CHECK (length(given_name) BETWEEN 1 AND 100),
    family_name TEXT NOT NULL CHECK (length(family_name) <= 100),
    -- NULL until the person sets one through a one-time link.
    password_hash TEXT,
    -- Weighted patient load a student can carry (weekly 1, biweekly 0.5).
    capacity INTEGER NOT NULL DEFAULT 4 CHECK (capacity BETWEEN 0 AND 100),
    disabled_at TIMESTAMP,
    -- Hash of the secret in the student's private calendar feed URL.
    calendar_token_hash TEXT UNIQUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE user_roles (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('physician', 'student', 'leader', 'admin')),
    PRIMARY KEY (user_id, role)
);
CREATE INDEX user_roles_role_idx ON user_roles (role, user_id);

CREATE TABLE user_languages (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- ISO 639-1
    language TEXT NOT NULL CHECK (length(language) = 2),
    PRIMARY KEY (user_id, language)
);
CREATE INDEX user_languages_language_idx ON user_languages (language, user_id);

-- Sign-in ----------------------------------------------------------------------

CREATE TABLE sessions (
    id BIGSERIAL PRIMARY KEY,
    -- SHA-256 of the cookie's random value; the value itself is never stored.
    token_hash TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

-- Account set-up and password-reset links. user_id is NULL for the link that
-- creates the first admin.
CREATE TABLE one_time_links (
    id BIGSERIAL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    purpose TEXT NOT NULL CHECK (purpose IN ('first_admin', 'account_setup', 'password_reset')),
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);

-- Throttling of sign-in: failures per account and per address.
CREATE TABLE sign_in_attempts (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL,
    address TEXT NOT NULL,
    succeeded BOOLEAN NOT NULL,
    attempted_at TIMESTAMP NOT NULL
);
CREATE INDEX sign_in_attempts_email_idx ON sign_in_attempts (email, attempted_at);
CREATE INDEX sign_in_attempts_address_idx ON sign_in_attempts (address, attempted_at);

-- Patients and their enrolment ------------------------------------------------

CREATE TABLE patients (
    id BIGSERIAL PRIMARY KEY,
    given_name TEXT NOT NULL CHECK (length(given_name) BETWEEN 1 AND 100),
    family_name TEXT NOT NULL CHECK (length(family_name) BETWEEN 1 AND 100),
    -- E.164, e.g. +12155550123
    phone TEXT NOT NULL CHECK (length(phone) BETWEEN 8 AND 16),
    preferred_language TEXT NOT NULL CHECK (length(preferred_language) = 2),
    interpreter_needed BOOLEAN NOT NULL DEFAULT FALSE,
    best_times TEXT NOT NULL DEFAULT '' CHECK (length(best_times) <= 500),
    contact_mode TEXT NOT NULL CHECK (contact_mode IN ('phone', 'video')),
    enrolment_reason_other TEXT CHECK (length(enrolment_reason_other) <= 500),
    interest_confirmed BOOLEAN NOT NULL CHECK (interest_confirmed),
    cadence TEXT NOT NULL CHECK (cadence IN ('weekly', 'biweekly')),
    enrolled_on DATE NOT NULL,
    enrolled_by BIGINT NOT NULL REFERENCES users (id),
    date_of_birth DATE,
    clinic_record_number TEXT CHECK (length(clinic_record_number) <= 50),
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'discharged')),
    -- enrolled_on + programme length, fixed at enrolment.
    discharge_due_on DATE NOT NULL,
    -- The follow-up: copied from the latest call so the check-in lists read one row.
    next_call_at TIMESTAMP,
    last_call_at TIMESTAMP,
    last_call_outcome TEXT CHECK (last_call_outcome IN ('completed', 'no_answer', 'voicemail',
        'declined', 'wrong_number', 'interpreter_unavailable', 'rescheduled')),
    -- Unsuccessful attempts since the patient was last reached (rule 9).
    failed_attempts INTEGER NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    -- Set by the discharge sweep (rule 6).
    final_call_since DATE,
    discharge_due_since DATE,
    discharged_at TIMESTAMP,
    discharged_by BIGINT REFERENCES users (id),
    discharge_reason TEXT CHECK (discharge_reason IN ('completed', 'unreachable', 'withdrew',
        'transferred', 'other')),
    discharge_summary TEXT CHECK (length(discharge_summary) <= 10000),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK ((status = 'discharged') = (discharged_at IS NOT NULL)),
    CHECK (discharged_at IS NULL OR (discharge_reason IS NOT NULL AND discharged_by IS NOT NULL))
);
CREATE INDEX patients_enrolled_by_idx ON patients (enrolled_by, status);
CREATE INDEX patients_discharge_queue_idx ON patients (status, discharge_due_on);
CREATE INDEX patients_next_call_idx ON patients (status, next_call_at);
CREATE INDEX patients_phone_idx ON patients (phone);
-- The duplicate guard: one active enrolment per clinic record number.
CREATE UNIQUE INDEX patients_active_record_key ON patients (clinic_record_number)
    WHERE status = 'active' AND clinic_record_number IS NOT NULL;

CREATE TABLE enrolment_reasons (
    patient_id BIGINT NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    reason TEXT NOT NULL CHECK (reason IN ('mental_health', 'social_isolation',
        'living_circumstances', 'covid_worries', 'other')),
    PRIMARY KEY (patient_id, reason)
);

-- Pairing: one patient with one student, with history (rule 1).
CREATE TABLE assignments (
    id BIGSERIAL PRIMARY KEY,
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    student_id BIGINT NOT NULL REFERENCES users (id),
    started_at TIMESTAMP NOT NULL,
    started_by BIGINT NOT NULL REFERENCES users (id),
    note TEXT NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    ended_at TIMESTAMP,
    ended_by BIGINT REFERENCES users (id),
    -- What the outgoing student hands over to the next one.
    handoff_note TEXT CHECK (length(handoff_note) <= 2000),
    CHECK (ended_at IS NULL OR ended_by IS NOT NULL)
);
CREATE UNIQUE INDEX assignments_one_active_per_patient ON assignments (patient_id)
    WHERE ended_at IS NULL;
CREATE INDEX assignments_student_active_idx ON assignments (student_id, ended_at);
CREATE INDEX assignments_patient_idx ON assignments (patient_id, started_at);

-- The protocol ------------------------------------------------------------------

-- Each protocol version a call was logged against, kept so an old call can be
-- shown with the sections and resources it was offered.
CREATE TABLE protocol_versions (
    version TEXT PRIMARY KEY,
    first_used_at TIMESTAMP NOT NULL,
    -- JSON: sections and resources as they were in this version.
    content TEXT NOT NULL
);

-- Calls -----------------------------------------------------------------------

CREATE TABLE calls (
    id BIGSERIAL PRIMARY KEY,
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    student_id BIGINT NOT NULL REFERENCES users (id),
    assignment_id BIGINT REFERENCES assignments (id),
    occurred_at TIMESTAMP NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('phone', 'video')),
    outcome TEXT NOT NULL CHECK (outcome IN ('completed', 'no_answer', 'voicemail', 'declined',
        'wrong_number', 'interpreter_unavailable', 'rescheduled')),
    duration_minutes INTEGER NOT NULL CHECK (duration_minutes BETWEEN 0 AND 240),
    interpreter_used BOOLEAN NOT NULL,
    protocol_version TEXT NOT NULL,
    concern TEXT NOT NULL CHECK (concern IN ('none', 'non_urgent', 'urgent')),
    notes TEXT NOT NULL DEFAULT '' CHECK (length(notes) <= 10000),
    next_call_at TIMESTAMP,
    -- A student asks for this call to be discussed at the next debrief.
    flagged_for_debrief BOOLEAN NOT NULL DEFAULT FALSE,
    -- Client-chosen key: a retry of the same submission returns the first call.
    idempotency_key TEXT CHECK (length(idempotency_key) <= 200),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (next_call_at IS NULL OR next_call_at > occurred_at)
);
CREATE INDEX calls_patient_time_idx ON calls (patient_id, occurred_at);
CREATE INDEX calls_student_time_idx ON calls (student_id, occurred_at);
CREATE INDEX calls_time_idx ON calls (occurred_at);
CREATE UNIQUE INDEX calls_idempotency_key ON calls (student_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE call_sections (
    call_id BIGINT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    section_id TEXT NOT NULL CHECK (length(section_id) <= 100),
    PRIMARY KEY (call_id, section_id)
);

CREATE TABLE call_resources (
    call_id BIGINT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    resource_id TEXT NOT NULL CHECK (length(resource_id) <= 100),
    PRIMARY KEY (call_id, resource_id)
);
CREATE INDEX call_resources_resource_idx ON call_resources (resource_id);

-- A correction keeps the call as it was before, as JSON.
CREATE TABLE call_revisions (
    id BIGSERIAL PRIMARY KEY,
    call_id BIGINT NOT NULL REFERENCES calls (id),
    revised_by BIGINT NOT NULL REFERENCES users (id),
    revised_at TIMESTAMP NOT NULL,
    previous TEXT NOT NULL
);
CREATE INDEX call_revisions_call_idx ON call_revisions (call_id, revised_at);

-- A leader's comment on a call.
CREATE TABLE call_comments (
    id BIGSERIAL PRIMARY KEY,
    call_id BIGINT NOT NULL REFERENCES calls (id),
    author_id BIGINT NOT NULL REFERENCES users (id),
    body TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 5000),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX call_comments_call_idx ON call_comments (call_id, created_at);

-- Concerns (rule 8): one per call that raised one, open until acknowledged.
CREATE TABLE concerns (
    id BIGSERIAL PRIMARY KEY,
    call_id BIGINT NOT NULL UNIQUE REFERENCES calls (id),
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    raised_by BIGINT NOT NULL REFERENCES users (id),
    level TEXT NOT NULL CHECK (level IN ('non_urgent', 'urgent')),
    raised_at TIMESTAMP NOT NULL,
    acknowledged_at TIMESTAMP,
    acknowledged_by BIGINT REFERENCES users (id),
    acknowledgement_note TEXT CHECK (length(acknowledgement_note) <= 2000),
    CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL))
);
CREATE INDEX concerns_open_idx ON concerns (acknowledged_at, level, raised_at);
CREATE INDEX concerns_patient_idx ON concerns (patient_id);
CREATE INDEX concerns_raised_by_idx ON concerns (raised_by, acknowledged_at);

-- Debriefs ----------------------------------------------------------------------

CREATE TABLE debriefs (
    id BIGSERIAL PRIMARY KEY,
    scheduled_for TIMESTAMP NOT NULL,
    title TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    location TEXT NOT NULL DEFAULT '' CHECK (length(location) <= 500),
    led_by BIGINT NOT NULL REFERENCES users (id),
    challenges TEXT NOT NULL DEFAULT '' CHECK (length(challenges) <= 10000),
    successes TEXT NOT NULL DEFAULT '' CHECK (length(successes) <= 10000),
    notes TEXT NOT NULL DEFAULT '' CHECK (length(notes) <= 10000),
    held_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX debriefs_scheduled_idx ON debriefs (scheduled_for);

CREATE TABLE debrief_attendance (
    debrief_id BIGINT NOT NULL REFERENCES debriefs (id) ON DELETE CASCADE,
    student_id BIGINT NOT NULL REFERENCES users (id),
    PRIMARY KEY (debrief_id, student_id)
);

-- Email outbox (rule 11) -----------------------------------------------------

CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    -- e.g. 'digest:student:42:2026-11-29': the same email is never queued twice.
    dedup_key TEXT NOT NULL UNIQUE,
    template TEXT NOT NULL,
    recipient_user_id BIGINT REFERENCES users (id),
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    -- A sender's lease on the row; another instance may take it once it lapses.
    claimed_by TEXT,
    claimed_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX outbox_pending_idx ON outbox (status, next_attempt_at);

-- Audit (rule 12) ---------------------------------------------------------------

-- Append-only and hash-chained: hash = SHA-256(prev_hash | this row's fields).
CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    occurred_at TIMESTAMP NOT NULL,
    user_id BIGINT,
    action TEXT NOT NULL,
    record_type TEXT NOT NULL DEFAULT '',
    record_id BIGINT,
    patient_id BIGINT,
    request_id TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT '',
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_log_user_idx ON audit_log (user_id, occurred_at);
CREATE INDEX audit_log_patient_idx ON audit_log (patient_id, occurred_at);
CREATE INDEX audit_log_time_idx ON audit_log (occurred_at);

-- The chain's head, one row: locking it orders audit writes across instances.
CREATE TABLE audit_chain_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_hash TEXT NOT NULL
);
INSERT INTO audit_chain_head (id, last_hash)
    VALUES (1, '0000000000000000000000000000000000000000000000000000000000000000');

-- Operations ----------------------------------------------------------------------

-- Programme settings changed at run time (reminder time of day, emails on/off).
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    updated_by BIGINT REFERENCES users (id)
);

-- Background work: one row per named piece of work (e.g. 'discharge_sweep'),
-- leased by one instance at a time.
CREATE TABLE job_leases (
    name TEXT PRIMARY KEY,
    holder TEXT,
    leased_until TIMESTAMP,
    last_completed_at TIMESTAMP,
    -- The programme-time period last done, e.g. '2026-11-29' for a daily job.
    last_period TEXT
);
