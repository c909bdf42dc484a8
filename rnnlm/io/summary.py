"""What `rnnlm info` prints about a model file: kind, sizes, vocabulary, training history.

`model_summary` for the language models (`rnnlm.io.checkpoint`), `tree_summary` for Tree-LSTM files
(`rnnlm.io.tree_checkpoint`).
"""

import numbers

from rnnlm.io.kinds import KIND_NAMES, TREE_KIND
from rnnlm.wording import counted


def model_summary(checkpoint, words=10):
    """What `rnnlm info` prints, as lines: kind, sizes, level, vocabulary, training history.

    words: how many of the most and least frequent vocabulary words to list (by the corpus
    counts stored with the vocabulary; special tokens left out).
    """
    from rnnlm.nn.numerics import perplexity
    c, vocab, path = checkpoint.model.config, checkpoint.vocabulary, checkpoint.path
    params = checkpoint.model.params
    num_params = sum(int(p.size) for p in params.values())
    dtypes = ", ".join(sorted({str(p.dtype) for p in params.values()}))
    stored = ", ".join(sorted({v["dtype"] for v in checkpoint.metadata.get("params", {}).values()})) or dtypes
    size = path.stat().st_size if path.is_file() else 0
    lines = [f"file: {path} ({size:,} bytes, rnnlm {checkpoint.metadata.get('rnnlm_version', '?')})",
             f"kind: {checkpoint.kind}: {KIND_NAMES.get(checkpoint.kind, checkpoint.kind)}",
             f"level: {checkpoint.level}" + ("" if checkpoint.level == "char" else
                                            f" (links as placeholders: {'yes' if checkpoint.data_config.link_placeholders else 'no'})")]
    shape = f"vocabulary {c.vocab_size}, hidden {c.hidden_size}, cell {c.cell}, layers {c.num_layers}, " \
            f"embedding {c.embed_size if c.embed_size else 'one-hot (none)'}, " \
            f"bptt_truncate {'full' if c.bptt_truncate is None else c.bptt_truncate}, " \
            f"dropout {c.dropout:g}, tied weights {'yes' if c.tie_weights else 'no'}"
    lines.append(f"sizes: {shape}; {num_params:,} parameters ({', '.join(f'{k} {tuple(v.shape)}' for k, v in params.items())}), "
                 f"stored as {stored}")
    lines += _vocabulary_lines(vocab, words)
    state, t = checkpoint.state, checkpoint.train_config
    if state is None or not state.history:
        lines.append("training: none recorded (an untrained model, or one trained outside rnnlm train)")
        return lines
    h = state.history
    setup = "" if t is None else (f"; optimizer {t.optimizer}, learning rate {t.learning_rate:g}, batch size "
                                  f"{t.batch_size}, clip {t.clip}, seed {t.seed}")
    lines.append(f"training: {counted(state.epoch, 'epoch')}{setup}; resumable: "
                 f"{'yes' if checkpoint.metadata.get('resumable') else 'no (no optimizer state)'}")
    first, last = h[0], h[-1]
    lines.append(f"  epoch {first.epoch}: train loss {first.train_loss:.4f}" + _valid(first, perplexity))
    lines.append(f"  epoch {last.epoch}: train loss {last.train_loss:.4f}" + _valid(last, perplexity)
                 + f", learning rate {last.learning_rate:g}")
    validated = [r for r in h if r.valid_loss is not None]
    if validated:
        best = min(validated, key=lambda r: r.valid_loss)
        lines.append(f"  best validation: epoch {best.epoch}, loss {best.valid_loss:.4f} "
                     f"(perplexity {perplexity(best.valid_loss):.1f})")
    seconds = sum(r.seconds for r in h)
    lines.append(f"  time: {seconds:.1f} s over {counted(len(h), 'epoch')}, {sum(r.tokens for r in h):,} tokens")
    return lines


def _valid(record, perplexity):
    return "" if record.valid_loss is None else \
        f", valid loss {record.valid_loss:.4f} (perplexity {perplexity(record.valid_loss):.1f})"


def _vocabulary_lines(vocab, words):
    """The vocabulary's size, its `words` most and least frequent entries, and what UNKNOWN_TOKEN stands for."""
    from rnnlm.config import SPECIAL_TOKENS
    real = [(w, n) for w, n in zip(vocab.index_to_word, vocab.counts) if w not in SPECIAL_TOKENS]
    lines = [f"vocabulary: {len(vocab)} entries ({len(real)} words + {len(vocab) - len(real)} special tokens)"]
    if real and any(n > 0 for _, n in real):
        ranked = sorted(real, key=lambda wn: (-wn[1], wn[0]))
        show = lambda items: ", ".join(f"{w!r} {n:,}" for w, n in items)  # noqa: E731
        lines.append(f"  most frequent: {show(ranked[:words])}")
        lines.append(f"  least frequent: {show(ranked[-words:][::-1])}")
        unknown = vocab.counts[vocab.unknown_index]
        total = sum(n for _, n in real) + unknown
        lines.append(f"  UNKNOWN_TOKEN stands for {unknown:,} of {total:,} training tokens ({unknown / max(total, 1):.1%})")
    else:
        lines.append("  (no word counts stored in this file)")
    return lines


def tree_summary(checkpoint, words=10):
    """What `rnnlm info` prints about a Tree-LSTM file (`TreeCheckpoint`), as lines: kind, sizes, classes,
    parameters, vocabulary and the training history `rnnlm trees train` stores (epochs, best epoch,
    development accuracies). The history is data from the file: anything malformed in it is left out, not
    trusted."""
    c, path, params = checkpoint.model.config, checkpoint.path, checkpoint.model.params
    num_params = sum(int(p.size) for p in params.values())
    stored = ", ".join(sorted({str(v.get("dtype")) for v in (checkpoint.metadata.get("params") or {}).values()
                               if isinstance(v, dict)})) or ", ".join(sorted({str(p.dtype) for p in params.values()}))
    size = path.stat().st_size if path.is_file() else 0
    lines = [f"file: {path} ({size:,} bytes, rnnlm {checkpoint.metadata.get('rnnlm_version', '?')})",
             f"kind: {TREE_KIND}: {KIND_NAMES[TREE_KIND]}",
             f"sizes: vocabulary {c.vocab_size}, embedding {c.embed_size}, hidden {c.hidden_size}, {c.num_classes} "
             f"classes (sentiment 0-4); {num_params:,} parameters "
             f"({', '.join(f'{k} {tuple(v.shape)}' for k, v in params.items())}), stored as {stored}"]
    lines += _vocabulary_lines(checkpoint.vocabulary, words)
    return lines + _tree_training_lines(checkpoint)


def _number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _tree_training_lines(checkpoint):
    training, t = checkpoint.training, checkpoint.train_config
    history = training.get("history") if isinstance(training, dict) else None
    history = [r for r in history if isinstance(r, dict) and _number(r.get("epoch")) and _number(r.get("train_loss"))] \
        if isinstance(history, list) else []
    if not history:
        return ["training: none recorded (an untrained model, or one trained outside rnnlm trees train)"]
    setup = "" if t is None else (f"; optimizer {t.optimizer}, learning rate {t.learning_rate:g}, batch {t.batch_size} "
                                  f"trees, l2 {t.l2:g}, clip {t.clip}, word dropout {t.word_dropout:g}, seed {t.seed}")
    n = len(history)
    best = training.get("best_epoch")
    kept = f"; the file holds epoch {best}" if _number(best) else ""
    lines = [f"training: {counted(n, 'epoch')}{setup}{kept}; resumable: "
             f"{'yes' if checkpoint.metadata.get('resumable') else 'no (no optimizer state)'}"]
    for record in history[:1] + history[1:][-1:]:  # the first epoch and the last
        lines.append(f"  epoch {record['epoch']}: train loss {record['train_loss']:.4f} nats/node" + _dev(record))
    scored = [r for r in history if _dev(r)]
    if scored:
        top = max(scored, key=lambda r: r["dev"]["fine"])
        lines.append(f"  best development: epoch {top['epoch']}" + _dev(top))
    seconds = sum(r["seconds"] for r in history if _number(r.get("seconds")))
    lines.append(f"  time: {seconds:.1f} s over {counted(n, 'epoch')}")
    return lines


def _dev(record):
    dev = record.get("dev")
    if not isinstance(dev, dict) or not all(_number(dev.get(k)) for k in ("fine", "binary", "all_phrases")):
        return ""
    return (f", development fine-grained {dev['fine']:.1%}, binary {dev['binary']:.1%}, "
            f"all phrases {dev['all_phrases']:.1%}")
