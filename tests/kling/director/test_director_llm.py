"""The director on an OpenAI-compatible endpoint (a local scripted server): the model's readings are validated
and used; an endpoint that is down or replies nonsense is a clear error, or a labelled fallback when one is
configured; nothing is written half."""

from __future__ import annotations

import json
import socket

import pytest

from kling.director import DirectorError, direct
from kling.director.audio import analyse_audio
from kling.director.plan import plan_shots
from kling.llm import LLMClient, LLMConfig
from tests.support.chat_server import ChatServer


@pytest.fixture(scope="module")
def server():
    with ChatServer() as srv:
        yield srv


def _client(url, **kw):
    return LLMClient(LLMConfig(backend="openai", base_url=url, model="scripted", timeout_s=5, backoff_s=0.01,
                               max_attempts=2, **kw))


def _script(n_shots):
    text = {"instruction": "Elle est ravie", "language": "fr", "emotion": "happy", "head_motion": "tilt",
            "gesture": None, "camera": "slow zoom in", "action": None, "contradictions": [], "notes": []}
    rec = {"round": 2, "conflicts": [{"aspect": "emotion", "statement": "text says delighted, voice is loud",
                                      "modalities": ["text", "audio"], "winner": "audio",
                                      "resolution": "excited"}],
           "emotion": "excited", "head_motion": "tilt", "camera": "slow zoom in", "gesture": "none", "settled": True}
    shots = {"shots": [{"speaker": "speaker_1", "emotion": "excited", "expression": f"beaming {i}",
                        "head_motion": "tilt", "gesture": "none", "camera": "slow zoom in",
                        "prompt": f"shot {i} from the model"} for i in range(n_shots)]}
    neg = {"global_negatives": ["frozen face"], "shots": [{"shot": i, "negatives": ["sad face"]}
                                                           for i in range(n_shots)]}
    return [{"text": json.dumps(x)} for x in (text, rec, shots, neg)]


def test_openai_backend_storyline(server, director_inputs):
    f = director_inputs
    n = len(plan_shots(analyse_audio([f["loud"]]).reading)[0])
    wrong = json.dumps({"shots": []})
    steps = _script(n)
    # the shots reply first breaks the schema (no shots): re-asked with the error, then valid
    url = server.script("dir_ok", steps[0], steps[1], {"text": wrong}, steps[2], steps[3])
    r = direct([f["ava"]], [f["loud"]], "Elle est ravie", _client(url))
    s = r.storyline
    assert s.backend == "openai:scripted" and s.status == "ok"
    assert [x.prompt for x in s.shots] == [f"shot {i} from the model" for i in range(n)]
    assert r.readings["text"]["language"] == "fr" and r.readings["reconciled"]["emotion"] == "excited"
    shots_turn = next(t for t in r.transcript if t["name"] == "storyline.shots")
    assert [a["status"] for a in shots_turn["attempts"]] == ["ok", "invalid", "ok"]
    assert server.count("dir_ok") == 5


def test_endpoint_down_is_a_clear_error_or_a_labelled_fallback(director_inputs, tmp_path):
    f = director_inputs
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(DirectorError) as err:
        direct([f["ava"]], [f["loud"]], "hi", _client(url))
    assert "text_expert.round1" in err.value.reason and "unreachable" in err.value.reason
    assert err.value.transcript and err.value.transcript[-1]["status"] == "failed"
    r = direct([f["ava"]], [f["loud"]], "hi", _client(url, fallback="offline"))
    assert r.storyline.status == "degraded" and r.storyline.backend == "openai:scripted (fallback: offline)"
    assert any("fallback backend offline" in x for x in r.storyline.reasons)
    assert all(t["fallback_from"] for t in r.transcript if t["backend"] == "offline")


def test_nonsense_replies_fail_with_the_reason(server, director_inputs):
    f = director_inputs
    url = server.script("dir_junk", {"text": "I am a teapot"})
    with pytest.raises(DirectorError) as err:
        direct([f["ava"]], [f["loud"]], "hi", _client(url, max_repairs=1))
    assert "TextReading reply invalid after 2 tries" in err.value.reason
