#!/usr/bin/env python3
"""FAISS IndexFlatL2, NumPy (OpenBLAS) and sqlite-vec (vec0) exact k-NN on the same problem as
`doppel bench search` (N x d float32 Gaussian vectors, k = 10), for the issue notes only
(faiss-cpu, numpy, sqlite-vec and apsw are not Doppel dependencies; apsw because this
Python's sqlite3 cannot load extensions). Medians over repeated runs."""
import json
import statistics
import sys
import time

import numpy as np

n, d, k, batch = 100_000, 128, 10, 100
rng = np.random.default_rng(3)
x = rng.standard_normal((n, d), dtype=np.float32)
queries = rng.standard_normal((batch, d), dtype=np.float32)
norms = (x * x).sum(axis=1)


def timed(fn, repeats):
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def numpy_one():
    dist = norms - 2 * (x @ queries[0])
    idx = np.argpartition(dist, k)[:k]
    return idx[np.argsort(dist[idx])]


report = {"n": n, "d": d, "k": k, "numpyOneQueryMs": round(timed(numpy_one, 200), 3)}
try:
    import faiss
    faiss.omp_set_num_threads(2)
    index = faiss.IndexFlatL2(d)
    index.add(x)
    report["faissOneQueryMs"] = round(timed(lambda: index.search(queries[:1], k), 200), 3)
    report["faissBatchedMsPerQuery"] = round(timed(lambda: index.search(queries, k), 20) / batch, 3)
    report["faiss"] = faiss.__version__
except ImportError:
    report["faiss"] = "not installed"
try:
    import apsw
    import sqlite_vec
    db = apsw.Connection(":memory:")
    db.enable_load_extension(True)
    db.load_extension(sqlite_vec.loadable_path())
    db.execute(f"CREATE VIRTUAL TABLE vectors USING vec0(embedding float[{d}])")
    with db:
        db.executemany("INSERT INTO vectors(rowid, embedding) VALUES (?, ?)", ((i + 1, x[i].tobytes()) for i in range(n)))
    query = queries[0].tobytes()
    knn = lambda: list(db.execute("SELECT rowid, distance FROM vectors WHERE embedding MATCH ? ORDER BY distance LIMIT ?", (query, k)))
    report["sqliteVecOneQueryMs"] = round(timed(knn, 50), 3)
    report["sqliteVec"] = list(db.execute("SELECT vec_version()"))[0][0]
except ImportError:
    report["sqliteVec"] = "not installed"
print(json.dumps(report, indent=2))
