"""Column contracts shared by every stage (see docs/DESIGN.md).

``CANDIDATE_SCHEMA`` is the schema of ``candidates.parquet`` written by ``gdo ingest``;
``DESCRIPTOR_COLUMNS`` lists the columns of ``descriptors.parquet`` written by ``gdo profile``.
"""

from __future__ import annotations

import pyarrow as pa

#: Buckets (GDO_METHOD.md section 5).
IMAGE_QA = "image_qa"
SHORT_VIDEO = "short_video"

#: Default number of frames a video is sampled to (GDO_METHOD.md section 2).
DEFAULT_FRAMES = 32

CANDIDATE_SCHEMA = pa.schema(
    [
        ("uid", pa.string()),            # ov::{row id}::t{k} | vv::{row id}::t{k}
        ("row_id", pa.string()),         # the row's id, or a content-derived stable id
        ("turn", pa.int32()),            # k: index of the kept (user, assistant) pair in the row
        ("source_file", pa.string()),    # absolute path of the pool file
        ("file_index", pa.int32()),      # position of the file in the POOL arguments
        ("line", pa.int64()),            # 1-based line (JSONL) or 1-based record index (JSON array, Parquet)
        ("format", pa.string()),         # reader name (llava_ov, llava_video, llava, sharegpt, openai_content, ...)
        ("bucket", pa.string()),         # image_qa | short_video
        ("question", pa.string()),       # media tokens stripped, outer whitespace stripped
        ("answer", pa.string()),
        ("user_msg", pa.int32()),        # index of the user message in the row's conversation list
        ("asst_msg", pa.int32()),        # index of the assistant message
        ("media_kind", pa.string()),     # image | frames | video | none
        ("media", pa.list_(pa.string())),      # resolved paths (images, full frame list, or [video file])
        ("media_raw", pa.list_(pa.string())),  # paths as written in the row
        ("video_key", pa.string()),      # stable key of the distinct video (null for images)
        ("n_frames", pa.int32()),        # frames the model sees: min(native, T) for videos, #images for images
        ("native_frames", pa.int32()),   # frames before sampling (null when not probed)
        ("fps", pa.float64()),
        ("duration_s", pa.float64()),
        ("data_source", pa.string()),    # "" when the row has none
        ("pool_pos", pa.int64()),        # candidate order in the pool (ingestion order)
        # media facts from gdo.media.probe (issue 13 item 8); null when not probed / not applicable
        ("header_frames", pa.int32()),   # frame count the video header states (null: none stated)
        ("width", pa.int32()),           # upright width in pixels (videos, first image)
        ("height", pa.int32()),          # upright height in pixels
        ("rotation", pa.int32()),        # clockwise degrees applied to show a video upright (0/90/180/270)
        ("sample_times", pa.list_(pa.float64())),  # seconds (from the first frame) of the T sampled frames
        ("media_flags", pa.list_(pa.string())),    # sorted flags: partial, vfr, rotated, upscaled, animated, ...
    ]
)

#: Columns of descriptors.parquet (keyed by uid). Model columns may be null (failure or not run).
DESCRIPTOR_COLUMNS = [
    "uid",
    "amm", "frame_diversity",
    "tnc", "question_form", "q_len_bucket", "a_len_bucket", "duration_bucket",
    "temporal_category", "source_group",
    "cluster_id", "cluster_rep", "cluster_hard",
    "dup_group",
    "native_frames", "n_frames", "duration_s",
    # model descriptors (issue 4)
    "loss_video", "loss_blind", "vds", "ppl", "sc", "tnc_judge", "model_error",
]
