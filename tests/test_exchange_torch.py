"""rnnlm -> safetensors -> a PyTorch module -> back: equal losses on both sides, and the DDP recipe.

Skipped without torch. The DDP test runs `torchrun --nproc_per_node 2 examples/train_ddp.py` on a
tiny corpus written here, then checks DistributedDataParallel's invariant (both ranks end with the
same parameters) and that `rnnlm import` reads the result.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnlm.io import checkpoint as ckpt
from rnnlm import cli
from rnnlm.io import exchange
from rnnlm.data.corpus import load_corpus

from test_exchange import EXPORTABLE, VOCAB, batch, randomize_biases

torch = pytest.importorskip("torch")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

REPO = Path(__file__).resolve().parent.parent


def torch_loss(module, X, Y):
    """Summed cross-entropy, one sentence at a time (no padding at all on the torch side)."""
    total = 0.0
    for x, y in zip(X, Y):
        logits = module(torch.from_numpy(np.asarray(x))[None])[0]
        total = total + torch.nn.functional.cross_entropy(logits, torch.from_numpy(np.asarray(y)), reduction="sum")
    return total


@pytest.mark.parametrize("kind", sorted(EXPORTABLE))
@pytest.mark.parametrize("dtype, rel", [(np.float64, 1e-9), (np.float32, 1e-5)])
def test_torch_module_loss_equals_rnnlms(tmp_path, kind, dtype, rel):
    m = randomize_biases(EXPORTABLE[kind](dtype))
    exchange.save_safetensors(tmp_path / "m.safetensors", m, VOCAB)
    module = exchange.torch_module(exchange.read_safetensors(tmp_path / "m.safetensors"))
    assert next(module.parameters()).dtype == (torch.float64 if dtype == np.float64 else torch.float32)
    X, Y = batch()
    with torch.no_grad():
        theirs = float(torch_loss(module, X, Y))
    assert theirs == pytest.approx(m.total_loss(X, Y), rel=rel)


@pytest.mark.parametrize("kind", sorted(EXPORTABLE))
def test_weights_trained_in_torch_come_back_with_the_same_loss(tmp_path, kind):
    m = randomize_biases(EXPORTABLE[kind](np.float64))
    export = exchange.export_model(m, VOCAB)
    module = exchange.torch_module(export)
    optimizer = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=0.5)
    X, Y = batch(1)
    for _ in range(5):
        optimizer.zero_grad()
        torch_loss(module, X, Y).backward()
        optimizer.step()
    trained = exchange.module_tensors(module)
    assert any(not np.array_equal(trained[k], v) for k, v in export.tensors.items())  # it did train
    exchange.write_safetensors(tmp_path / "t.safetensors", export.with_tensors(trained))
    back = exchange.load_safetensors(tmp_path / "t.safetensors", dtype=np.float64)
    Xt, Yt = batch(2)
    with torch.no_grad():
        expected = float(torch_loss(module, Xt, Yt))
    assert back.model.total_loss(Xt, Yt) == pytest.approx(expected, rel=1e-9)


def test_the_tutorial_models_identity_input_map_stays_frozen(tmp_path):
    m = EXPORTABLE["fast-rnn"](np.float32)
    module = exchange.torch_module(exchange.export_model(m, VOCAB))
    frozen = {n for n, p in module.named_parameters() if not p.requires_grad}
    assert frozen == {"rnn.weight_ih_l0"}
    assert module.rnn.bias is False and module.out.bias is None


# --------------------------------------------------------------------- the DDP recipe

CORPUS = "\n".join([
    "the cat sat on the mat.", "the dog sat on the log.", "a cat and a dog met on the mat.",
    "the dog ran to the cat.", "a cat ran on the log.", "the mat was on the log.",
    "a dog and a cat sat.", "the log and the mat ran.",
]) + "\n"


def test_torchrun_ddp_keeps_ranks_identical_and_its_result_imports(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    assert cli.main(["train", str(corpus), "--out", str(tmp_path / "m.npz"), "--epochs", "1", "--vocab-size", "12",
                     "--hidden", "8", "--cell", "lstm", "--embed-size", "6", "--no-progress"]) == 0
    assert cli.main(["export", str(tmp_path / "m.npz"), "--format", "safetensors",
                     "--out", str(tmp_path / "m.safetensors")]) == 0
    capsys.readouterr()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(REPO / "examples" / "train_ddp.py"), str(tmp_path / "m.safetensors"), str(corpus),
         "--out", str(tmp_path / "t.safetensors"), "--steps", "12", "--batch-size", "2", "--log-every", "4",
         "--learning-rate", "0.5", "--dump-params", str(tmp_path / "ranks")],
        capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 processes (gloo" in proc.stdout and "step 12/12" in proc.stdout

    ranks = [safetensors_numpy.load_file(str(tmp_path / "ranks" / f"rank{r}.safetensors")) for r in (0, 1)]
    start = exchange.read_safetensors(tmp_path / "m.safetensors").tensors
    assert set(ranks[0]) == set(ranks[1]) == set(start)
    for name in start:
        np.testing.assert_array_equal(ranks[0][name], ranks[1][name], err_msg=name)  # DDP's invariant
    assert any(not np.array_equal(ranks[0][k], start[k]) for k in start)  # and training moved them

    assert cli.main(["import", str(tmp_path / "t.safetensors"), "--out", str(tmp_path / "t.npz")]) == 0
    back = ckpt.load_model(tmp_path / "t.npz", dtype=np.float64)
    data = load_corpus(corpus, format="text", vocabulary=back.vocabulary)
    module = exchange.torch_module(exchange.read_safetensors(tmp_path / "t.safetensors").with_tensors(ranks[1]))
    with torch.no_grad():
        expected = float(torch_loss(module.double(), data.X, data.Y))
    assert back.model.total_loss(data.X, data.Y) == pytest.approx(expected, rel=1e-5)


def test_a_bfloat16_file_from_torch_is_refused_in_one_line(tmp_path, capsys):
    """bfloat16 has no NumPy type: the message says to save float32, and --out is not touched."""
    import safetensors.torch
    from safetensors import safe_open
    exchange.save_safetensors(tmp_path / "m.safetensors", EXPORTABLE["gru-2-layers"](np.float32), VOCAB)
    with safe_open(str(tmp_path / "m.safetensors"), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k).bfloat16() for k in f.keys()}
    safetensors.torch.save_file(tensors, str(tmp_path / "bf16.safetensors"), metadata=meta)
    code = cli.main(["import", str(tmp_path / "bf16.safetensors"), "--out", str(tmp_path / "m.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "float32" in err and err.count("\n") == 1
    assert not (tmp_path / "m.npz").exists()
