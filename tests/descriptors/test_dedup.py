"""Near-duplicate groups: perceptual hashes of real clips + exact text duplicates."""

from __future__ import annotations

import numpy as np

from gdo.descriptors.dedup import dup_groups, hamming, media_hashes, near_duplicate_pairs, phash
from gdo.descriptors.motion import load_motion_frames

CLIPS = {
    "llamafactory_3": "hiyouga__LLaMA-Factory/data/mllm_demo_data/3.mp4",
    "videollava_3": "PKU-YuanGroup__Video-LLaVA/videollava/serve/examples/sample_demo_3.mp4",
    "skeleton": "open-mmlab__mmaction2/demo/demo_skeleton.mp4",
    "llamafactory_4": "hiyouga__LLaMA-Factory/data/mllm_demo_data/4.mp4",
    "lion1": "LLaVA-VL__LLaVA-NeXT/playground/demo/examples/lion1_.mp4",
}


def _hashes(real_data):
    out = {}
    for name, rel in CLIPS.items():
        fr, _ = load_motion_frames("video", [str(real_data / rel)])
        out[name] = media_hashes("video", fr)
    return out


def test_two_encodings_share_group_unrelated_do_not(real_data):
    h = _hashes(real_data)
    assert all(len(v) == 4 for v in h.values())
    assert hamming(h["llamafactory_3"], h["videollava_3"]) <= 24
    names = list(CLIPS)
    # candidates: one QA per clip, different texts; two QA on the skeleton clip
    uids = [f"vv::{n}::t0" for n in names] + ["vv::skeleton::t1"]
    mkeys = names + ["skeleton"]
    qs = [f"question {i}" for i in range(len(uids))]
    ans = [f"answer {i}" for i in range(len(uids))]
    g, size, mg = dup_groups(uids, mkeys, qs, ans, names, ["video"] * len(names), [h[n] for n in names])
    grp = dict(zip(uids, g))
    assert grp["vv::llamafactory_3::t0"] == grp["vv::videollava_3::t0"]
    others = {grp[f"vv::{n}::t0"] for n in ("skeleton", "llamafactory_4", "lion1")}
    assert len(others) == 3 and grp["vv::llamafactory_3::t0"] not in others
    assert grp["vv::skeleton::t0"] == grp["vv::skeleton::t1"]  # same video
    assert dict(zip(uids, size))["vv::llamafactory_3::t0"] == 2
    # the group id is named after the first member in pool order, stable across calls
    g2, _, _ = dup_groups(uids, mkeys, qs, ans, names, ["video"] * len(names), [h[n] for n in names])
    assert list(g) == list(g2)
    assert grp["vv::videollava_3::t0"].startswith("dup-")


def test_text_duplicates_group_and_media_group_ignores_text():
    uids = ["a", "b", "c", "d"]
    g, size, mg = dup_groups(uids, [None, None, None, None],
                             ["What is it?", "what  is it?", "Other", "What is it?"],
                             ["A cat.", "a cat.", "A cat.", "A dog."], [], [], [])
    assert g[0] == g[1] and g[2] != g[0] and g[3] != g[0]
    assert list(size) == [2, 2, 1, 1]
    assert all(m is None for m in mg)


def test_lsh_recall_is_complete():
    rng = np.random.default_rng(0)
    base = [[int(x) for x in rng.integers(0, 2**63, size=4, dtype=np.int64)] for _ in range(60)]
    hashes, kinds = [], []
    for b in base:
        hashes.append(b)
        flips = rng.choice(256, size=24, replace=False)  # exactly at the threshold (6 bits/hash)
        c = list(b)
        for f in flips:
            c[f // 64] ^= 1 << int(f % 64)
        hashes.append(c)
        kinds += ["video", "video"]
    pairs = set(near_duplicate_pairs(kinds, hashes))
    for i in range(60):
        assert (2 * i, 2 * i + 1) in pairs
    assert all(b - a == 1 and a % 2 == 0 for a, b in pairs)  # random unrelated hashes never match


def test_phash_robust_to_reencode_not_to_content():
    rng = np.random.default_rng(1)
    import cv2

    img = cv2.GaussianBlur((rng.random((180, 320, 3)) * 255).astype(np.uint8), (0, 0), 6)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 40])
    jpeg = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    half = cv2.resize(img, (160, 90), interpolation=cv2.INTER_AREA)
    other = cv2.GaussianBlur((rng.random((180, 320, 3)) * 255).astype(np.uint8), (0, 0), 6)
    assert bin(phash(img) ^ phash(jpeg)).count("1") <= 6
    assert bin(phash(img) ^ phash(half)).count("1") <= 6
    assert bin(phash(img) ^ phash(other)).count("1") > 12


def test_dup_group_columns_match_the_python_groups():
    """profile's Arrow/numpy dedup (dup_group_columns via dup_groups) gives the groups of the
    per-candidate Python algorithm it replaced (driver memory, issue 17): unions through shared
    media, near-duplicate items and normalised text, on random pools."""
    import random
    from collections import defaultdict

    from gdo.descriptors.dedup import _DSU, _norm_text, near_duplicate_pairs
    from gdo.utils.hashing import stable_hash

    def reference(uids, mkeys, qs, ans, ik, ikind, ih):
        n = len(uids)
        dsu, mdsu = _DSU(n), _DSU(n)
        by_key = defaultdict(list)
        for i, k in enumerate(mkeys):
            if k is not None:
                by_key[k].append(i)
        for members in by_key.values():
            for j in members[1:]:
                dsu.union(members[0], j)
                mdsu.union(members[0], j)
        for a, b in near_duplicate_pairs(ikind, ih):
            ca, cb = by_key.get(ik[a]), by_key.get(ik[b])
            if ca and cb:
                dsu.union(ca[0], cb[0])
                mdsu.union(ca[0], cb[0])
        first = {}
        for i, (q, a) in enumerate(zip(qs, ans)):
            j = first.setdefault(_norm_text(q) + "\x1f" + _norm_text(a), i)
            if j != i:
                dsu.union(j, i)
        roots = [dsu.find(i) for i in range(n)]
        sizes = [roots.count(r) for r in roots]
        return (["dup-" + stable_hash(uids[r]) for r in roots], sizes,
                [None if mkeys[i] is None else "med-" + stable_hash(uids[mdsu.find(i)]) for i in range(n)])

    rng = random.Random(3)
    texts = ["A  b", "a b", "C", "c ", None, "x\ny", "ß", "ss", "SS"]
    for _ in range(25):
        n, m = rng.randint(0, 300), rng.randint(0, 25)
        items = [f"k{i}" for i in range(m)]
        mk = [rng.choice(items + [None, "zz"]) for _ in range(n)]
        qs = [rng.choice(texts) for _ in range(n)]
        an = [rng.choice(texts) for _ in range(n)]
        base = [rng.getrandbits(64) for _ in range(4)]
        ih = [[h ^ (1 << rng.randint(0, 63)) if rng.random() < 0.5 else rng.getrandbits(64) for h in base]
              if rng.random() < 0.8 else [] for _ in range(m)]
        ikind = [rng.choice(["video", "frames", "image"]) for _ in range(m)]
        uids = [f"u{i}" for i in range(n)]
        g, sz, mg = dup_groups(uids, mk, qs, an, items, ikind, ih)
        want = reference(uids, mk, qs, an, items, ikind, ih)
        assert (list(g), list(sz), list(mg)) == want
