-- One row per request and metric that both arms scored: the paired values every delta, CI and test is built
-- from (summary.sql, paired_counts.sql). Requests where either arm has no value (metric not applicable,
-- request not served) are left out of that metric. `finite` is false when either value is NaN or infinite (a
-- plug-in metric's bad value): such pairs are dropped before any test and counted (summary.sql `n_nonfinite`);
-- `harness.analysis.tables.create_pairs` keeps every row in `pairs_all` and the finite ones in `pairs`.
SELECT b.metric, b.segment, b.request_id, b.value AS base, c.value AS cand,
       isfinite(b.value) AND isfinite(c.value) AS finite
FROM signals b
JOIN signals c ON b.request_id = c.request_id AND b.metric = c.metric
WHERE b.arm = 'baseline' AND c.arm = 'candidate' AND b.value IS NOT NULL AND c.value IS NOT NULL
