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
    """Near-duplicate groups of candidates (see module doc), on Python sequences.

    Args:
        uids, media_keys, questions, answers: per candidate, in pool order (N).
        item_keys, item_kinds, item_hashes: per distinct media item (M): key, kind, hash list.

    Returns:
        (dup_group object array (N,), dup_size int64 array (N,), media_group object array (N,)
        -- the group over visual links only, null for candidates without media); the values of
        :func:`dup_group_columns`.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = pa.array(list(media_keys), pa.string())
    enc = pc.dictionary_encode(keys)
    code = np.asarray(pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False), np.int64)
    icode = np.asarray(pc.fill_null(pc.index_in(pa.array(list(item_keys), pa.string()), value_set=enc.dictionary),
                                    -1).to_numpy(zero_copy_only=False), np.int64)
    g, sz, mg = dup_group_columns(pa.array(list(uids), pa.string()), code, pa.array(list(questions), pa.string()),
                                  pa.array(list(answers), pa.string()), icode, item_kinds, item_hashes,
                                  max_bits_per_hash)
    return (np.array(g.to_pylist(), dtype=object).reshape(-1), sz,
            np.array(mg.to_pylist(), dtype=object).reshape(-1))


_TEXT_ROWS = 65536  # candidates per batch of normalised texts


def _text_first(questions, answers, n: int) -> np.ndarray:
    """int64 (n,): for each candidate the first candidate (pool order) with the same normalised
    question and answer (:func:`_norm_text`), itself when none is earlier. Texts are compared by
    a 128-bit BLAKE2b digest of the normalised pair (no string per candidate is kept)."""
    import hashlib

    dig = np.empty((n, 2), np.uint64)
    for s in range(0, n, _TEXT_ROWS):
        qs = questions.slice(s, _TEXT_ROWS).to_pylist()
        ans = answers.slice(s, _TEXT_ROWS).to_pylist()
        raw = b"".join(hashlib.blake2b((_norm_text(q) + "\x1f" + _norm_text(a)).encode("utf-8", "surrogatepass"),
                                       digest_size=16).digest() for q, a in zip(qs, ans))
        dig[s:s + len(qs)] = np.frombuffer(raw, np.uint64).reshape(-1, 2)
    order = np.lexsort((dig[:, 1], dig[:, 0]))  # stable: equal texts in pool order
    d = dig[order]
    new = np.ones(n, bool)
    new[1:] = (d[1:] != d[:-1]).any(axis=1)
    run_first = order[np.flatnonzero(new)]
    first = np.empty(n, np.int64)
    first[order] = run_first[np.cumsum(new) - 1]
    return first


def _roots(p: np.ndarray) -> np.ndarray:
    """Root of every element of a union-find parent array (pointer jumping)."""
    r = p.copy()
    while True:
        nxt = r[r]
        if np.array_equal(nxt, r):
            return r
        r = nxt


def _group_ids(prefix: str, uids, roots: np.ndarray, null: np.ndarray | None = None):
    """Arrow strings ``prefix + stable_hash(uid of the root)`` per element (null where ``null``),
    one hash per distinct root."""
    import pyarrow as pa

    keep = np.ones(len(roots), bool) if null is None else ~null
    u, inv = np.unique(roots[keep], return_inverse=True)
    names = [prefix + stable_hash(x) for x in uids.take(pa.array(u, pa.int64())).to_pylist()]
    idx = np.zeros(len(roots), np.int64)
    idx[keep] = inv.reshape(-1)
    return pa.array(names, pa.string()).take(pa.array(idx, pa.int64(), mask=None if null is None else null))


def dup_group_columns(uids, media_code: np.ndarray, questions, answers, item_code: np.ndarray,
                      item_kinds: Sequence[str], item_hashes: Sequence[Sequence[int]],
                      max_bits_per_hash: float = MAX_BITS_PER_HASH):
    """Near-duplicate groups of candidates (see module doc) on Arrow columns: what ``gdo profile``
    runs, holding no Python object per candidate.

    Args:
        uids, questions, answers: Arrow string arrays (N, pool order).
        media_code: int (N,), the candidate's media group (same code = same media item; -1: none).
        item_code: int (M,), the media code of each distinct media item (-1: no candidate has it).
        item_kinds, item_hashes: per item (M): kind, hash list.

    Returns:
        (dup_group Arrow string (N,), dup_size int64 numpy (N,), media_group Arrow string (N,),
        null for candidates without media).
    """
    import pyarrow as pa

    n = len(uids)
    if isinstance(uids, pa.ChunkedArray):
        uids = uids.combine_chunks()
    code = np.asarray(media_code, np.int64)
    # each candidate on a media item points at the item's first candidate: a union-find forest
    # whose roots are the smallest members, as union() keeps them
    has = np.flatnonzero(code >= 0)
    ncode = int(code.max()) + 1 if has.size else 0
    first_of = np.full(max(ncode, 1), -1, np.int64)
    if has.size:
        u, fi = np.unique(code[has], return_index=True)
        first_of[u] = has[fi]
    dsu = _DSU(n)
    if has.size:
        dsu.p[has] = first_of[code[has]]
    media_dsu = _DSU(n)
    media_dsu.p[:] = dsu.p
    icode = np.asarray(item_code, np.int64)
    for a, b in near_duplicate_pairs(item_kinds, item_hashes, max_bits_per_hash):
        ca = first_of[icode[a]] if 0 <= icode[a] < ncode else -1
        cb = first_of[icode[b]] if 0 <= icode[b] < ncode else -1
        if ca >= 0 and cb >= 0:
            dsu.union(int(ca), int(cb))
            media_dsu.union(int(ca), int(cb))
    first = _text_first(questions, answers, n) if n else np.zeros(0, np.int64)
    for i in np.flatnonzero(first != np.arange(n)):
        dsu.union(int(first[i]), int(i))
    roots = _roots(dsu.p)
    sizes = np.bincount(roots, minlength=n)[roots] if n else np.zeros(0, np.int64)
    ids = _group_ids("dup-", uids, roots)
    mids = _group_ids("med-", uids, _roots(media_dsu.p), null=code < 0)
    return ids, sizes.astype(np.int64), mids
