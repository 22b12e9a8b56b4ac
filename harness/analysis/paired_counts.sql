-- The paired differences compressed for the paired tests (harness/analysis/paired.py): per metric over all
-- requests (overall) and per metric and segment, each distinct difference d = cand - base with how many pairs
-- have it, how many of those went 1 -> 0 (down) and 0 -> 1 (up), and whether all their values are 0 or 1.
SELECT metric, segment, grouping(segment) = 1 AS overall, cand - base AS d, count(*) AS n,
       count(*) FILTER (WHERE base = 1 AND cand = 0) AS down,
       count(*) FILTER (WHERE base = 0 AND cand = 1) AS up,
       bool_and(base IN (0, 1) AND cand IN (0, 1)) AS "binary"
FROM pairs
GROUP BY GROUPING SETS ((metric, d), (metric, segment, d));
