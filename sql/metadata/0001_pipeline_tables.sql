-- stage_log, file_metadata, dq_checks, dq_signature and its occurrences.
CREATE TABLE stage_log (
    dataset      TEXT NOT NULL,
    ds           TEXT NOT NULL,
    stage        TEXT NOT NULL,
    status       TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    metrics      TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT NOT NULL,
    PRIMARY KEY (dataset, ds, stage)
);
CREATE TABLE file_metadata (
    object_key        TEXT PRIMARY KEY,
    dataset           TEXT NOT NULL,
    ds                TEXT NOT NULL,
    zone              TEXT NOT NULL,
    content_md5       TEXT NOT NULL,
    bytes             BIGINT NOT NULL,
    status            TEXT NOT NULL,
    first_uploaded_at TEXT NOT NULL,
    last_uploaded_at  TEXT NOT NULL,
    last_checked_at   TEXT NOT NULL
);
CREATE TABLE dq_checks (
    dataset      TEXT NOT NULL,
    ds           TEXT NOT NULL,
    check_name   TEXT NOT NULL,
    column_name  TEXT NOT NULL,
    rule         TEXT NOT NULL,
    failed_rows  BIGINT NOT NULL,
    total_rows   BIGINT NOT NULL,
    signature    TEXT NOT NULL,
    checked_at   TEXT NOT NULL,
    PRIMARY KEY (dataset, ds, check_name, column_name)
);
CREATE TABLE dq_signature (
    signature      TEXT PRIMARY KEY,
    dataset        TEXT NOT NULL,
    check_name     TEXT NOT NULL,
    column_name    TEXT NOT NULL,
    rule           TEXT NOT NULL,
    first_seen_ds  TEXT NOT NULL,
    last_seen_ds   TEXT NOT NULL,
    first_seen_at  TEXT NOT NULL,
    last_seen_at   TEXT NOT NULL,
    occurrences    BIGINT NOT NULL
);
CREATE TABLE dq_signature_occurrence (
    signature  TEXT NOT NULL REFERENCES dq_signature (signature),
    ds         TEXT NOT NULL,
    failed_rows BIGINT NOT NULL,
    PRIMARY KEY (signature, ds)
);
