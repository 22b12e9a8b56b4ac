-- Per arm (segment NULL) and per arm and segment: latency percentiles of the requests whose latency was measured.
-- Source per arm: the timed replay's `load` rows when the arm was replayed open loop (replay.load; TPOT per request,
-- ITL over every gap between streamed chunks, pooled, as `vllm bench serve` computes it), else the generations
-- streamed by the server backend (ITL and TPOT are then both the request's mean gap). NULL latency: the offline
-- engine, imported outputs, requests served from the generation cache. `measured` is the number of requests.
WITH g AS (
    SELECT * FROM (SELECT NULL::DOUBLE AS ttft_s, NULL::DOUBLE AS itl_s, NULL::DOUBLE AS latency_s WHERE false)
    UNION ALL BY NAME SELECT * FROM generations
), req AS (
    SELECT arm, segment, ttft_s, tpot_s, latency_s, itl_s AS gaps
    FROM load WHERE error IS NULL AND sent_s IS NOT NULL
    UNION ALL BY NAME
    SELECT arm, segment, ttft_s, itl_s AS tpot_s, latency_s, CASE WHEN itl_s IS NOT NULL THEN [itl_s] END AS gaps
    FROM g WHERE error IS NULL AND latency_s IS NOT NULL AND arm NOT IN (SELECT DISTINCT arm FROM load)
), pct AS (
    SELECT arm, segment, count(latency_s) AS measured,
           quantile_cont(ttft_s, 0.5) AS ttft_p50_s, quantile_cont(ttft_s, 0.9) AS ttft_p90_s,
           quantile_cont(ttft_s, 0.99) AS ttft_p99_s,
           quantile_cont(tpot_s, 0.5) AS tpot_p50_s, quantile_cont(tpot_s, 0.9) AS tpot_p90_s,
           quantile_cont(tpot_s, 0.99) AS tpot_p99_s,
           quantile_cont(latency_s, 0.5) AS latency_p50_s, quantile_cont(latency_s, 0.9) AS latency_p90_s,
           quantile_cont(latency_s, 0.99) AS latency_p99_s
    FROM req
    GROUP BY GROUPING SETS ((arm), (arm, segment))
    HAVING count(latency_s) > 0
), gap AS (
    SELECT arm, segment, unnest(gaps) AS itl FROM req
), itl AS (
    SELECT arm, segment, quantile_cont(itl, 0.5) AS itl_p50_s, quantile_cont(itl, 0.9) AS itl_p90_s,
           quantile_cont(itl, 0.99) AS itl_p99_s
    FROM gap
    GROUP BY GROUPING SETS ((arm), (arm, segment))
)
SELECT p.arm, p.segment, p.measured, p.ttft_p50_s, p.ttft_p90_s, p.ttft_p99_s,
       i.itl_p50_s, i.itl_p90_s, i.itl_p99_s, p.tpot_p50_s, p.tpot_p90_s, p.tpot_p99_s,
       p.latency_p50_s, p.latency_p90_s, p.latency_p99_s
FROM pct p
LEFT JOIN itl i ON i.arm = p.arm AND i.segment IS NOT DISTINCT FROM p.segment
ORDER BY p.arm, p.segment NULLS FIRST;
