"""The synthetic world of the proof benchmark: coloured shapes on coloured backgrounds.

Every visual is a stack of 28x28 RGB frames (an image is one frame). With the tiny model's patch
14, spatial merge 2 and temporal patch 2, one frame costs one language-model token. A frame shows
a square "shape" (10x10 px) of one colour on a background of another colour.

Sample kinds (``Sample.kind``):

* ``caption``  - image or motionless clip, "Describe the image." -> "a red shape on a blue background"
* ``static``   - image or clip: "What colour is the shape?" / "What colour is the background?";
  clips may move the shape around (a moving distractor: motion without any change of colour).
* ``goal``     - the goal skill: a clip where the shape changes colour half-way; "What colour is
  the shape first?" -> the colour of the first half, "What colour is the shape finally?" -> the
  colour of the second half. A single frame cannot answer both.
* ``multi``    - pretraining only: two to four different still pictures and "What colour is the
  shape in picture 3?": the base learns to read a question's reference to one of several pictures
  by its place, as a real VLM base can; nothing in a picture changes.
* ``judge``    - pretraining only: gdo's TNC judge prompt over *other* question templates, so the
  reference model can answer Temporal / Static (the goal questions never appear here).

Nothing here knows about gdo; ``run_proof.py`` writes these samples as pool files for gdo.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SIZE = 28           # frame side (pixels)
SHAPE = 10          # shape side (pixels)
CLIP_FRAMES = 4     # frames per clip (2 LM tokens per half of a goal clip)

COLOURS = {
    "red": (220, 30, 30), "green": (30, 190, 60), "blue": (40, 60, 220),
    "yellow": (235, 220, 40), "purple": (150, 40, 190), "cyan": (40, 210, 220),
}
NAMES = tuple(COLOURS)

Q_SHAPE = "What colour is the shape?"
Q_BACK = "What colour is the background?"
Q_CAPTION = "Describe the image."
Q_PICTURE = "What colour is the shape in picture {k} ?"
Q_FIRST = "What colour is the shape first?"
Q_FINAL = "What colour is the shape finally?"
GOAL_QUESTIONS = (Q_FIRST, Q_FINAL)

#: Judge-training questions (pretraining only; disjoint from the pool's questions).
JUDGE_TEMPORAL = ("What happens after the shape moves?", "Which colour appears before the change?",
                  "What does the shape do next?", "Where does the shape go later?",
                  "What changes during the clip?", "What is the sequence of colours?",
                  "Which shape appears first?", "Where is the shape finally?",
                  "What is the background first?", "What does the picture show finally?")
JUDGE_STATIC = ("What colour is the square?", "Is the background dark?", "How many shapes are there?",
                "What is the colour of the picture?", "Is there a shape in the picture?",
                "Which colour fills the picture?", "What colour is the picture?", "Where is the shape?",
                "Describe the picture.", "Describe the square.")


def tag(rng: np.random.Generator) -> str:
    """A clip reference ("Clip 40719 . ") that makes question texts distinct, as the texts of a real
    pool are (gdo deduplicates exact (question, answer) texts).

    The number is one out-of-vocabulary word, so the tiny model's word-level tokenizer reads every
    reference as the same three tokens (``Clip [UNK] .``): the texts differ for gdo, not for the model.
    (Five separate random digit tokens between the frames and the question kept the tiny model from
    learning the goal skill in 250 steps even on an all-goal training set; issue 16, second attempt.)
    """
    return f"Clip {int(rng.integers(0, 100_000)):05d} . "


@dataclass
class Sample:
    """One (visual, question, answer) sample.

    Attributes:
        frames: uint8 array (t, 28, 28, 3); t = 1 for an image.
        question, answer: text (the answer is one colour word, or a caption).
        kind: caption | static | goal | judge.
        clean: False when the answer was replaced by a wrong one (noise).
        meta: generator facts (colours, motion) for analysis.
    """

    frames: np.ndarray
    question: str
    answer: str
    kind: str
    clean: bool = True
    meta: dict = field(default_factory=dict)

    @property
    def is_video(self) -> bool:
        return self.frames.shape[0] > 1


def _frame(back: str, shape: str, x: int, y: int) -> np.ndarray:
    f = np.empty((SIZE, SIZE, 3), np.uint8)
    f[:] = COLOURS[back]
    f[y:y + SHAPE, x:x + SHAPE] = COLOURS[shape]
    return f


def _two(rng: np.random.Generator) -> tuple[str, str]:
    a, b = rng.choice(len(NAMES), 2, replace=False)
    return NAMES[a], NAMES[b]


def _positions(rng: np.random.Generator, t: int, moving: bool) -> list[tuple[int, int]]:
    lim = SIZE - SHAPE
    if not moving:
        p = (int(rng.integers(0, lim + 1)), int(rng.integers(0, lim + 1)))
        return [p] * t
    return [(int(rng.integers(0, lim + 1)), int(rng.integers(0, lim + 1))) for _ in range(t)]


def still_or_clip(rng: np.random.Generator, *, video: bool, moving: bool) -> tuple[np.ndarray, str, str]:
    """Frames of a constant-colour scene (image, motionless clip or clip with a moving shape)."""
    back, shape = _two(rng)
    t = CLIP_FRAMES if video else 1
    frames = np.stack([_frame(back, shape, x, y) for x, y in _positions(rng, t, moving and video)])
    return frames, back, shape


def make_caption(rng: np.random.Generator, *, video: bool) -> Sample:
    frames, back, shape = still_or_clip(rng, video=video, moving=False)
    return Sample(frames, tag(rng) + Q_CAPTION, f"a {shape} shape on a {back} background", "caption",
                  meta={"back": back, "shape": shape})


def make_static(rng: np.random.Generator, *, video: bool, moving: bool = False) -> Sample:
    frames, back, shape = still_or_clip(rng, video=video, moving=moving)
    if rng.random() < 0.6:
        return Sample(frames, tag(rng) + Q_SHAPE, shape, "static", meta={"back": back, "shape": shape, "moving": moving})
    return Sample(frames, tag(rng) + Q_BACK, back, "static", meta={"back": back, "shape": shape, "moving": moving})


def make_goal(rng: np.random.Generator, *, which: str | None = None) -> Sample:
    """A clip whose shape changes colour half-way, asked about the first or the final colour."""
    back = NAMES[int(rng.integers(len(NAMES)))]
    c1, c2 = [n for n in rng.permutation(NAMES) if n != back][:2]
    pos = _positions(rng, CLIP_FRAMES, bool(rng.random() < 0.5))
    half = CLIP_FRAMES // 2
    frames = np.stack([_frame(back, c1 if i < half else c2, *pos[i]) for i in range(CLIP_FRAMES)])
    which = which or ("first" if rng.random() < 0.5 else "final")
    q, a = (Q_FIRST, c1) if which == "first" else (Q_FINAL, c2)
    return Sample(frames, tag(rng) + q, a, "goal", meta={"back": back, "first": c1, "final": c2, "which": which})


def make_multi(rng: np.random.Generator) -> Sample:
    """Two to four different stills, asked about the shape of one of them by its place ("picture 3").

    Pretraining only (``frames`` holds the stills; they go to the model as separate images). It gives
    the tiny base what a real VLM base has, reading which of several pictures a question names,
    without any change over time: each still is constant, and a question names its picture.
    """
    k = int(rng.integers(2, 5))
    scenes = [still_or_clip(rng, video=False, moving=False) for _ in range(k)]
    i = int(rng.integers(0, k))
    return Sample(np.concatenate([sc[0] for sc in scenes]), tag(rng) + Q_PICTURE.format(k=i + 1), scenes[i][2],
                  "multi", meta={"pictures": k, "asked": i + 1})


def judge_question(question: str) -> str:
    """The question as gdo's judge shows it to the model in default mode: case-folded, whitespace
    runs collapsed (``gdo.models.hf.normalise_question``; restated here so the world imports nothing
    from gdo)."""
    return " ".join(question.casefold().split())


def make_judge(rng: np.random.Generator, judge_prompt: str) -> Sample:
    """A text-only judge example: gdo's judge prompt over a question not used in the pool, written
    as gdo's judge writes it (:func:`judge_question`), so pretraining and profiling agree."""
    if rng.random() < 0.5:
        q, a = JUDGE_TEMPORAL[int(rng.integers(len(JUDGE_TEMPORAL)))], "Temporal"
    else:
        q, a = JUDGE_STATIC[int(rng.integers(len(JUDGE_STATIC)))], "Static"
    return Sample(np.zeros((0, SIZE, SIZE, 3), np.uint8), judge_prompt.format(question=judge_question(tag(rng) + q)),
                  a, "judge")


def add_noise(rng: np.random.Generator, s: Sample) -> Sample:
    """Replace the answer by a wrong colour (captions: a wrong shape colour)."""
    if s.kind == "caption":
        wrong = [n for n in NAMES if n not in (s.meta["shape"], s.meta["back"])]
        return Sample(s.frames, s.question, f"a {wrong[int(rng.integers(len(wrong)))]} shape on a "
                      f"{s.meta['back']} background", s.kind, False, s.meta)
    wrong = [n for n in NAMES if n != s.answer]
    return Sample(s.frames, s.question, wrong[int(rng.integers(len(wrong)))], s.kind, False, s.meta)


#: Share of ``multi`` samples in pretraining. Without them the tiny base never has to read which
#: frame a question names, and one epoch on 2,000 samples (250 steps) found that skill in about
#: one run in three, whatever the data (issue 16 diagnosis; benchmarks/proof/README.md).
MULTI_SHARE = 0.2


def pretraining_sample(rng: np.random.Generator, judge_prompt: str) -> Sample:
    """The base model's diet: captions and static questions over stills and motionless clips,
    several stills named by their place (``multi``), plus the judge task; never a colour change,
    never a moving shape."""
    if rng.random() < MULTI_SHARE:
        return make_multi(rng)
    r = rng.random()
    if r < 0.12:
        return make_judge(rng, judge_prompt)
    video = bool(rng.random() < 0.4)
    if r < 0.40:
        return make_caption(rng, video=video)
    return make_static(rng, video=video, moving=False)


def vocabulary(extra_texts: list[str]) -> list[str]:
    """The closed word vocabulary (words of every text the world can produce, plus ``extra_texts``)."""
    texts = [Q_SHAPE, Q_BACK, Q_CAPTION, Q_FIRST, Q_FINAL, Q_PICTURE.format(k="1 2 3 4"), "a shape on a background", "Temporal", "Static",
             "Clip 0 1 2 3 4 5 6 7 8 9 .",
             *JUDGE_TEMPORAL, *JUDGE_STATIC, *NAMES, *extra_texts]
    words: set[str] = set()
    import re

    for t in texts:  # as written, and case-folded as gdo's judge writes questions
        words.update(re.findall(r"\w+|[^\w\s]+", t))
        words.update(re.findall(r"\w+|[^\w\s]+", judge_question(t)))
    return sorted(words)
