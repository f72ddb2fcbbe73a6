"""Search hyperparameters (model, losses, training, data) with Optuna through the Trainer; save the best model.

    python hyperparameter_search.py --n-trials 20 --max-train-samples 4000 --output-dir outputs/search
    python hyperparameter_search.py --n-trials 30 --output-dir outputs/search        # rerun: tops the study up to 30
    python hyperparameter_search.py --search-space space.yaml --objective emotions:macro_f1 --pruner median
    python hyperparameter_search.py --fast-trials 40 --n-trials 10                    # heads-only trials first
    python hyperparameter_search.py --storage postgresql://user@host/db --study-name s1   # one worker per machine

Every flag of train_enhanced.py fixes that part of all trials. Writes OUTPUT/best/ (the best trial's model,
calibrated and reported), OUTPUT/best_flags.yaml (for train_enhanced.py --config), OUTPUT/trials.csv,
OUTPUT/plots/ and OUTPUT/study.db (the study, unless --storage names another).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import transformers

from data import DataValidationError, resolve_tasks
from training.arguments import ArgumentError
from training.recipe import encoder_depth, parse_arguments, resolve_backbone
from training.run import prepare
from training.search import SearchArguments, parse_objective
from training.search_run import open_storage, run_search
from training.search_space import check_space, data_arguments_for_space, load_space

DEFAULT_OUTPUT = "outputs/search"


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.logging.set_verbosity_error()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--output-dir" or a.startswith("--output-dir=") for a in argv):
        argv += ["--output-dir", DEFAULT_OUTPUT]
    try:
        model_args, data_args, training_args, search_args = parse_arguments(argv, extra=(SearchArguments,))
        space = load_space(search_args.search_space)
        depth = encoder_depth(resolve_backbone(model_args.backbone))
        space = check_space(space, depth, given=search_args.search_space is not None)
        data_args = data_arguments_for_space(space, data_args)
        objective = parse_objective(search_args.objective, resolve_tasks(data_args)[0].tasks)
        storage = open_storage(search_args.storage, Path(training_args.output_dir), search_args.heartbeat_interval)
        setup = prepare(model_args, data_args, training_args)
        study, files = run_search(model_args, data_args, training_args, search_args, setup, space, objective, depth,
                                  storage)
    except (ArgumentError, DataValidationError) as error:
        print(f"hyperparameter_search.py: error: {error}", file=sys.stderr)
        return 2
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if complete:
        best = study.best_trial
        print(f"best trial {best.number}: {search_args.objective} = {best.value:.4f} with {best.params}")
    pruned = sum(t.state.name == "PRUNED" and not t.user_attrs.get("skipped") for t in study.trials)
    print(f"{len(complete)} complete and {pruned} pruned trial(s); wrote {', '.join(files)} and best/ to "
          f"{training_args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
