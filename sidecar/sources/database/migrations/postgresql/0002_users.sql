-- Users and the latest evaluation of each flag they were served (flaggio's users and
-- evaluations), written off the hot path by the `users` event exporter. No context is kept:
-- evaluation events carry none (docs/admin.md, "Users and what they got").

CREATE TABLE users (
    flag_set      TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    context_kind  TEXT NOT NULL,
    first_seen    TEXT NOT NULL,
    last_seen     TEXT NOT NULL,
    PRIMARY KEY (flag_set, user_id)
);

CREATE TABLE evaluations (
    flag_set      TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    flag_key      TEXT NOT NULL,
    flag_version  TEXT NOT NULL,
    variant       TEXT NOT NULL,
    value         TEXT,
    reason        TEXT NOT NULL,
    error_code    TEXT NOT NULL,
    at            TEXT NOT NULL,
    PRIMARY KEY (flag_set, user_id, flag_key)
);
