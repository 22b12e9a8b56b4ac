"""The canary stage: live canary traffic gated window by window with always-valid statistics, and rollback through
the traffic layer (docs/canary.md).

    logs.py        canary logs (Parquet / OpenAI JSONL with an ``arm`` field) in a growing directory, validated
    sequential.py  the mSPRT: always-valid p-values and confidence sequences for two-sample rates and means
    windows.py     tumbling windows on cumulative data -> checks per family -> a decision per window
    evaluate.py    the evaluator loop: windows.parquet in the run directory, resume, hooks
    hooks.py       the traffic layer: HAProxy runtime API, a signed webhook with retries
    serve.py       ``python -m harness serve``: the latest decision for Argo Rollouts and Flagger
    simulate.py    false rollbacks and detection delay by simulation
    demo.py        the end-to-end demo: two vLLM servers behind HAProxy, a load generator, the evaluator
"""
