-- One row per metric (segment NULL) and per metric and segment: baseline vs candidate, paired over the
-- requests where both arms have a value (the `pairs` table). delta = mean(candidate - baseline). The CI
-- (paired bootstrap) and the paired test's p-values come from `tests` (harness/analysis/paired.py).
WITH agg AS (
    SELECT metric, segment, count(*) AS n,
           avg(base) AS baseline, avg(cand) AS candidate, avg(cand - base) AS delta,
           count(*) FILTER (WHERE base <> cand) AS n_changed
    FROM pairs
    GROUP BY GROUPING SETS ((metric), (metric, segment))
)
SELECT a.metric, a.segment, m.family, m.kind, m.higher_is_better, m.description, m.role, m.advisory,
       m.margin_absolute, m.margin_relative,
       a.n, a.n_changed, a.baseline, a.candidate, a.delta,
       t.ci_low, t.ci_high, t.test, t.p_lower, t.p_higher, t.p_two, t.sd_diff,
       CASE WHEN a.baseline <> 0 THEN a.delta / abs(a.baseline) END AS rel_delta
FROM agg a
JOIN metrics m ON m.name = a.metric
LEFT JOIN tests t ON t.metric = a.metric AND t.segment IS NOT DISTINCT FROM a.segment
ORDER BY a.segment NULLS FIRST, m.family, a.metric;
