//! Diesel's description of the tables in `migrations/`; one schema for both
//! backends. Keep in step with the migrations by hand (the schema test in
//! `tests/database.rs` checks each table's columns against the live database).

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        given_name -> Text,
        family_name -> Text,
        password_hash -> Nullable<Text>,
        capacity -> Integer,
        disabled_at -> Nullable<Timestamp>,
        calendar_token_hash -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    user_roles (user_id, role) {
        user_id -> BigInt,
        role -> Text,
    }
}

diesel::table! {
    user_languages (user_id, language) {
        user_id -> BigInt,
        language -> Text,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        token_hash -> Text,
        user_id -> BigInt,
        csrf_token -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        token_hash -> Text,
        user_id -> BigInt,
        label -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    one_time_links (id) {
        id -> BigInt,
        token_hash -> Text,
        purpose -> Text,
        user_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sign_in_attempts (id) {
        id -> BigInt,
        email -> Text,
        address -> Text,
        succeeded -> Bool,
        attempted_at -> Timestamp,
    }
}

diesel::table! {
    patients (id) {
        id -> BigInt,
        given_name -> Text,
        family_name -> Text,
        phone -> Text,
        preferred_language -> Text,
        interpreter_needed -> Bool,
        best_times -> Text,
        contact_mode -> Text,
        enrolment_reason_other -> Nullable<Text>,
        interest_confirmed -> Bool,
        cadence -> Text,
        enrolled_on -> Date,
        enrolled_by -> BigInt,
        date_of_birth -> Nullable<Date>,
        clinic_record_number -> Nullable<Text>,
        status -> Text,
        discharge_due_on -> Date,
        next_call_at -> Nullable<Timestamp>,
        last_call_at -> Nullable<Timestamp>,
        last_call_outcome -> Nullable<Text>,
        failed_attempts -> Integer,
        final_call_since -> Nullable<Date>,
        discharge_due_since -> Nullable<Date>,
        discharged_at -> Nullable<Timestamp>,
        discharged_by -> Nullable<BigInt>,
        discharge_reason -> Nullable<Text>,
        discharge_summary -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    enrolment_reasons (patient_id, reason) {
        patient_id -> BigInt,
        reason -> Text,
    }
}

diesel::table! {
    assignments (id) {
        id -> BigInt,
        patient_id -> BigInt,
        student_id -> BigInt,
        started_at -> Timestamp,
        started_by -> BigInt,
        note -> Text,
        ended_at -> Nullable<Timestamp>,
        ended_by -> Nullable<BigInt>,
        handoff_note -> Nullable<Text>,
    }
}

diesel::table! {
    protocol_versions (version) {
        version -> Text,
        first_used_at -> Timestamp,
        content -> Text,
    }
}

diesel::table! {
    calls (id) {
        id -> BigInt,
        patient_id -> BigInt,
        student_id -> BigInt,
        assignment_id -> Nullable<BigInt>,
        occurred_at -> Timestamp,
        mode -> Text,
        outcome -> Text,
        duration_minutes -> Integer,
        interpreter_used -> Bool,
        protocol_version -> Text,
        concern -> Text,
        notes -> Text,
        next_call_at -> Nullable<Timestamp>,
        flagged_for_debrief -> Bool,
        idempotency_key -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    call_sections (call_id, section_id) {
        call_id -> BigInt,
        section_id -> Text,
    }
}

diesel::table! {
    call_resources (call_id, resource_id) {
        call_id -> BigInt,
        resource_id -> Text,
    }
}

diesel::table! {
    call_revisions (id) {
        id -> BigInt,
        call_id -> BigInt,
        revised_by -> BigInt,
        revised_at -> Timestamp,
        previous -> Text,
    }
}

diesel::table! {
    call_comments (id) {
        id -> BigInt,
        call_id -> BigInt,
        author_id -> BigInt,
        body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    concerns (id) {
        id -> BigInt,
        call_id -> BigInt,
        patient_id -> BigInt,
        raised_by -> BigInt,
        level -> Text,
        raised_at -> Timestamp,
        acknowledged_at -> Nullable<Timestamp>,
        acknowledged_by -> Nullable<BigInt>,
        acknowledgement_note -> Nullable<Text>,
    }
}

diesel::table! {
    debriefs (id) {
        id -> BigInt,
        scheduled_for -> Timestamp,
        title -> Text,
        location -> Text,
        led_by -> BigInt,
        challenges -> Text,
        successes -> Text,
        notes -> Text,
        held_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    debrief_attendance (debrief_id, student_id) {
        debrief_id -> BigInt,
        student_id -> BigInt,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        dedup_key -> Text,
        template -> Text,
        recipient_user_id -> Nullable<BigInt>,
        to_address -> Text,
        subject -> Text,
        body_text -> Text,
        body_html -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        occurred_at -> Timestamp,
        user_id -> Nullable<BigInt>,
        action -> Text,
        record_type -> Text,
        record_id -> Nullable<BigInt>,
        patient_id -> Nullable<BigInt>,
        request_id -> Text,
        address -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    audit_chain_head (id) {
        id -> Integer,
        last_hash -> Text,
    }
}

diesel::table! {
    settings (key) {
        key -> Text,
        value -> Text,
        updated_at -> Timestamp,
        updated_by -> Nullable<BigInt>,
    }
}

diesel::table! {
    job_leases (name) {
        name -> Text,
        holder -> Nullable<Text>,
        leased_until -> Nullable<Timestamp>,
        last_completed_at -> Nullable<Timestamp>,
        last_period -> Nullable<Text>,
    }
}

diesel::joinable!(user_roles -> users (user_id));
diesel::joinable!(user_languages -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(enrolment_reasons -> patients (patient_id));
diesel::joinable!(assignments -> patients (patient_id));
diesel::joinable!(calls -> patients (patient_id));
diesel::joinable!(call_sections -> calls (call_id));
diesel::joinable!(call_resources -> calls (call_id));
diesel::joinable!(call_revisions -> calls (call_id));
diesel::joinable!(call_comments -> calls (call_id));
diesel::joinable!(concerns -> calls (call_id));
diesel::joinable!(debrief_attendance -> debriefs (debrief_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    user_roles,
    user_languages,
    sessions,
    api_tokens,
    one_time_links,
    sign_in_attempts,
    patients,
    enrolment_reasons,
    assignments,
    protocol_versions,
    calls,
    call_sections,
    call_resources,
    call_revisions,
    call_comments,
    concerns,
    debriefs,
    debrief_attendance,
    outbox,
    audit_log,
    audit_chain_head,
    settings,
    job_leases,
);
