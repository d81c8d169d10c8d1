"""Which settings made each stage's outputs under OUT, so a resumed demo never reuses outputs of
other settings.

``OUT/stages.json`` maps a stage ("collect", "train aim", "eval aim", ...) to the settings it ran
with. A stage whose outputs exist is reused only when its settings are the same. Otherwise
derived results (evaluations) are made again, and stages whose outputs hold work that a rerun
would throw away (the datasets, training runs) are refused with a message naming what changed
and how to go on: nothing already written is lost.
"""

from __future__ import annotations

import json
from pathlib import Path

from aim.data.lerobot_format import write_json_atomic
from aim.errors import UsageError

STAGES_FILE = "stages.json"


class StageRecord:
    """The settings of every stage under ``out`` (``stages.json``)."""

    def __init__(self, out: Path) -> None:
        self.path = out / STAGES_FILE
        self.stages: dict[str, dict] = {}
        if self.path.is_file():
            try:
                self.stages = json.loads(self.path.read_text())
            except (OSError, json.JSONDecodeError) as err:
                raise UsageError(f"{self.path}: unreadable ({err}); delete it to let the demo record its stages "
                                 "again (every stage whose outputs exist is then made again or refused)") from err

    def matches(self, stage: str, settings: dict) -> bool:
        """Whether ``stage`` last ran with ``settings`` (JSON-comparable values)."""
        return self.stages.get(stage) == _plain(settings)

    def claim(self, stage: str, settings: dict, outputs: Path, keep_hint: str) -> None:
        """Records that ``stage`` runs with ``settings``. Outputs under ``outputs`` made by other
        settings are refused (``keep_hint``: what the user may do instead); outputs of a demo that
        predates this record are taken to be this stage's."""
        known, wanted = self.stages.get(stage), _plain(settings)
        if known is not None and known != wanted and outputs.exists():
            changes = ", ".join(f"{k} {known.get(k)} -> {wanted.get(k)}" for k in sorted(set(known) | set(wanted))
                                if known.get(k) != wanted.get(k))
            raise UsageError(f"{outputs} was made with other settings ({changes}); {keep_hint}")
        self.record(stage, settings)

    def record(self, stage: str, settings: dict) -> None:
        self.stages[stage] = _plain(settings)
        write_json_atomic(self.path, self.stages)


def _plain(value):
    """Tuples as lists and nested dataclass-free values, as JSON holds them."""
    return json.loads(json.dumps(value))
