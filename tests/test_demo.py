"""`vidiff demo` writes a gallery page whose videos exist and play."""

import json
import re

from tests.test_pipeline import micro_pipeline
from vidiff.commands.demo import demo


def test_demo_with_a_model(tmp_path):
    model = tmp_path / "model"
    micro_pipeline().save(model)
    figures = {
        "command": "vidiff eval --model M",
        "when": "today",
        "rows": [
            {
                "setting": "8 ddim steps",
                "num_videos": 256,
                "adherence": 0.875,
                "flicker_median": 0.004,
            }
        ],
    }
    (model / "eval.json").write_text(json.dumps(figures))
    index = demo(out=str(tmp_path / "demo"), model=str(model), steps=2)
    page = index.read_text()
    sources = re.findall(r"src='([^']+)'", page)
    assert len(sources) == 10 + 2 + 3  # t2v + held-out, image-to-video, three dataset previews
    for src in sources:
        assert (index.parent / src).stat().st_size > 0
    assert "Held-out compositions" in page and "Image to video and continuation" in page
    assert page.count("probe: ") == 10  # every generated MovingShapes video carries its verdict
    # the recorded figures, in the columns some row holds (no held-out column: none was recorded)
    assert "<td>8 ddim steps</td><td>256</td><td>87.5%</td><td>0.0040</td>" in page


def test_demo_without_a_model_still_shows_the_data(tmp_path, monkeypatch):
    import vidiff.runtime as runtime

    monkeypatch.setattr(runtime, "DEFAULT_MODEL", tmp_path / "absent")
    index = demo(out=str(tmp_path / "demo"))
    assert "No model yet" in index.read_text()
    assert len(list(index.parent.glob("data_*.mp4"))) == 3
