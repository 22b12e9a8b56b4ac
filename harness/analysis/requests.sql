-- Per arm: how many requests were replayed, served and failed, by error kind.
SELECT arm, coalesce(split_part(error, ':', 1), 'ok') AS outcome, count(*) AS requests
FROM generations
GROUP BY ALL
ORDER BY arm, outcome;
