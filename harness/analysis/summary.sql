-- One row per metric (segment NULL) and per metric and segment: baseline vs candidate, paired over the
-- requests where both arms have a value (the `pairs` table). delta = mean(candidate - baseline). The CI
-- (paired bootstrap), the tests' p-values and the discordant counts come from `tests` (harness/analysis/paired.py);
-- n_nonfinite: pairs dropped because a value was NaN or infinite.
WITH agg AS (
    SELECT metric, segment, count(*) AS n,
           avg(base) AS baseline, avg(cand) AS candidate, avg(cand - base) AS delta,
           count(*) FILTER (WHERE base <> cand) AS n_changed
    FROM pairs
    GROUP BY GROUPING SETS ((metric), (metric, segment))
), dropped AS (  -- pairs with a NaN or infinite value: left out of every test, counted here
    SELECT metric, segment, count(*) FILTER (WHERE NOT finite) AS n_nonfinite
    FROM pairs_all
    GROUP BY GROUPING SETS ((metric), (metric, segment))
)
SELECT a.metric, a.segment, m.family, m.kind, m.higher_is_better, m.description, m.role, m.advisory,
       m.margin_absolute, m.margin_relative,
       a.n, a.n_changed, coalesce(x.n_nonfinite, 0) AS n_nonfinite, a.baseline, a.candidate, a.delta,
       t.ci_low, t.ci_high, t.test, t.p_lower, t.p_higher, t.p_two, t.sd_diff, t.down, t.up, t.p_wilcoxon,
       CASE WHEN a.baseline <> 0 THEN a.delta / abs(a.baseline) END AS rel_delta
FROM agg a
JOIN metrics m ON m.name = a.metric
LEFT JOIN tests t ON t.metric = a.metric AND t.segment IS NOT DISTINCT FROM a.segment
LEFT JOIN dropped x ON x.metric = a.metric AND x.segment IS NOT DISTINCT FROM a.segment
ORDER BY a.segment NULLS FIRST, m.family, a.metric;
