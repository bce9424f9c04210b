"""`rnnvanish sample CHECKPOINT_OR_RUN`: generate text from a trained language model.

The text goes to stdout: the prime (when one is given) followed by the generated symbols.
A run folder means its best.npz (lowest validation loss), or checkpoint.npz with --last or
when there is no best.npz.

Prime symbols outside the model's vocabulary follow --unknown:
    skip     (default) drop them, with a warning on stderr naming them
    replace  map them to the unknown token (or, for a character vocabulary without one, to
             its most frequent character), with a warning naming them
    error    stop with exit status 2
"""
from ..choices import BACKENDS
from ._args import nonneg_float, nonneg_int, positive_int

UNKNOWN_POLICIES = ("skip", "replace", "error")


def add_arguments(p):
    p.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN", help="a checkpoint .npz file or a run folder")
    g = p.add_argument_group("generation")
    g.add_argument("--prime", metavar="TEXT", default=None,
                   help="text to start from (default: a newline, not echoed)")
    g.add_argument("--length", type=positive_int, default=300, metavar="N", help="symbols to generate (default: 300)")
    g.add_argument("--temperature", type=nonneg_float, default=0.8, metavar="T",
                   help="divide the logits by T before sampling; 0 = always the most likely symbol (default: 0.8)")
    g.add_argument("--seed", type=nonneg_int, default=0, help="random seed of the draws (default: 0)")
    g.add_argument("--unknown", choices=UNKNOWN_POLICIES, default="skip",
                   help="what to do with prime symbols outside the vocabulary (default: skip, with a warning)")
    g = p.add_argument_group("model")
    g.add_argument("--last", action="store_true",
                   help="in a run folder, use checkpoint.npz (the latest) instead of best.npz")
    g.add_argument("--backend", choices=BACKENDS, default=None,
                   help="kernels (default: $RNNVANISH_BACKEND or numba)")


def _shown(symbols):
    return ", ".join(repr(s) for s in symbols)


def encode_prime(vocab, prime: str, policy: str, warn):
    """Token ids of the prime under the unknown-symbol policy; `warn(line)` reports what was dropped or replaced."""
    from ..data import tokenize
    from ..errors import RnnvanishError

    symbols = tokenize(prime, vocab.level)
    unknown = list(dict.fromkeys(s for s in symbols if s not in vocab))
    what = "characters" if vocab.level == "char" else "tokens"
    if unknown and policy == "error":
        raise RnnvanishError(f"the prime holds {what} the model never saw: {_shown(unknown[:10])}; "
                             "use --unknown skip or --unknown replace")
    ids = vocab.encode(prime, unknown=policy if unknown else "error")
    if unknown and policy == "skip":
        warn(f"dropped {what} not in the vocabulary from the prime: {_shown(unknown[:10])}"
             + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""))
    if unknown and policy == "replace":
        warn(f"replaced {what} not in the vocabulary by {vocab.tokens[vocab.replacement_id]!r}: {_shown(unknown[:10])}")
    if ids.size == 0:
        raise RnnvanishError(f"no symbol of the prime {prime!r} is in the vocabulary; give another --prime")
    return ids


def run(args):
    import sys

    import numpy as np

    from ..training.checkpoint import find_checkpoint, load_checkpoint, model_from_checkpoint

    def warn(line):
        sys.stderr.write(f"rnnvanish sample: warning: {line}\n")

    ckpt = load_checkpoint(find_checkpoint(args.checkpoint, prefer_best=not args.last))
    model, vocab = model_from_checkpoint(ckpt, backend=args.backend)
    if args.prime is None or args.prime == "":
        default = "\n" if "\n" in vocab else vocab.tokens[vocab.replacement_id]
        prime_ids, echo = vocab.encode(default), ""
    else:
        prime_ids, echo = encode_prime(vocab, args.prime, args.unknown, warn), None
    ids = model.sample(prime_ids, args.length, args.temperature, np.random.default_rng(args.seed))
    if echo is None:
        echo = vocab.decode(prime_ids)
    text = echo + vocab.decode(ids)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
    return 0
