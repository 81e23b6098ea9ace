-- 0009_gpu_prices.sql: the price per hour of each GPU type, as RunPod charged it for a pod this
-- system created or adopted (issue 12 review). The spend cap bounds the price of a pod it may
-- create by the highest known price among the GPU types a create may fall back to; a type never
-- seen has no price here, and then at most one pod at a time is created to learn it.

CREATE TABLE gpu_prices (
    gpu_type    text PRIMARY KEY,
    cost_per_hr numeric NOT NULL CHECK (cost_per_hr > 0),
    seen_at     timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE gpu_prices IS
    'last price per hour RunPod reported for a pod of each GPU type (cost of the Pod object)';

-- Prices already on record.
INSERT INTO gpu_prices (gpu_type, cost_per_hr, seen_at)
SELECT DISTINCT ON (gpu_type) gpu_type, cost_per_hr, coalesce(updated_at, created_at)
  FROM workers
 WHERE gpu_type IS NOT NULL AND cost_per_hr > 0
 ORDER BY gpu_type, coalesce(updated_at, created_at) DESC;

REVOKE ALL ON TABLE gpu_prices FROM PUBLIC, orchestrator_worker;
