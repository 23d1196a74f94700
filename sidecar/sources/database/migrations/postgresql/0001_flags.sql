-- Flag sets, their flags and segments, every version of them, and one revision counter.
-- A flag or segment is stored whole, as its JSON in the flag file's shape (docs/admin.md says why).

CREATE TABLE flag_sets (
    name        TEXT PRIMARY KEY,
    -- The global revision of the last write to this set: what a reader compares.
    revision    BIGINT NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);

CREATE TABLE flags (
    flag_set    TEXT NOT NULL REFERENCES flag_sets (name),
    key         TEXT NOT NULL,
    version     BIGINT NOT NULL CHECK (version >= 1),
    definition  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    PRIMARY KEY (flag_set, key)
);

CREATE TABLE segments (
    flag_set    TEXT NOT NULL REFERENCES flag_sets (name),
    key         TEXT NOT NULL,
    version     BIGINT NOT NULL CHECK (version >= 1),
    definition  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    PRIMARY KEY (flag_set, key)
);

-- One row per version of a flag or segment: who, when, what (the whole definition before and
-- after; NULL before a creation and after a deletion).
CREATE TABLE history (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flag_set    TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('flag', 'segment')),
    key         TEXT NOT NULL,
    version     BIGINT NOT NULL,
    action      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    at          TEXT NOT NULL,
    before      TEXT,
    after       TEXT,
    revision    BIGINT NOT NULL
);

CREATE INDEX history_by_key ON history (flag_set, kind, key, version);

-- Bumped in the transaction of every write: a reader sees all of a write or none of it.
CREATE TABLE revision (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    value       BIGINT NOT NULL
);

INSERT INTO revision (id, value) VALUES (1, 0);
