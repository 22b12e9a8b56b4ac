-- Per arm replayed open loop (replay.load): the schedule's fidelity and the load achieved. lateness = actual send -
-- scheduled send (seconds); rates count the gaps between sends over their span ((n - 1) / span: a kept constant
-- schedule reads its rate exactly); makespan = first send to the last answer's last token; goodput = requests that met
-- every SLO (`slo_met` signal, replay.load.slo_*) per second of makespan (NULL without SLOs); `schedule` is the
-- schedule's fingerprint (arms with the same one pair by request). Empty for a closed-loop run.
WITH l AS (
    SELECT * FROM load
), arm AS (
    SELECT arm, any_value(mode) AS mode, any_value(schedule) AS schedule, count(*) AS requests,
           count(sent_s) AS sent, count(*) FILTER (WHERE sent_s IS NOT NULL AND error IS NOT NULL) AS errors,
           count(*) FILTER (WHERE sent_s IS NULL) AS not_sent,
           quantile_cont(lateness_s, 0.5) AS lateness_p50_s, quantile_cont(lateness_s, 0.99) AS lateness_p99_s,
           max(lateness_s) AS lateness_max_s,
           (count(sent_s) - 1) / nullif(max(scheduled_s) FILTER (WHERE sent_s IS NOT NULL)
                                        - min(scheduled_s) FILTER (WHERE sent_s IS NOT NULL), 0) AS scheduled_rps,
           (count(sent_s) - 1) / nullif(max(sent_s) - min(sent_s), 0) AS achieved_rps,
           max(coalesce(done_s, sent_s)) - min(sent_s) AS makespan_s,
           count(*) FILTER (WHERE sent_s IS NOT NULL AND error IS NULL) AS completed,
           sum(output_tokens) FILTER (WHERE error IS NULL) AS output_tokens
    FROM l GROUP BY arm
), good AS (
    SELECT arm, sum(value) AS good FROM signals WHERE metric = 'slo_met' GROUP BY arm
)
SELECT a.*, a.completed / nullif(a.makespan_s, 0) AS completed_rps,
       a.output_tokens / nullif(a.makespan_s, 0) AS output_tokens_per_s,
       g.good AS slo_met, g.good / nullif(a.makespan_s, 0) AS goodput_rps
FROM arm a LEFT JOIN good g USING (arm)
ORDER BY a.arm;
