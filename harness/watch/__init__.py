"""The watch: did what is served behind a pinned model name change? (docs/watch.md)

The pipeline, in file order::

    probe.py    draw the probe set once (stratified by segment, from traffic and/or a golden set), freeze it with
                its fingerprint
    sample.py   one probe run: k samples per prompt at the production sampling settings plus greedy passes, through
                the server backend (a pinned endpoint) or a local checkpoint; one Parquet row per request
    stats.py    pure statistics: string kernels, the per-prompt MMD with a within-prompt permutation null, the greedy
                exact-match and length tests, the golden paired delta, the combined decision
    check.py    a probe run against the reference snapshot (the first run): SAME / CHANGED / INCONCLUSIVE, the
                changed segments, the prompts that moved most, check.json and check.md
    cli.py      ``python -m harness watch [key=value ...]``: config -> the steps above -> webhook, exit code
"""

DECISION_CODES = {"SAME": 0, "CHANGED": 10, "INCONCLUSIVE": 13}
"""Exit codes of ``python -m harness watch`` (as INVESTIGATE 10 and INSUFFICIENT_DATA 13 of ``replay``)."""
