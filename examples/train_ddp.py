"""Train an rnnlm model further with PyTorch DistributedDataParallel, then hand it back to rnnlm.

    rnnlm export model.npz --format safetensors --out model.safetensors
    torchrun --nproc_per_node 2 examples/train_ddp.py model.safetensors corpus.csv --out trained.safetensors
    rnnlm import trained.safetensors --out trained.npz && rnnlm generate --model trained.npz

Each process (rank) reads the export, builds the same torch module (rnnlm.io.exchange.torch_module),
tokenizes the corpus with rnnlm's own pipeline and the export's vocabulary (rnnlm.data.corpus), and
trains on its own disjoint shard of the sentences (every world_size-th one, from its rank).
DistributedDataParallel averages the gradients of all ranks after every backward pass, so every
rank takes the same step and the parameters stay identical everywhere; rank 0 prints progress and
writes the result. Backend: nccl with one GPU per rank when CUDA is available, gloo on CPUs.
Defaults (learning rate, batch size, clip, optimizer) are rnnlm's `TrainConfig`'s. See docs/scaling.md.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from rnnlm.io import exchange
from rnnlm.nn.batching import bucketed_batches, pad_batch
from rnnlm.io.safe_files import ensure_file_writable
from rnnlm.config import FORMATS, TrainConfig
from rnnlm.data.corpus import load_corpus
from rnnlm.errors import RnnlmError
from rnnlm.training.loop import split_train_valid

DEFAULTS = TrainConfig()
OPTIMIZERS = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop,
              "adam": torch.optim.Adam}
IGNORE = -100  # cross_entropy's ignore_index: padded targets


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="an rnnlm safetensors export ('rnnlm export MODEL.npz --format safetensors')")
    p.add_argument("corpus", help="a Reddit CSV or text file, tokenized with the export's vocabulary")
    p.add_argument("--out", required=True, help="safetensors file to write (rank 0), for 'rnnlm import'")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps (every rank takes the same number)")
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, help="sentences per rank per step")
    p.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate)
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default=DEFAULTS.optimizer)
    p.add_argument("--clip", type=float, default=DEFAULTS.clip, help="global gradient-norm limit (0: none)")
    p.add_argument("--format", choices=FORMATS, default="auto", help="corpus format, as in 'rnnlm train'")
    p.add_argument("--max-records", type=int, help="use only the first N comments/lines")
    p.add_argument("--valid-fraction", type=float, default=DEFAULTS.valid_fraction,
                   help="sentences held out, the same ones 'rnnlm train --seed' holds out (0: none)")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed,
                   help="validation split, as in 'rnnlm train'; batch order: rng([seed, rank, epoch])")
    p.add_argument("--log-every", type=int, default=50, help="rank 0 prints the loss every this many steps")
    p.add_argument("--dump-params", metavar="DIR",
                   help="every rank writes its final parameters to DIR/rank<r>.safetensors (to check DDP's invariant)")
    return p.parse_args(argv)


def shard_batches(lengths, batch_size, seed, rank):
    """Endless minibatches (index arrays into this rank's shard), a fresh seeded order every epoch."""
    epoch = 0
    while True:
        yield from bucketed_batches(lengths, batch_size, np.random.default_rng([seed, rank, epoch]))
        epoch += 1


def token_batches(X, Y, batch_size, device):
    """(x, y) padded tensors for `model(x)`, padded targets set to IGNORE; the batch's real tokens."""
    for a in range(0, len(X), batch_size):
        x, y, mask = pad_batch(X[a:a + batch_size], Y[a:a + batch_size])
        yield (torch.from_numpy(x).to(device), torch.from_numpy(np.where(mask > 0, y, IGNORE)).to(device),
               int(mask.sum()))


def summed_loss(module, x, y):
    """Cross-entropy summed over the real tokens of a padded batch (computed in float32 at least)."""
    logits = module(x)  # (N, T, C)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1),
                                             ignore_index=IGNORE, reduction="sum")


def validation_loss(module, X, Y, batch_size, device):
    """Loss per token over every rank's validation shard (a collective: every rank must call it)."""
    total = torch.zeros(2, dtype=torch.float64, device=device)
    with torch.no_grad():
        for x, y, tokens in token_batches(X, Y, batch_size, device):
            total += torch.tensor([summed_loss(module, x, y).item(), tokens], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return float(total[0] / total[1]) if total[1] > 0 else None


def main(argv=None):
    args = parse_args(argv)
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    failure = None
    try:
        if min(args.steps, args.batch_size, args.log_every) < 1:
            raise RnnlmError("--steps, --batch-size and --log-every must be positive integers")
        if Path(args.out).resolve() == Path(args.model).resolve():
            raise RnnlmError(f"--out {args.out} is the input export; write to another file")
        if rank == 0:  # only rank 0 writes --out (on its machine)
            ensure_file_writable(args.out)
        export = exchange.read_safetensors(args.model)
        corpus = load_corpus(args.corpus, format=args.format, level=export.level, vocabulary=export.vocabulary,
                             max_records=args.max_records)
        if not 0 <= args.valid_fraction < 1:
            raise RnnlmError(f"--valid-fraction must be in [0, 1), got {args.valid_fraction}")
        if len(corpus.X) * (1 - args.valid_fraction) < world:
            raise RnnlmError(f"{args.corpus} has {len(corpus.X)} sentences, too few for {world} processes")
    except RnnlmError as exc:
        failure = f"train_ddp.py: error (rank {rank}): {exc}"
    failed = torch.tensor([failure is not None], dtype=torch.int32, device=device)
    dist.all_reduce(failed, op=dist.ReduceOp.MAX)  # all ranks stop together, none waits forever
    if failed.item():
        if failure:
            print(failure, file=sys.stderr)
        dist.destroy_process_group()
        return 2

    X, Y, Xv, Yv = split_train_valid(corpus.X, corpus.Y, args.valid_fraction, args.seed)
    X, Y, Xv, Yv = X[rank::world], Y[rank::world], Xv[rank::world], Yv[rank::world]  # disjoint shards
    module = exchange.torch_module(export).to(device)
    model = DistributedDataParallel(module, device_ids=[local_rank] if cuda else None)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = OPTIMIZERS[args.optimizer](trainable, lr=args.learning_rate)
    if rank == 0:
        print(f"{world} processes ({'nccl, GPUs' if cuda else 'gloo, CPUs'}); {corpus.report.lines()[0]} "
              f"{len(corpus.X)} sentences, about {len(X)} per rank for training and {len(Xv)} for validation; "
              f"module: nn.Embedding{tuple(export.spec['embedding'])} -> nn.{export.spec['rnn']['type']} -> "
              f"nn.Linear; {sum(p.numel() for p in trainable):,} trained parameters", flush=True)

    batches = shard_batches([len(y) for y in Y], args.batch_size, args.seed, rank)
    window = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, tokens since the last report
    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        chosen = next(batches)
        (x, y, tokens), = token_batches([X[i] for i in chosen], [Y[i] for i in chosen], len(chosen), device)
        loss = summed_loss(model, x, y) / tokens  # mean over this rank's real tokens
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # DDP all-reduces (averages) the gradients here
        if args.clip:
            torch.nn.utils.clip_grad_norm_(trainable, args.clip)
        optimizer.step()
        window += torch.tensor([loss.item() * tokens, tokens], dtype=torch.float64, device=device)
        if step % args.log_every == 0 or step == args.steps:
            dist.all_reduce(window)  # every rank reaches this at the same steps
            valid = validation_loss(model.module, Xv, Yv, args.batch_size, device) if args.valid_fraction else None
            if rank == 0:
                loss_sum, count = window.tolist()
                seconds = time.perf_counter() - started
                text = "" if valid is None else f", valid loss {valid:.4f} (perplexity {np.exp(valid):.1f})"
                print(f"step {step}/{args.steps}: train loss {loss_sum / count:.4f} per token "
                      f"(perplexity {np.exp(loss_sum / count):.1f}){text}, {seconds:.1f} s", flush=True)
            window.zero_()

    tensors = exchange.module_tensors(model.module)
    if args.dump_params:
        import safetensors.numpy
        Path(args.dump_params).mkdir(parents=True, exist_ok=True)
        safetensors.numpy.save_file(tensors, str(Path(args.dump_params) / f"rank{rank}.safetensors"))
    if rank == 0:
        exchange.write_safetensors(args.out, export.with_tensors(tensors))
        print(f"Wrote {args.out}; bring it back with: rnnlm import {args.out} --out MODEL.npz", flush=True)
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
