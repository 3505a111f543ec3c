"""A program's model replies kept as they come, so a killed batch's rerun replays its rounds instead of asking."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from lab import paths
from lab.client import Client
from lab.streaming import Result

FIELDS = ("text", "finish_reason", "prompt_tokens", "completion_tokens", "e2e")


class Replaying:
    """A Client whose complete() first looks in `folder` for the reply to the same request (model, messages,
    max_tokens, sampling with its seed) and keeps each new one there (atomic write): a 1.5B's round takes 1-4 min
    on 2 cores, and a batch killed in its 5th round of a program lost all of that program's rounds. The replay
    is exact where asking again is not (greedy decoding on vLLM varies with what else is in the batch)."""

    def __init__(self, client: Client, folder: Path) -> None:
        self.client, self.folder = client, Path(folder)
        self.kept = len(list(self.folder.glob("*.json")))  # what an earlier run left, said once before round 1

    def __getattr__(self, name: str) -> Any:  # model, max_model_len, count_tokens, timeout...: the client's own
        return getattr(self.client, name)

    def _file(self, messages: Any, kw: dict[str, Any]) -> Path:
        what = json.dumps([self.client.model, messages, kw], sort_keys=True, ensure_ascii=False)
        return self.folder / f"{hashlib.sha256(what.encode()).hexdigest()[:24]}.json"

    def complete(self, messages: Any, **kw: Any) -> Result:
        """The kept reply to this request, or the server's (then kept)."""
        f = self._file(messages, kw)
        try:
            rec = paths.parse_json(f.read_text("utf-8"))
            return Result(**{k: rec[k] for k in FIELDS})
        except (OSError, ValueError, KeyError, TypeError):  # none yet, or a damaged one: ask again
            pass
        res = self.client.complete(messages, **kw)
        paths.atomic_write(f, json.dumps({k: getattr(res, k) for k in FIELDS}, ensure_ascii=False))
        return res
