"""The one training engine under `rnnvanish train` and `rnnvanish task`.

    settings.py    TrainConfig and LanguageConfig: every setting, typed, with its check
    engine.py      Trainer: the loop, metrics rows, evaluation, budgets, checkpoints, exact resume
    health.py      non-finite values and divergence, stopped with a diagnosis
    language.py    the language-model objective (TaskObjective is in rnnvanish.tasks.objective)
    session.py     a command's session: new or resumed settings, the run folder, Ctrl-C
    console.py     header, progress bar (on a terminal), log lines, summary
    runfolder.py   the run folder's files; checkpoint.py the checkpoint file
"""
