"""python -m scoring work [--once] [--scorers ...] [--device cpu|cuda] [--max-jobs N] [--ray ADDRESS]
python -m scoring personal --base BASE --data FILE|HUB_ID [--top-k K] [--text-column C] [--label-column C]
python -m scoring study [--out DIR] [--device cpu|cuda] [--snapshot PATH|none]
python -m scoring score REPO_ID --scorer intertraining|linear_probe|free_energy|sample_efficiency
[--base BASE] [--suite NAME] [--profile quick|published] [--seeds N] [--base-seeds K] [--device cpu|cuda] [--db PATH]

REPO_ID and BASE are Hub ids (downloaded at a pinned sha through huggingface_hub) or local checkpoint
directories (their revision is a content hash). Scores go to the store in one transaction; a short table
of the candidate's per-target gains is printed.

Each subcommand is one module of service/cli/ (``add_parser`` and ``run``); service/cli/programs.py assembles them.
"""

import sys

from service.cli.programs import scoring_main as main  # the commands live in service/cli/, one module each

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
