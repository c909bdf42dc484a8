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
from rnnlm.cli.outputs import last_path
from rnnlm.errors import ConfigError, DataError
from rnnlm.io import tree_checkpoint
from rnnlm.wording import counted


SENTIMENT_NAMES = ("very negative", "negative", "neutral", "positive", "very positive")


def _trees_read(path):
    from rnnlm.data.trees import read_trees
    return read_trees(path)


def _scores_text(scores):
    return (f"fine-grained {scores.fine:.1%} ({scores.sentences} sentences), binary {scores.binary:.1%} "
            f"({scores.binary_sentences} non-neutral), all phrases {scores.all_phrases:.1%} "
            f"({scores.phrases:,} nodes), loss {scores.loss:.4f} nats/node")


# options that decide the model's shape, its vocabulary, the optimizer's stored state or the seeded
# batch order and dropout: --resume keeps the run's (field -> the option, for the message)
FIXED_ON_RESUME = {"vocabulary_size": "--vocab-size", "embed_size": "--embed-size", "hidden_size": "--hidden",
                   "optimizer": "--optimizer", "seed": "--seed"}


def _given_options(args):
    """({TreeTrainConfig field: value}, {TreeLSTMConfig field: value}) of the options actually given."""
    from rnnlm.models.tree_lstm import TreeLSTMConfig
    from rnnlm.training.trees import TreeTrainConfig
    given = {f.name: getattr(args, f.name) for f in fields(TreeTrainConfig) if getattr(args, f.name, None) is not None}
    if args.no_clip:
        given["clip"] = None
    shape = {f.name: getattr(args, f.name) for f in fields(TreeLSTMConfig)
             if f.name != "vocab_size" and getattr(args, f.name, None) is not None}
    return given, shape


def _new_run(args, config, shape, trees):
    """(model, vocabulary, state) of a new run."""
    from rnnlm.data.trees import build_vocabulary
    from rnnlm.models.tree_lstm import TreeLSTM, TreeLSTMConfig
    from rnnlm.training.trees import TreeTrainingState
    vocabulary = build_vocabulary(trees, config.vocabulary_size)
    model = TreeLSTM(TreeLSTMConfig(vocab_size=len(vocabulary), **shape), seed=config.seed, dtype=np.float32,
                     method=args.method)
    return model, vocabulary, TreeTrainingState()


def _resumed_run(args, given, shape):
    """(checkpoint, config) of a resumed run: --resume's file (or whichever of --out and its .last file got
    further) with the training options given now on top; FIXED_ON_RESUME options may not change."""
    from dataclasses import replace
    from rnnlm.training import resume
    load = tree_checkpoint.load_tree_model
    checkpoint = load(args.resume) if args.resume is not True else resume.resume_source(args.out, last_path(args.out), load)
    resume.require_training_state(checkpoint.path, checkpoint.state, checkpoint.metadata)
    stored = {**checkpoint.train_config.to_dict(), **checkpoint.model.config.to_dict()}
    for name, option in FIXED_ON_RESUME.items():
        value = {**given, **shape}.get(name)
        if value is not None and value != stored[name]:
            raise ConfigError(f"{option} cannot change on --resume: {checkpoint.path} was trained with {option} "
                              f"{stored[name]} (it decides the model or the run); drop {option}, or train a new model")
    config = replace(checkpoint.train_config, **given)
    if "learning_rate" in given:  # a rate given now is used from here on
        checkpoint.state.optimizer.learning_rate = config.learning_rate
    checkpoint.model.method = args.method
    return checkpoint, config


def _best_params(args, checkpoint):
    """The kept epoch's parameters when resuming: the resumed model's own, or --out's."""
    state = checkpoint.state
    if state.best_epoch is None or state.best_epoch == state.epoch:
        return {k: v.copy() for k, v in checkpoint.model.params.items()} if state.best_epoch else None
    out = tree_checkpoint.load_tree_model(args.out) if Path(args.out).exists() else None
    if out is None or out.training.get("best_epoch") != state.best_epoch:
        raise ConfigError(f"{args.out} does not hold epoch {state.best_epoch}, the best one of the run "
                          f"{checkpoint.path} continues; resume with the --out it was trained with")
    return out.model.params


def _save_epoch(args, model, vocabulary, config, state, best_params):
    """After an epoch: --out gets the kept epoch's parameters (resumable when that is this epoch); with --dev,
    its .last file gets this epoch's, resumable."""
    training = state.to_dict()
    if args.dev:
        tree_checkpoint.save_tree_model(last_path(args.out), model, vocabulary, train_config=config,
                                        training=training, optimizer=state.optimizer)
    kept = model.params
    model.params = best_params
    try:
        tree_checkpoint.save_tree_model(args.out, model, vocabulary, train_config=config, training=training,
                                        optimizer=state.optimizer if state.best.holds(state.epoch) else None)
    finally:
        model.params = kept


def _describe(args, model, config, trees, encoded, dev, vocabulary):
    nodes = sum(t.num_nodes for t in encoded)
    print(f"Read {len(trees):,} training trees ({nodes:,} labelled nodes) from {args.train}"
          + (f" and {len(dev):,} development trees from {args.dev}" if dev else "; no --dev: the last epoch is kept"))
    distinct = getattr(vocabulary, "unique_tokens", None)  # a vocabulary read from a model file does not know it
    print(f"Vocabulary: {len(vocabulary):,} tokens (UNKNOWN_TOKEN included)"
          + (f" of {distinct:,} distinct training tokens." if distinct is not None else ", the resumed model's."))
    c = model.config
    num_params = sum(int(p.size) for p in model.params.values())
    print(f"Model: Tree-LSTM, embedding {c.embed_size}, hidden {c.hidden_size}, {c.num_classes} classes, "
          f"{num_params:,} parameters, run by {args.method}; optimizer {config.optimizer}, learning rate "
          f"{config.learning_rate:g}, batch {config.batch_size}, l2 {config.l2:g}, clip {config.clip}, "
          f"word dropout {config.word_dropout:g}"
          + (f", time limit {config.time_limit:g} s" if config.time_limit else "") + ".")


def cmd_trees_train(args):
    from rnnlm.training import resume
    from rnnlm.training.trees import encode_all, train_trees, tree_fingerprint
    given, shape = _given_options(args)
    checkpoint, config = _resumed_run(args, given, shape) if args.resume else (None, None)
    if checkpoint is None:
        from rnnlm.models.tree_lstm import TreeLSTMConfig
        from rnnlm.training.trees import TreeTrainConfig
        config = TreeTrainConfig(**given)
        TreeLSTMConfig(**shape)  # refuse impossible sizes before reading any data
    trees = _trees_read(args.train)
    dev = _trees_read(args.dev) if args.dev else []
    if checkpoint is None:
        model, vocabulary, state = _new_run(args, config, shape, trees)
        best_params = None  # the epoch of best dev fine-grained accuracy (without --dev: the last)
    else:
        model, vocabulary, state = checkpoint.model, checkpoint.vocabulary, checkpoint.state
        best_params = _best_params(args, checkpoint)
    encoded, dev_encoded = encode_all(trees, vocabulary), encode_all(dev, vocabulary)
    fingerprint = tree_fingerprint(encoded)
    if checkpoint is not None:
        resume.refuse_other_corpus(checkpoint.path, args.train, state.data, fingerprint)
        print(f"Resuming {checkpoint.path} after epoch {state.epoch} (kept: epoch {state.best_epoch}).")
    state.data = {**state.data, "fingerprint": fingerprint}
    _describe(args, model, config, trees, encoded, dev, vocabulary)

    def on_epoch(event):
        nonlocal best_params
        r, st = event.record, event.state
        improved = st.best.holds(r.epoch)
        if improved:  # a copy: training goes on updating model.params in place
            best_params = {k: v.copy() for k, v in model.params.items()}
        # --out is rewritten every epoch (its history grows) but always holds the best epoch's parameters
        _save_epoch(args, model, vocabulary, config, st, best_params)
        saved.append(r.epoch)
        dev_text = "" if r.dev is None else f"; dev {_scores_text(r.dev)}"
        cut = "" if r.complete else " (cut short by the time limit)"
        note = f"saved {args.out}" if improved else f"{args.out} keeps epoch {st.best_epoch}"
        print(f"epoch {r.epoch}/{event.epochs}{cut}: train loss {r.train_loss:.4f} nats/node, "
              f"{r.trees_per_second:,.0f} trees/s, {r.seconds:.1f} s{dev_text}; {note}", flush=True)

    saved, first = [], state.epoch + 1
    progress = TrainingProgress(not args.no_progress, on_epoch)
    try:
        state = train_trees(model, encoded, config, dev_trees=dev_encoded, callback=progress, state=state)
    except KeyboardInterrupt:
        progress.close()
        kept = (f"{args.out} holds the model of epoch {state.best_epoch} (saved after epoch {saved[-1]})" if saved
                else (f"{args.out} is as it was" if Path(args.out).exists() else "nothing was saved"))
        print(f"{PROG}: interrupted during epoch {first + len(saved)}; {kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        progress.close()
    which = "the best development fine-grained accuracy" if dev else "the last epoch"
    print(f"Done: {counted(state.epoch, 'epoch')}; {args.out} holds epoch {state.best_epoch} ({which}).")
    return 0


def cmd_trees_evaluate(args):
    from rnnlm.training.trees import encode_all, evaluate
    checkpoint = tree_checkpoint.load_tree_model(args.model)
    trees = _trees_read(args.trees)
    encoded = encode_all(trees, checkpoint.vocabulary)
    scores = evaluate(checkpoint.model, encoded)
    unknown = sum(checkpoint.vocabulary.unknown_count(t.word[t.left < 0]) for t in encoded)
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
        unknown = checkpoint.vocabulary.unknown_tokens(tree.leaves())
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
    p.add_argument("--resume", nargs="?", const=True, metavar="MODEL.npz",
                   help="continue training from --out or its .last file, whichever got further (or from "
                        "MODEL.npz) up to --epochs in total")
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
