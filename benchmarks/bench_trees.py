"""Tree-LSTM time per training step: recursive (node by node) vs fold (by height) vs SPINN (by transition).

Run from the repository root:

    python benchmarks/bench_trees.py              # 25 SST trees, 100 and 500 dimensions
    python benchmarks/bench_trees.py --repeats 7 --dims 100 300 500

The batch is 25 trees drawn (seed 0) from ../shared/data/sst/train.txt, or, without ../shared,
25 random binary trees with the SST's length distribution roughly matched (said in the output).
Every contender does the same work per step: the summed node cross-entropy of the batch, every
gradient, and one Adagrad update, in float32, embedding width = hidden size = the dimension.
The NumPy contenders are timed in interleaved rounds and the medians reported (a shared machine's
speed drifts); the ratios are to the recursive NumPy code, measured in the same run.
The PyTorch row (when torch is installed) is the same cell written per node with autograd (the
embeddings of a tree gathered in one lookup),
timed after the NumPy rounds with one thread (per-node products are too small to share out, and idle
OpenMP workers spin and would slow whatever runs beside them).
This is a script, not a test.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rnnlm.nn.optim import Adagrad  # noqa: E402
from rnnlm.models.tree_lstm import TreeLSTM, TreeLSTMConfig  # noqa: E402
from rnnlm.data.trees import binarize, build_vocabulary, encode_tree, read_trees  # noqa: E402

SST_TRAIN = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "sst" / "train.txt"
BATCH = 25
METHODS = ("recursive", "fold", "spinn")


def load_batch(seed=0):
    """25 trees and a description of where they came from."""
    rng = np.random.default_rng(seed)
    if SST_TRAIN.is_file():
        trees = read_trees(SST_TRAIN)
        batch = [trees[i] for i in rng.choice(len(trees), size=BATCH, replace=False)]
        vocabulary = build_vocabulary(trees, 20000)
        where = f"{BATCH} SST training trees (seed {seed})"
    else:
        lengths = np.clip(rng.normal(19, 9, size=BATCH).round().astype(int), 2, 50)
        batch = [binarize([f"w{rng.integers(500)}" for _ in range(n)]) for n in lengths]
        for tree in batch:
            _label(tree, rng)
        vocabulary = build_vocabulary(batch, 20000)
        where = f"{BATCH} random balanced trees (no ../shared/data/sst)"
    encoded = [encode_tree(t, vocabulary) for t in batch]
    nodes = sum(t.num_nodes for t in encoded)
    heights = max(t.height() for t in batch)
    return encoded, len(vocabulary), f"{where}: {nodes} nodes, tallest tree {heights} levels"


def _label(tree, rng):
    tree.label = int(rng.integers(5))
    if not tree.is_leaf:
        _label(tree.left, rng)
        _label(tree.right, rng)


def numpy_step(method, config, encoded):
    model = TreeLSTM(config, seed=0, dtype=np.float32, method=method)
    optimizer = Adagrad(0.05)

    def step():
        _, grads = model.total_loss_and_gradients(encoded)
        optimizer.step(model.params, grads)

    return step, model


def torch_step(numpy_model, encoded):
    """The same cell per node in PyTorch (autograd), starting from the NumPy model's parameters."""
    import torch
    torch.set_num_threads(1)  # single-row products: extra threads only add synchronisation on a shared machine
    params = {k: torch.tensor(v, requires_grad=True) for k, v in numpy_model.params.items()}
    optimizer = torch.optim.Adagrad(params.values(), lr=0.05)
    H = numpy_model.config.hidden_size

    def node(tree, k, x, logits):
        if tree.left[k] < 0:
            a = x[k] @ params["W_leaf"] + params["b_leaf"]
            i, o, u = torch.sigmoid(a[:H]), torch.sigmoid(a[H:2 * H]), torch.tanh(a[2 * H:])
            c = i * u
        else:
            h_l, c_l = node(tree, int(tree.left[k]), x, logits)
            h_r, c_r = node(tree, int(tree.right[k]), x, logits)
            a = torch.cat([h_l, h_r]) @ params["U"] + params["b"]
            g = torch.sigmoid(a[:4 * H])
            i, f_l, f_r, o = g[:H], g[H:2 * H], g[2 * H:3 * H], g[3 * H:]
            c = i * torch.tanh(a[4 * H:]) + f_l * c_l + f_r * c_r
        h = o * torch.tanh(c)
        logits.append(h @ params["W_s"] + params["b_s"])
        return h, c

    labels = [torch.tensor(t.label) for t in encoded]

    def loss_fn():
        total = 0.0
        for tree, y in zip(encoded, labels):
            logits = []
            # one embedding gather per tree: indexing E per leaf would make autograd build a dense
            # (V, E) gradient for every leaf, which is not what per-node code costs
            x = params["E"][torch.from_numpy(np.maximum(tree.word, 0))]
            node(tree, tree.num_nodes - 1, x, logits)
            total = total + torch.nn.functional.cross_entropy(torch.stack(logits), y, reduction="sum")
        return total

    def step():
        optimizer.zero_grad()
        loss_fn().backward()
        optimizer.step()

    return step, loss_fn


def time_rounds(steps, repeats):
    times = {name: [] for name in steps}
    for name, step in steps.items():  # warm-up
        step()
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads for NumPy (default 1: on a shared 2-core machine a second OpenBLAS "
                             "thread waits on the other jobs and makes the many mid-sized products of fold "
                             "and SPINN several times slower)")
    args = parser.parse_args()
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.blas_threads)
        blas_line = f"BLAS threads {args.blas_threads} (threadpoolctl)"
    except ImportError:
        blas_line = "BLAS threads: library default (threadpoolctl not installed)"
    encoded, vocab_size, where = load_batch()
    try:
        import torch
        torch_line = f"torch {torch.__version__} (1 thread for the per-node row)"
    except ImportError:
        torch = None
        torch_line = "torch not installed"
    if args.no_torch:
        torch = None
    print(f"batch: {where}")
    print(f"environment: python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"{blas_line}, {torch_line}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"time per step (loss + gradients + Adagrad update, float32), median of {args.repeats} interleaved rounds\n")
    print(f"{'dim':>5}  {'contender':<28} {'s/step':>9}  {'speed-up vs recursive':>22}")
    for dim in args.dims:
        config = TreeLSTMConfig(vocab_size=vocab_size, embed_size=dim, hidden_size=dim)
        steps, models = {}, {}
        for method in METHODS:
            steps[f"NumPy {method}"], models[method] = numpy_step(method, config, encoded)
        if torch is not None:
            torch_run, torch_loss = torch_step(models["recursive"], encoded)
            numpy_loss, _ = models["recursive"].total_loss_and_gradients(encoded)
            print(f"{dim:>5}  (the same loss before training: NumPy {numpy_loss:.4f}, "
                  f"PyTorch {float(torch_loss().detach()):.4f})")
        medians = time_rounds(steps, args.repeats)
        if torch is not None:
            # timed apart: PyTorch's OpenMP workers spin after each call and would slow the NumPy rounds
            medians.update(time_rounds({"PyTorch per node (autograd)": torch_run}, args.repeats))
        base = medians["NumPy recursive"]
        for name, seconds in medians.items():
            print(f"{dim:>5}  {name:<28} {seconds:>9.4f}  {base / seconds:>21.1f}x")
        print()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
