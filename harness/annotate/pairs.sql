-- Every request both arms answered (no error row on either side), with both outputs and whether they differ:
-- the population the labelling kit samples from (harness/annotate/sample.py).
SELECT b.request_id, b.segment,
       b.output_text AS baseline_output, c.output_text AS candidate_output,
       b.output_text IS DISTINCT FROM c.output_text AS changed,
       length(c.output_text) - length(b.output_text) AS chars_delta
FROM generations b
JOIN generations c ON b.request_id = c.request_id
WHERE b.arm = 'baseline' AND c.arm = 'candidate' AND b.error IS NULL AND c.error IS NULL
ORDER BY b.request_id;
