"""Gradio's HTTP protocol spoken by hand, as an attacker would: upload a file, then call an event with any payload
(a file payload whose ``path`` names whatever the caller likes). Loopback only; every call has a timeout."""

from __future__ import annotations

import json
import secrets
import urllib.request
from dataclasses import dataclass

import httpx


@dataclass(frozen=True, slots=True)
class EventAnswer:
    success: bool
    data: list | None
    text: str  # everything the server sent for the event, as text (to search for leaked content)


def event_id(url: str, elem_id: str, trigger: str) -> int:
    """The dependency id of ``trigger`` ("change", "click") on the component with ``elem_id``."""
    with urllib.request.urlopen(f"{url}/config", timeout=10) as response:
        config = json.load(response)
    component = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id)
    return next(d["id"] for d in config["dependencies"] if [component, trigger] in d["targets"])


def file_payload(path: str, name: str = "data.csv") -> dict:
    return {"path": path, "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def upload(url: str, name: str, content: bytes, timeout: float = 30) -> httpx.Response:
    return httpx.post(f"{url}/gradio_api/upload", files={"files": (name, content)}, timeout=timeout)


def call_event(url: str, fn_index: int, data: list, timeout: float = 30) -> EventAnswer:
    """Join the queue with ``data`` and read the event's stream to its end."""
    session = secrets.token_hex(8)
    joined = httpx.post(f"{url}/gradio_api/queue/join", timeout=timeout,
                        json={"data": data, "fn_index": fn_index, "trigger_id": None, "session_hash": session,
                              "event_data": None})
    if joined.status_code != 200:
        return EventAnswer(False, None, joined.text)
    seen = []
    with httpx.stream("GET", f"{url}/gradio_api/queue/data", params={"session_hash": session},
                      timeout=timeout) as stream:
        for line in stream.iter_lines():
            seen.append(line)
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed":
                output = message.get("output") or {}
                return EventAnswer(bool(message.get("success")), output.get("data"), "\n".join(seen))
    return EventAnswer(False, None, "\n".join(seen))
