"""The chain result handed between tasks: plain JSON in XCom, validated when read back (untrusted input)."""

from __future__ import annotations

import json

import pytest

from clone.work.chain import ChainResult, ChainResultError

BASE = {"repo": "app", "workdir": "/ws/app", "branch": "main", "base_sha": "a" * 40, "head_sha": "b" * 40,
        "has_remote": True, "github": "acme/app", "push_mode": "gated", "run_id": "manual__1", "changed": True,
        "entry": {"path": "/code/app", "name": "app"}}


def test_round_trip_through_json_text_as_a_trigger_pushes_it():
    pushed = ChainResult.from_json(BASE).but(pushed=True, pushed_sha="b" * 40, push_branch="clone/app/manual__1")
    # The trigger ends ci_wait with {**end_task, "ci": verdict}; XCom hands that back as JSON text.
    text = json.dumps({**pushed.to_json(), "ci": {"status": "success", "sha": "b" * 40, "runs": []}})
    back = ChainResult.from_json(text)
    assert back.ci_status == "success" and back.remote_branch == "clone/app/manual__1" and back.pushed
    assert json.loads(json.dumps(back.to_json())) == back.to_json()
    with pytest.raises(Exception):
        back.repo = "other"  # frozen


@pytest.mark.parametrize("bad, message", [
    ("not json", "is not JSON"),
    ([1, 2], "must be a JSON object"),
    ({k: v for k, v in BASE.items() if k != "head_sha"}, "field 'head_sha' is missing"),
    ({**BASE, "changed": "yes"}, "field 'changed' must be bool, not str"),
    ({**BASE, "tokens": True}, "field 'tokens' must be int, not bool"),
    ({**BASE, "ci": "green"}, "field 'ci' must be dict or NoneType, not str"),
    ({**BASE, "push_mode": "yolo"}, "field 'push_mode' must be one of direct, gated, pr"),
    ({**BASE, "sneaky": 1}, "unknown field(s) sneaky"),
])
def test_untrusted_input_is_refused_naming_the_field(bad, message):
    with pytest.raises(ChainResultError) as error:
        ChainResult.from_json(bad)
    assert message in str(error.value)
