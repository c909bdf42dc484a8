"""The examples each command's --help ends with (docs/cli.md shows the same commands).
"""




EXAMPLES = {
    "train": """example:
  rnnlm train data/reddit-comments-2015-08.csv --out model.npz --vocab-size 8000 --hidden 100 --epochs 10
  rnnlm train poems.txt --level char --cell gru --optimizer adam --learning-rate 0.01 --out poems.npz
  rnnlm train data/reddit-comments-2015-08.csv --out model.npz --epochs 20 --resume   # continue to 20 epochs
  rnnlm train play.txt --stream --level char --cell lstm --hidden 256 --time-limit 180 --out play.npz

Prints the tutorial's data report, a progress bar with the loss and tokens/s, and each epoch's
train/validation loss and perplexity. The learning rate falls when the smoothed loss stops
improving (never below --min-lr); the epoch line says when. With a validation set, --out keeps
the best validation epoch and MODEL.last.npz the last one; files are written atomically and never
hold NaN. Ctrl-C saves the last finished epoch and exits 130; --resume continues exactly where it
stopped (refusing options that would change the data or the optimizer).""",
    "evaluate": """example:
  rnnlm evaluate --model model.npz data/test-comments.csv

Tokenizes the corpus with the model's own vocabulary and prints the cross-entropy per token,
pooled over every predicted token (SENTENCE_END included), and a line 'perplexity: <number>'.
A stream model (trained with --stream) reads the file as one stream and prints 'loss: X' and
'perplexity: Y'.""",
    "score": """example:
  rnnlm score candidates.txt                      # one sentence per line, bundled Reddit model
  printf 'i like this .\\nthis like i .\\n' | rnnlm score --sort -
  rnnlm score --model ptb.npz --format tokens --sort --by logprob test-sentences.txt

Prints a header line 'log_prob<TAB>perplexity<TAB>sentence', then one line per sentence: the
natural-log probability of the whole sentence (SENTENCE_START, its tokens, SENTENCE_END; a stream
model reads a line break first and predicts the one ending it), its per-token perplexity
exp(-log_prob / (tokens + 1)) (what evaluate prints for a file of that one sentence) and the
sentence. --sort ranks them best first: lowest per-token perplexity first, or with --by logprob
highest total log-probability first. Blank lines are skipped.""",
    "generate": """example:
  rnnlm generate                                  # 10 sentences from the bundled Reddit model
  rnnlm generate --model model.npz -n 3 --temperature 0.7 --prefix "i think" --seed 1

One sentence per line. UNKNOWN_TOKEN is never produced; sentences of fewer than --min-length words
are drawn again (at most 100 times, then the longest draw is printed); --max-length ends a sentence;
--temperature 0 always picks the most probable token. Prefix words the model does not know are
read as UNKNOWN_TOKEN but printed as you wrote them.
A stream model (trained with --stream) writes --length tokens of continuous text instead, line
breaks included, after --prefix:  rnnlm generate --model play.npz --length 500 --prefix "ROMEO:" """,
    "gradcheck": """example:
  rnnlm gradcheck

Compares BPTT's gradients with central differences for every entry of U, V and W of a small
RNNNumpy (vocabulary 100, hidden 10, full BPTT). Exit code 0 when every entry passes, 1 when not.""",
    "export": """example:
  rnnlm export model.npz --out small.npz
  rnnlm export model.npz --out small.npz --dtype float16
  rnnlm export model.npz --format safetensors --out model.safetensors

Writes a copy without the optimizer's state (Adam keeps two arrays per parameter), for
sharing or bundling. The copy generates and evaluates like the original, and keeps its
loss history, but --resume refuses it because the optimizer state is gone.
--format safetensors writes the parameters under PyTorch's state-dict names (nn.Embedding,
nn.RNN/GRU/LSTM, nn.Linear; the tutorial's U/V/W model as an RNN with an identity input map),
with the vocabulary and configuration in the file's metadata: see docs/scaling.md. Models
PyTorch has no module for (Jordan, peephole or coupled LSTM) are refused.""",
    "import": """example:
  rnnlm import trained.safetensors --out model.npz
  rnnlm generate --model model.npz

Rebuilds an rnnlm model file, vocabulary included, from a safetensors file written by
'rnnlm export --format safetensors' or by examples/train_ddp.py (weights trained in PyTorch).
The new file has no training state (train it further with PyTorch, or train anew).""",
    "download": """examples:
  rnnlm download reddit --dir data/
  rnnlm download sst                 # data/sst/train.txt, dev.txt, test.txt
  rnnlm trees train data/sst/train.txt --dev data/sst/dev.txt --out trees.npz

reddit fetches the tutorial's Reddit comments (about 8 MB) from GitHub with a progress bar, and
keeps the file only if its git blob SHA-1 (what `git hash-object` prints) is the published one.
sst fetches the Stanford Sentiment Treebank zip from nlp.stanford.edu and extracts its three
tree files, each kept only if its git blob SHA-1 is the recorded one (the zip itself is not
checksummed). Offline, it says so and what to do instead.""",
    "course": """example:
  rnnlm course build            # notebooks/solutions/NN-name.ipynb -> notebooks/NN-name.ipynb
  rnnlm course build --check    # exit 1 if the student edition is out of date

The student edition is the solution edition with every region between '### BEGIN SOLUTION' and
'### END SOLUTION' replaced by 'raise NotImplementedError()', outputs cleared. Also runnable as
'python -m rnnlm.course build'. Deterministic: building twice changes nothing.""",
    "check": """example:
  rnnlm check notebooks/03-bptt-and-gradient-checking.ipynb

Runs the notebook top to bottom in a fresh Jupyter kernel (needs the course extra:
pip install -e ".[course]") and prints, for each exercise, 'passed' or the error its cell or
its check cell raised. The checks come from notebooks/solutions/, so editing a check does not
change the grade. A cell that kills the kernel (os._exit, a crash) or runs past --timeout fails
its exercise, and the exercises after it are reported as not run. A file that is not a
notebook (truncated, not JSON) is refused in one line. Exit code 0 when every exercise
passes, 1 when not.""",
    "info": """example:
  rnnlm info                      # the bundled model
  rnnlm info --model model.npz --words 20

Prints the model's kind (FastRNN, RNNNumpy or LanguageModel), its sizes and parameter count,
its level (word or char), its vocabulary with the most and least frequent words, and a summary
of its training history (first, last and best epochs).""",
}


TREES_EXAMPLES = """examples:
  rnnlm trees train ../shared/data/sst/train.txt --dev ../shared/data/sst/dev.txt --out sst.npz --time-limit 840
  rnnlm trees evaluate --model sst.npz ../shared/data/sst/test.txt
  rnnlm trees predict --model sst.npz "not a bad film at all"
  rnnlm trees predict --model sst.npz "((not (a (bad film))) (at all))"

A Tree-LSTM (Tai et al. 2015) over Stanford-Sentiment-Treebank-style trees: one bracketed tree per
line with a label 0-4 on every node, e.g. (3 (2 It) (4 (2 's) (3 lovely)))."""
