-- 0009_gpu_prices.sql: the price per hour of each GPU type in each cloud (SECURE, COMMUNITY), as
-- RunPod charged it for a pod this system created or adopted (issue 12 review). The spend cap
-- bounds the price of a pod it may create by the highest known price among the GPU types a
-- create may fall back to, in the pool's cloud; a type never seen in that cloud has no price
-- here, and then at most one pod at a time is created to learn it. The same GPU type is priced
-- differently in the two clouds, so the key is both (review of issue 14).

CREATE TABLE gpu_prices (
    gpu_type    text NOT NULL,
    cloud_type  text NOT NULL CHECK (cloud_type IN ('SECURE', 'COMMUNITY')),
    cost_per_hr numeric NOT NULL CHECK (cost_per_hr > 0),
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gpu_type, cloud_type)
);

COMMENT ON TABLE gpu_prices IS
    'last price per hour RunPod reported for a pod of each GPU type in each cloud (cost of the '
    'Pod object); rows of workers created before this table carry no cloud, so none is copied';

REVOKE ALL ON TABLE gpu_prices FROM PUBLIC, orchestrator_worker;
