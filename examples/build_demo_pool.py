"""Rebuild ``examples/demo_pool/`` from the real public media in ``../shared/data/real``.

Maintainers only: the demo pool is committed, so users never run this. It copies media
byte-for-byte (except the two frame lists, which are decoded from videos too large to
ship whole), writes the pool files in four input formats with **real** annotations only,
and prints a size summary. Every file's origin and licence is in ``examples/ATTRIBUTION.md``.

Usage: python examples/build_demo_pool.py [--real ../shared/data/real]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
POOL = HERE / "demo_pool"

LF = "hiyouga__LLaMA-Factory/data"
DJ = "modelscope__data-juicer"
MMA = "open-mmlab__mmaction2/tests/data"

#: (source under real/, destination under demo_pool/) copied byte-for-byte.
COPIES = [
    (f"{LF}/mllm_demo.json", "llamafactory_image_qa.json"),
    (f"{LF}/mllm_video_demo.json", "llamafactory_video_qa.json"),
    (f"{LF}/mllm_demo_data/1.jpg", "mllm_demo_data/1.jpg"),
    (f"{LF}/mllm_demo_data/2.jpg", "mllm_demo_data/2.jpg"),
    (f"{LF}/mllm_demo_data/3.jpg", "mllm_demo_data/3.jpg"),
    (f"{LF}/mllm_demo_data/1.mp4", "mllm_demo_data/1.mp4"),
    (f"{LF}/mllm_demo_data/2.avi", "mllm_demo_data/2.avi"),
    (f"{LF}/mllm_demo_data/3.mp4", "mllm_demo_data/3.mp4"),
    (f"{LF}/mllm_demo_data/4.mp4", "mllm_demo_data/4.mp4"),
    (f"{DJ}/tests/ops/data/video1.mp4", "media/data_juicer/video1.mp4"),
    (f"{DJ}/tests/ops/data/img1.png", "media/data_juicer/img1.png"),
    (f"{DJ}/tests/ops/data/img2.jpg", "media/data_juicer/img2.jpg"),
    (f"{DJ}/tests/ops/data/img3.jpg", "media/data_juicer/img3.jpg"),
    (f"{MMA}/test.mp4", "media/mmaction2/test.mp4"),
]

#: Videos shipped as frame lists (16 uniformly sampled frames, 320 px wide JPEG).
FRAME_LISTS = [
    (f"{DJ}/tests/ops/data/video2.mp4", "media/data_juicer/video2_frames"),
    (f"{DJ}/tests/ops/data/video3.mp4", "media/data_juicer/video3_frames"),
]
N_FRAMES = 16
FRAME_WIDTH = 320

DESCRIBE_VIDEO = "Describe the video briefly."
DESCRIBE_IMAGE = "Describe the image briefly."


def _extract_frames(src: Path, dst: Path) -> list[str]:
    """Decode ``src`` once, keep N_FRAMES uniformly spaced frames, save as JPEG; return names."""
    import av
    from PIL import Image

    with av.open(str(src)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    n = len(frames)
    idx = [round(i * (n - 1) / (N_FRAMES - 1)) for i in range(N_FRAMES)]
    dst.mkdir(parents=True, exist_ok=True)
    names = []
    for j, i in enumerate(idx):
        im = Image.fromarray(frames[i])
        h = round(im.height * FRAME_WIDTH / im.width)
        im = im.resize((FRAME_WIDTH, h), Image.Resampling.LANCZOS)
        name = f"{j:03d}.jpg"
        im.save(dst / name, quality=85, optimize=True)
        names.append(name)
    return names


def _conv(q: str, a: str, token: str) -> list[dict]:
    return [{"from": "human", "value": f"{token}\n{q}"}, {"from": "gpt", "value": a}]


def build(real: Path) -> None:
    """Write the demo pool under examples/demo_pool from ``real`` (raises FileNotFoundError)."""
    if POOL.exists():
        shutil.rmtree(POOL)
    for src, dst in COPIES:
        out = POOL / dst
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(real / src, out)

    frame_lists = {}
    for src, dst in FRAME_LISTS:
        names = _extract_frames(real / src, POOL / dst)
        frame_lists[Path(src).stem] = [f"{dst}/{n}" for n in names]

    # LLaVA-Video JSONL: video files and frame lists, real annotations only.
    audio_demo = json.loads((real / f"{LF}/mllm_video_audio_demo.json").read_text())
    dj_videos = [json.loads(x) for x in (real / f"{DJ}/demos/data/demo-dataset-videos.jsonl").read_text().splitlines() if x.strip()]
    mma = json.loads((real / "open-mmlab__mmaction2/tests/data/annotations/video_text_test_list.json").read_text())
    rows = []
    # LLaMA-Factory mllm_video_audio_demo.json rows 1 and 3 (row 2 needs the audio track).
    for k in (0, 2):
        r = audio_demo[k]
        q = r["messages"][0]["content"].replace("<video>", "").replace("<audio>", "").strip()
        rows.append({"id": f"lf_audio_demo_{k + 1}", "video_id": "lf_4", "video": "mllm_demo_data/4.mp4",
                     "conversations": _conv(q, r["messages"][1]["content"], "<video>"),
                     "data_source": "llamafactory_mllm_video_audio_demo"})
    for i, cap in enumerate(mma["test.mp4"]):
        rows.append({"id": f"mmaction2_test_{i + 1}", "video_id": "mmaction2_test", "video": "media/mmaction2/test.mp4",
                     "conversations": _conv(DESCRIBE_VIDEO, cap, "<video>"),
                     "data_source": "mmaction2_video_text_test"})
    for i, r in enumerate(dj_videos):
        stem = Path(r["videos"][0]).stem
        cap = r["text"].replace("<__dj__video>", "").strip()
        row = {"id": f"dj_{stem}_{i + 1}", "video_id": f"dj_{stem}",
               "conversations": _conv(DESCRIBE_VIDEO, cap, "<video>"), "data_source": "data_juicer_demo_videos"}
        if stem in frame_lists:
            row["images"] = frame_lists[stem]
        else:
            row["video"] = f"media/data_juicer/{stem}.mp4"
        rows.append(row)
    (POOL / "llava_video.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")

    # LLaVA JSON: data-juicer image captions.
    dj_images = [json.loads(x) for x in (real / f"{DJ}/demos/data/demo-dataset-images.jsonl").read_text().splitlines() if x.strip()]
    llava = []
    for r in dj_images:
        name = Path(r["images"][0]).name
        cap = r["text"].replace("<__dj__image>", "").strip()
        llava.append({"id": f"dj_{Path(name).stem}", "image": f"media/data_juicer/{name}",
                      "conversations": _conv(DESCRIBE_IMAGE, cap, "<image>"),
                      "data_source": "data_juicer_demo_images"})
    (POOL / "llava_image_captions.json").write_text(json.dumps(llava, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    # OpenAI content-list JSONL: LLaMA-Factory v1_multimodal_demo.jsonl lines 1-3 (paths re-rooted).
    lines = (real / f"{LF}/v1_multimodal_demo.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    (POOL / "openai_content.jsonl").write_text(
        "".join(x.replace('"data/mllm_demo_data/', '"mllm_demo_data/') + "\n" for x in lines), encoding="utf-8")

    total = sum(p.stat().st_size for p in POOL.rglob("*") if p.is_file())
    print(json.dumps({"files": sum(1 for p in POOL.rglob("*") if p.is_file()), "bytes": total}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", type=Path, default=HERE.parent.parent / "shared" / "data" / "real")
    build(ap.parse_args().real.resolve())
