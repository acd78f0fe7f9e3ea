"""A tiny Qwen2-VL-architecture vision-language model built offline (``gdo tiny-model``).

The model is randomly initialised from a config (hidden size 64, 2 text layers, a 2-block
vision tower with 4-pixel patches), its byte-level BPE tokenizer is trained on the sentences
embedded below with the ``tokenizers`` library, and the processor pairs it with the PIL
(slow) Qwen2-VL image processor, so nothing is downloaded and neither torchvision nor a GPU is
needed. The folder loads with ``AutoModelForImageTextToText`` / ``AutoProcessor`` exactly like a
real Qwen2-VL checkpoint, which makes it an offline smoke test of an install and the model used
by the test-suite. Its outputs are meaningless until trained.
"""

from __future__ import annotations

import json
from pathlib import Path

#: Special tokens of the Qwen2-VL family (ids 0..6 in this order).
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

#: Qwen2-VL's chat template (system prompt, image/video placeholders, generation prompt).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_BASE_SENTENCES = """\
You are a helpful assistant.
What is shown in the image?
Describe the video in detail.
What happens after the man opens the door?
What colour is the car in the picture?
The image shows a red apple on a wooden table.
A woman is walking her dog in the park.
The video shows a person cooking dinner in a small kitchen.
First the boy picks up the ball, then he throws it to his friend.
How many people are in the room?
There are three people sitting around the table.
Is the sky blue or grey in this photo?
The sky is clear and blue with a few white clouds.
What is the man doing before he sits down?
He takes off his jacket before he sits down.
Which animal appears first in the clip?
A cat appears first, and later a dog runs across the street.
What is written on the sign?
The sign says stop.
Where is the bicycle parked?
The bicycle is parked next to a green fence.
Answer the question using a single word or phrase.
Please answer with the letter of the correct option.
A. red B. green C. blue D. yellow
Select the best answer to the following multiple-choice question.
The camera pans slowly from left to right during the scene.
What does the chef add to the pan next?
She adds onions and garlic to the hot pan.
Why is the child laughing?
The child is laughing because the puppy licked his face.
What time of day is it in the video?
It is late in the evening and the street lights are on.
Is there any motion in the scene?
The water flows quickly over the rocks.
A man in a black suit is ironing clothes on the back of a taxi.
The pier stretches over a calm lake surrounded by mountains and forest.
A butterfly rests on a bright flower in the garden.
The squirrel holds a nut in its small paws.
Several fruits lie in a basket: bananas, oranges and grapes.
The baboon has a colourful face with red and blue skin.
The football player kicks the ball towards the goal.
Temporal
Static
Does this question require watching several frames of a video?
Answer with one word: Temporal or Static.
The sequence of events is important to answer this question.
Finally the people leave the building and the door closes.
During the transition the picture fades to black.
What will happen next in the video?
Count the number of cars that pass while the light is red.
yes
no
The answer is yes.
The answer is no.
I do not know.
"""

_COLOURS = (
    "red", "green", "blue", "yellow", "black", "white", "orange", "purple", "pink", "brown", "grey",
)
_OBJECTS = (
    "car", "apple", "shirt", "ball", "wall", "sky", "flower", "door", "hat", "bird", "cup", "bag",
)


def training_sentences() -> list[str]:
    """Return the few hundred sentences the tiny tokenizer is trained on (deterministic order)."""
    out = [s for s in _BASE_SENTENCES.splitlines() if s.strip()]
    for i, obj in enumerate(_OBJECTS):
        for j, col in enumerate(_COLOURS):
            if (i + j) % 2 == 0:
                out.append(f"The {obj} is {col}.")
            else:
                out.append(f"What colour is the {obj}? It is {col}.")
    for col in _COLOURS:
        out.append(f"What is the dominant colour of this image? {col.capitalize()}.")
        out.append(f"Which colour fills most of the picture? {col}")
    return out


def build_tiny_model(
    out_dir: str | Path,
    *,
    seed: int = 0,
    vocab_size: int = 512,
    max_pixels: int = 32 * 32,
) -> Path:
    """Write a tiny randomly initialised Qwen2-VL model, tokenizer and processor to ``out_dir``.

    The folder loads with ``AutoModelForImageTextToText.from_pretrained(out_dir)`` and
    ``AutoProcessor.from_pretrained(out_dir)``. Architecture: text hidden size 64, 2 layers,
    4 heads (M-RoPE sections 2/3/3), tied embeddings; vision tower with 2 blocks of width 32,
    patch size 4, temporal patch 2, spatial merge 2, so a 32x32 image costs 16 visual tokens.
    Images are resized by the PIL image processor to at most ``max_pixels`` pixels (and at
    least 8x8). Built in well under a second; the folder is about 0.6 MB.

    Args:
        out_dir: destination folder (created; existing files of the same names are replaced).
        seed: torch seed for the weight initialisation (same seed, same weights).
        vocab_size: BPE vocabulary size target (the trained vocabulary may be a little smaller).
        max_pixels: largest image area (pixels) after resizing.

    Returns:
        The folder as a ``Path``.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        GenerationConfig,
        PreTrainedTokenizerFast,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
    )

    try:  # transformers 5.x: the PIL backend needs no torchvision
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
            Qwen2VLImageProcessorPil as ImageProcessor,
        )
    except ImportError:  # transformers 4.x: the slow processor is the PIL one
        from transformers import Qwen2VLImageProcessor as ImageProcessor

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    # --- tokenizer: byte-level BPE trained on the embedded sentences -------------------------
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(training_sentences(), trainer)
    ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        model_max_length=32768,
        padding_side="right",
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    # --- processor: PIL image processor (no torchvision needed) ------------------------------
    patch, merge, tpatch = 4, 2, 2
    factor = patch * merge
    image_processor = ImageProcessor(
        patch_size=patch,
        merge_size=merge,
        temporal_patch_size=tpatch,
        size={"shortest_edge": factor * factor, "longest_edge": int(max_pixels)},
    )

    # --- model --------------------------------------------------------------------------------
    n_vocab = len(tokenizer)
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": n_vocab,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "tie_word_embeddings": True,
        },
        vision_config={
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": 64,
            "mlp_ratio": 2,
            "num_heads": 2,
            "patch_size": patch,
            "spatial_merge_size": merge,
            "temporal_patch_size": tpatch,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = Qwen2VLForConditionalGeneration(config)
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
    )
    model.save_pretrained(out)
    # The processor is saved piecewise: transformers 5.x cannot instantiate Qwen2VLProcessor
    # without torchvision (its video processor needs it), so we write the files a
    # ``Qwen2VLProcessor.save_pretrained`` would write. With torchvision installed,
    # ``AutoProcessor.from_pretrained`` loads the full processor (video included); without it,
    # ``gdo.models.hf.load_processor`` builds an image-only processor from the same files.
    tokenizer.save_pretrained(out)
    image_processor.save_pretrained(out)
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    _write_json(out / "processor_config.json", {"processor_class": "Qwen2VLProcessor"})
    _write_json(
        out / "video_preprocessor_config.json",
        {
            "video_processor_type": "Qwen2VLVideoProcessor",
            "processor_class": "Qwen2VLProcessor",
            "patch_size": patch,
            "temporal_patch_size": tpatch,
            "merge_size": merge,
            "size": {"shortest_edge": factor * factor, "longest_edge": int(max_pixels)},
            "cap_pixels_per_frame": False,
            "do_resize": True,
            "do_rescale": True,
            "rescale_factor": 1.0 / 255.0,
            "do_normalize": True,
            "image_mean": list(image_processor.image_mean),
            "image_std": list(image_processor.image_std),
            "do_convert_rgb": True,
            "do_sample_frames": False,
        },
    )
    _write_json(out / "gdo_tiny.json", {"builder": "gdo.models.tiny.build_tiny_model", "seed": int(seed)})
    return out


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
