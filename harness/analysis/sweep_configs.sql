-- One row per swept config (the job's settings without `replay.load.repeat`): its repeats' mean and standard
-- deviation of throughput, goodput per core and quality, and how many repeats the gate failed on quality (a breached
-- family other than latency) or at all. `jobs`: summary.parquet's rows (sweep_summary.sql) with `config`, `repeat`,
-- `quality_breached`. The intervals (mean +/- t * sd / sqrt(n)) are computed from these in harness/report/sweep.py.
SELECT config, count(*) AS repeats, list(job ORDER BY job) AS jobs, list(verdict ORDER BY job) AS verdicts,
       count(*) FILTER (WHERE quality_breached > 0) AS quality_failed,
       count(*) FILTER (WHERE breached > 0) AS gate_failed,
       avg(output_tokens_per_s) AS output_tokens_per_s, stddev_samp(output_tokens_per_s) AS output_tokens_per_s_sd,
       avg(goodput_per_core) AS goodput_per_core, stddev_samp(goodput_per_core) AS goodput_per_core_sd,
       avg(golden_score) AS golden_score, stddev_samp(golden_score) AS golden_score_sd,
       avg(cosine_to_baseline) AS cosine_to_baseline, stddev_samp(cosine_to_baseline) AS cosine_to_baseline_sd,
       avg(ttft_p99_s) AS ttft_p99_s, avg(tpot_p50_s) AS tpot_p50_s, max(lateness_p99_s) AS lateness_p99_s_max,
       min(job) AS first_job
FROM jobs
WHERE verdict <> 'NO VERDICT'  -- an unfinished job is no repeat
GROUP BY config
ORDER BY first_job;
