"""Human3.6M sequence names <-> (subject, action_idx, subaction_idx), from the dataset's own table.

The COCO-style JSON files number a subject's sequences (``action_idx`` 2..16, ``subaction_idx``
1..2); the VideoPose3D-style ``.npz`` files key them by the video / h5 base name ('Directions',
'Directions 1', 'Eating 2', ...). Which name is which sub-action is a fact of the recording, not
a rule: the table in ``h36m_sequences.csv`` beside this module is Human3.6M's ``metadata.xml``
mapping (cited in the file's header), and no sorting of the names reproduces it (S5 'Photo' is
sub-action 1 and 'Photo 2' sub-action 2, S1 'Photo 1' is 1 and 'Photo' is 2).

Names are returned as the ``.npz`` files spell them: VideoPose3D's preparation renames
'TakingPhoto' to 'Photo' and 'WalkingDog' to 'WalkDog' (they occur in S1 only); both spellings
are read.

Sequences the table does not list (another subject id, a third clip of an action from a mocap
import) are named ``'<Action> <subaction_idx>'``, or ``'<Action> (<subaction_idx>)'`` where that
would be one of the subject's real names; reading inverts this. A bare action name that the
table does not list takes the lowest sub-action its subject's other names of that action leave
free (files from elsewhere that follow no table).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, Iterable, Tuple

from lib.geometry.skeleton import ACTION_IDX, ACTION_NAME, canonical_action

TABLE_FILE = Path(__file__).with_name("h36m_sequences.csv")
MAX_SUBACTIONS = 99            # sub-action numbers searched when inverting the fallback names


def npz_spelling(name: str) -> str:
    """'TakingPhoto 1' -> 'Photo 1', 'WalkingDog' -> 'WalkDog' (VideoPose3D's renaming)."""
    base, sep, suffix = str(name).partition(" ")
    return canonical_action(base) + sep + suffix


def _load_table() -> Dict[Tuple[int, int, int], str]:
    rows = [line for line in TABLE_FILE.read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    reader = csv.reader(rows)
    header = next(reader)
    subjects = [int(col[1:]) for col in header[2:]]
    table = {}
    for row in reader:
        action_idx, subaction_idx = int(row[0]), int(row[1])
        for subject, name in zip(subjects, row[2:]):
            name = npz_spelling(name)
            if canonical_action(name) != ACTION_NAME[action_idx]:
                raise RuntimeError(f"{TABLE_FILE}: '{name}' listed under action {action_idx}")
            table[subject, action_idx, subaction_idx] = name
    return table


TABLE: Dict[Tuple[int, int, int], str] = _load_table()
TABLE_SUBJECTS = tuple(sorted({s for s, _, _ in TABLE}))
_BY_NAME: Dict[Tuple[int, str], Tuple[int, int]] = {(s, n): (a, sub)
                                                   for (s, a, sub), n in TABLE.items()}


def npz_name(subject: int, action_idx: int, subaction_idx: int) -> str:
    """The ``.npz`` key of a sequence: the table's name, else the fallback of the docstring."""
    key = (int(subject), int(action_idx), int(subaction_idx))
    if key in TABLE:
        return TABLE[key]
    if key[1] not in ACTION_NAME:
        raise ValueError(f"unknown Human3.6M action index {action_idx} (known: "
                         f"{min(ACTION_NAME)}..{max(ACTION_NAME)})")
    base = ACTION_NAME[key[1]]
    name = f"{base} {key[2]}"
    return f"{base} ({key[2]})" if (key[0], name) in _BY_NAME else name


def _numbered_index(subject: int, action_idx: int, name: str):
    for sub in range(1, MAX_SUBACTIONS + 1):
        if (subject, action_idx, sub) not in TABLE and npz_name(subject, action_idx, sub) == name:
            return sub
    return None


def index_names(subject: int, names: Iterable[str]) -> Dict[str, Tuple[int, int]]:
    """``{name: (action_idx, subaction_idx)}`` for one subject's ``.npz`` keys.

    Raises ValueError (naming the keys) for a name that is no Human3.6M action, or for two
    names that denote the same sequence.
    """
    subject = int(subject)
    out: Dict[str, Tuple[int, int]] = {}
    bare = []
    for name in names:
        spelled = npz_spelling(name)          # raises ValueError for unknown actions
        action_idx = ACTION_IDX[canonical_action(spelled)]
        if (subject, spelled) in _BY_NAME:
            out[name] = _BY_NAME[subject, spelled]
            continue
        sub = _numbered_index(subject, action_idx, spelled)
        if sub is None:
            bare.append((name, action_idx))
        else:
            out[name] = (action_idx, sub)
    for name, action_idx in bare:
        taken = {s for a, s in out.values() if a == action_idx}
        out[name] = (action_idx, min(set(range(1, len(taken) + 2)) - taken))
    seen: Dict[Tuple[int, int], str] = {}
    for name, key in sorted(out.items()):
        if key in seen:
            raise ValueError(f"S{subject}: keys '{seen[key]}' and '{name}' both denote action "
                             f"{key[0]} sub-action {key[1]}")
        seen[key] = name
    return out
