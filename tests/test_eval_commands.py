"""`vidiff eval` end to end on tiny sets: --videos with a manifest, --model with a stand-in pipeline
(ground-truth oracle), quality vs steps, quick_eval, and clear errors."""

import json
from types import SimpleNamespace

import pytest
import torch

from vidiff.commands import eval as commands
from vidiff.data.shapes import MovingShapes
from vidiff.data.video_io import write_video
from vidiff.eval.evaluate import quick_eval
from vidiff.eval.runner import EVAL_DATA_SEED


class OraclePipeline(torch.nn.Module):
    """Returns the real evaluation clip for each prompt; with fewer than 4 steps the motion freezes,
    so quality visibly depends on steps."""

    num_frames, size = 16, 32
    baked_cfg = None

    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(
            model=SimpleNamespace(frame_conditioning=False),
            diffusion=SimpleNamespace(steps=8, sampler="euler", cfg=1.0, noise_correlation=0.0),
            video=SimpleNamespace(fps=8),
        )
        self.lookup, self.noise_correlations = {}, []
        for split in ("train", "heldout"):
            ds = MovingShapes(16, split=split, seed=EVAL_DATA_SEED)
            for i in range(16):
                it = ds[i]
                self.lookup.setdefault(it["caption"], it["video"])

    def generate(self, prompts, seeds, *, steps=None, sampler=None, cfg=None, known_frames=None,
                 frame_mask=None, noise_correlation=None, batch_size=16):  # fmt: skip
        assert len(prompts) == len(seeds)
        self.noise_correlations.append(noise_correlation)
        v = torch.stack([self.lookup[p] for p in prompts])
        if (steps or self.config.diffusion.steps) < 4:
            v = v[:, :, :1].expand_as(v).clone()
        return v


def test_eval_model_with_steps(tmp_path, monkeypatch):
    monkeypatch.setattr(commands, "load_pipeline", lambda model, device: OraclePipeline())
    out = tmp_path / "out"
    (tmp_path / "oracle").mkdir()
    m = commands.evaluate(
        model=str(tmp_path / "oracle"), num_videos=3, steps=[2, 8], out=str(out), record=True
    )
    assert [r["steps"] for r in m["runs"]] == [2, 8]
    figures = json.loads((tmp_path / "oracle" / "eval.json").read_text())
    assert [r["setting"] for r in figures["rows"]] == [
        "2 euler steps, cfg 1.0",
        "8 euler steps, cfg 1.0",
    ]
    assert figures["rows"][1]["adherence"] == 1.0 and figures["rows"][1]["adherence_heldout"] == 1.0
    assert figures["rows"][0]["adherence"] == 0.0 and figures["rows"][1]["num_videos"] == 3
    assert "--steps 2 8" in figures["command"] and "--cfg 1.0" in figures["command"]
    good, frozen = m["runs"][1]["splits"], m["runs"][0]["splits"]
    assert good["train"]["adherence"] == 1.0 and good["heldout"]["adherence"] == 1.0
    assert frozen["train"]["adherence"] == 0.0
    assert m["adherence"] == 1.0 and m["adherence_heldout"] == 1.0
    assert m["real"]["train"]["adherence"] == 1.0
    # N and the real-vs-real floor are reported; the oracle's FD equals the floor's scale.
    assert good["train"]["n"] == 3 and "fd_floor" in good["train"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["runs"][1]["splits"]["heldout"]["adherence"] == 1.0
    html = (out / "report.html").read_text()
    assert "videos/train_0000.gif" in html and "a " in html and "quality_vs_steps.png" in html
    for name in (
        "quality_vs_steps.png",
        "attributes.png",
        "videos/heldout_0002.gif",
        "videos/train_0000.mp4",
    ):
        assert (out / name).is_file(), name


def test_a_baked_guidance_student_is_recorded_as_guided(tmp_path, monkeypatch):
    """A distilled student samples at cfg 1 with its guidance in the weights: its figures say
    "cfg W baked", not "cfg 1.0", and the recorded command passes no --cfg it would refuse."""

    class Student(OraclePipeline):
        baked_cfg = 2.0

    monkeypatch.setattr(commands, "load_pipeline", lambda model, device: Student())
    (tmp_path / "student").mkdir()
    commands.evaluate(
        model=str(tmp_path / "student"), num_videos=2, out=str(tmp_path / "out"), record=True
    )
    figures = json.loads((tmp_path / "student" / "eval.json").read_text())
    assert figures["rows"][0]["setting"] == "8 euler steps, cfg 2 baked"
    assert "--cfg" not in figures["command"]
    assert "cfg 2 baked" in (tmp_path / "out" / "report.html").read_text()


def test_a_frame_noise_correlation_reaches_the_sampler_and_the_record(tmp_path, monkeypatch):
    """--noise-correlation is passed to every generate call, and the recorded figures say so (the
    setting and a command that reproduces them); without it the model's default is recorded."""
    pipe = OraclePipeline()
    pipe.config.diffusion.noise_correlation = 0.25  # the model's default
    monkeypatch.setattr(commands, "load_pipeline", lambda model, device: pipe)
    (tmp_path / "m").mkdir()
    m = commands.evaluate(
        model=str(tmp_path / "m"), num_videos=2, noise_correlation=0.1, out=str(tmp_path / "a"),
        record=True,
    )  # fmt: skip
    assert pipe.noise_correlations == [0.1, 0.1] and m["noise_correlation"] == 0.1
    figures = json.loads((tmp_path / "m" / "eval.json").read_text())
    assert figures["rows"][0]["setting"] == "8 euler steps, cfg 1.0, frame noise correlation 0.1"
    assert "--noise-correlation 0.1 " in figures["command"]
    m = commands.evaluate(model=str(tmp_path / "m"), num_videos=2, out=str(tmp_path / "b"))
    assert pipe.noise_correlations[2:] == [None, None] and m["noise_correlation"] == 0.25


def test_eval_compare(tmp_path, monkeypatch, capsys):
    from vidiff.commands.compare import compare

    monkeypatch.setattr(commands, "load_pipeline", lambda model, device: OraclePipeline())
    a, b, other = tmp_path / "a", tmp_path / "b", tmp_path / "other"
    commands.evaluate(model=str(tmp_path), num_videos=3, steps=[2, 8], out=str(a))
    commands.evaluate(model=str(tmp_path), num_videos=3, steps=[4], sampler="ddim", out=str(b))
    only = commands.evaluate(
        model=str(tmp_path), num_videos=3, splits=["heldout"], out=str(tmp_path / "h")
    )
    assert list(only["runs"][0]["splits"]) == ["heldout"]
    assert only["videos"] == [v for v in json.loads((b / "metrics.json").read_text())["videos"]
                              if v["split"] == "heldout"]  # fmt: skip
    commands.evaluate(model=str(tmp_path), num_videos=3, steps=[4], seed=1, out=str(other))
    capsys.readouterr()
    res = compare(
        str(a), str(b / "metrics.json"), labels=["teacher", "student"], out=str(tmp_path / "c")
    )
    got = {(r["label"], r["steps"], r["split"]): r["adherence"] for r in res["rows"]}
    assert got == {
        ("teacher", 2, "train"): 0.0, ("teacher", 2, "heldout"): 0.0,
        ("teacher", 8, "train"): 1.0, ("teacher", 8, "heldout"): 1.0,
        ("student", 4, "train"): 1.0, ("student", 4, "heldout"): 1.0,
    }  # fmt: skip
    md = (tmp_path / "c" / "compare.md").read_text()
    assert "| teacher | 8 | train | 100.0% |" in md and md in capsys.readouterr().out
    assert (tmp_path / "c" / "adherence_vs_steps.png").is_file()
    assert "student · 4 steps" in (tmp_path / "c" / "report.html").read_text()
    with pytest.raises(ValueError, match="different prompt sets"):
        compare(str(a), str(other), out=str(tmp_path / "d"))
    with pytest.raises(ValueError, match="2 names for 1"):
        compare(str(a), labels=["x", "y"], out=str(tmp_path / "d"))
    with pytest.raises(FileNotFoundError, match="no metrics.json"):
        compare(str(tmp_path / "nowhere"), out=str(tmp_path / "d"))


def _export(folder, clips, split=None):
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (video, caption) in enumerate(clips):
        write_video(video, folder / f"{i:03d}.gif", fps=8)
        row = {"path": f"{i:03d}.gif", "caption": caption}
        if split:
            row["split"] = split
        rows.append(json.dumps(row))
    (folder / "manifest.jsonl").write_text("\n".join(rows) + "\n")


def test_eval_videos_folder(tmp_path):
    items = [MovingShapes(2, split=s, seed=3)[i] for s in ("train", "heldout") for i in range(2)]
    _export(tmp_path / "gt", [(it["video"], it["caption"]) for it in items])
    m = commands.evaluate(videos=str(tmp_path / "gt"), out=str(tmp_path / "o1"))
    assert set(m["splits"]) == {"train", "heldout"}  # split inferred from the held-out pairs
    assert m["adherence"] == 1.0 and m["adherence_heldout"] == 1.0
    assert m["flicker_median"] < 1e-3
    # The same clips frozen: direction fails, so adherence collapses.
    _export(
        tmp_path / "bad",
        [(it["video"][:, :1].expand_as(it["video"]), it["caption"]) for it in items],
    )
    bad = commands.evaluate(
        videos=str(tmp_path / "bad"),
        manifest=str(tmp_path / "bad" / "manifest.jsonl"),
        out=str(tmp_path / "o2"),
    )
    assert bad["adherence"] == 0.0 and bad["direction_ok"] == 0.0
    assert (tmp_path / "o2" / "report.html").is_file()


def test_quick_eval(monkeypatch):
    pipe = OraclePipeline()
    q = quick_eval(pipe, num_videos=4)
    assert q["adherence"] == 1.0 and q["adherence_heldout"] == 1.0 and "sec_per_video" in q
    assert all(isinstance(v, float) for v in q.values())
    assert quick_eval(pipe, num_videos=4, steps=2)["adherence"] == 0.0
    with pytest.warns(UserWarning, match="folder"):
        assert quick_eval(pipe, dataset="folder") == {}


def test_eval_errors(tmp_path):
    with pytest.raises(ValueError, match="either"):
        commands.evaluate(model="m", videos="v")
    with pytest.raises(ValueError, match="nothing to evaluate"):
        commands.evaluate()
    with pytest.raises(ValueError, match="dataset"):
        commands.evaluate(videos=str(tmp_path), dataset="nope")
    with pytest.raises(FileNotFoundError, match="manifest"):
        commands.evaluate(videos=str(tmp_path), out=str(tmp_path / "o"))
    (tmp_path / "manifest.jsonl").write_text('{"path": "x.gif"}\n')
    with pytest.raises(ValueError, match="caption"):
        commands.evaluate(videos=str(tmp_path), out=str(tmp_path / "o"))
    (tmp_path / "manifest.jsonl").write_text(
        '{"path": "x.gif", "caption": "a red circle moving up"}\n'
    )
    with pytest.raises(FileNotFoundError, match="x.gif"):
        commands.evaluate(videos=str(tmp_path), out=str(tmp_path / "o"))
    with pytest.raises(ValueError, match="missing: no such model folder, and no shipped model"):
        commands.evaluate(model=str(tmp_path / "missing"), out=str(tmp_path / "o"))
    with pytest.raises(ValueError, match="--record"):
        commands.evaluate(videos=str(tmp_path), record=True)
    with pytest.raises(ValueError, match="--splits"):
        commands.evaluate(model="m", splits=["test"])
    with pytest.raises(
        ValueError, match="--steps, --noise-correlation: for sampling a --model only"
    ):
        commands.evaluate(videos=str(tmp_path), steps=[8], noise_correlation=0.1)


def test_distribution_with_fvd_stub():
    from vidiff.eval.runner import distribution, eval_sets

    class Stub(torch.nn.Module):  # stands in for I3D (the real one is tested in test_eval_frechet)
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.cat([x.mean(dim=(2, 3, 4)), x.std(dim=(2, 3, 4))], 1)

    es = eval_sets("shapes", 4, 16, 32)[0]
    same = distribution(es.real, es, i3d=Stub())
    frozen = distribution(es.real[:, :, :1].expand_as(es.real), es, i3d=Stub())
    assert same["fvd"] == pytest.approx(0.0, abs=1e-9) and same["n"] == 4
    assert frozen["fd"] > same["fd"] and "fvd_floor" in frozen
    short = distribution(es.real[:, :, :8], es, i3d=Stub())
    assert "fvd" not in short and "9 frames" in short["fvd_note"]


class ContinuationOracle(torch.nn.Module):
    """Continues BouncingBalls clips perfectly (returns the known real clip) or freezes them."""

    num_frames, size = 16, 32

    def __init__(self, freeze: bool):
        super().__init__()
        self.freeze = freeze
        self.config = SimpleNamespace(
            model=SimpleNamespace(frame_conditioning=True),
            diffusion=SimpleNamespace(steps=8, sampler="euler", cfg=1.0, noise_correlation=0.0),
            video=SimpleNamespace(fps=8),
        )

    def generate(self, prompts, seeds, *, known_frames=None, frame_mask=None, **kwargs):
        assert known_frames is not None and frame_mask[:, :4].all() and not frame_mask[:, 4:].any()
        v = known_frames.clone()
        if self.freeze:
            v[:, :, 4:] = v[:, :, 3:4]
        return v


def test_quick_eval_balls_continuation():
    good = quick_eval(ContinuationOracle(False), num_videos=3, dataset="balls")
    bad = quick_eval(ContinuationOracle(True), num_videos=3, dataset="balls")
    assert good["ade"] < 1.0 and good["count_ok"] > 0.9
    assert bad["ade"] > good["ade"] + 2


def test_eval_progress_bar_counts_batches(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(commands, "load_pipeline", lambda model, device: OraclePipeline())
    capsys.readouterr()
    commands.evaluate(
        model=str(tmp_path), num_videos=3, steps=[8], batch_size=2, out=str(tmp_path / "a")
    )
    assert "6/6" in capsys.readouterr().err  # 3 videos per split, two splits, batches of 2
    commands.evaluate(model=str(tmp_path), num_videos=3, progress=False, out=str(tmp_path / "b"))
    assert capsys.readouterr().err == ""


class RenderPipeline(OraclePipeline):
    """Draws each prompt exactly (one shape, r = 5, from the frame centre at 0.8 px/frame)."""

    def generate(self, prompts, seeds, **kwargs):
        import numpy as np

        from vidiff.data.render import composite, coverage
        from vidiff.data.shapes import COLOURS, DIRECTION_VECTORS, parse_caption

        self.seen = getattr(self, "seen", []) + list(zip(prompts, seeds))  # over all batches
        out = []
        for p in prompts:
            (o,) = parse_caption(p)
            ux, uy = DIRECTION_VECTORS[o["direction"]]
            t = np.arange(self.num_frames) - self.num_frames / 2
            cov = coverage(o["shape"], 16.2 + 0.8 * ux * t, 15.7 + 0.8 * uy * t, 5.0, self.size)
            frames = np.zeros((3, self.num_frames, self.size, self.size), np.float32)
            out.append(torch.from_numpy(composite(frames, cov, COLOURS[o["colour"]])))
        return torch.stack(out)


def test_eval_every_prompt_twice_with_the_geometric_probe(tmp_path, monkeypatch):
    from vidiff.eval.runner import all_shapes_prompts

    pipe = RenderPipeline()
    monkeypatch.setattr(commands, "load_pipeline", lambda model, device: pipe)
    (tmp_path / "m").mkdir()
    m = commands.evaluate(
        model=str(tmp_path / "m"), all_prompts=True, seeds_per_prompt=2, splits=["heldout"],
        out=str(tmp_path / "out"), record=True,
    )  # fmt: skip
    prompts = all_shapes_prompts("heldout")
    assert len(prompts) == 16 and len(all_shapes_prompts("train")) == 68
    assert [p for p, _ in pipe.seen] == [p for p in prompts for _ in range(2)]
    assert len({s for _, s in pipe.seen}) == 32  # every video its own seed
    assert m["num_videos"] == 32 and m["seeds_per_prompt"] == 2
    summ = m["runs"][0]["splits"]["heldout"]
    assert summ["n"] == 32 and summ["adherence_geo"] == 1.0 and summ["geo_shape_ok"] == 1.0
    assert m["real"]["heldout"]["adherence_geo"] == 1.0  # the real clips scored on their captions
    figures = json.loads((tmp_path / "m" / "eval.json").read_text())
    assert "--all-prompts --seeds-per-prompt 2" in figures["command"]
    assert figures["rows"][0]["adherence_geo_heldout"] == 1.0
    html = (tmp_path / "out" / "report.html").read_text()
    assert "adherence (geometric shape)" in html and "geometry reads" in html
    with pytest.raises(ValueError, match="--all-prompts"):
        commands.evaluate(model=str(tmp_path / "m"), seeds_per_prompt=2, out=str(tmp_path / "x"))
    with pytest.raises(ValueError, match="MovingShapes"):
        commands.evaluate(model=str(tmp_path / "m"), dataset="digits", all_prompts=True)
