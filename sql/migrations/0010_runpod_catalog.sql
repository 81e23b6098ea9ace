-- 0010_runpod_catalog.sql: what RunPod told us about GPU stock, prices and the API's rate
-- limit, kept so that cron-started runs share it (issue 16 items 1 and 5).
--
--   * runpod_catalog_reads / runpod_gpu_catalog: the last read of GET /v2/catalog/gpus per
--     scope (the cloud, and a hash of RUNPOD_DATA_CENTER_IDS), and its GPU types. A cycle reads
--     the catalog at most once per RUNPOD_CATALOG_TTL_SEC (counted from the last attempt, failed
--     or not), and only when it spawns.
--   * runpod_rate_limit: the last RateLimit / RateLimit-Policy fields RunPod sent, as received,
--     with when they were seen, and the end of the last 429's Retry-After, so the next run
--     knows what is left and when each window resets.
--   * idx_tasks_complete_processed: the completed tasks of the last RUNPOD_VALUE_WINDOW_HOURS,
--     for the median task duration per GPU type (RUNPOD_GPU_CHOICE=value). A plain CREATE INDEX
--     (migrations run in a transaction): on a large tasks table it blocks task writes while it
--     builds; create it CONCURRENTLY by hand beforehand to avoid that (this file then skips it).

CREATE TABLE runpod_catalog_reads (
    scope        text PRIMARY KEY,
    cloud        text NOT NULL CHECK (cloud IN ('SECURE', 'COMMUNITY')),
    read_at      timestamptz,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    ok           boolean NOT NULL,
    error        text CHECK (octet_length(error) <= 512),
    entries      integer NOT NULL DEFAULT 0 CHECK (entries >= 0),
    skipped      integer NOT NULL DEFAULT 0 CHECK (skipped >= 0),
    partial      integer NOT NULL DEFAULT 0 CHECK (partial >= 0)
);

COMMENT ON TABLE runpod_catalog_reads IS
    'last GET /v2/catalog/gpus per scope (cloud + data-center filter): when it last succeeded '
    '(read_at), when it was last tried (attempted_at) and whether that worked (ok, error)';

CREATE TABLE runpod_gpu_catalog (
    scope        text NOT NULL REFERENCES runpod_catalog_reads (scope) ON DELETE CASCADE,
    gpu_type     text NOT NULL CHECK (octet_length(gpu_type) BETWEEN 1 AND 127),
    stock        text NOT NULL CHECK (stock IN ('in', 'out', 'unknown')),
    availability text NOT NULL CHECK (availability IN ('NONE', 'LOW', 'MEDIUM', 'HIGH', 'UNKNOWN')),
    price_per_hr numeric CHECK (price_per_hr > 0),
    PRIMARY KEY (scope, gpu_type)
);

COMMENT ON TABLE runpod_gpu_catalog IS
    'GPU types of the last successful catalog read of each scope: stock for our pods (out = '
    'never tried while the read is fresh) and list price per GPU-hour (NULL = unknown)';

CREATE TABLE runpod_rate_limit (
    id                integer PRIMARY KEY CHECK (id = 1),
    observed_at       timestamptz NOT NULL,
    ratelimit         text CHECK (octet_length(ratelimit) < 512),
    ratelimit_policy  text CHECK (octet_length(ratelimit_policy) < 512),
    malformed         boolean NOT NULL DEFAULT false,
    retry_after_until timestamptz,
    remaining         bigint,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE runpod_rate_limit IS
    'the RateLimit / RateLimit-Policy fields RunPod last sent (as received, observed_at = when), '
    'and the end of the last 429''s Retry-After; remaining = the smallest count then';

CREATE INDEX IF NOT EXISTS idx_tasks_complete_processed ON tasks (generation_processed_at)
    WHERE status = 'Complete';

REVOKE ALL ON TABLE runpod_catalog_reads, runpod_gpu_catalog, runpod_rate_limit
    FROM PUBLIC, orchestrator_worker;
