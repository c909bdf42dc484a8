"""Loss and every gradient equal PyTorch autograd (float64) with the exported weights. Skipped without torch."""

import numpy as np
import pytest

from rnnlm.models.language_model import LanguageModel

torch = pytest.importorskip("torch")

C, E, H = 11, 5, 6
TORCH_RNN = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}


def torch_twin(m, cell, layers):
    net = torch.nn.ModuleDict({
        "embedding": torch.nn.Embedding(C, E),
        "rnn": getattr(torch.nn, TORCH_RNN[cell])(E, H, num_layers=layers, batch_first=True),
        "out": torch.nn.Linear(H, C),
    }).double()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in m.torch_state_dict().items()})
    return net


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_loss_and_gradients_equal_torch(cell, layers, rng):
    lengths = (6, 2, 4, 1)
    X = [rng.integers(0, C, n) for n in lengths]
    Y = [rng.integers(0, C, n) for n in lengths]
    m = LanguageModel(C, H, cell=cell, num_layers=layers, embed_size=E, seed=2, dtype=np.float64,
                      bptt_truncate=None)  # torch differentiates the whole sequence
    for k, v in m.params.items():  # make every bias non-zero, so a swapped bias would show
        if "b_" in k:
            v[...] = rng.uniform(-0.5, 0.5, v.shape)
    loss, grads = m.total_loss_and_gradients(X, Y, sparse=True)

    net = torch_twin(m, cell, layers)
    total = torch.zeros((), dtype=torch.float64)
    for x, y in zip(X, Y):  # one sentence at a time: no padding on the torch side at all
        hs, _ = net["rnn"](net["embedding"](torch.from_numpy(x)[None]))
        logits = net["out"](hs[0])
        total = total + torch.nn.functional.cross_entropy(logits, torch.from_numpy(y), reduction="sum")
    total.backward()

    assert loss == pytest.approx(total.item(), rel=1e-12)
    ours = m.torch_state_dict(grads)
    theirs = dict(net.named_parameters())
    assert set(ours) == set(theirs)
    for name, g in ours.items():
        np.testing.assert_allclose(g, theirs[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
