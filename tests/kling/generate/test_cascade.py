"""The spatio-temporal cascade: every stage kept, sub-clips anchored on keyframes, parallel = serial bit for
bit, transitions touch only the joins, the storyline's shots split and prompt the sub-clips."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
import torch

from kling.generate.avatar_pipeline import AvatarPipeline, GenerateConfig, load_checkpoint
from kling.generate.cascade import CascadeConfig, colour_match, split_points
from kling.generate.keyframes import choose_keyframes
from kling.generate.clip import generate_clip
from kling.io.decode import read_frames
from kling.io.probe import probe
from tests.support.avatar import generation_inputs

torch.set_num_threads(1)
FAST = GenerateConfig(steps=1, seed=3, anchor="reference")
SHORT = CascadeConfig(subclip_windows=2)  # tiny: a keyframe every 16 frames


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root, ckpt, image, wav = generation_inputs(tmp_path_factory.mktemp("cascade"), seconds=2.0)
    return root, AvatarPipeline(load_checkpoint(root / "run")), image, wav


def run(inputs, name, cascade=SHORT, storyline=None, prompt="a woman talks", config=FAST):
    root, pipe, image, wav = inputs
    meta = generate_clip(pipe, image, wav, root / f"{name}.mp4", prompt=prompt, config=config, cascade=cascade,
                         storyline=storyline)
    return meta, np.load(root / f"{name}.stages" / "faces.npy"), root / f"{name}.stages"


def test_split_points_fall_on_whole_windows_and_shot_starts():
    assert split_points(50, 8, 2, []) == [0, 16, 32]
    assert split_points(50, 8, 2, [0, 25]) == [0, 16, 24, 32]  # the shot at frame 25 -> 24 (a whole window)
    assert split_points(50, 8, 4, [0, 27, 29]) == [0, 24, 32]  # two starts rounding to one point: once
    assert split_points(12, 8, 1, []) == [0]  # no room for a second sub-clip


def test_every_stage_is_kept_and_the_video_has_the_audio_length(inputs):
    meta, faces, stages = run(inputs, "plain", cascade=CascadeConfig(subclip_windows=2, transitions=False))
    record = meta["cascade"]
    assert meta["frames"] == 50 and read_frames(meta["output"]).shape == (50, 200, 300, 3)
    assert probe(meta["output"]).has_audio
    keys = [k["frame"] for k in record["keyframes"]]
    assert keys[0] == 0 and all(k % 8 == 0 for k in keys) and len(keys) == 3
    assert [s["start"] for s in record["subclips"]] == keys and record["subclips"][-1]["end"] == 49
    assert meta["joins"] == record["joins"] == keys[1:] and record["transitions"] == []  # met, not regenerated
    assert not record["subclips"][-1]["last_known"] and all(s["last_known"] for s in record["subclips"][:-1])
    assert len(read_frames(stages / "blueprint.mp4", fps=25 / 8)) == len(range(0, 50, 8))  # 1 frame in 8
    assert sorted(p.name for p in (stages / "keyframes").glob("*.png")) == [f"key_{k:06d}.png" for k in keys]
    assert len(list((stages / "subclips").glob("*.mp4"))) == len(keys)
    assert json.loads((stages / "stages.json").read_text())["keyframes"] == record["keyframes"]
    assert set(record["stage_seconds"]) >= {"blueprint", "keyframes", "subclips", "transitions", "stitch"}
    # each sub-clip starts on its keyframe, given, not regenerated (no transitions to touch it here)
    key = cv2.cvtColor(cv2.imread(str(stages / "keyframes" / f"key_{keys[1]:06d}.png")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(faces[keys[1]], key)


def test_parallel_subclips_give_the_serial_video_bit_for_bit(inputs):
    _, serial, _ = run(inputs, "serial")
    meta, parallel, _ = run(inputs, "parallel", cascade=CascadeConfig(subclip_windows=2, workers=2))
    assert np.array_equal(serial, parallel)
    assert (inputs[0] / "serial.mp4").read_bytes() == (inputs[0] / "parallel.mp4").read_bytes()


def test_transitions_regenerate_only_the_frames_around_each_join(inputs):
    meta, with_t, _ = run(inputs, "with_transitions")
    _, without, _ = run(inputs, "without_transitions", cascade=CascadeConfig(subclip_windows=2, transitions=False))
    joins = meta["cascade"]["transitions"]
    assert joins == [k["frame"] for k in meta["cascade"]["keyframes"]][1:]
    near = np.zeros(50, bool)
    for p in joins:  # a 9-frame window centred on the join, 2 context frames kept at each end
        near[p - 4 + 2: p + 5 - 2] = True
    changed = np.abs(with_t.astype(int) - without).reshape(50, -1).max(1) > 0
    assert changed[near].any() and not changed[~near].any()


def test_latent_stitching_decodes_each_subclip_as_one_causal_stream(inputs):
    plain = CascadeConfig(subclip_windows=2, transitions=False, colour_match=False)
    _, pixels, _ = run(inputs, "stitch_pixels", cascade=plain)
    meta, latents, stages = run(inputs, "stitch_latents", cascade=dataclasses.replace(plain, stitch="latents"))
    assert json.loads((stages / "stages.json").read_text())["cascade_config"]["stitch"] == "latents"
    starts = [s["start"] for s in meta["cascade"]["subclips"]]
    assert starts == [0, 16, 32]  # sub-clips of two 9-frame windows (the last one runs past the end)
    for a in starts:  # the same latents; the causal decoder gives a run's first window as its own decode
        assert np.array_equal(pixels[a: a + 9], latents[a: a + 9])
        later = slice(a + 9, min(a + 17, 50))
        assert not np.array_equal(pixels[later], latents[later])  # decoded after the first window, not alone


def test_windows_off_the_vaes_grid_start_a_new_stream(inputs):
    root, pipe, image, wav = inputs
    audio = np.zeros(16000, np.float32)
    cond = pipe.prepare(cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB), audio, "a woman talks", FAST)
    positions = np.arange(14)  # a known last frame: windows at 0 and 5 (off the 4-frame grid), two streams

    def faces(stitch):
        return pipe.windows(cond, positions, cond.reference, cond.reference, torch.Generator().manual_seed(0), FAST,
                            stitch=stitch)

    assert np.array_equal(faces("latents"), faces("pixels"))
    with pytest.raises(ValueError, match="stitch"):
        faces("latent")
    with pytest.raises(ValueError, match="stitch"):  # a misspelt system fails when configured, not mid-run
        CascadeConfig(stitch="latent")


def test_storyline_shots_become_split_points_and_prompt_their_subclips(inputs):
    storyline = {"global_prompt": "a woman", "duration_s": 2.0, "negatives": None, "shots": [
        {"t_start": 0.0, "t_end": 1.0, "prompt": "she smiles"}, {"t_start": 1.0, "t_end": 2.0, "prompt": "she frowns"}]}
    meta, faces, _ = run(inputs, "shots", storyline=storyline)
    _, plain, _ = run(inputs, "no_shots")  # no storyline: one shot under the prompt
    subs = meta["cascade"]["subclips"]
    assert 24 in [s["start"] for s in subs]  # the shot boundary at 1.0 s = frame 25 -> 24
    assert [s["prompt"] for s in subs] == ["a woman, she smiles"] * 2 + ["a woman, she frowns"] * 2
    assert not np.array_equal(faces, plain)


def test_refine_redraws_a_face_from_its_still_under_the_prompt(inputs):
    root, pipe, image, wav = inputs
    config = dataclasses.replace(FAST, steps=4)
    cond = pipe.prepare(cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB), np.zeros(32000, np.float32),
                        "a woman talks", config)
    face = np.full_like(cond.reference, 90)
    index = np.arange(8, 17)

    def refine(c, strength, seed=0):
        return pipe.refine(c, face, index, strength, torch.Generator().manual_seed(seed), config)

    light, heavy = refine(cond, 0.25), refine(cond, 1.0)
    assert np.array_equal(light, refine(cond, 0.25))  # seeded
    assert not np.array_equal(light, heavy) and not np.array_equal(light, refine(cond, 0.5))
    # strength 1 forgets the still: the window generated from noise alone, its last frame
    from kling.models.conditioning import known_frames

    video = np.zeros((9, *face.shape), np.uint8)
    video[0] = cond.reference
    plain = pipe.window(cond, video, known_frames("first", 9), index, torch.Generator().manual_seed(0), config)
    assert np.array_equal(heavy, plain[-1])
    assert not np.array_equal(light, refine(pipe.with_prompt(cond, "a man shouts"), 0.25))  # guided by the prompt
    with pytest.raises(ValueError, match="positions of a window"):
        pipe.refine(cond, face, np.arange(-1, 8), 0.25, torch.Generator(), config)
    with pytest.raises(ValueError, match="strength"):
        refine(cond, 0.0)


def test_keyframes_are_rerendered_under_their_shot_and_kept_beside_the_blueprints(inputs):
    storyline = {"global_prompt": "a woman", "duration_s": 2.0, "negatives": None, "shots": [
        {"t_start": 0.0, "t_end": 1.0, "prompt": "she smiles"}, {"t_start": 1.0, "t_end": 2.0, "prompt": "she frowns"}]}
    config = dataclasses.replace(FAST, steps=4)
    plain = CascadeConfig(subclip_windows=2, transitions=False)
    meta0, _, stages0 = run(inputs, "keys_plain", plain, storyline, config=config)
    meta, faces, stages = run(inputs, "keys_refined", dataclasses.replace(plain, keyframe_refine=0.5), storyline,
                              config=config)
    keys = meta["cascade"]["keyframes"]
    assert [k["frame"] for k in keys] == [k["frame"] for k in meta0["cascade"]["keyframes"]] == [0, 16, 24, 32]
    assert "refined" not in keys[0] and [k["refined"]["prompt"] for k in keys[1:]] == [
        "a woman, she smiles", "a woman, she frowns", "a woman, she frowns"]  # the shot of the sub-clip each starts

    def png(path):
        return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)

    for k in keys[1:]:
        p = k["frame"]
        blueprint = png(stages / "keyframes" / f"blueprint_{p:06d}.png")
        assert np.array_equal(blueprint, png(stages0 / "keyframes" / f"key_{p:06d}.png"))  # the frame chosen
        assert not np.array_equal(blueprint, png(stages / "keyframes" / f"key_{p:06d}.png"))
        assert np.array_equal(faces[p], png(stages / "keyframes" / f"key_{p:06d}.png"))  # sub-clips start on it
    assert not (stages0 / "keyframes" / "blueprint_000016.png").exists()
    with pytest.raises(ValueError, match="keyframe_refine"):
        CascadeConfig(keyframe_refine=1.5)


class StubScorer:
    """Faces marked by their mean value: identity = value / 255, no face below 10."""

    def score(self, face, neighbours, reference_face, config):
        v = float(face.mean())
        return {"identity": v / 255, "sharpness": 0.0, "motion": 0.0, "score": v / 255 if v >= 10 else None}


def test_keyframes_are_the_best_scoring_candidates_with_a_face():
    blueprint = np.zeros((7, 4, 4, 3), np.uint8)
    blueprint[[1, 2, 3, 4, 5]] = np.array([50, 200, 100, 60, 8])[:, None, None, None]  # frames 8..40
    keys = choose_keyframes(blueprint, 8, [0, 16, 40], StubScorer(), blueprint[0], CascadeConfig(), 8, 56)
    assert [k["frame"] for k in keys] == [0, 16, 32]  # 16: best of 8/16/24; 40: 32 has a face, 40 none, 48 past the end
    assert keys[2]["reason"] == "best score"
    keys = choose_keyframes(blueprint, 8, [0, 40], StubScorer(), blueprint[0],
                            CascadeConfig(keyframe_search=0), 8, 56)
    assert keys[1]["frame"] == 40 and keys[1]["reason"] == "no face in any candidate"


def test_colour_match_moves_mean_and_spread_to_the_keyframes():
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 80, (5, 8, 8, 3)).astype(np.uint8)
    target = rng.integers(100, 200, (8, 8, 3)).astype(np.uint8)
    out = colour_match(clip, [target])
    assert np.allclose(out.reshape(-1, 3).mean(0), target.reshape(-1, 3).mean(0), atol=1.0)
    assert np.allclose(out.reshape(-1, 3).std(0), target.reshape(-1, 3).std(0), rtol=0.05)


def test_cli_generates_through_the_cascade_with_progress_per_stage(inputs):
    from typer.testing import CliRunner

    from kling.cli import _register_all, app

    root, _, image, wav = inputs
    _register_all()
    story = root / "story.json"
    story.write_text(json.dumps({"storyline": {"global_prompt": "a woman", "duration_s": 2.0, "shots": [
        {"t_start": 0.0, "t_end": 2.0, "prompt": "she talks"}]}}))
    res = CliRunner().invoke(app, ["generate", "--image", str(image), "--audio", str(wav), "--out", str(root / "cli.mp4"),
                                   "--checkpoint", str(root / "run"), "--steps", "1", "--cascade", "on",
                                   "--storyline", str(story)])
    assert res.exit_code == 0, res.output
    for stage in ("[storyline]", "[blueprint]", "[keyframes]", "[subclips]", "[transitions]", "[stitch]"):
        assert stage in res.output
    meta = json.loads((root / "cli.json").read_text())
    assert meta["cascade"]["subclips"][0]["prompt"] == "a woman, she talks" and (root / "cli.stages" / "stages.json").is_file()
    res = CliRunner().invoke(app, ["generate", "--image", str(image), "--audio", str(wav), "--out", str(root / "x.mp4"),
                                   "--checkpoint", str(root / "run"), "--cascade", "sometimes"])
    assert res.exit_code == 2 and "auto, on or off" in res.output
    low = ["generate", "--image", str(image), "--audio", str(wav), "--out", str(root / "low_cli.mp4"), "--checkpoint",
           str(root / "run"), "--steps", "1", "--cascade", "on", "--blueprint-side", "32"]
    res = CliRunner().invoke(app, low)
    assert res.exit_code == 2 and "set keyframe_refine" in res.output
    res = CliRunner().invoke(app, low + ["--keyframe-refine", "0.5"])  # this checkpoint was trained at 64 px only
    assert res.exit_code == 1 and "trained at sides [64], not 32" in res.output


def test_a_cascade_system_follows_each_case_storyline_and_regenerates_when_it_changes(inputs):
    from types import SimpleNamespace

    from kling.generate.system import SystemConfig, generate_cases

    root, _, image, wav = inputs
    cases = [SimpleNamespace(id="talk", reference=[image], audio=wav, instruction="a woman talks")]
    system = SystemConfig.from_profile({"steps": 1, "anchor": "reference", "cascade": {"subclip_windows": 2}})
    assert system.cascade == CascadeConfig(subclip_windows=2) and system.generate.steps == 1
    story = {"global_prompt": "a woman", "duration_s": 2.0, "shots": [{"t_start": 0.0, "t_end": 2.0, "prompt": "she talks"}]}
    first = generate_cases(root / "run", cases, root / "sys", system, storylines={"talk": story})
    assert first["talk"]["cascade"]["subclips"][0]["prompt"] == "a woman, she talks"
    assert generate_cases(root / "run", cases, root / "sys", system, storylines={"talk": story})["talk"]["reused"]
    story["shots"][0]["prompt"] = "she sings"
    again = generate_cases(root / "run", cases, root / "sys", system, storylines={"talk": story})
    assert not again["talk"].get("reused") and again["talk"]["cascade"]["subclips"][0]["prompt"] == "a woman, she sings"
    # a system that ignores storylines is not regenerated when they change
    plain = SystemConfig.from_profile({"steps": 1, "cascade": {"subclip_windows": 2}, "storyline": False})
    generate_cases(root / "run", cases, root / "plain", plain, storylines={"talk": story})
    assert generate_cases(root / "run", cases, root / "plain", plain, storylines={})["talk"]["reused"]


def test_super_resolution_stage_upscales_the_stitched_faces_in_chunks(inputs, tmp_path):
    from kling.models.registry import get_super_resolution_size
    from kling.models.super_resolution import load_super_resolution, save_super_resolution, upscale_frames
    from kling.models.super_resolution import VideoSuperResolution

    root, pipe, image, wav = inputs
    torch.manual_seed(0)
    net = VideoSuperResolution(get_super_resolution_size("tiny"))
    torch.nn.init.normal_(net.tail.weight, std=0.05)
    up = load_super_resolution(save_super_resolution(tmp_path / "sr", net, {"step": 0}))
    with_sr = CascadeConfig(subclip_windows=2, transitions=False, super_resolution=True)
    with pytest.raises(ValueError, match="super-resolution stage needs a trained network"):
        generate_clip(pipe, image, wav, root / "no_net.mp4", config=FAST, cascade=with_sr)
    meta = generate_clip(pipe, image, wav, root / "sr.mp4", prompt="a woman talks", config=FAST, cascade=with_sr,
                         upscaler=up)
    stages = root / "sr.stages"
    faces, sharp = np.load(stages / "faces.npy"), np.load(stages / "faces_sr.npy")
    assert faces.shape == (50, 64, 64, 3) and sharp.shape == (50, 128, 128, 3)
    whole = np.zeros_like(sharp)
    upscale_frames(up.model, faces, whole, chunk=len(faces))  # one pass over the whole clip
    assert np.abs(whole.astype(int) - sharp).max() <= 1
    assert meta["cascade"]["super_resolution"] == {"checkpoint": str(up.folder), "sha256": up.sha256, "side": 128}
    _, plain, _ = run(inputs, "no_sr", cascade=CascadeConfig(subclip_windows=2, transitions=False))
    assert np.array_equal(plain, faces)  # the stage only adds detail after the stages before it
    assert not np.array_equal(read_frames(meta["output"]), read_frames(root / "no_sr.mp4"))
    # a system with the stage names its network: a clip is regenerated when the network changes
    from types import SimpleNamespace

    from kling.generate.system import SystemConfig, case_fingerprint, generate_cases

    case = SimpleNamespace(id="talk", reference=[image], audio=wav, instruction="")
    system = SystemConfig.from_profile({"steps": 1, "cascade": {"super_resolution": True}})
    prints = {case_fingerprint("ckpt", case, "", system.generate, system.cascade, None, sha) for sha in ("a", "b")}
    assert len(prints) == 2
    with pytest.raises(FileNotFoundError, match="super-resolution"):
        generate_cases(root / "run", [case], tmp_path / "sys", system)


def test_cases_in_parallel_processes_give_the_serial_videos_bit_for_bit(inputs):
    """generate_cases(workers=2): two cases at once, one process each (a cascade's sub-clips serial inside it);
    with the same `threads` the files are the serial run's, byte for byte, and a re-run keeps them."""
    from types import SimpleNamespace

    from kling.generate.system import SystemConfig, generate_cases

    root, _, image, wav = inputs
    cases = [SimpleNamespace(id=f"talk{i}", reference=[image], audio=wav, instruction=p)
             for i, p in enumerate(["a woman talks", "a woman smiles"])]
    system = SystemConfig.from_profile({"steps": 1, "anchor": "reference", "cascade": {"subclip_windows": 2}})
    serial = generate_cases(root / "run", cases, root / "cases_serial", system, threads=1)
    parallel = generate_cases(root / "run", cases, root / "cases_parallel", system, workers=2, threads=1)
    for c in cases:
        assert (root / "cases_serial" / f"{c.id}.mp4").read_bytes() == (root / "cases_parallel" / f"{c.id}.mp4").read_bytes()
        assert parallel[c.id]["torch_threads"] == serial[c.id]["torch_threads"] == 1
    assert parallel["talk0"]["fingerprint"] == serial["talk0"]["fingerprint"]  # workers is not in it, threads are
    assert all(m["reused"] for m in generate_cases(root / "run", cases, root / "cases_parallel", system, workers=2,
                                                   threads=1).values())


def test_a_lower_blueprint_side_plans_small_and_its_keyframes_are_upscaled_by_the_model(inputs):
    from kling.train.avatar import AvatarTrainConfig, initial_checkpoint

    root, pipe, image, wav = inputs
    low = CascadeConfig(subclip_windows=2, transitions=False, blueprint_side=32, keyframe_refine=0.5)
    with pytest.raises(ValueError, match="trained at sides \\[64\\], not 32"):  # this model never saw 32 px
        generate_clip(pipe, image, wav, root / "refused.mp4", config=FAST, cascade=low)
    # the same weights (seeded), recorded as trained at both sides
    two = AvatarPipeline(load_checkpoint(initial_checkpoint(root / "vae", root / "two", AvatarTrainConfig(sides=(32, 64)))))
    assert two.trained_sides() == (32, 64) and pipe.trained_sides() == (64,)
    meta = generate_clip(two, image, wav, root / "low.mp4", config=FAST, cascade=low)
    stages, record = root / "low.stages", meta["cascade"]
    assert record["blueprint_side"] == 32 and read_frames(stages / "blueprint.mp4", fps=25 / 8).shape[1:3] == (32, 32)
    assert read_frames(meta["output"]).shape == (50, 200, 300, 3)
    faces = np.load(stages / "faces.npy")
    for k in record["keyframes"][1:]:
        p = k["frame"]
        assert cv2.imread(str(stages / "keyframes" / f"blueprint_{p:06d}.png")).shape == (32, 32, 3)
        key = cv2.cvtColor(cv2.imread(str(stages / "keyframes" / f"key_{p:06d}.png")), cv2.COLOR_BGR2RGB)
        assert key.shape == (64, 64, 3) and np.array_equal(faces[p], key)  # the sub-clips start on the upscaled one
    with pytest.raises(ValueError, match="upscaled by the model"):
        CascadeConfig(blueprint_side=32)
