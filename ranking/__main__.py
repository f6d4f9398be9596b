"""python -m ranking export --base BASE_ID --format csv|json|parquet [--source ...] [--out PATH] [--db PATH]
python -m ranking validity --base BASE_ID [--source ...] [--db PATH] [--predictors-db PATH]
python -m ranking card --base BASE_ID --model REPO_ID [--source ...] [--url URL] [--out-dir DIR] [--db PATH]"""

import sys

from service.cli.programs import ranking_main as main  # the commands live in service/cli/, one module each

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
