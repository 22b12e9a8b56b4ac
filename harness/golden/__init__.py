"""Golden sets: the schema and validation (``schema``), the metric registry (``metrics``), the zoo's golden
set (``zoo``) and candidate items proposed from a run (``candidates``)."""
