"""`rnnvanish train [CORPUS]`: a character- or word-level language model, trained with truncated BPTT.

Every flag defaults to None here, so that the settings a user gave can be told apart from the
defaults (rnnvanish.training.settings.LanguageConfig); that matters for --resume, which refuses to change the model
or the data of a run but lets the budget, the logging and the optimiser's step rules change.
Exit status: 0 done, 2 bad input (nothing written), 3 stopped by a non-finite loss or gradient
(the last good checkpoint is kept), 130 interrupted by Ctrl-C (a checkpoint is saved first).
"""
from ._args import (_default, add_budget_arguments, add_logging_arguments, add_model_arguments,
                    add_optimisation_arguments, add_run_folder_arguments, fraction_or_zero, nonneg_int, nonneg_float,
                    optional, positive_int)

DEFAULT_MAX_TIME = 120.0      # seconds: the budget when no --steps, --epochs or --max-time is given

EPILOG = ("The run folder holds config.json, metrics.csv (step, tokens, train_loss, val_loss, val_bits, val_ppl, "
          "grad_norm, grad_norm_clipped, clipped_frac, lr, tokens_per_s, elapsed, skipped: losses in nats per "
          "token, norms before/after clipping), checkpoint.npz, best.npz, samples.txt, traces/ and training.png. "
          "Exit status: 0 done; 2 bad input (nothing written); 3 stopped by a non-finite loss or gradient or by "
          "divergence (the last good checkpoint is kept); 130 Ctrl-C (checkpoint saved).")


def add_arguments(p):
    from ..training.settings import LM_FORGET_BIAS, LM_INIT_B, LanguageConfig as C

    p.epilog = EPILOG
    p.add_argument("corpus", nargs="?", metavar="CORPUS",
                   help="a UTF-8 text file, or a built-in corpus name (default: the offline built-in corpus)")
    g = p.add_argument_group("data")
    g.add_argument("--level", choices=("char", "word"), help="model characters or words" + _default(C, "level"))
    g.add_argument("--vocab-size", type=positive_int, metavar="N",
                   help="keep the N most frequent symbols (the rest become the unknown token)" + _default(C, "vocab_size"))
    g.add_argument("--min-count", type=positive_int, metavar="N",
                   help="drop symbols seen fewer than N times" + _default(C, "min_count"))
    g.add_argument("--val-frac", type=fraction_or_zero, metavar="F",
                   help="share of the text, taken from its end, held out for validation; 0 for none" + _default(C, "val_frac"))
    add_model_arguments(p, C, forget_bias_default=LM_FORGET_BIAS, init_b_default=LM_INIT_B)
    g = p.add_argument_group("truncated BPTT")
    g.add_argument("--window", type=positive_int, metavar="K1",
                   help="steps per window; the state is carried across windows, the gradient is not" + _default(C, "window"))
    g.add_argument("--truncate", type=optional(positive_int), metavar="K2",
                   help="each step's loss sends its gradient back at most K2 steps; 'none' = to the window start"
                   + _default(C, "truncate"))
    g.add_argument("--batch", type=positive_int, metavar="B", help="parallel streams through the text" + _default(C, "batch"))
    add_optimisation_arguments(p, C)
    add_budget_arguments(p, C, epochs=True, title="budget (default: --max-time 120 when none is given)")
    g = add_logging_arguments(p, C)
    g.add_argument("--eval-windows", type=nonneg_int, metavar="N",
                   help="at most N validation windows per evaluation; 0 = all" + _default(C, "eval_windows"))
    g.add_argument("--sample-every", type=nonneg_int, metavar="N",
                   help="sample text every N steps; 0 = only at the end" + _default(C, "sample_every"))
    g.add_argument("--sample-length", type=positive_int, metavar="N", help="symbols per sample" + _default(C, "sample_length"))
    g.add_argument("--sample-temperature", type=nonneg_float, metavar="T",
                   help="sampling temperature; 0 = most likely symbol" + _default(C, "sample_temperature"))
    add_run_folder_arguments(p, "runs/<timestamp>-<cell>")


def prepare(args):
    """Every check, no writes: a Session ready to train, or RnnvanishError."""
    from pathlib import Path

    from ..training.engine import Trainer
    from ..training.language import LanguageObjective, build_model, encode_corpus, read_corpus
    from ..training.session import Session, check_new_folder, default_folder, given_settings, make_tracer, new_config
    from ..training.settings import LanguageConfig

    given = given_settings(args, LanguageConfig)
    if args.resume:
        return _prepare_resume(args, given)
    config = new_config(LanguageConfig, given, DEFAULT_MAX_TIME)
    source, name, text = read_corpus(args.corpus)
    vocab, train_ids, val_ids, described = encode_corpus(config, text)
    corpus = {"source": source, "name": name, **described}
    trainer = Trainer(config, build_model(config, len(vocab)), LanguageObjective(config, vocab, train_ids, val_ids, corpus),
                      info={"corpus": corpus})
    folder = Path(args.out) if args.out else default_folder(config.cell)
    if config.trace_every:
        trainer.tracer = make_tracer(folder)
    check_new_folder(folder, args.overwrite)
    return Session(trainer, folder, resumed=False, quiet=args.quiet, progress=_progress(args), overwrite=args.overwrite)


def _progress(args):
    return False if args.quiet else args.progress


def _prepare_resume(args, given):
    import zlib
    from pathlib import Path

    from ..errors import RnnvanishError
    from ..training import runfolder as rf
    from ..training.engine import Trainer
    from ..training.language import LanguageObjective, build_model, encode_corpus, read_corpus
    from ..training.session import Session, check_rebuilt, make_tracer, open_resume, resumed_config
    from ..training.settings import LanguageConfig

    folder = Path(args.resume)
    ckpt, recorded = open_resume(folder, args.out)
    saved = ckpt.config
    if not isinstance(saved.get("corpus"), dict) or recorded.get("corpus") != saved.get("corpus"):
        raise RnnvanishError(f"checkpoint {ckpt.path} does not describe the corpus of its {rf.CONFIG}, "
                             "so it cannot be resumed")
    config, changes = resumed_config(LanguageConfig, _applicable(saved), given)
    corpus = dict(saved["corpus"])
    if args.corpus is not None and read_corpus(args.corpus)[0] != corpus.get("source"):
        raise RnnvanishError(f"the run was trained on {corpus.get('source')}; leave out CORPUS when resuming")
    _, name, text = read_corpus(None if corpus.get("source") in ("default",) else corpus.get("source"))
    if zlib.crc32(text.encode("utf-8")) != corpus.get("crc32"):
        raise RnnvanishError(f"the corpus {corpus.get('source')} has changed since the run started "
                             "(its checksum differs), so the run cannot continue exactly")
    vocab, train_ids, val_ids, _ = encode_corpus(config, text, vocab=ckpt.vocab)
    objective = LanguageObjective(config, vocab, train_ids, val_ids, corpus)
    trainer = Trainer(config, build_model(config, len(vocab)), objective,
                      info={"corpus": corpus, "sessions": list(saved.get("sessions", []))})
    check_rebuilt(trainer, ckpt, folder)
    if config.trace_every:
        trainer.tracer = make_tracer(folder)
    rf.check_writable(folder)
    return Session(trainer, folder, resumed=True, quiet=args.quiet, progress=_progress(args), changes=changes)


def _applicable(saved: dict) -> dict:
    """The saved settings a LanguageConfig takes; a cell option of another cell (older runs
    recorded every one) is dropped."""
    from ..choices import CELL_SPECIFIC
    from ..training.settings import LanguageConfig

    kept = {k: v for k, v in saved.items() if k in LanguageConfig.names()}
    for name, (owners, _) in CELL_SPECIFIC.items():
        if kept.get("cell") not in owners:
            kept.pop(name, None)
    return kept


def run(args):
    from ..training.session import run_session
    return run_session(prepare(args))        # prepare: every check, before anything is written
