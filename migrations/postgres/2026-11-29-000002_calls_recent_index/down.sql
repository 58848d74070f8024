DROP INDEX calls_recent_idx;
