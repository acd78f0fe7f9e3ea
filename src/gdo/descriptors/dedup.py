"""Near-duplicate groups: perceptual hashes of the visual input plus exact text duplicates.

Perceptual hash (pHash, the algorithm of ``imagehash.phash`` computed with OpenCV): gray frame,
``INTER_AREA`` resize to 32x32, 2-D DCT, the top-left 8x8 coefficients compared to their median
-> 64 bits. A video (file or frame list) is hashed on 4 of its 8 motion frames (positions
0, 2, 5, 7 by the uniform rule), so its signature is 4 x 64 bits; an image candidate's signature is
the hashes of its images (at most 4).

Two media items are near-duplicates when they have the same kind ("video" covers video files and
frame lists, "image") and the same number of hashes, and the total Hamming distance between
their aligned hashes is at most ``floor(max_bits_per_hash * n_hashes)`` (default 6 bits per
64-bit hash, i.e. <10%). Candidate pairs are found with banded LSH (8-bit bands): two
signatures within the threshold always share one band exactly, so recall is complete, and only
pairs sharing a band are verified.

``dup_group`` (section "near-duplicates" of docs/DESIGN.md): connected components over
candidates, linking (a) candidates on the same or near-duplicate visual input and (b) candidates
with the same question and answer text (case-folded, whitespace collapsed). The id is
``"dup-" + stable_hash(uid of the component's first candidate in pool order)``; every candidate
has one (a singleton's group contains only itself), and ``dup_size`` gives the group size.
All candidates asking about one video therefore share a group: ``dup_group`` marks samples that
share visual content or text, not identical samples.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Sequence

import numpy as np

from gdo.utils.hashing import stable_hash

HASH_FRAME_POS = (0, 2, 5, 7)  # positions among the 8 motion frames (uniform 4-of-8)
MAX_BITS_PER_HASH = 6
_BAND_BITS = 8
_MAX_BUCKET_VERIFY = 256  # a band bucket larger than this is verified against its first members only


def phash(frame: np.ndarray) -> int:
    """64-bit DCT perceptual hash of an RGB (H, W, 3) or gray (H, W) uint8 frame, as an unsigned int."""
    import cv2

    g = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    small = cv2.resize(g, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    d = cv2.dct(small)[:8, :8]
    bits = (d > np.median(d)).flatten()
    return int(np.packbits(bits).view(">u8")[0])


def media_hashes(kind: str, frames: Sequence[np.ndarray]) -> list[int]:
    """Hashes of one media item: 4 frames of a video's 8 motion frames, or up to 4 images."""
    if not frames:
        return []
    if kind in ("video", "frames"):
        if len(frames) >= 8:
            pick = [frames[i] for i in HASH_FRAME_POS]
        else:
            from gdo.descriptors.motion import uniform_indices

            pick = [frames[i] for i in uniform_indices(len(frames), 4)]
    else:
        pick = list(frames[:4])
    return [phash(f) for f in pick]


def hamming(a: Sequence[int], b: Sequence[int]) -> int:
    """Total Hamming distance between two equal-length hash lists."""
    return sum(bin(x ^ y).count("1") for x, y in zip(a, b))


class _DSU:
    def __init__(self, n: int):
        self.p = np.arange(n)

    def find(self, i: int) -> int:
        p = self.p
        root = i
        while p[root] != root:
            root = p[root]
        while p[i] != root:
            p[i], i = root, p[i]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # keep the smaller index as root: components are labelled by their first member
            if ra < rb:
                self.p[rb] = ra
            else:
                self.p[ra] = rb


def near_duplicate_pairs(kinds: Sequence[str], hashes: Sequence[Sequence[int]],
                         max_bits_per_hash: float = MAX_BITS_PER_HASH) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of media items that are near-duplicates (see module doc).

    Args:
        kinds: per item "video" / "frames" / "image".
        hashes: per item a list of 64-bit unsigned ints (empty = not hashable, never matched).
        max_bits_per_hash: allowed Hamming bits per 64-bit hash (must be < 8 for complete recall).

    Returns:
        sorted list of index pairs.
    """
    buckets: dict[tuple, list[int]] = defaultdict(list)
    for i, (k, hs) in enumerate(zip(kinds, hashes)):
        if not hs:
            continue
        fam = "video" if k in ("video", "frames") else "image"
        for fi, h in enumerate(hs):
            for b in range(64 // _BAND_BITS):
                buckets[(fam, len(hs), fi, b, (h >> (b * _BAND_BITS)) & 0xFF)].append(i)
    seen: set[tuple[int, int]] = set()
    out = []
    for members in buckets.values():
        if len(members) < 2:
            continue
        if len(members) <= _MAX_BUCKET_VERIFY:
            cand = ((members[x], members[y]) for x in range(len(members)) for y in range(x + 1, len(members)))
        else:  # a huge bucket (e.g. black frames): verify everyone against a few anchors
            cand = ((a, b) for a in members[:8] for b in members if a != b)
        for a, b in cand:
            key = (a, b) if a < b else (b, a)
            if key in seen:
                continue
            seen.add(key)
            if hamming(hashes[a], hashes[b]) <= int(max_bits_per_hash * len(hashes[a])):
                out.append(key)
    return sorted(set(out))


def _norm_text(s: str | None) -> str:
    return re.sub(r"\s+", " ", (s or "")).strip().casefold()


def dup_groups(uids: Sequence[str], media_keys: Sequence[str | None], questions: Sequence[str],
               answers: Sequence[str], item_keys: Sequence[str], item_kinds: Sequence[str],
               item_hashes: Sequence[Sequence[int]],
               max_bits_per_hash: float = MAX_BITS_PER_HASH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Near-duplicate groups of candidates (see module doc).

    Args:
        uids, media_keys, questions, answers: per candidate, in pool order (N).
        item_keys, item_kinds, item_hashes: per distinct media item (M): key, kind, hash list.

    Returns:
        (dup_group object array (N,), dup_size int64 array (N,), media_group object array (N,)
        -- the group over visual links only, null for candidates without media).
    """
    n = len(uids)
    dsu = _DSU(n)
    media_dsu = _DSU(n)
    by_key: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(media_keys):
        if k is not None:
            by_key[k].append(i)
    # same media item
    for members in by_key.values():
        for j in members[1:]:
            dsu.union(members[0], j)
            media_dsu.union(members[0], j)
    # near-duplicate media items
    for a, b in near_duplicate_pairs(item_kinds, item_hashes, max_bits_per_hash):
        ca, cb = by_key.get(item_keys[a]), by_key.get(item_keys[b])
        if ca and cb:
            dsu.union(ca[0], cb[0])
            media_dsu.union(ca[0], cb[0])
    # exact text duplicates
    first_text: dict[str, int] = {}
    for i, (q, a) in enumerate(zip(questions, answers)):
        t = _norm_text(q) + "\x1f" + _norm_text(a)
        j = first_text.setdefault(t, i)
        if j != i:
            dsu.union(j, i)
    roots = np.array([dsu.find(i) for i in range(n)], dtype=np.int64)
    sizes = np.bincount(roots, minlength=n)[roots] if n else np.zeros(0, np.int64)
    ids = np.array(["dup-" + stable_hash(uids[r]) for r in roots], dtype=object)
    mroots = [media_dsu.find(i) for i in range(n)]
    mids = np.array([None if media_keys[i] is None else "med-" + stable_hash(uids[r])
                     for i, r in enumerate(mroots)], dtype=object)
    return ids, sizes.astype(np.int64), mids
