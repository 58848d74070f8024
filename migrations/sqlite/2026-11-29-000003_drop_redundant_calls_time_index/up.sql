-- calls_recent_idx (occurred_at, student_id, outcome) serves every query
-- calls_time_idx (occurred_at) did, and each index is one more page written
-- for every call logged (docs/PERFORMANCE.md).
DROP INDEX calls_time_idx;
