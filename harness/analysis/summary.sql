-- One row per metric (segment NULL) and per metric and segment: baseline vs candidate, paired over the
-- requests where both arms have a value. delta = mean(candidate - baseline); the 95% CI is the normal
-- approximation of the paired mean difference (n >= 30 is advised; the gate ignores smaller n).
WITH pairs AS (
    SELECT b.metric, b.segment, b.value AS base, c.value AS cand
    FROM signals b
    JOIN signals c ON b.request_id = c.request_id AND b.metric = c.metric
    WHERE b.arm = 'baseline' AND c.arm = 'candidate' AND b.value IS NOT NULL AND c.value IS NOT NULL
),
agg AS (
    SELECT metric, segment, count(*) AS n,
           avg(base) AS baseline, avg(cand) AS candidate, avg(cand - base) AS delta,
           coalesce(stddev_samp(cand - base), 0) AS sd_diff,
           count(*) FILTER (WHERE base <> cand) AS n_changed
    FROM pairs
    GROUP BY GROUPING SETS ((metric), (metric, segment))
)
SELECT a.metric, a.segment, m.family, m.kind, m.higher_is_better, m.description,
       a.n, a.n_changed, a.baseline, a.candidate, a.delta,
       a.delta - 1.96 * a.sd_diff / sqrt(a.n) AS ci_low,
       a.delta + 1.96 * a.sd_diff / sqrt(a.n) AS ci_high,
       CASE WHEN a.baseline <> 0 THEN a.delta / abs(a.baseline) END AS rel_delta
FROM agg a
JOIN metrics m ON m.name = a.metric
ORDER BY a.segment NULLS FIRST, m.family, a.metric;
