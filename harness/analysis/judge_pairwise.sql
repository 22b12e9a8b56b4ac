-- Pairwise judge: one row overall (segment NULL) and one per segment, over judge_pairwise (one row per request,
-- preference in baseline/candidate/tie/inconsistent/unscored; harness/signals/judge.py writes it).
-- A win is the candidate preferred in both orders (AB and BA), a loss the baseline preferred in both; a tie
-- is "tie" in both orders. inconsistency_rate = share of scored requests whose two orders disagree: the judge's
-- position bias. net_preference = mean over scored requests of +1 (win), -1 (loss), 0 (tie, inconsistent),
-- with the normal-approximation 95% CI.
WITH p AS (
    SELECT segment, preference,
           CASE preference WHEN 'candidate' THEN 1.0 WHEN 'baseline' THEN -1.0 ELSE 0.0 END AS x
    FROM judge_pairwise
),
agg AS (
    SELECT segment,
           count(*) AS n,
           count(*) FILTER (WHERE preference <> 'unscored') AS n_scored,
           count(*) FILTER (WHERE preference = 'candidate') AS wins,
           count(*) FILTER (WHERE preference = 'tie') AS ties,
           count(*) FILTER (WHERE preference = 'baseline') AS losses,
           count(*) FILTER (WHERE preference = 'inconsistent') AS inconsistent,
           count(*) FILTER (WHERE preference = 'unscored') AS unscored,
           avg(x) FILTER (WHERE preference <> 'unscored') AS net_preference,
           coalesce(stddev_samp(x) FILTER (WHERE preference <> 'unscored'), 0) AS sd
    FROM p
    GROUP BY GROUPING SETS ((), (segment))
)
SELECT segment, n, n_scored, wins, ties, losses, inconsistent, unscored,
       wins::DOUBLE / nullif(n_scored, 0) AS win_rate,
       ties::DOUBLE / nullif(n_scored, 0) AS tie_rate,
       losses::DOUBLE / nullif(n_scored, 0) AS loss_rate,
       inconsistent::DOUBLE / nullif(n_scored, 0) AS inconsistency_rate,
       unscored::DOUBLE / nullif(n, 0) AS unscored_rate,
       net_preference,
       net_preference - 1.96 * sd / sqrt(nullif(n_scored, 0)) AS ci_low,
       net_preference + 1.96 * sd / sqrt(nullif(n_scored, 0)) AS ci_high
FROM agg
ORDER BY segment NULLS FIRST;
