-- The pairs whose outputs changed most, by absolute change in length: the biggest change of each
-- segment first, then the second biggest of each, and so on (ties broken by request_id).
WITH changed AS (
    SELECT b.request_id, b.segment,
           b.output_text AS baseline_output, c.output_text AS candidate_output,
           length(c.output_text) - length(b.output_text) AS chars_delta
    FROM generations b
    JOIN generations c ON b.request_id = c.request_id
    WHERE b.arm = 'baseline' AND c.arm = 'candidate' AND b.output_text IS DISTINCT FROM c.output_text
)
SELECT *
FROM changed
ORDER BY row_number() OVER (PARTITION BY segment ORDER BY abs(chars_delta) DESC, request_id),
         abs(chars_delta) DESC, request_id
LIMIT 50;
