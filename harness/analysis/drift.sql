-- Per compared arm (candidate, aa), overall (segment NULL) and per segment: how far outputs moved from the
-- baseline's. $floor is the A/A floor (NULL without an A/A arm); n_below counts requests whose cosine is below
-- it by more than 1e-6 (identical texts embedded in different batches differ by ~1e-7).
SELECT arm, segment, count(*) AS n,
       avg(cosine) AS mean_cosine,
       quantile_cont(cosine, 0.05) AS p05_cosine,
       CASE WHEN CAST($floor AS DOUBLE) IS NOT NULL
            THEN count(*) FILTER (WHERE cosine < CAST($floor AS DOUBLE) - 1e-6) END AS n_below,
       CASE WHEN CAST($floor AS DOUBLE) IS NOT NULL
            THEN count(*) FILTER (WHERE cosine < CAST($floor AS DOUBLE) - 1e-6) / count(*) END AS share_below
FROM drift
GROUP BY GROUPING SETS ((arm), (arm, segment))
ORDER BY arm, segment NULLS FIRST;
