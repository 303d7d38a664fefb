-- Doppel gallery schema, version 2: a stamp per model of its embeddings (how many, the sum
-- of their sample ids, and a change counter), kept by triggers in the same transaction as
-- every insert and delete, deletes cascaded from samples and identities included. An index
-- snapshot written beside the database records the stamp it was made at; on start it is
-- used only when the stamps agree, so a change made behind the server's back (another
-- process, a restored backup) sends it back to the database.
CREATE TABLE embedding_stamps (
    model_id    TEXT PRIMARY KEY REFERENCES models(id) ON DELETE CASCADE,
    rows        INTEGER NOT NULL DEFAULT 0,
    sample_sum  INTEGER NOT NULL DEFAULT 0,
    changes     INTEGER NOT NULL DEFAULT 0
);
INSERT INTO embedding_stamps (model_id, rows, sample_sum, changes)
    SELECT model_id, count(*), coalesce(sum(sample_id), 0), count(*) FROM embeddings GROUP BY model_id;

CREATE TRIGGER embeddings_stamp_insert AFTER INSERT ON embeddings BEGIN
    INSERT OR IGNORE INTO embedding_stamps (model_id) VALUES (NEW.model_id);
    UPDATE embedding_stamps SET rows = rows + 1, sample_sum = sample_sum + NEW.sample_id, changes = changes + 1
        WHERE model_id = NEW.model_id;
END;
CREATE TRIGGER embeddings_stamp_delete AFTER DELETE ON embeddings BEGIN
    UPDATE embedding_stamps SET rows = rows - 1, sample_sum = sample_sum - OLD.sample_id, changes = changes + 1
        WHERE model_id = OLD.model_id;
END;
-- An embedding replaced in place (INSERT OR REPLACE deletes first, which fires the delete
-- trigger only with recursive triggers on): counted as a change either way.
CREATE TRIGGER embeddings_stamp_update AFTER UPDATE ON embeddings BEGIN
    UPDATE embedding_stamps SET sample_sum = sample_sum - OLD.sample_id + NEW.sample_id, changes = changes + 1
        WHERE model_id = NEW.model_id;
END;
