-- Requests of a run worth adding to the golden set, one row per request, with every reason that picked it:
-- the candidate's outputs that moved furthest from the baseline's (lowest cosine, when the run has drift),
-- the ones it failed (error, invalid JSON or schema, refusal, truncation, empty), and the lowest-judged
-- (when the run has judge scores). $n rows per reason at most; most diverged first.
WITH diverged AS (
    SELECT request_id, 'diverged' AS reason, cosine AS score
    FROM drift WHERE arm = 'candidate'
    ORDER BY cosine, request_id LIMIT $n
),
failed AS (
    SELECT request_id, 'failed:' || string_agg(metric, ',' ORDER BY metric) AS reason, 0.0 AS score
    FROM signals
    WHERE arm = 'candidate' AND ((metric IN ('json_valid', 'schema_valid', 'structure_ok') AND value = 0)
          OR (metric IN ('error', 'refusal', 'truncated', 'empty') AND value = 1))
    GROUP BY request_id
    ORDER BY request_id LIMIT $n
),
judged AS (
    SELECT request_id, 'low_judged' AS reason, avg(value) AS score
    FROM signals WHERE arm = 'candidate' AND metric LIKE 'judge\_%' ESCAPE '\' AND metric <> 'judge_unscored'
    GROUP BY request_id
    ORDER BY score, request_id LIMIT $n
),
picked AS (SELECT * FROM diverged UNION ALL SELECT * FROM failed UNION ALL SELECT * FROM judged)
SELECT p.request_id, string_agg(p.reason, ';' ORDER BY p.reason) AS reasons, min(p.score) AS score,
       any_value(b.output_text) AS baseline_output, any_value(c.output_text) AS candidate_output
FROM picked p
LEFT JOIN generations b ON b.request_id = p.request_id AND b.arm = 'baseline'
LEFT JOIN generations c ON c.request_id = p.request_id AND c.arm = 'candidate'
GROUP BY p.request_id
ORDER BY score, p.request_id;
