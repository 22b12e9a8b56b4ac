-- One row per sweep job: the candidate's verdict, key metric deltas vs the baseline, closeness to the baseline
-- and throughput over *generated* requests only (cached ones took no engine time: a fully cached arm has 0
-- generated requests and NULL rates). Views (harness/report/sweep.py): jobs (one row per run), batches (every run's
-- batches parts, with job), deltas (overall rows of every run's summary.parquet, with job), drift (per request
-- cosine to the baseline, with job; empty when drift was off), latency (each run's latency.parquet, with job: the
-- server backend's streamed percentiles; empty otherwise), load (each run's load.parquet, with job: a timed replay's
-- fidelity and goodput, replay.load; empty otherwise). Goodput per core divides by the machine's cores (`cores`
-- parameter; a CPU server uses them all; on a GPU box read it per GPU).
WITH thr AS (
    SELECT job, sum(requests) AS generated, sum(coalesce(cached, 0)) AS cached,
           sum(output_tokens) AS output_tokens, sum(seconds) AS engine_seconds
    FROM batches WHERE arm = 'candidate'
    GROUP BY job
), golden AS (
    SELECT job, avg(candidate) AS golden_score FROM deltas WHERE family = 'golden' GROUP BY job
), sim AS (
    SELECT job, avg(cosine) AS cosine_to_baseline FROM drift WHERE arm = 'candidate' GROUP BY job
), lat AS (
    SELECT job, ttft_p50_s, ttft_p99_s, tpot_p50_s, latency_p90_s FROM latency
    WHERE arm = 'candidate' AND segment IS NULL
), ld AS (
    SELECT job, goodput_rps, completed_rps, lateness_p99_s, achieved_rps, scheduled_rps FROM load
    WHERE arm = 'candidate'
), key AS (
    SELECT job, list(metric || '=' || printf('%+.3g', delta) ORDER BY metric) AS key_deltas
    FROM deltas WHERE list_contains($metrics, metric) AND delta <> 0  -- unchanged metrics are left out
    GROUP BY job
)
SELECT j.job, j.run_id, j.settings, j.config, j.repeat, j.verdict, j.direction, j.families, j.breached,
       j.quality_breached,
       g.golden_score, s.cosine_to_baseline, coalesce(array_to_string(k.key_deltas, ', '), 'none') AS key_deltas,
       coalesce(t.generated, 0) AS generated, coalesce(t.cached, 0) AS cached,
       t.output_tokens / nullif(t.engine_seconds, 0) AS output_tokens_per_s,
       t.generated / nullif(t.engine_seconds, 0) AS requests_per_s,
       t.engine_seconds / nullif(t.generated, 0) AS seconds_per_request,
       l.ttft_p50_s, l.latency_p90_s, l.ttft_p99_s, l.tpot_p50_s,
       d.goodput_rps, d.goodput_rps / $cores AS goodput_per_core, d.completed_rps, d.lateness_p99_s,
       d.achieved_rps, d.scheduled_rps,
       j.run_dir
FROM jobs j
LEFT JOIN thr t USING (job)
LEFT JOIN golden g USING (job)
LEFT JOIN sim s USING (job)
LEFT JOIN key k USING (job)
LEFT JOIN lat l USING (job)
LEFT JOIN ld d USING (job)
ORDER BY j.job;
