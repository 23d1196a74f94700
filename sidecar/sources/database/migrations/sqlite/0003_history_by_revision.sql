-- A follower's cache asks which flags and segments a set's writes touched after the revision it
-- holds (FlagDatabase.changes): by set and revision, not a scan of the whole history.
CREATE INDEX history_by_revision ON history (flag_set, revision);
