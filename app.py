"""The leaderboard app (Gradio). For now: what the store holds per base model and what to run next.

    python app.py [--host 127.0.0.1] [--port 7860] [--db PATH]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from data.records import CandidateStatus
from data.settings import Settings
from data.store import Store

logger = logging.getLogger("app")

EMPTY_STATE = """\
### The store is empty
Crawl the finetuned descendants of a base model first:

```
python -m data crawl --base FacebookAI/roberta-base --limit 50
```
"""


def summarize(store: Store) -> list[list]:
    """One row per base model: crawled candidates, skipped models by reason, pending jobs."""
    rows = []
    for base in store.bases():
        candidates = store.candidates(base.repo_id)
        ok = sum(c.status is CandidateStatus.OK for c in candidates)
        reasons = Counter(c.skip_reason.value for c in candidates if c.skip_reason)
        rows.append([base.repo_id, ok, ", ".join(f"{r} {n}" for r, n in sorted(reasons.items())) or "-"])
    return rows


def build_app(store: Store, settings: Settings):
    import gradio as gr

    with gr.Blocks(title="Model Recycling Leaderboard") as demo:
        gr.Markdown("# Model Recycling Leaderboard\nWhich checkpoint on the Hub should you fine-tune from?")
        rows = summarize(store)
        if rows:
            gr.Dataframe(value=rows, headers=["base model", "candidates", "skipped (reason count)"],
                         interactive=False, elem_id="bases-table")
        else:
            gr.Markdown(EMPTY_STATE, elem_id="empty-state")
    return demo


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--db", type=Path)
    args = parser.parse_args(argv)
    settings = Settings.from_env().with_overrides(host=args.host, port=args.port, db_path=args.db)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = Store(settings.db_path)
    logger.info("serving %s on http://%s:%d", settings.db_path, settings.host, settings.port)
    build_app(store, settings).launch(server_name=settings.host, server_port=settings.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
