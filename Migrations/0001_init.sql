-- Doppel gallery schema, version 1. Applied once, inside a transaction, by the migrator;
-- never edited after release (add 0002_... instead).

-- Named galleries (collections): one server can hold several departments or tenants.
CREATE TABLE galleries (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO galleries (name) VALUES ('default');

-- Enrolled identities; the external id is unique within a gallery.
CREATE TABLE identities (
    id           INTEGER PRIMARY KEY,
    gallery_id   INTEGER NOT NULL REFERENCES galleries(id) ON DELETE CASCADE,
    external_id  TEXT NOT NULL,
    display_name TEXT,
    metadata     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (gallery_id, external_id)
);

-- Samples: the original image bytes (when stored) and a content hash that refuses the same
-- image twice within one identity.
CREATE TABLE samples (
    id           INTEGER PRIMARY KEY,
    identity_id  INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    content_hash TEXT NOT NULL,
    image        BLOB,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (identity_id, content_hash)
);
CREATE INDEX samples_identity ON samples(identity_id);

-- Models the gallery has embedded samples with.
CREATE TABLE models (
    id           TEXT PRIMARY KEY,
    architecture TEXT NOT NULL,
    dimension    INTEGER NOT NULL CHECK (dimension > 0),
    metric       TEXT NOT NULL,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- One embedding per (sample, model): little-endian float32 values.
CREATE TABLE embeddings (
    sample_id  INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
    model_id   TEXT NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    vector     BLOB NOT NULL,
    PRIMARY KEY (sample_id, model_id)
) WITHOUT ROWID;
CREATE INDEX embeddings_model ON embeddings(model_id);

-- Append-only audit log of admin actions (the triggers refuse updates and deletes).
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    gallery   TEXT NOT NULL,
    subject   TEXT NOT NULL,
    detail    TEXT NOT NULL DEFAULT '{}'
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
