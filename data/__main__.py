"""python -m data crawl | candidates | import-published | seed-snapshot | serve-hub | migrate"""

import sys

from service.cli.programs import data_main as main  # the commands live in service/cli/, one module each

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
