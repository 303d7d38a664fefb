#!/usr/bin/env python3
"""The peers of `doppel bench search` on the same vectors, in the same run: FAISS IndexFlatL2
(exact), IndexScalarQuantizer SQ8 and SQfp16, hnswlib, NumPy (OpenBLAS), and optionally
sqlite-vec; then doppel itself at each precision on the very same .npy files.

    scripts/compare/search_anchors.py [--n 1000000] [--d 128] [--data clustered] [--batch 100]
        [--doppel .build/release/doppel] [--precisions float32,float16,int8] [--rerank 4]
        [--hnsw-m 16] [--hnsw-ef 64] [--out DIR]

Vectors are generated here (seeded): gaussian, or clustered (n / 100 centres, points within
+-0.35 of theirs, so neighbours are meaningful) and written to DIR/base.npy and
DIR/queries.npy (stored vectors nudged by N(0, 0.05)), which doppel reads with --vectors and
--queries. Doppel runs with one sample per identity, so its identity search is the samples'
k-NN like the others'. Medians over repeated runs; FAISS on 2 threads. None of these
libraries is a Doppel dependency.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def timed(fn, repeats):
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def recall(truth, found, k):
    return float(np.mean([len(set(t[:k]) & set(f[:k])) / k for t, f in zip(truth, found)]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=128)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--data", choices=["gaussian", "clustered"], default="clustered")
    parser.add_argument("--out", default="/tmp/doppel-search-anchors")
    parser.add_argument("--doppel", default=".build/release/doppel")
    parser.add_argument("--precisions", default="float32,float16,int8")
    parser.add_argument("--rerank", type=int, default=4)
    parser.add_argument("--hnsw-m", type=int, default=16)
    parser.add_argument("--hnsw-ef", type=int, default=64)
    parser.add_argument("--skip-hnsw", action="store_true")
    args = parser.parse_args()
    n, d, k, batch = args.n, args.d, args.k, args.batch

    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(3)
    if args.data == "gaussian":
        x = rng.standard_normal((n, d), dtype=np.float32)
    else:
        centres = rng.standard_normal((max(1, n // 100), d), dtype=np.float32)
        x = centres[rng.integers(0, len(centres), n)]
        x += rng.uniform(-0.35, 0.35, (n, d)).astype(np.float32)
    queries = x[rng.integers(0, n, max(batch, 100))] + rng.normal(0, 0.05, (max(batch, 100), d)).astype(np.float32)
    np.save(f"{args.out}/base.npy", x)
    np.save(f"{args.out}/queries.npy", queries)
    report = {"n": n, "d": d, "k": k, "data": args.data}

    norms = (x * x).sum(axis=1)

    def numpy_one():
        dist = norms - 2 * (x @ queries[0])
        idx = np.argpartition(dist, k)[:k]
        return idx[np.argsort(dist[idx])]

    report["numpyOneQueryMs"] = round(timed(numpy_one, 20), 3)
    import faiss
    faiss.omp_set_num_threads(2)
    flat = faiss.IndexFlatL2(d)
    flat.add(x)
    _, truth = flat.search(queries, k)
    report["faiss"] = faiss.__version__
    report["faissFlat"] = {"oneQueryMs": round(timed(lambda: flat.search(queries[:1], k), 20), 3),
                           "batchedMsPerQuery": round(timed(lambda: flat.search(queries[:batch], k), 5) / batch, 3)}
    for name, kind in [("faissSQ8", faiss.ScalarQuantizer.QT_8bit), ("faissSQfp16", faiss.ScalarQuantizer.QT_fp16)]:
        index = faiss.IndexScalarQuantizer(d, kind, faiss.METRIC_L2)
        start = time.perf_counter()
        index.train(x)
        index.add(x)
        built = time.perf_counter() - start
        _, found = index.search(queries, k)
        report[name] = {"oneQueryMs": round(timed(lambda: index.search(queries[:1], k), 20), 3),
                        "batchedMsPerQuery": round(timed(lambda: index.search(queries[:batch], k), 5) / batch, 3),
                        "recallAtK": round(recall(truth, found, k), 4), "buildSeconds": round(built, 2)}
        del index
    if not args.skip_hnsw:
        import hnswlib
        graph = hnswlib.Index(space="l2", dim=d)
        start = time.perf_counter()
        graph.init_index(max_elements=n, ef_construction=200, M=args.hnsw_m, random_seed=1)
        graph.set_num_threads(2)
        graph.add_items(x, np.arange(n))
        built = time.perf_counter() - start
        graph.set_ef(args.hnsw_ef)
        graph.set_num_threads(1)
        found, _ = graph.knn_query(queries, k=k)
        report["hnswlib"] = {"M": args.hnsw_m, "ef": args.hnsw_ef, "efConstruction": 200, "buildSeconds": round(built, 1),
                             "oneQueryMs": round(timed(lambda: graph.knn_query(queries[:1], k=k), 200), 4),
                             "recallAtK": round(recall(truth, found, k), 4)}
        del graph

    # The peers' indexes go before doppel loads its own copy of the vectors: at 10M x 128 each
    # float32 copy is 5 GB.
    del flat
    report["doppel"] = []
    if os.path.exists(args.doppel):
        runs = [(p, 0) for p in args.precisions.split(",")] + ([("int8", args.rerank)] if args.rerank else [])
        for precision, rerank in runs:
            command = [args.doppel, "bench", "search", "--vectors", f"{args.out}/base.npy", "--queries", f"{args.out}/queries.npy",
                       "--per-identity", "1", "--k", str(k), "--batch", str(batch), "--precision", precision, "--rerank", str(rerank), "--json"]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                print(result.stderr, file=sys.stderr)
                continue
            report["doppel"].append(json.loads(result.stdout))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
