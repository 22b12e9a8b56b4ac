-- Per arm: the latency percentiles of the requests whose latency was measured (streamed by the server backend;
-- NULL for the offline engine, imported outputs and requests served from the generation cache). `measured` says
-- how many requests the percentiles are over. Runs replayed before latency was recorded read as none measured.
WITH g AS (
    SELECT * FROM (SELECT NULL::DOUBLE AS ttft_s, NULL::DOUBLE AS itl_s, NULL::DOUBLE AS latency_s WHERE false)
    UNION ALL BY NAME SELECT * FROM generations
)
SELECT arm, count(latency_s) AS measured,
       quantile_cont(ttft_s, 0.5) AS ttft_p50_s, quantile_cont(ttft_s, 0.9) AS ttft_p90_s,
       quantile_cont(ttft_s, 0.99) AS ttft_p99_s,
       quantile_cont(itl_s, 0.5) AS itl_p50_s, quantile_cont(itl_s, 0.9) AS itl_p90_s,
       quantile_cont(latency_s, 0.5) AS latency_p50_s, quantile_cont(latency_s, 0.9) AS latency_p90_s,
       quantile_cont(latency_s, 0.99) AS latency_p99_s
FROM g
WHERE error IS NULL
GROUP BY arm
HAVING count(latency_s) > 0
ORDER BY arm;
