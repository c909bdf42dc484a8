"""`rnnlm generate`: sentences from a sentence model, continuous text from a stream model.
"""

import sys

import numpy as np

from rnnlm.cli.common import PROG, default_note, load_checkpoint, printable, reads_tokens
from rnnlm.config import FORMATS, UNKNOWN_TOKEN
from rnnlm.data.text import token_stream, tokenize_text, tokenize_tokens_line
from rnnlm.errors import ConfigError
from rnnlm.data.detokenize import detokenize, detokenize_stream
from rnnlm.models.generate import GenerateConfig, generate_sentence, is_greedy, sentence_length


def _prefix_tokens(args, checkpoint, stream):
    """--prefix as the model's tokens (a stream model keeps its line breaks), with one note on stderr
    naming the words the vocabulary lacks: they condition the model as UNKNOWN_TOKEN."""
    if not args.prefix:
        return []
    tokens_format = reads_tokens(args, checkpoint)
    if tokens_format:  # a stream's prefix is the text so far: its last line is not ended
        prefix = token_stream(args.prefix)[:-1] if stream else tokenize_tokens_line(args.prefix)
    else:
        prefix = tokenize_text(args.prefix, checkpoint.level, checkpoint.data_config.link_placeholders,
                               line_breaks=stream)
    missing = checkpoint.vocabulary.unknown_tokens(prefix)
    if tokens_format:  # the prefix's <unk> asked for UNKNOWN_TOKEN: nothing to note
        missing = [t for t in missing if t != UNKNOWN_TOKEN]
    if missing:
        print(printable(f"{PROG}: note: not in the model's vocabulary, read as UNKNOWN_TOKEN: "
                        f"{', '.join(repr(t) for t in dict.fromkeys(missing))}"), file=sys.stderr)
    return prefix


def _generate_stream(args, checkpoint, config):
    """generate for a stream model: --length tokens of continuous text after --prefix."""
    from rnnlm.models.generate import generate_stream
    prefix = _prefix_tokens(args, checkpoint, stream=True)
    tokens = generate_stream(checkpoint.model, checkpoint.vocabulary, np.random.default_rng(args.seed),
                             config.length, config.temperature, prefix)
    text = "\n".join(printable(line) for line in
                     detokenize_stream(tokens, checkpoint.level, args.raw_tokens).split("\n"))
    print(text if text.endswith("\n") else text + "\n", end="", flush=True)
    return 0


def _generate_config(args, level="word"):
    """The GenerateConfig of the options given. Defaults follow what the user did set: a
    --max-length below the default min length lowers the min length with it (the user never
    asked for 7 words), and a character-level model gets char_max_length characters."""
    given = {k: v for k, v in {"num_sentences": args.n, "min_length": args.min_length, "max_length": args.max_length,
                               "temperature": args.temperature,
                               "length": args.length}.items() if v is not None}
    if level == "char" and "max_length" not in given:
        given["max_length"] = GenerateConfig.char_max_length
    if "min_length" not in given and "max_length" in given:
        given["min_length"] = min(GenerateConfig.min_length, given["max_length"])
    return GenerateConfig(**given)


def cmd_generate(args):
    config = _generate_config(args)  # bad options are refused before the model is read
    if args.seed is not None and args.seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {args.seed}")
    checkpoint = load_checkpoint(args.model)
    config = _generate_config(args, checkpoint.level)
    if checkpoint.data_config.stream:
        return _generate_stream(args, checkpoint, config)
    prefix = _prefix_tokens(args, checkpoint, stream=False)
    rng = np.random.default_rng(args.seed)
    noted = False
    for _ in range(config.num_sentences):
        tokens = generate_sentence(checkpoint.model, checkpoint.vocabulary, rng, config.min_length, config.max_length,
                                   config.temperature, prefix, config.max_attempts, checkpoint.level,
                                   mask_blocklist=not args.no_blocklist)
        if is_greedy(config.temperature) and sentence_length(tokens, checkpoint.level) < config.min_length and not noted:
            print(f"{PROG}: note: at temperature {config.temperature:.3g} every draw is the same, so a sentence shorter than "
                  f"--min-length {config.min_length} is printed as it is (raise --temperature for longer ones)",
                  file=sys.stderr)
            noted = True
        print(printable(detokenize(tokens, checkpoint.level, args.raw_tokens)), flush=True)
    return 0


def add_generate_parser(command):
    """`rnnlm generate`: sentences (or a stream model's text) from a model."""
    p = command("generate", "generate sentences, one per line")
    p.add_argument("--model", metavar="MODEL.npz", help="model file (default: the bundled Reddit model)")
    p.add_argument("-n", type=int, metavar="N", help="number of sentences" + default_note(GenerateConfig, "num_sentences"))
    p.add_argument("--min-length", type=int, metavar="N",
                   help="resample sentences of fewer than N words (punctuation does not count)"
                   + default_note(GenerateConfig, "min_length"))
    p.add_argument("--max-length", type=int, metavar="N",
                   help="end a sentence after N tokens, punctuation included, at most "
                   f"{GenerateConfig.max_tokens:,}" + default_note(GenerateConfig, "max_length"))
    p.add_argument("--temperature", type=float, metavar="T",
                   help=f"0 (or below {GenerateConfig.greedy_below:g}) is greedy, below 1 is safer, above 1 wilder"
                   + default_note(GenerateConfig, "temperature"))
    p.add_argument("--prefix", metavar="TEXT", help="start every sentence with these words (characters at char level); "
                   "for a stream model, the text that primes the state")
    p.add_argument("--format", choices=FORMATS, default="auto",
                   help="how --prefix is tokenized: tokens = split at white space, case kept, <unk> is "
                        "UNKNOWN_TOKEN; auto (default) = as the model was trained (tokens for a --format tokens "
                        "model, else lowercased Treebank words)")
    p.add_argument("--no-blocklist", action="store_true",
                   help="also draw the words of rnnlm's classroom blocklist of slurs, explicit terms and strong profanity "
                        "(masked by default at word level; see rnnlm/data/blocklist.py)")
    p.add_argument("--raw-tokens", action="store_true",
                   help="print the link placeholders as tokens (URL_TOKEN, SUBREDDIT_TOKEN, USER_TOKEN) "
                        "instead of <link>, r/<subreddit>, u/<user>")
    p.add_argument("--length", type=int, metavar="N",
                   help="for a stream model: tokens (characters at char level) of continuous text, newlines included, "
                   f"at most {GenerateConfig.max_tokens:,}" + default_note(GenerateConfig, "length"))
    p.add_argument("--seed", type=int, help="the same seed gives the same sentences (default: random)")
    p.set_defaults(run=cmd_generate)
