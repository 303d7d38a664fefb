-- The embeddings' stamp kept by one UPDATE per statement instead of one per row. A row
-- trigger updating the same stamp row once per embedding made a bulk load (a COPY of a
-- million embeddings: gallery import, doppel bench startup --postgres) walk an ever longer
-- chain of row versions inside one transaction, quadratic in the rows; statement triggers
-- with transition tables add up each statement's rows at once. The figures kept (rows,
-- sample_sum, changes) are the same as before.
DROP TRIGGER embeddings_stamp ON embeddings;
DROP FUNCTION embedding_stamp();

CREATE FUNCTION embedding_stamp_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO embedding_stamps AS s (model_id, rows, sample_sum, changes)
        SELECT model_id, count(*), sum(sample_id), count(*) FROM inserted GROUP BY model_id
        ON CONFLICT (model_id) DO UPDATE SET rows = s.rows + EXCLUDED.rows, sample_sum = s.sample_sum + EXCLUDED.sample_sum,
                                             changes = s.changes + EXCLUDED.changes;
    RETURN NULL;
END $$;

CREATE FUNCTION embedding_stamp_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE embedding_stamps AS s SET rows = s.rows - d.n, sample_sum = s.sample_sum - d.total, changes = s.changes + d.n
        FROM (SELECT model_id, count(*) AS n, sum(sample_id) AS total FROM deleted GROUP BY model_id) AS d
        WHERE s.model_id = d.model_id;
    RETURN NULL;
END $$;

CREATE FUNCTION embedding_stamp_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE embedding_stamps AS s SET sample_sum = s.sample_sum + n.total - COALESCE(o.total, 0), changes = s.changes + n.n
        FROM (SELECT model_id, count(*) AS n, sum(sample_id) AS total FROM new_rows GROUP BY model_id) AS n
        LEFT JOIN (SELECT model_id, sum(sample_id) AS total FROM old_rows GROUP BY model_id) AS o USING (model_id)
        WHERE s.model_id = n.model_id;
    RETURN NULL;
END $$;

CREATE TRIGGER embeddings_stamp_insert AFTER INSERT ON embeddings
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION embedding_stamp_insert();
CREATE TRIGGER embeddings_stamp_delete AFTER DELETE ON embeddings
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION embedding_stamp_delete();
CREATE TRIGGER embeddings_stamp_update AFTER UPDATE ON embeddings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION embedding_stamp_update();
