-- Doppel gallery schema for PostgreSQL, version 1: the SQLite schema (0001 and 0002 of the
-- folder above) in PostgreSQL's types, plus the change log replicas follow. Applied once,
-- inside a transaction, under an advisory lock (so replicas starting together take turns),
-- with the version recorded; never edited after release (add 0002_... instead).

CREATE TABLE galleries (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO galleries (name) VALUES ('default');

CREATE TABLE identities (
    id           bigserial PRIMARY KEY,
    gallery_id   bigint NOT NULL REFERENCES galleries(id) ON DELETE CASCADE,
    external_id  text NOT NULL,
    display_name text,
    metadata     json NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (gallery_id, external_id)
);

CREATE TABLE samples (
    id           bigserial PRIMARY KEY,
    identity_id  bigint NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    content_hash text NOT NULL,
    image        bytea,
    width        integer NOT NULL,
    height       integer NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (identity_id, content_hash)
);
CREATE INDEX samples_identity ON samples(identity_id);

CREATE TABLE models (
    id           text PRIMARY KEY,
    architecture text NOT NULL,
    dimension    integer NOT NULL CHECK (dimension > 0),
    metric       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- One embedding per (sample, model): little-endian float32 values.
CREATE TABLE embeddings (
    sample_id  bigint NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
    model_id   text NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    vector     bytea NOT NULL,
    PRIMARY KEY (sample_id, model_id)
);
CREATE INDEX embeddings_model ON embeddings(model_id, sample_id);

CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    action    text NOT NULL,
    gallery   text NOT NULL,
    subject   text NOT NULL,
    detail    json NOT NULL DEFAULT '{}'
);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- The embeddings' stamp per model, as SQLite's 0002: an index snapshot is used only when it
-- carries the stamp the database has.
CREATE TABLE embedding_stamps (
    model_id    text PRIMARY KEY REFERENCES models(id) ON DELETE CASCADE,
    rows        bigint NOT NULL DEFAULT 0,
    sample_sum  bigint NOT NULL DEFAULT 0,
    changes     bigint NOT NULL DEFAULT 0
);
CREATE FUNCTION embedding_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO embedding_stamps AS s (model_id, rows, sample_sum, changes) VALUES (NEW.model_id, 1, NEW.sample_id, 1)
            ON CONFLICT (model_id) DO UPDATE SET rows = s.rows + 1, sample_sum = s.sample_sum + NEW.sample_id, changes = s.changes + 1;
        RETURN NEW;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE embedding_stamps SET rows = rows - 1, sample_sum = sample_sum - OLD.sample_id, changes = changes + 1 WHERE model_id = OLD.model_id;
        RETURN OLD;
    ELSE
        UPDATE embedding_stamps SET sample_sum = sample_sum - OLD.sample_id + NEW.sample_id, changes = changes + 1 WHERE model_id = NEW.model_id;
        RETURN NEW;
    END IF;
END $$;
CREATE TRIGGER embeddings_stamp AFTER INSERT OR UPDATE OR DELETE ON embeddings
    FOR EACH ROW EXECUTE FUNCTION embedding_stamp();

-- The change log: every write appends one row, numbered in commit order (writers take a
-- transaction-scoped advisory lock first, so numbers cannot commit out of order), and
-- announces it with NOTIFY doppel_changes. Replicas apply rows in sequence order from the
-- last one they applied: LISTEN wakes them, polling covers a missed notification, and a
-- restart or reconnect catches up from the number it had.
CREATE TABLE changes (
    seq          bigserial PRIMARY KEY,
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind         text NOT NULL CHECK (kind IN ('add', 'remove')),
    gallery      text NOT NULL,
    samples      bigint[] NOT NULL
);
