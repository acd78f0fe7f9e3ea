"""Model descriptors over any Hugging Face vision-language model (GDO_METHOD.md 3.1, 3.2, 3.4, 3.5).

``VLMScorer`` wraps ``AutoModelForImageTextToText`` + ``AutoProcessor`` loaded from a local folder
(Qwen2-VL, Qwen2.5-VL, Qwen3-VL first; other chat-templated VLMs whose processor takes
``text=[...], images=[...]`` work too) and computes, in padded, length-sorted batches:

* ``losses``: masked mean cross-entropy (nats/token) of the answer tokens with the visual input
  (``loss_video``) and without it (``loss_blind``); one processor call and one forward per variant
  per batch (3.1, 3.2).
* ``self_consistency``: one ``generate`` call per batch with ``num_return_sequences=5`` so every
  prompt is prefilled once; mean pairwise Jaccard similarity of lower-cased word sets (3.5).
* ``judge_temporal``: text-only Temporal/Static judge, batched and cached per unique normalised
  question (3.4).

``compute_model_descriptors`` applies the scorer to a candidates table (``gdo.schema.CANDIDATE_SCHEMA``)
and returns the model columns of ``descriptors.parquet``. A candidate whose media cannot be read or
whose model call fails gets nulls and the error text in ``model_error`` -- never zeros.

Video input: where the processor has a working video processor (transformers with torchvision)
and the chat template has a video placeholder, sampled frames go in as one video; otherwise (e.g.
CPU installs without torchvision, where transformers 5.x cannot build a Qwen-VL video processor)
they go in as a list of images, one image placeholder per frame. ``video_mode`` forces either.

On CUDA out-of-memory a batch is halved and retried (and later batches use the smaller size); a
non-memory error in a batch is isolated by retrying its candidates one at a time.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from gdo.media import FrameCache, frame_key, sample_indices  # noqa: F401  (sample_indices re-exported; GDO_METHOD.md 2)
from gdo.utils.hashing import stable_int
from gdo.utils.progress import advance

#: Sampling parameters of self-consistency (GDO_METHOD.md 3.5).
SC_SAMPLES = 5
SC_TEMPERATURE = 0.8
SC_TOP_P = 0.9
SC_MAX_NEW_TOKENS = 32

#: Prompt of the temporal-necessity judge (GDO_METHOD.md 3.4); ``{question}`` is substituted.
JUDGE_PROMPT = (
    "Does answering the following question about a video require reasoning over several frames "
    "(order, motion, change over time), or can it be answered from a single frame?\n"
    "Question: {question}\n"
    "Answer with one word: Temporal or Static."
)
JUDGE_MAX_NEW_TOKENS = 4
#: The release's judge prompt (extract_six_metrics.py ``tnc_llm``; paper mode): the question as
#: written (whitespace collapsed, casing kept), greedy, at most 3 new tokens.
PAPER_JUDGE_PROMPT = (
    "Decide if the question requires temporal reasoning over multiple frames.\n"
    "Answer only one word: Temporal or Static.\n"
    "Question: {question}"
)
PAPER_JUDGE_MAX_NEW_TOKENS = 3

#: Model descriptor names accepted by ``compute_model_descriptors``.
MODEL_DESCRIPTORS = ("vds", "ppl", "sc", "tnc_judge")

#: Output schema of ``compute_model_descriptors``.
MODEL_DESCRIPTOR_SCHEMA = pa.schema(
    [
        ("uid", pa.string()),
        ("loss_video", pa.float64()),
        ("loss_blind", pa.float64()),
        ("vds", pa.float64()),
        ("ppl", pa.float64()),
        ("sc", pa.float64()),
        ("tnc_judge", pa.float64()),
        ("model_error", pa.string()),
    ]
)



# ----------------------------------------------------------------------------------------------
# small pure helpers
# ----------------------------------------------------------------------------------------------


def jaccard_consistency(texts: Sequence[str], *, ascii_words: bool = False) -> float:
    """Mean pairwise Jaccard similarity of the lower-cased word sets of ``texts`` (GDO_METHOD.md 3.5).

    Words come from gdo's one tokenizer (:func:`gdo.text.tokenize`): Unicode letter/digit/``_``
    runs, or with ``ascii_words`` (paper mode) the release's ``[A-Za-z0-9_]+`` runs of the
    lower-cased text. Two empty word sets count as identical (1.0).

    Args:
        texts: at least two strings (the sampled answers).
        ascii_words: the release's word rule.

    Returns:
        A float in [0, 1].

    Raises:
        ValueError: fewer than two texts.
    """
    if len(texts) < 2:
        raise ValueError(f"self-consistency needs at least 2 samples, got {len(texts)}")
    from gdo.text import tokenize

    tok = tokenize(list(texts), hashes=True, ascii_words=ascii_words)
    sets: list[set] = [set() for _ in texts]
    for p, h in zip(tok.parent.tolist(), tok.hashes.tolist()):
        sets[p].add(h)
    sims = []
    for a, b in itertools.combinations(sets, 2):
        union = len(a | b)
        sims.append(1.0 if union == 0 else len(a & b) / union)
    return float(np.mean(sims))


def parse_judge(text: str) -> float:
    """Parse a judge answer: 1.0 if it says Temporal, 0.0 if Static, else 0.5 (GDO_METHOD.md 3.4).

    The first of the two words to appear (case-insensitive) decides.
    """
    low = text.lower()
    t, s = low.find("temporal"), low.find("static")
    if t < 0 and s < 0:
        return 0.5
    if s < 0 or (0 <= t < s):
        return 1.0
    return 0.0


def parse_judge_paper(text: str) -> float:
    """The release's judge parse: 1.0 if the stripped, lower-cased answer contains "temporal",
    else 0.0 if it contains "static", else 0.5."""
    low = text.strip().lower()
    if "temporal" in low:
        return 1.0
    if "static" in low:
        return 0.0
    return 0.5


def paper_question_key(question: str) -> str:
    """The question the release's judge sees: whitespace runs collapsed, casing kept."""
    return " ".join(str(question).split())


def normalise_question(question: str) -> str:
    """Cache key of the judge: the case-folded question with whitespace runs collapsed.

    The judge sees this normalised text, so its verdict depends only on the key (deterministic
    whatever order or sharding the candidates come in).
    """
    return " ".join(str(question).casefold().split())


@dataclass
class VLMItem:
    """One (question, answer) pair with its visual input.

    Attributes:
        question: user text (media tokens already stripped).
        answer: reference answer (used by ``losses``; ignored by ``self_consistency``).
        images: images (PIL images or uint8 HxWx3 arrays) shown before the question.
        video: sampled frames of one video, uint8 array (t, H, W, 3) or a list of frames.
        key: stable identifier (e.g. the uid) used to seed sampling; defaults to the question.
    """

    question: str
    answer: str = ""
    images: Sequence[Any] = field(default_factory=tuple)
    video: Any = None
    key: str | None = None

    @property
    def n_visual(self) -> int:
        """Number of images or frames."""
        return len(self.images) + (0 if self.video is None else len(self.video))


def _as_item(x: Any) -> VLMItem:
    if isinstance(x, VLMItem):
        return x
    if isinstance(x, dict):
        return VLMItem(
            question=x.get("question", ""),
            answer=x.get("answer", ""),
            images=tuple(x.get("images") or ()),
            video=x.get("video"),
            key=x.get("key") or x.get("uid"),
        )
    raise TypeError(f"expected VLMItem or dict, got {type(x).__name__}")


def _to_pil(img: Any):
    from PIL import Image

    if isinstance(img, Image.Image):
        return img.convert("RGB") if img.mode != "RGB" else img
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3), got {arr.dtype} {arr.shape}")
    return Image.fromarray(arr)


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


# ----------------------------------------------------------------------------------------------
# processor loading
# ----------------------------------------------------------------------------------------------


def load_processor(model_path: str | Path, *, trust_remote_code: bool = False):
    """Load the processor of a local model folder.

    Tries ``AutoProcessor.from_pretrained``. If that fails only because the video processor needs
    torchvision (transformers 5.x, Qwen-VL family), builds the same processor class without a
    video processor from the folder's tokenizer, image processor (PIL backend) and chat template;
    such a processor takes images only, and ``VLMScorer`` then feeds video frames as images.

    Returns:
        The processor.

    Raises:
        OSError / ValueError: the folder holds no loadable processor.
    """
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(str(model_path), trust_remote_code=trust_remote_code)
    except (ImportError, AttributeError, ValueError) as exc:
        msg = str(exc).lower()
        if "torchvision" not in msg and "video" not in msg and "_extra_content" not in msg:
            raise
        return _image_only_processor(Path(model_path), trust_remote_code=trust_remote_code)


def _image_only_processor(path: Path, *, trust_remote_code: bool):
    import transformers
    from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer

    cfg_file = path / "processor_config.json"
    cls_name = None
    if cfg_file.exists():
        cls_name = json.loads(cfg_file.read_text()).get("processor_class")
    if cls_name is None:
        from transformers.models.auto.processing_auto import PROCESSOR_MAPPING

        config = AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code)
        cls = PROCESSOR_MAPPING[type(config)]
    else:
        cls = getattr(transformers, cls_name)
    try:
        image_processor = AutoImageProcessor.from_pretrained(str(path), backend="pil")
    except TypeError:
        image_processor = AutoImageProcessor.from_pretrained(str(path))
    tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    chat_template = None
    ct = path / "chat_template.jinja"
    if ct.exists():
        chat_template = ct.read_text()
    elif getattr(tokenizer, "chat_template", None):
        chat_template = tokenizer.chat_template
    base_attrs = [a for a in cls.get_attributes() if "video" not in a]
    image_only = type(
        cls.__name__,
        (cls,),
        {"get_attributes": classmethod(lambda c: list(base_attrs)), "__module__": cls.__module__},
    )
    return image_only(image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template)


# ----------------------------------------------------------------------------------------------
# the scorer
# ----------------------------------------------------------------------------------------------


class VLMScorer:
    """Batched VDS / PPL / SC / TNC-judge scorer over a local Hugging Face VLM.

    Args:
        model_path: folder loadable by ``AutoModelForImageTextToText`` and ``AutoProcessor``.
        device: "auto" (CUDA if available, else CPU), "cpu", "cuda", "cuda:1", ...
        dtype: torch dtype or its name; default bfloat16 on CUDA, float32 on CPU.
        trust_remote_code: passed to transformers; off unless the user asks.
        batch_size: candidates per model call (halved on CUDA out-of-memory).
        seed: base seed of SC sampling (each batch is seeded from it and its items' keys).
        frames: most frames per video (callers sample; this is recorded in ``config``).
        max_pixels: if given, overrides the image processor's largest image area (pixels).
        video_mode: "auto" (video input when the processor supports it), "video" or "images".

    Attributes:
        stats: counters -- ``loss_batches``, ``generate_calls``, ``judge_questions``,
            ``judge_unique``, ``judge_cache_hits``, ``judge_model_calls``, ``oom_retries``.
        errors: ``{index: message}`` of the items that failed in the last public call.
        pooled: float32 (n, H) pooled final hidden states of the last :meth:`losses` call's
            visual pass (see :meth:`embed`); NaN rows for failed items.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str = "auto",
        dtype: Any = None,
        trust_remote_code: bool = False,
        batch_size: int = 8,
        seed: int = 42,
        frames: int = 32,
        max_pixels: int | None = None,
        video_mode: str = "auto",
        mode: str = "default",
    ) -> None:
        import torch
        from transformers import AutoModelForImageTextToText

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if video_mode not in ("auto", "video", "images"):
            raise ValueError(f"video_mode must be auto, video or images, got {video_mode!r}")
        if mode not in ("default", "paper"):
            raise ValueError(f"mode must be 'default' or 'paper', not {mode!r}")
        self.mode = mode
        self.model_path = Path(model_path)
        if not self.model_path.is_dir():
            raise FileNotFoundError(f"model folder not found: {self.model_path}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if dtype is None:
            dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        elif isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        self.dtype = dtype
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.frames = int(frames)
        self.processor = load_processor(self.model_path, trust_remote_code=trust_remote_code)
        self.tokenizer = self.processor.tokenizer
        if max_pixels is not None:
            for sub in (self.processor.image_processor, getattr(self.processor, "video_processor", None)):
                if sub is None:
                    continue
                size = dict(getattr(sub, "size", None) or {})
                size["longest_edge"] = int(max_pixels)
                size["shortest_edge"] = min(int(size.get("shortest_edge") or 0) or int(max_pixels), int(max_pixels))
                sub.size = size
                if hasattr(sub, "max_pixels"):
                    sub.max_pixels = int(max_pixels)
        self.max_pixels = max_pixels
        self.model = AutoModelForImageTextToText.from_pretrained(
            str(self.model_path), dtype=dtype, trust_remote_code=trust_remote_code
        ).to(self.device)
        self.model.eval()
        has_video = getattr(self.processor, "video_processor", None) is not None
        if video_mode == "video" and not has_video:
            raise ValueError(f"video_mode='video' but the processor of {self.model_path} has no video processor")
        self.use_video = has_video and video_mode != "images"
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id
        self._answer_suffix = self._find_answer_suffix()
        self._judge_cache: dict[str, float] = {}
        self.stats: dict[str, int] = dict.fromkeys(
            ("loss_batches", "generate_calls", "judge_questions", "judge_unique", "judge_cache_hits",
             "judge_model_calls", "oom_retries"),
            0,
        )
        self.errors: dict[int, str] = {}
        self.pooled: np.ndarray | None = None
        head = self.model.get_output_embeddings()
        #: the output head whose input (the final hidden states) is pooled; None: a model that
        #: exposes none, so no model embeddings (the losses are unaffected)
        self._head = head if head is not None and hasattr(head, "register_forward_pre_hook") else None

    # ------------------------------------------------------------------ config / templates

    @property
    def frame_max_pixels(self) -> int | None:
        """Largest image area (pixels) the image processor keeps (None if unknown)."""
        size = getattr(self.processor.image_processor, "size", None) or {}
        try:
            v = size.get("longest_edge") or size.get("max_pixels")
        except AttributeError:
            v = getattr(size, "longest_edge", None)
        return int(v) if v else None

    @property
    def config(self) -> dict[str, Any]:
        """The settings that determine the descriptor values (for a store's config hash)."""
        return {
            "model": self.model_path.name,
            "dtype": str(self.dtype).replace("torch.", ""),
            "seed": self.seed,
            "frames": self.frames,
            "max_pixels": self.max_pixels,
            "video_input": "video" if self.use_video else "images",
            "sc": [SC_SAMPLES, SC_TEMPERATURE, SC_TOP_P, SC_MAX_NEW_TOKENS],
            "judge_prompt": PAPER_JUDGE_PROMPT if self.mode == "paper" else JUDGE_PROMPT,
            "mode": self.mode,
        }

    def _messages(self, item: VLMItem, *, visual: bool, text: str | None = None) -> list[dict]:
        content: list[dict] = []
        if visual:
            content.extend({"type": "image"} for _ in item.images)
            if item.video is not None:
                if self.use_video:
                    content.append({"type": "video"})
                else:
                    content.extend({"type": "image"} for _ in range(len(item.video)))
        content.append({"type": "text", "text": item.question if text is None else text})
        return [{"role": "user", "content": content}]

    def _template(self, messages: list[dict], *, generation: bool) -> str:
        return self.processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation
        )

    def _find_answer_suffix(self) -> str:
        """Text the chat template appends after an assistant answer (e.g. ``<|im_end|>``)."""
        probe = "gdo-probe-answer"
        user = [{"role": "user", "content": [{"type": "text", "text": "q"}]}]
        prompt = self._template(user, generation=True)
        try:
            full = self.processor.apply_chat_template(
                user + [{"role": "assistant", "content": [{"type": "text", "text": probe}]}], tokenize=False
            )
        except Exception:  # noqa: BLE001 - templates without assistant rendering
            full = ""
        if full.startswith(prompt) and probe in full:
            suffix = full[full.index(probe) + len(probe):]
            # paper: everything the release's full-conversation rendering puts after the answer,
            # newline after <|im_end|> included (its labels cover it); default: the end-of-turn
            # marker without trailing whitespace (the newline is formatting, not a prediction)
            return suffix if self.mode == "paper" else suffix.rstrip()
        return self.tokenizer.eos_token or ""

    def _visual_inputs(self, items: Sequence[VLMItem]) -> dict[str, Any]:
        images: list[Any] = []
        videos: list[Any] = []
        for it in items:
            images.extend(_to_pil(im) for im in it.images)
            if it.video is not None:
                if self.use_video:
                    videos.append(np.stack([np.asarray(f) for f in it.video]))
                else:
                    images.extend(_to_pil(f) for f in it.video)
        out: dict[str, Any] = {}
        if images:
            out["images"] = images
        if videos:
            out["videos"] = videos
        return out

    def _process(self, texts: list[str], visual: dict[str, Any], *, padding_side: str):
        self.tokenizer.padding_side = padding_side
        enc = self.processor(text=texts, padding=True, return_tensors="pt", **visual)
        return enc.to(self.device)

    # ------------------------------------------------------------------ batching machinery

    def _order(self, items: Sequence[VLMItem], text_len: Callable[[VLMItem], int]) -> list[int]:
        """Indices sorted by an estimate of the sequence length (stable)."""

        def est(i: int) -> tuple[int, int]:
            it = items[i]
            return (it.n_visual, text_len(it))

        return sorted(range(len(items)), key=est)

    def _run(self, items: Sequence[VLMItem], fn: Callable[[list[int]], list[Any]], order: list[int]) -> tuple[list[Any], dict[int, str]]:
        """Apply ``fn`` to consecutive batches of ``order``.

        On out-of-memory the failing batch is retried at half its size and ``self.batch_size``
        shrinks for every later batch; any other error is isolated by retrying the batch's items
        one at a time, and an item that still fails gets its error text.
        """
        from collections import deque

        import torch

        results: list[Any] = [None] * len(items)
        errors: dict[int, str] = {}
        queue = deque(order)
        singles: deque[int] = deque()
        while queue or singles:
            if singles:
                batch = [singles.popleft()]
            else:
                batch = [queue.popleft() for _ in range(min(self.batch_size, len(queue)))]
            try:
                out = fn(batch)
            except Exception as exc:  # noqa: BLE001 - recorded per candidate
                if _is_oom(exc):
                    if self.device.type == "cuda":
                        torch.cuda.empty_cache()
                    self.stats["oom_retries"] += 1
                    if len(batch) == 1:
                        errors[batch[0]] = f"out of memory: {exc}"[:500]
                    else:
                        self.batch_size = max(1, len(batch) // 2)
                        queue.extendleft(reversed(batch))
                    continue
                if len(batch) == 1:
                    errors[batch[0]] = f"{type(exc).__name__}: {exc}"[:500]
                else:
                    singles.extend(batch)
                continue
            for i, r in zip(batch, out):
                results[i] = r
        return results, errors

    # ------------------------------------------------------------------ VDS / PPL

    def losses(self, items: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Masked answer losses with and without the visual input (GDO_METHOD.md 3.1-3.2).

        For each item the user turn (images/frames then question) and the answer are rendered in
        the model's chat template; the loss is the mean cross-entropy (nats/token, float32) over
        the answer tokens plus the template's end-of-turn marker (e.g. ``<|im_end|>``), every
        prompt token masked. ``loss_blind`` uses the same text without any visual input.
        Batches are right-padded and length-sorted; one processor call and one forward per
        variant per batch; only the logits of the last positions covering the answers are
        materialised.

        Args:
            items: ``VLMItem`` objects or dicts with question/answer/images/video.

        Returns:
            ``(loss_video, loss_blind)``, float64 arrays of shape (n,); NaN where an item failed
            (message in ``self.errors``).
        """
        items = [_as_item(x) for x in items]
        self.errors = {}
        lv, self.pooled = self._losses(items, visual=True, pool=self._head is not None)
        lb, _ = self._losses(items, visual=False)
        return lv, lb

    def embed(self, items: Sequence[Any]) -> np.ndarray:
        """The reference model's pooled hidden state of each item (issue 15 item 2, model space).

        Exactly what :meth:`losses` leaves in ``self.pooled`` for the visual pass: the final hidden
        states (the input of the output head, after the last norm) averaged over the answer tokens
        and the end-of-turn marker, with the item's images / frames in the prompt. An item without
        an answer (a goal question alone) is pooled over the marker only, i.e. the last-token
        state of its prompt. One forward per batch, no extra pass.

        Args:
            items: ``VLMItem`` objects or dicts with question/answer/images/video.

        Returns:
            float32 (n, H) with H the model's hidden size; NaN rows where an item failed
            (message in ``self.errors``).

        Raises:
            RuntimeError: the model exposes no output head (``get_output_embeddings()`` is None).
        """
        if self._head is None:
            raise RuntimeError(f"{self.model_path}: the model exposes no output head, so its hidden states "
                               "cannot be pooled (no model relevance space)")
        items = [_as_item(x) for x in items]
        self.errors = {}
        _, pooled = self._losses(items, visual=True, pool=True)
        return pooled

    def _losses(self, items: list[VLMItem], *, visual: bool, pool: bool = False
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """(loss float64 (n,), pooled float32 (n, H) when ``pool`` else None); NaN on failure."""
        if not items:
            return np.zeros(0), (np.zeros((0, self.hidden_size), np.float32) if pool else None)
        fulls, n_ans = self._loss_texts(items, visual=visual)
        order = self._order(items, lambda it: len(it.question) + len(str(it.answer)))

        def fn(batch: list[int]) -> list[Any]:
            return self._loss_batch([fulls[i] for i in batch], [items[i] for i in batch],
                                    [n_ans[i] for i in batch], visual=visual, pool=pool)

        res, errs = self._run(items, fn, order)
        for i, e in errs.items():
            self.errors.setdefault(i, e)
        if not pool:
            return np.array([np.nan if r is None else r for r in res], dtype=np.float64), None
        loss = np.array([np.nan if r is None else r[0] for r in res], dtype=np.float64)
        pooled = np.full((len(items), self.hidden_size), np.nan, np.float32)
        for i, r in enumerate(res):
            if r is not None:
                pooled[i] = r[1]
        return loss, pooled

    @property
    def hidden_size(self) -> int:
        """Width H of the final hidden states (the output head's input features)."""
        w = getattr(self._head, "weight", None)
        if w is None:
            raise RuntimeError(f"{self.model_path}: no output head, hidden size unknown")
        return int(w.shape[1])

    def _loss_texts(self, items: list[VLMItem], *, visual: bool) -> tuple[list[str], list[int]]:
        """Full chat texts (prompt + answer + end marker) and the answer token count of each."""
        prompts = [self._template(self._messages(it, visual=visual), generation=True) for it in items]
        fulls = [p + str(it.answer) + self._answer_suffix for p, it in zip(prompts, items)]
        # answer token counts from the unexpanded texts (text-only tokenizer, cheap); media
        # placeholders expand only inside the prompt, so the count from the end is unchanged
        enc_p = self.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        enc_f = self.tokenizer(fulls, add_special_tokens=False)["input_ids"]
        n_ans = [len(f) - len(p) for p, f in zip(enc_p, enc_f)]
        for i, (p, f) in enumerate(zip(enc_p, enc_f)):
            if n_ans[i] < 1 or f[: len(p)] != p:
                # tokenisation merged across the prompt/answer boundary: count the answer alone
                n_ans[i] = len(self.tokenizer(str(items[i].answer) + self._answer_suffix,
                                              add_special_tokens=False)["input_ids"])
        return fulls, n_ans

    def _loss_batch(self, texts: list[str], items: list[VLMItem], n_ans: list[int], *, visual: bool,
                    pool: bool = False) -> list[Any]:
        import torch

        self.stats["loss_batches"] += 1
        with torch.inference_mode():
            if not pool:
                loss = self._loss_tensor(texts, items, n_ans, visual=visual)
                return [float(x) for x in loss.double().cpu()]
            cap: list = []
            loss = self._loss_tensor(texts, items, n_ans, visual=visual, pooled=cap)
            vecs = cap[0].cpu().numpy()
        return [(float(x), vecs[k]) for k, x in enumerate(loss.double().cpu())]

    def _loss_tensor(self, texts: list[str], items: list[VLMItem], n_ans: list[int], *, visual: bool,
                     pooled: list | None = None):
        """Per-item answer loss (B,); with a ``pooled`` list, also appends the float32 (B, H) mean
        of the final hidden states over the same answer positions (captured at the output head's
        input, so no extra forward and no stored hidden-state stack)."""
        import torch
        import torch.nn.functional as F

        vis = self._visual_inputs(items) if visual else {}
        enc = self._process(texts, vis, padding_side="right")
        ids = enc["input_ids"]
        mask = enc["attention_mask"]
        bsz, seq = ids.shape
        lens = mask.sum(1)
        n = torch.tensor(n_ans, device=ids.device)
        starts = lens - n  # first answer position per row
        keep = min(int((seq - starts.min()).item()) + 1, seq)
        cap: dict[str, Any] = {}
        hook = None
        if pooled is not None:
            hook = self._head.register_forward_pre_hook(
                lambda _m, args: cap.__setitem__("h", args[0]))
        try:
            try:
                out = self.model(**enc, use_cache=False, logits_to_keep=keep)
            except TypeError:
                out = self.model(**enc, use_cache=False)
        finally:
            if hook is not None:
                hook.remove()
        logits = out.logits
        first = seq - logits.shape[1]  # position of logits[:, 0]
        if pooled is not None:
            h = cap["h"]  # (B, K, H): the final hidden states of the last K positions
            pos_h = torch.arange(seq - h.shape[1], seq, device=ids.device)[None, :]
            mh = ((pos_h >= starts[:, None]) & (pos_h < lens[:, None])).to(torch.float32)
            pooled.append((h.float() * mh[..., None]).sum(1) / mh.sum(1).clamp(min=1)[:, None])
        # logits at position p predict token p + 1
        pred = logits[:, :-1].float()
        tgt = ids[:, first + 1:]
        pos = torch.arange(first + 1, seq, device=ids.device)[None, :]
        m = (pos >= starts[:, None]) & (pos < lens[:, None])
        ce = F.cross_entropy(pred.reshape(-1, pred.shape[-1]), tgt.reshape(-1), reduction="none").view(bsz, -1)
        return (ce * m).sum(1) / m.sum(1).clamp(min=1)

    def answer_loss_tensor(self, items: Sequence[Any], *, visual: bool = True):
        """Differentiable per-item answer loss (same definition as ``losses``) for one batch.

        No sorting, batching or error handling: the items form one right-padded batch and
        gradients flow (use it to fine-tune, e.g. the tiny model in tests). Returns a float32
        tensor of shape (n,) in nats/token.
        """
        items = [_as_item(x) for x in items]
        texts, n_ans = self._loss_texts(items, visual=visual)
        return self._loss_tensor(texts, items, n_ans, visual=visual)

    # ------------------------------------------------------------------ SC

    def self_consistency(self, items: Sequence[Any]) -> np.ndarray:
        """Self-consistency of sampled answers (GDO_METHOD.md 3.5).

        One ``generate`` call per (left-padded, length-sorted) batch with
        ``num_return_sequences=5`` (each prompt prefilled once), ``do_sample``, temperature 0.8,
        top-p 0.9, at most 32 new tokens. The torch RNG is seeded per batch from ``seed`` and
        the items' keys (global RNG state restored afterwards), so the same items, seed and
        batch size give the same values.

        Returns:
            float64 array (n,) in [0, 1]; NaN where an item failed (``self.errors``).
        """
        items = [_as_item(x) for x in items]
        self.errors = {}
        if not items:
            return np.zeros(0)
        prompts = [self._template(self._messages(it, visual=True), generation=True) for it in items]
        order = self._order(items, lambda it: len(it.question))

        def fn(batch: list[int]) -> list[float]:
            keys = [items[i].key or items[i].question for i in batch]
            texts = self._generate(
                [prompts[i] for i in batch], [items[i] for i in batch], visual=True,
                sample=True, seed=stable_int(str(self.seed), *keys) % (2**63),
            )
            return [jaccard_consistency(texts[k * SC_SAMPLES:(k + 1) * SC_SAMPLES], ascii_words=self.mode == "paper")
                    for k in range(len(batch))]

        res, errs = self._run(items, fn, order)
        self.errors.update(errs)
        return np.array([np.nan if r is None else r for r in res], dtype=np.float64)

    def _generate(self, prompts: list[str], items: list[VLMItem], *, visual: bool, sample: bool, seed: int = 0,
                  max_new_tokens: int | None = None) -> list[str]:
        import torch

        vis = self._visual_inputs(items) if visual else {}
        enc = self._process(prompts, vis, padding_side="left")
        width = enc["input_ids"].shape[1]
        kw: dict[str, Any] = {
            "pad_token_id": self.pad_id,
            "eos_token_id": self._eos_ids(),
        }
        if sample:
            kw.update(do_sample=True, temperature=SC_TEMPERATURE, top_p=SC_TOP_P, top_k=0,
                      max_new_tokens=SC_MAX_NEW_TOKENS, num_return_sequences=SC_SAMPLES)
        else:
            kw.update(do_sample=False, max_new_tokens=max_new_tokens or JUDGE_MAX_NEW_TOKENS, temperature=None,
                      top_p=None, top_k=None)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(seed)
            out = self.model.generate(**enc, **kw)
        self.stats["generate_calls"] += 1
        return self.tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)

    def _eos_ids(self) -> list[int]:
        ids = []
        gc = getattr(self.model, "generation_config", None)
        e = getattr(gc, "eos_token_id", None)
        if isinstance(e, int):
            ids.append(e)
        elif e:
            ids.extend(e)
        if self.tokenizer.eos_token_id is not None:
            ids.append(self.tokenizer.eos_token_id)
        return sorted(set(ids))

    # ------------------------------------------------------------------ TNC judge

    def judge_temporal(self, questions: Sequence[str]) -> np.ndarray:
        """Temporal-necessity judge (GDO_METHOD.md 3.4): 1.0 Temporal, 0.0 Static, 0.5 otherwise.

        Text only, greedy, at most 4 new tokens, batched over the unique normalised questions
        (``normalise_question``) not yet in the scorer's cache. ``stats`` counts questions,
        unique ones, cache hits (questions answered without a model call) and judge model calls.

        Returns:
            float64 array (n,); NaN where the judge call failed (``self.errors``).
        """
        self.errors = {}
        paper = self.mode == "paper"
        keys = [paper_question_key(q) if paper else normalise_question(q) for q in questions]
        todo: list[str] = []
        seen: set[str] = set()
        for k in keys:
            if k not in self._judge_cache and k not in seen:
                seen.add(k)
                todo.append(k)
        self.stats["judge_questions"] += len(keys)
        self.stats["judge_unique"] += len(todo)
        self.stats["judge_cache_hits"] += len(keys) - len(todo)
        if todo:
            items = [VLMItem(question=(PAPER_JUDGE_PROMPT if paper else JUDGE_PROMPT).format(question=k)) for k in todo]
            prompts = [self._template(self._messages(it, visual=False), generation=True) for it in items]
            order = self._order(items, lambda it: len(it.question))

            def fn(batch: list[int]) -> list[float]:
                self.stats["judge_model_calls"] += 1
                texts = self._generate([prompts[i] for i in batch], [items[i] for i in batch],
                                       visual=False, sample=False,
                                       max_new_tokens=PAPER_JUDGE_MAX_NEW_TOKENS if paper else None)
                return [parse_judge_paper(t) if paper else parse_judge(t) for t in texts]

            res, errs = self._run(items, fn, order)
            failed = {todo[i]: e for i, e in errs.items()}
            for k, r in zip(todo, res):
                if r is not None:
                    self._judge_cache[k] = r
        else:
            failed = {}
        out = np.empty(len(keys), dtype=np.float64)
        for i, k in enumerate(keys):
            if k in self._judge_cache:
                out[i] = self._judge_cache[k]
            else:
                out[i] = np.nan
                self.errors[i] = failed.get(k, "judge failed")
        return out


# ----------------------------------------------------------------------------------------------
# media loading
# ----------------------------------------------------------------------------------------------


def _default_frame_loader(kind: str, media: Sequence[str], frames: int, key: str | None = None) -> np.ndarray:
    """``gdo.media.load_frames`` without its cache (``compute_model_descriptors`` caches)."""
    from gdo.media import load_frames

    return load_frames(kind, list(media), frames, cache=None, key=key)


def _shrink(arr: np.ndarray, max_pixels: int | None) -> np.ndarray:
    """Downscale (area interpolation) uint8 frames (t, H, W, 3) or one image (H, W, 3) so that
    H*W <= max_pixels; the processor would resize them anyway, this bounds memory."""
    if not max_pixels:
        return arr
    h, w = arr.shape[-3], arr.shape[-2]
    if h * w <= max_pixels:
        return arr
    import cv2

    f = math.sqrt(max_pixels / (h * w))
    nh, nw = max(1, int(h * f)), max(1, int(w * f))
    if arr.ndim == 3:
        return cv2.resize(arr, (nw, nh), interpolation=cv2.INTER_AREA)
    return np.stack([cv2.resize(x, (nw, nh), interpolation=cv2.INTER_AREA) for x in arr])


def _load_item(row: dict, frames: int, loader: Callable[..., np.ndarray], cache: FrameCache,
               max_pixels: int | None) -> VLMItem:
    from gdo.media import read_image

    kind = row.get("media_kind") or "none"
    media = list(row.get("media") or [])
    item = VLMItem(question=row.get("question") or "", answer=row.get("answer") or "", key=row.get("uid"))
    if kind == "none":
        return item
    if not media:
        raise ValueError(f"media_kind {kind!r} but no media paths")
    if kind == "image":
        item.images = tuple(_shrink(read_image(p), max_pixels) for p in media)
        return item
    if kind in ("frames", "video"):
        vkey = row.get("video_key") or "\x1f".join(media)
        ck = frame_key(kind, vkey, frames)
        arr = cache.get(ck)
        if arr is None:
            arr = np.asarray(loader(kind, media, frames, key=vkey))
            if arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] == 0 or arr.dtype != np.uint8:
                raise ValueError(f"frame loader returned {arr.dtype} {arr.shape}, expected uint8 (t, H, W, 3)")
            arr = _shrink(arr, max_pixels)
            cache.put(ck, arr)
        item.video = arr
        return item
    raise ValueError(f"unsupported media_kind {kind!r}")


# ----------------------------------------------------------------------------------------------
# table-level entry point
# ----------------------------------------------------------------------------------------------

_SCORER_CACHE: dict[tuple, VLMScorer] = {}


def get_scorer(model_path: str | Path, **kwargs: Any) -> VLMScorer:
    """Return a ``VLMScorer`` for these arguments, reusing the last one built with the same ones.

    Only one scorer (one model) is kept, so calling ``compute_model_descriptors`` once per shard
    loads the weights once, and the judge cache carries over between shards.
    ``clear_scorer_cache()`` frees it.
    """
    key = (str(Path(model_path).resolve()), tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
    hit = _SCORER_CACHE.get(key)
    if hit is None:
        _SCORER_CACHE.clear()
        hit = VLMScorer(model_path, **kwargs)
        _SCORER_CACHE[key] = hit
    return hit


def clear_scorer_cache() -> None:
    """Drop the scorer kept by ``get_scorer`` (frees the model)."""
    _SCORER_CACHE.clear()



#: Width of the stored model embeddings: hidden states wider than this are projected.
MODEL_EMB_DIM = 256


def project_hidden(h: np.ndarray, dim: int = MODEL_EMB_DIM, seed: int = 0) -> np.ndarray:
    """Project pooled hidden states (n, H) to (n, min(H, dim)) and L2-normalise the rows.

    H <= dim: no projection. Otherwise ``h @ Q`` with Q the (H, dim) orthonormal factor of a
    Gaussian matrix drawn from ``default_rng([seed, H, dim])`` (fixed per width, so pool and goal
    items of the same model share it). A random orthogonal projection keeps inner products of
    unit vectors within about 1/sqrt(dim) (Johnson-Lindenstrauss), which the goal-direction
    relevance (:mod:`gdo.descriptors.relevance`) needs, and bounds the store: 1M candidates x 256
    x float16 = 0.5 GB instead of 8 GB at H = 4096. NaN rows stay NaN; zero rows stay zero.

    Returns:
        float32 (n, min(H, dim)).
    """
    h = np.asarray(h, dtype=np.float32)
    H = h.shape[1]
    if H > dim:
        g = np.random.default_rng([seed, H, dim]).standard_normal((H, dim))
        q, _ = np.linalg.qr(g)
        h = (h.astype(np.float64) @ q).astype(np.float32)
    norm = np.linalg.norm(h, axis=1, keepdims=True)
    return np.where(norm > 0, h / np.where(norm > 0, norm, 1.0), h).astype(np.float32)


def model_embedding_array(hidden: np.ndarray) -> pa.Array:
    """``model_emb`` column: fixed_size_list<float32> of :func:`project_hidden` rows, null where
    a row is NaN (the item failed)."""
    z = project_hidden(hidden)
    bad = ~np.isfinite(z).all(axis=1)
    flat = pa.array(np.where(bad[:, None], 0.0, z).ravel(), pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, z.shape[1], mask=pa.array(bad) if bad.any() else None)


def probe_item() -> VLMItem:
    """A fixed input (a 56x56 colour gradient and a short question/answer) whose pooled state
    fingerprints a model's behaviour: two folders holding the same weights give the same vector
    wherever they live, different weights a different one (used to check that goal items are
    embedded by the model the pool was profiled with)."""
    y, x = np.mgrid[0:56, 0:56]
    img = np.stack([x * 4, y * 4, (x + y) * 2], axis=-1).astype(np.uint8)
    return VLMItem(question="What colours does this image show?", answer="A gradient.", images=(img,))


def model_probe(scorer: VLMScorer) -> list[float] | None:
    """:func:`project_hidden` of the scorer's pooled state of :func:`probe_item` (computed once per
    scorer); None when the model exposes no output head."""
    if scorer._head is None:
        return None
    if getattr(scorer, "_probe", None) is None:
        errors = scorer.errors  # embed() resets them: keep the caller's
        scorer._probe = [float(v) for v in project_hidden(scorer.embed([probe_item()]))[0]]
        scorer.errors = errors
    return scorer._probe


def embedding_scorer(model_path: str | Path, *, frames: int = 8, device: str = "auto", batch_size: int = 8,
                     seed: int = 42, trust_remote_code: bool = False, mode: str = "default") -> VLMScorer:
    """The scorer that embeds rows outside a profile run (goal items, the model fingerprint), with
    the same arguments as :func:`compute_model_descriptors`' scorer, so a process that profiled
    reuses its loaded model (:func:`get_scorer`)."""
    return get_scorer(model_path, device=device, trust_remote_code=trust_remote_code, batch_size=batch_size,
                      seed=seed, frames=frames, max_pixels=None, video_mode="auto", mode=mode)


def embed_rows(rows: Sequence[dict], model_path: str | Path, *, frames: int = 8, device: str = "auto",
               batch_size: int = 8, seed: int = 42, trust_remote_code: bool = False, mode: str = "default"
               ) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Model-space embeddings of arbitrary rows (e.g. goal items), made exactly as the profile's
    ``model_emb``: the same scorer settings, media loading and frame sampling
    (:func:`compute_model_descriptors`), the pooled hidden state of the visual pass
    (:meth:`VLMScorer.embed`) and :func:`project_hidden`.

    Args:
        rows: dicts with question, answer (may be ""), media_kind, media (and optionally uid,
            video_key).
        model_path, frames, device, batch_size, seed, trust_remote_code, mode: as for the profile
            (``frames``: the model frames the pool was profiled with).

    Returns:
        (float32 (n, min(H, MODEL_EMB_DIM)) L2-normalised, mask bool (n,), error text or None per
        row). Failed rows are zero with mask False.
    """
    scorer = embedding_scorer(model_path, frames=frames, device=device, batch_size=batch_size, seed=seed,
                              trust_remote_code=trust_remote_code, mode=mode)
    cache = FrameCache(max_bytes=256 << 20, readonly=False)
    items, ok, errs = [], [], [None] * len(rows)
    for i, r in enumerate(rows):
        try:
            items.append(_load_item(dict(r), frames, _default_frame_loader, cache, scorer.frame_max_pixels))
            ok.append(i)
        except Exception as exc:  # noqa: BLE001 - reported per row
            errs[i] = f"media: {type(exc).__name__}: {exc}"[:500]
    hidden = np.full((len(rows), scorer.hidden_size), np.nan, np.float32)
    if items:
        hidden[ok] = scorer.embed(items)
        for k, e in scorer.errors.items():
            errs[ok[k]] = f"model: {e}"
    z = project_hidden(hidden)
    mask = np.isfinite(z).all(axis=1)
    return np.where(mask[:, None], z, 0.0).astype(np.float32), mask, errs


def compute_model_descriptors(
    candidates: pa.Table,
    model_path: str | Path,
    *,
    batch_size: int = 8,
    device: str = "auto",
    seed: int = 42,
    frames: int = 8,
    trust_remote_code: bool = False,
    descriptors: Sequence[str] = MODEL_DESCRIPTORS,
    progress: bool = False,
    frame_loader: Callable[..., np.ndarray] | None = None,
    max_pixels: int | None = None,
    video_mode: str = "auto",
    scorer: VLMScorer | None = None,
    chunk_size: int | None = None,
    mode: str = "default",
) -> pa.Table:
    """Model descriptors of every candidate (GDO_METHOD.md 3.1, 3.2, 3.4, 3.5).

    Args:
        candidates: table with at least uid, question, answer, media_kind, media (and optionally
            video_key), as in ``gdo.schema.CANDIDATE_SCHEMA``.
        model_path: local folder of the reference VLM.
        batch_size, device, seed, trust_remote_code, max_pixels, video_mode: see ``VLMScorer``.
        frames: frames sampled per video (uniformly, GDO_METHOD.md 2); default 8 keeps CPU runs
            cheap, use 32 to follow the paper.
        descriptors: subset of ("vds", "ppl", "sc", "tnc_judge"); "vds"/"ppl" run the two loss
            passes (both give loss_video and loss_blind). Columns not requested are null.
        progress: show a tqdm bar over chunks.
        frame_loader: ``f(media_kind, media, frames, key=video_key) -> uint8 (t, H, W, 3)``;
            default ``gdo.media.load_frames``. Decoded frames are kept in a 512 MiB ``FrameCache``
            keyed by (media_kind, video_key, frames), so a video shared by several candidates
            is decoded once; frames and images are downscaled (area) to the image processor's
            largest area before batching, which bounds memory.
        scorer: use this ``VLMScorer`` (its settings win over the ones above); by default the
            scorer of ``get_scorer`` is reused across calls with the same arguments, so a caller
            working shard by shard loads the model once.
        chunk_size: candidates loaded into memory at once (default 16 * batch_size).
        mode: ``paper``: the release's loss tokens (the answer and everything its chat-template
            rendering puts after it, the newline after ``<|im_end|>`` included), its judge prompt
            (question casing kept, 3 new tokens, "temporal" anywhere wins) and its SC word rule
            (ASCII word characters); ``default``: end-of-turn marker without the newline, our
            judge prompt on the case-folded question, Unicode words. See ``VLMScorer``.

    Returns:
        Table with ``MODEL_DESCRIPTOR_SCHEMA`` columns in candidate order: uid, loss_video,
        loss_blind, vds (= loss_blind - loss_video), ppl (= exp(clamp(loss_video, -30, 30))), sc,
        tnc_judge, model_error, then (when the loss passes ran) ``model_emb``:
        fixed_size_list<float32>[min(H, MODEL_EMB_DIM)], the pooled hidden state of the visual
        pass (:meth:`VLMScorer.embed`) through :func:`project_hidden`, L2-normalised; null where
        the item failed. A candidate whose media cannot be read or whose model call failed
        has nulls in the affected columns and the error text in model_error (null when fine).
        The schema metadata key ``gdo.model_probe`` holds :func:`model_probe` (with ``model_emb``)
        and ``gdo.model_stats`` this call's counters as JSON
        (loss batches, generate calls, judge questions / unique / cache hits / model calls,
        OOM retries, failed candidates).

    Raises:
        ValueError: unknown descriptor names or missing columns.
    """
    wanted = tuple(descriptors)
    bad = [d for d in wanted if d not in MODEL_DESCRIPTORS]
    if bad:
        raise ValueError(f"unknown model descriptors {bad}; choose from {MODEL_DESCRIPTORS}")
    need = {"uid", "question", "answer", "media_kind", "media"}
    missing = need - set(candidates.column_names)
    if missing:
        raise ValueError(f"candidates table lacks columns {sorted(missing)}")
    if scorer is None:
        scorer = get_scorer(model_path, device=device, trust_remote_code=trust_remote_code, batch_size=batch_size,
                            seed=seed, frames=frames, max_pixels=max_pixels, video_mode=video_mode, mode=mode)
    loader = frame_loader or _default_frame_loader
    frame_pixels = scorer.frame_max_pixels
    cols = [c for c in ("uid", "question", "answer", "media_kind", "media", "video_key") if c in candidates.column_names]
    rows = candidates.select(cols).to_pylist()
    n = len(rows)
    out = {k: np.full(n, np.nan) for k in ("loss_video", "loss_blind", "sc", "tnc_judge")}
    hidden: np.ndarray | None = None  # (n, H) pooled hidden states of the VDS visual pass
    errors: list[list[str]] = [[] for _ in range(n)]
    do_loss = "vds" in wanted or "ppl" in wanted
    chunk = chunk_size or max(1, 16 * scorer.batch_size)
    video_cache = FrameCache(max_bytes=512 << 20, readonly=False)
    stats0 = dict(scorer.stats)
    starts = range(0, n, chunk)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, total=math.ceil(n / chunk) if n else 0, desc="model descriptors", unit="chunk")
    for s in starts:
        idx = list(range(s, min(n, s + chunk)))
        items: list[VLMItem] = []
        ok: list[int] = []
        for i in idx:
            try:
                items.append(_load_item(rows[i], frames, loader, video_cache, frame_pixels))
                ok.append(i)
            except Exception as exc:  # noqa: BLE001 - recorded per candidate
                errors[i].append(f"media: {type(exc).__name__}: {exc}"[:500])
        if not ok:
            continue
        if do_loss:
            lv, lb = scorer.losses(items)
            if scorer.pooled is not None:
                if hidden is None:
                    hidden = np.full((n, scorer.pooled.shape[1]), np.nan, np.float32)
                hidden[ok] = scorer.pooled
            for k, i in enumerate(ok):
                out["loss_video"][i], out["loss_blind"][i] = lv[k], lb[k]
            for k, e in scorer.errors.items():
                errors[ok[k]].append(f"loss: {e}")
        if "sc" in wanted:
            sc = scorer.self_consistency(items)
            for k, i in enumerate(ok):
                out["sc"][i] = sc[k]
            for k, e in scorer.errors.items():
                errors[ok[k]].append(f"sc: {e}")
        if "tnc_judge" in wanted:
            tj = scorer.judge_temporal([it.question for it in items])
            for k, i in enumerate(ok):
                out["tnc_judge"][i] = tj[k]
            for k, e in scorer.errors.items():
                errors[ok[k]].append(f"tnc_judge: {e}")
        advance(len(idx))  # the stage's candidate bar (gdo.utils.progress), if one is open
    failed_media = np.array([any(e.startswith("media:") for e in errs) for errs in errors], dtype=bool)
    for k in out:
        out[k][failed_media] = np.nan
    lv, lb = out["loss_video"], out["loss_blind"]
    vds = lb - lv
    ppl = np.exp(np.clip(lv, -30.0, 30.0))
    if "vds" not in wanted:
        vds = np.full(n, np.nan)
    if "ppl" not in wanted:
        ppl = np.full(n, np.nan)

    def col(a: np.ndarray) -> pa.Array:
        return pa.array(a, type=pa.float64(), mask=np.isnan(a))

    table = pa.Table.from_arrays(
        [
            pa.array([r["uid"] for r in rows], type=pa.string()),
            col(lv), col(lb), col(vds), col(ppl), col(out["sc"]), col(out["tnc_judge"]),
            pa.array(["; ".join(e) if e else None for e in errors], type=pa.string()),
        ],
        schema=MODEL_DESCRIPTOR_SCHEMA,
    )
    if hidden is not None:
        hidden[failed_media] = np.nan
        table = table.append_column("model_emb", model_embedding_array(hidden))
    stats = {k: scorer.stats[k] - stats0.get(k, 0) for k in scorer.stats}
    stats["failed"] = int(sum(1 for e in errors if e))
    meta = {"gdo.model_stats": json.dumps(stats, sort_keys=True)}
    if hidden is not None:
        meta["gdo.model_probe"] = json.dumps(model_probe(scorer))
    return table.replace_schema_metadata(meta)
