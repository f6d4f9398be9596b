"""A local, in-memory Hugging Face Hub for tests and offline runs (standard library only).

Example::

    hub = LocalHub(page_size=1000)
    sha = hub.add_model("org/name", files={"config.json": b"{}"}, tags=("base_model:finetune:org/base",))
    with hub:  # starts 127.0.0.1 servers, stops them on exit
        HfApi(endpoint=hub.url).model_info("org/name").sha == sha
"""

from data.local_hub.faults import FAULT_KINDS, FaultPlan
from data.local_hub.hub import LocalHub
from data.local_hub.requests_log import RequestRecord

__all__ = ["FAULT_KINDS", "FaultPlan", "LocalHub", "RequestRecord"]
