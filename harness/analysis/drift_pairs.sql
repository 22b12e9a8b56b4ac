-- The candidate's and the A/A arm's below-floor indicators paired on the request (both arms compared with the
-- baseline's output for the same request), overall (segment NULL) and per segment: n_pairs, up (the candidate below
-- the floor, the A/A arm not) and down (the A/A arm below, the candidate not). $floor as in drift.sql.
WITH paired AS (
    SELECT c.segment,
           c.cosine < CAST($floor AS DOUBLE) - 1e-6 AS cand_below,
           a.cosine < CAST($floor AS DOUBLE) - 1e-6 AS aa_below
    FROM drift AS c JOIN drift AS a ON a.request_id = c.request_id AND a.arm = 'aa'
    WHERE c.arm = 'candidate'
)
SELECT segment, count(*) AS n_pairs,
       count(*) FILTER (WHERE cand_below AND NOT aa_below) AS up,
       count(*) FILTER (WHERE aa_below AND NOT cand_below) AS down,
       count(*) FILTER (WHERE aa_below) AS aa_below
FROM paired
GROUP BY GROUPING SETS ((), (segment))
ORDER BY segment NULLS FIRST;
