"""The offline director reasons from its inputs: the storyline tiles the audio, cuts at pauses, changes with
the audio, the image and the instruction, names conflicts, and records bad input instead of crashing."""

from __future__ import annotations

import pytest

from kling.director import DirectorError, direct
from kling.director.schema import Storyline, timeline_problems
from kling.llm import LLMClient, LLMConfig


def run(f, image="ava", audio="loud", instruction="A woman talks to the camera.", **kw):
    images = [f[i] for i in (image if isinstance(image, list) else [image])]
    audios = [f[a] for a in (audio if isinstance(audio, list) else [audio])]
    return direct(images, audios, instruction, LLMClient(LLMConfig()), **kw)


def test_storyline_tiles_the_audio_and_cuts_at_pauses(director_inputs):
    r = run(director_inputs)
    s = r.storyline
    assert s.status == "ok" and s.backend == "offline"
    assert not timeline_problems([(x.t_start, x.t_end) for x in s.shots], s.duration_s)
    assert s.duration_s == pytest.approx(6.0, abs=0.01) and len(s.shots) >= 2
    pauses = r.readings["audio"]["pauses"]
    for shot in s.shots[1:]:
        assert any(a <= shot.t_start <= b for a, b in pauses), (shot.t_start, pauses)
    assert [n.shot for n in s.negatives.shots] == list(range(len(s.shots)))
    assert "frozen face" in s.negatives.global_negatives
    # the dialogue: three expert readings in round 1, a reconciliation round, the shots, the negatives
    names = [t["name"] for t in r.transcript]
    assert names[:4] == ["audio_expert.round1", "visual_expert.round1", "text_expert.round1", "director.round2"]
    assert names[-2:] == ["storyline.shots", "negative_director"]
    assert [t["backend"] for t in r.transcript[:2]] == ["measured", "measured"]
    # a storyline that does not tile the audio cannot be built
    bad = s.model_dump()
    bad["shots"][0]["t_end"] -= 0.5
    with pytest.raises(ValueError, match="gap"):
        Storyline.model_validate(bad)


def test_output_follows_audio_image_and_instruction(director_inputs):
    f = director_inputs
    base = run(f, audio="loud", instruction="")
    calm = run(f, audio="calm", instruction="")
    assert base.readings["audio"]["arousal_label"] == "aroused" and calm.readings["audio"]["arousal_label"] == "calm"
    assert {s.emotion for s in base.storyline.shots} != {s.emotion for s in calm.storyline.shots}
    assert base.storyline.shots[0].head_motion != calm.storyline.shots[0].head_motion
    bo = run(f, image="bo", audio="loud", instruction="")
    assert bo.storyline.global_prompt != base.storyline.global_prompt
    assert "red top" in bo.storyline.global_prompt and "blue top" in base.storyline.global_prompt
    nod = run(f, instruction="She talks and nods her head.")
    shake = run(f, instruction="Ella habla y niega con la cabeza.")
    assert {s.head_motion for s in nod.storyline.shots} == {"nod"}
    assert {s.head_motion for s in shake.storyline.shots} == {"shake"}
    assert shake.readings["text"]["language"] == "es"
    assert "head shaking side to side" in nod.storyline.negatives.shots[0].negatives


def test_conflicts_are_named_and_settled_by_priority(director_inputs):
    r = run(director_inputs, audio="calm", instruction="She is super excited and walks across the room.")
    conflicts = r.readings["reconciled"]["conflicts"]
    emo = next(c for c in conflicts if c["aspect"] == "emotion")
    assert "'excited'" in emo["statement"] and "calm" in emo["statement"] and emo["winner"] == "audio"
    walk = next(c for c in conflicts if c["aspect"] == "framing")
    assert "walk" in walk["statement"] and "close-up" in walk["statement"] and walk["winner"] == "visual"
    assert all(s.emotion != "excited" for s in r.storyline.shots)
    assert "timing" in r.storyline.modality_priority


def test_two_speakers_cut_at_the_turn(director_inputs):
    f = director_inputs
    r = run(f, image=["ava", "bo"], audio=["spk_a", "spk_b"], instruction="")
    shots = r.storyline.shots
    assert [s.speaker for s in shots][0] == "speaker_1" and "speaker_2" in [s.speaker for s in shots]
    turn = next(s.t_start for s in shots if s.speaker == "speaker_2" or s.speaker == "none")
    assert 4.0 <= turn <= 5.0
    one_face = run(f, image="ava", audio=["spk_a", "spk_b"], instruction="")
    assert any(c["aspect"] == "speakers" for c in one_face.readings["reconciled"]["conflicts"])


@pytest.mark.parametrize("image, audio, instruction, reason", [
    ("ava", "silent", "She smiles.", "no speech in the audio"),
    ("noface", "loud", "", "no face"),
    ("two", "loud", "", "2 faces"),
    ("ava", "loud", "", "empty instruction"),
    ("ava", "loud", "He is happy and sad at once.", "contradicts itself"),
])
def test_bad_input_gives_a_storyline_with_the_reason(director_inputs, image, audio, instruction, reason):
    s = run(director_inputs, image=image, audio=audio, instruction=instruction).storyline
    assert any(reason in x for x in s.reasons), s.reasons
    assert not timeline_problems([(x.t_start, x.t_end) for x in s.shots], s.duration_s)
    if audio == "silent":
        assert s.status == "degraded" and {x.speaker for x in s.shots} == {"none"}
    if image == "noface":
        assert s.status == "degraded"


def test_unreadable_input_is_a_clear_error(director_inputs, tmp_path):
    f = director_inputs
    with pytest.raises(DirectorError, match="audio file not found"):
        direct([f["ava"]], [tmp_path / "missing.wav"], "", LLMClient(LLMConfig()))
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(DirectorError, match="not an image"):
        direct([tmp_path / "junk.png"], [f["loud"]], "", LLMClient(LLMConfig()))


def test_storyline_becomes_per_shot_adherence_assertions(director_inputs, tmp_path):
    from eval.adherence.assertions import load_case

    r = run(director_inputs, instruction="She talks and nods her head.")
    r.write(tmp_path / "case.json")
    got = load_case(tmp_path / "case.json")["assertions"]
    shots = r.storyline.shots
    nods = [a for a in got if a.kind == "head_motion"]
    assert [(a.value, a.start_s, a.end_s) for a in nods] == [("nod", s.t_start, s.t_end) for s in shots]
    assert all(a.source == "storyline" for a in got)
    assert {a.value for a in got if a.kind == "mouth"} == {"speaking"}
    assert {a.value for a in got if a.kind == "camera"} == {"static"}
