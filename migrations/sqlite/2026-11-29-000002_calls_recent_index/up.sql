-- The workload and the dashboard read the last weeks of calls per student and
-- outcome: this index covers them, so they are a range scan, not a table walk.
CREATE INDEX calls_recent_idx ON calls (occurred_at, student_id, outcome);
