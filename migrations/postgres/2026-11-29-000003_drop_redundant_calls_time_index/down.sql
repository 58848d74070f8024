CREATE INDEX calls_time_idx ON calls (occurred_at);
