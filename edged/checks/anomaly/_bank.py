"""The memory bank: greedy coreset subsampling and nearest-neighbour distances.

PatchCore-style scoring keeps the feature vectors of good cells and scores a
query cell by the distance to its nearest stored vector. To bound memory and
time the bank keeps at most ``size`` vectors, chosen by greedy k-center
selection (each pick is the vector farthest from those picked so far), which
keeps the rare good textures a random sample would lose.
"""

from __future__ import annotations

import cv2
import numpy as np

_CHUNK = 2048  # query rows per distance block (bounds the temporary matrix)


def greedy_coreset(features: np.ndarray, *, size: int, seed: int = 0) -> np.ndarray:
    """Indices of at most ``size`` rows of ``features`` covering all of them.

    features: ``(N, D)`` float32. Returns sorted int64 indices; all of them when
    ``N <= size``. Deterministic for a given ``seed`` (the first pick).
    """
    n = int(features.shape[0])
    if size <= 0:
        msg = f"coreset size: expected >= 1, got {size}"
        raise ValueError(msg)
    if n <= size:
        return np.arange(n, dtype=np.int64)
    x = np.ascontiguousarray(features, dtype=np.float32)
    sq = np.einsum("ij,ij->i", x, x)
    picked = np.empty(size, dtype=np.int64)
    current = int(np.random.default_rng(seed).integers(n))
    nearest = np.full(n, np.inf, dtype=np.float32)
    for k in range(size):
        picked[k] = current
        c = x[current]
        # einsum, not BLAS: a threaded gemv stalls for milliseconds on a busy machine
        d = sq - 2.0 * np.einsum("ij,j->i", x, c) + sq[current]
        np.minimum(nearest, d, out=nearest)
        current = int(np.argmax(nearest))
    return np.sort(picked)


def nearest_distances(
    queries: np.ndarray, bank: np.ndarray, *, exclude: np.ndarray | None = None
) -> np.ndarray:
    """Euclidean distance of each query row to its nearest bank row.

    queries: ``(M, D)`` float32; bank: ``(K, D)`` float32; exclude: optional
    ``(K,)`` bool, bank rows not to use. Returns ``(M,)`` float32.
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    b = np.ascontiguousarray(bank, dtype=np.float32)
    bsq = np.einsum("ij,ij->i", b, b)
    if exclude is not None:
        bsq = np.where(exclude, np.float32(np.inf), bsq).astype(np.float32)
    out = np.empty(q.shape[0], dtype=np.float32)
    for start in range(0, q.shape[0], _CHUNK):
        block = q[start : start + _CHUNK]
        # OpenCV's gemm: steady on a busy machine, where threaded BLAS stalls
        d = bsq[None, :] - 2.0 * cv2.gemm(block, b, 1.0, None, 0.0, flags=cv2.GEMM_2_T)
        best = d.min(axis=1) + np.einsum("ij,ij->i", block, block)
        out[start : start + _CHUNK] = np.sqrt(np.maximum(best, 0.0))
    return out


def class_coreset(
    features: np.ndarray, classes: np.ndarray, *, size: int, seed: int = 0
) -> np.ndarray:
    """Indices of at most ``size`` rows of ``features``, a greedy coreset per class.

    features: ``(N, D)`` float32; classes: ``(N,)`` int class of each row. Each
    class gets a share of ``size`` proportional to its rows (largest remainders,
    at least one row per class), so the bound holds whenever ``size`` is at least
    the number of classes. Returns sorted int64 indices.
    """
    labels, counts = np.unique(classes, return_counts=True)
    if size < labels.size:
        msg = f"coreset size: expected >= {labels.size} (one per position class), got {size}"
        raise ValueError(msg)
    n = int(counts.sum())
    if n <= size:
        return np.arange(n, dtype=np.int64)
    quota = counts * (size / n)
    share = np.maximum(np.floor(quota).astype(np.int64), 1)
    order = np.argsort(-(quota - np.floor(quota)), kind="stable")
    for k in order[: max(0, size - int(share.sum()))]:
        share[k] += 1
    while share.sum() > size:  # the minimum of one row pushed the total over
        share[int(np.argmax(share))] -= 1
    picked = []
    for label, k in zip(labels, share, strict=True):
        rows = np.flatnonzero(classes == label)
        picked.append(rows[greedy_coreset(features[rows], size=int(k), seed=seed)])
    return np.sort(np.concatenate(picked))


def class_nearest_distances(
    queries: np.ndarray,
    query_classes: np.ndarray,
    bank: np.ndarray,
    bank_classes: np.ndarray,
    *,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """Distance of each query row to its nearest bank row of the same class.

    queries: ``(M, D)``, query_classes: ``(M,)``; bank: ``(K, D)``, bank_classes:
    ``(K,)``; exclude: optional ``(K,)`` bool, bank rows not to use. A class with
    no usable bank row is matched against the whole bank. Returns ``(M,)`` float32.
    """
    out = np.empty(queries.shape[0], dtype=np.float32)
    usable = np.ones(bank.shape[0], bool) if exclude is None else ~exclude
    for label in np.unique(query_classes):
        rows = query_classes == label
        mine = (bank_classes == label) & usable
        if not mine.any():
            mine = usable
        out[rows] = nearest_distances(queries[rows], bank[mine])
    return out
