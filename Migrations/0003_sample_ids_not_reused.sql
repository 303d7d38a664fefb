-- Doppel gallery schema, version 3: a sample id is never given out twice. SQLite numbers a
-- new row one above the largest id in the table, so deleting the newest sample let the next
-- enrolment take its id, which a client or the audit log may still name. The highest id ever
-- deleted is kept here (a trigger raises it on every delete, cascades included), and the
-- store numbers a new sample above both it and the largest id present
-- (`SQLDialect.newSampleID`). PostgreSQL's sequence never reuses one: no migration there.
CREATE TABLE sample_id_high_water (value INTEGER NOT NULL);
INSERT INTO sample_id_high_water (value) SELECT coalesce(max(id), 0) FROM samples;

CREATE TRIGGER samples_high_water AFTER DELETE ON samples BEGIN
    UPDATE sample_id_high_water SET value = max(value, OLD.id);
END;
