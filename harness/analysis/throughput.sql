-- Per arm: requests served, tokens and engine seconds over the replay batches (load time excluded).
SELECT arm, count(*) AS batches, sum(requests) AS requests,
       sum(prompt_tokens) AS prompt_tokens, sum(output_tokens) AS output_tokens,
       sum(seconds) AS seconds,
       sum(requests) / nullif(sum(seconds), 0) AS requests_per_s,
       sum(output_tokens) / nullif(sum(seconds), 0) AS output_tokens_per_s
FROM batches
GROUP BY arm
ORDER BY arm;
