"""`rnnlm trees train | evaluate | predict`: the Tree-LSTM sentiment model from the command line.
"""

import sys
from dataclasses import fields
from pathlib import Path

import numpy as np

from rnnlm.cli.common import EXIT_INTERRUPTED, OUT_RULES, PROG, Formatter, default_note
from rnnlm.cli.examples import TREES_EXAMPLES
from rnnlm.cli.progress import TrainingProgress
from rnnlm.config import OPTIMIZERS
from rnnlm.errors import DataError
from rnnlm.io import tree_checkpoint


SENTIMENT_NAMES = ("very negative", "negative", "neutral", "positive", "very positive")


def _trees_read(path):
    from rnnlm.data.trees import read_trees
    return read_trees(path)


def _scores_text(scores):
    return (f"fine-grained {scores.fine:.1%} ({scores.sentences} sentences), binary {scores.binary:.1%} "
            f"({scores.binary_sentences} non-neutral), all phrases {scores.all_phrases:.1%} "
            f"({scores.phrases:,} nodes), loss {scores.loss:.4f} nats/node")


def cmd_trees_train(args):
    from rnnlm.models.tree_lstm import TreeLSTM, TreeLSTMConfig
    from rnnlm.training.trees import TreeTrainConfig, encode_all, train_trees
    from rnnlm.data.trees import build_vocabulary
    given = {f.name: getattr(args, f.name) for f in fields(TreeTrainConfig) if getattr(args, f.name, None) is not None}
    if args.no_clip:
        given["clip"] = None
    config = TreeTrainConfig(**given)
    shape = {f.name: getattr(args, f.name) for f in fields(TreeLSTMConfig)
             if f.name != "vocab_size" and getattr(args, f.name, None) is not None}
    TreeLSTMConfig(**shape)  # refuse impossible sizes before reading any data
    trees = _trees_read(args.train)
    dev = _trees_read(args.dev) if args.dev else []
    vocabulary = build_vocabulary(trees, config.vocabulary_size)
    model = TreeLSTM(TreeLSTMConfig(vocab_size=len(vocabulary), **shape), seed=config.seed, dtype=np.float32,
                     method=args.method)
    encoded, dev_encoded = encode_all(trees, vocabulary), encode_all(dev, vocabulary)
    nodes = sum(t.num_nodes for t in encoded)
    print(f"Read {len(trees):,} training trees ({nodes:,} labelled nodes) from {args.train}"
          + (f" and {len(dev):,} development trees from {args.dev}" if dev else "; no --dev: the last epoch is kept"))
    print(f"Vocabulary: {len(vocabulary):,} tokens (UNKNOWN_TOKEN included) of {vocabulary.unique_tokens:,} "
          "distinct training tokens.")
    c = model.config
    num_params = sum(int(p.size) for p in model.params.values())
    print(f"Model: Tree-LSTM, embedding {c.embed_size}, hidden {c.hidden_size}, {c.num_classes} classes, "
          f"{num_params:,} parameters, run by {args.method}; optimizer {config.optimizer}, learning rate "
          f"{config.learning_rate:g}, batch {config.batch_size}, l2 {config.l2:g}, clip {config.clip}, "
          f"word dropout {config.word_dropout:g}"
          + (f", time limit {config.time_limit:g} s" if config.time_limit else "") + ".")
    best = {"epoch": None, "fine": -1.0, "params": None}
    history = []

    def on_epoch(event):
        r = event.record
        history.append({"epoch": r.epoch, "train_loss": r.train_loss, "seconds": r.seconds, "complete": r.complete,
                        "dev": None if r.dev is None else r.dev.to_dict()})
        improved = r.dev is None or r.dev.fine > best["fine"]
        if improved:
            best.update(epoch=r.epoch, fine=-1.0 if r.dev is None else r.dev.fine,
                        params={k: v.copy() for k, v in model.params.items()})
        kept = model.params
        model.params = best["params"]
        try:
            tree_checkpoint.save_tree_model(args.out, model, vocabulary, train_config=config,
                                 training={"epoch": r.epoch, "best_epoch": best["epoch"], "history": history})
        finally:
            model.params = kept
        saved.append(r.epoch)
        dev_text = "" if r.dev is None else f"; dev {_scores_text(r.dev)}"
        cut = "" if r.complete else " (cut short by the time limit)"
        note = f"saved {args.out}" if improved else f"{args.out} keeps epoch {best['epoch']}"
        print(f"epoch {r.epoch}/{event.epochs}{cut}: train loss {r.train_loss:.4f} nats/node, "
              f"{r.trees_per_second:,.0f} trees/s, {r.seconds:.1f} s{dev_text}; {note}", flush=True)

    saved = []
    progress = TrainingProgress(not args.no_progress, on_epoch)
    try:
        state = train_trees(model, encoded, config, dev_trees=dev_encoded, callback=progress)
    except KeyboardInterrupt:
        progress.close()
        kept = (f"{args.out} holds the model of epoch {best['epoch']} (saved after epoch {saved[-1]})" if saved
                else (f"{args.out} is as it was" if Path(args.out).exists() else "nothing was saved"))
        print(f"{PROG}: interrupted during epoch {len(saved) + 1}; {kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        progress.close()
    which = "the best development fine-grained accuracy" if dev else "the last epoch"
    print(f"Done: {state.epoch} epoch{'' if state.epoch == 1 else 's'}; {args.out} holds epoch {best['epoch']} ({which}).")
    return 0


def cmd_trees_evaluate(args):
    from rnnlm.training.trees import encode_all, evaluate
    checkpoint = tree_checkpoint.load_tree_model(args.model)
    trees = _trees_read(args.trees)
    encoded = encode_all(trees, checkpoint.vocabulary)
    scores = evaluate(checkpoint.model, encoded)
    unknown = sum(int(np.sum(t.word == checkpoint.vocabulary.unknown_index)) for t in encoded)
    leaves = sum(int(np.sum(t.left < 0)) for t in encoded)
    print(f"{args.trees}: {len(trees):,} trees, {leaves:,} words ({unknown / max(leaves, 1):.1%} UNKNOWN_TOKEN)")
    print(f"fine-grained accuracy (5 classes, sentences): {scores.fine:.1%}")
    print(f"binary accuracy (non-neutral sentences, {scores.binary_sentences}): {scores.binary:.1%}")
    print(f"all-phrase accuracy (5 classes, {scores.phrases:,} nodes): {scores.all_phrases:.1%}")
    print(f"cross-entropy: {scores.loss:.4f} nats per node")
    return 0


def _labelled(tree, probs):
    """The tree with each node's predicted label, as brackets; probs in post-order."""
    predicted = {id(node): int(p.argmax()) for node, p in zip(tree.postorder(), probs)}
    return tree.bracketed(lambda node: predicted[id(node)])


def cmd_trees_predict(args):
    from rnnlm.data.trees import encode_tree, tree_from_text
    from rnnlm.training.trees import binary_prediction
    checkpoint = tree_checkpoint.load_tree_model(args.model)
    for text in args.text:
        if not text.strip():
            raise DataError("empty text; give a sentence or a bracketed tree")
        tree = tree_from_text(text, args.binarize)
        encoded = encode_tree(tree, checkpoint.vocabulary)
        unknown = [w for w in tree.leaves() if w not in checkpoint.vocabulary.word_to_index]
        if unknown:
            print(f"{PROG}: note: not in the model's vocabulary, read as UNKNOWN_TOKEN: "
                  f"{', '.join(repr(w) for w in dict.fromkeys(unknown))}", file=sys.stderr)
        probs = checkpoint.model.node_probabilities([encoded])[0]
        root = probs[-1]
        label = int(root.argmax())
        polarity = "positive" if binary_prediction(root) else "negative"
        print(f"{label} ({SENTIMENT_NAMES[label]}); binary: {polarity}; p = "
              + " ".join(f"{p:.3f}" for p in root))
        if args.tree:
            print(_labelled(tree, probs))
    return 0


def add_trees_parser(commands):
    """`rnnlm trees`: train, evaluate and predict with a Tree-LSTM."""
    from rnnlm.models.tree_lstm import METHODS, TreeLSTMConfig
    from rnnlm.training.trees import TreeTrainConfig
    trees = commands.add_parser("trees", help="Tree-LSTM sentiment over parse trees (SST): train, evaluate, predict",
                                description="A Tree-LSTM sentiment classifier over binary parse trees with a "
                                            "label 0-4 on every node (the Stanford Sentiment Treebank).",
                                epilog=TREES_EXAMPLES, formatter_class=Formatter)
    sub = trees.add_subparsers(dest="trees_command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train on labelled trees", epilog=TREES_EXAMPLES, formatter_class=Formatter,
                       description="Train a Tree-LSTM on labelled trees. After each epoch the model is scored on "
                                   "--dev, and --out is rewritten atomically with the epoch of best development "
                                   "fine-grained accuracy (the last epoch without --dev). Ctrl-C keeps what was "
                                   "saved and exits 130.")
    p.add_argument("train", metavar="TRAIN", help="training trees, one bracketed tree per line")
    p.add_argument("--dev", metavar="DEV", help="development trees, scored after every epoch")
    p.add_argument("--out", required=True, metavar="MODEL.npz", help="model file" + OUT_RULES)
    p.add_argument("--vocab-size", dest="vocabulary_size", type=int, metavar="N",
                   help="tokens kept, UNKNOWN_TOKEN included" + default_note(TreeTrainConfig, "vocabulary_size"))
    p.add_argument("--embed-size", dest="embed_size", type=int, metavar="E",
                   help="word embedding width" + default_note(TreeLSTMConfig, "embed_size"))
    p.add_argument("--hidden", dest="hidden_size", type=int, metavar="H",
                   help="Tree-LSTM units" + default_note(TreeLSTMConfig, "hidden_size"))
    p.add_argument("--epochs", type=int, metavar="N", help="epochs" + default_note(TreeTrainConfig, "epochs"))
    p.add_argument("--batch-size", type=int, metavar="N", help="trees per batch" + default_note(TreeTrainConfig, "batch_size"))
    p.add_argument("--learning-rate", type=float, metavar="LR",
                   help="learning rate" + default_note(TreeTrainConfig, "learning_rate"))
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="update rule" + default_note(TreeTrainConfig, "optimizer"))
    p.add_argument("--l2", type=float, metavar="LAMBDA",
                   help="L2 penalty on the weight matrices" + default_note(TreeTrainConfig, "l2"))
    p.add_argument("--clip", type=float, metavar="NORM", help="global gradient-norm limit" + default_note(TreeTrainConfig, "clip"))
    p.add_argument("--no-clip", action="store_true", help="no gradient clipping")
    p.add_argument("--word-dropout", type=float, metavar="P",
                   help="fraction of a batch's words whose embedding is zeroed" + default_note(TreeTrainConfig, "word_dropout"))
    p.add_argument("--seed", type=int, help="seed for initialisation and batch order" + default_note(TreeTrainConfig, "seed"))
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="stop after this many seconds of training (the epoch running then is scored and kept)")
    p.add_argument("--method", choices=METHODS, default=METHODS[0],
                   help=f"how the trees are batched; all give the same numbers (default: {METHODS[0]})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_trees_train)

    p = sub.add_parser("evaluate", help="accuracies of a tree model on labelled trees", epilog=TREES_EXAMPLES,
                       formatter_class=Formatter,
                       description="Fine-grained (5-class) and binary (labels 0-1 vs 3-4, neutral sentences "
                                   "dropped) sentence accuracy, all-phrase accuracy and cross-entropy per node.")
    p.add_argument("trees", metavar="TREES", help="labelled trees, one bracketed tree per line")
    p.add_argument("--model", required=True, metavar="MODEL.npz", help="a model from 'rnnlm trees train'")
    p.set_defaults(run=cmd_trees_evaluate)

    p = sub.add_parser("predict", help="sentiment of sentences or bracketed trees", epilog=TREES_EXAMPLES,
                       formatter_class=Formatter,
                       description="Prints the predicted label 0-4, the binary polarity and the five "
                                   "probabilities per input. No parser is needed: a TEXT starting with '(' is "
                                   "read as a bracketed tree (labels optional: '((not bad) .)'); any other text "
                                   "is split into Treebank tokens and composed by a balanced binary tree "
                                   "(--binarize right: (a (b (c d)))). SST tokens are cased, as written; words the model does not know are read as UNKNOWN_TOKEN (a note on stderr lists them).")
    p.add_argument("text", nargs="+", metavar="TEXT", help="a sentence, or a bracketed tree")
    p.add_argument("--model", required=True, metavar="MODEL.npz", help="a model from 'rnnlm trees train'")
    p.add_argument("--binarize", choices=("balanced", "right"), default="balanced",
                   help="tree shape for plain text (default: balanced)")
    p.add_argument("--tree", action="store_true", help="also print the tree with every node's predicted label")
    p.set_defaults(run=cmd_trees_predict)
