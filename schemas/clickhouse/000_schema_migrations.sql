-- The migration ledger: one row per applied schema file, with the SHA-256 of its text.
-- `sessionizer migrate` runs this file before anything else on every run (it only creates
-- the table when missing), then records it like every other file.
--
-- Several workers may migrate at once: each records a file with
-- insert_deduplication_token = name:checksum, so the second identical record is dropped,
-- and ReplacingMergeTree on (name, checksum) collapses any that slip through.
CREATE TABLE IF NOT EXISTS {database}.schema_migrations {on_cluster}
(
    name       String,
    checksum   String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (name, checksum)
SETTINGS non_replicated_deduplication_window = 1000;
