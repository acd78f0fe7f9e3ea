"""Media references: URI handling, Windows paths, resolution and confinement (issue 13 item 6).

One rule for a media reference as written in a pool row, applied in this order:

1. ``data:`` URIs are rejected (``inline_media``): gdo keeps no decoded copies of inline media;
   write the bytes to a file and reference its path.
2. ``http://``, ``https://`` and any other ``scheme://`` link except ``file://`` are rejected
   (``remote_media``) without touching the network.
3. ``file://`` URIs become their (percent-decoded) path; ``file://host/...`` with a host other
   than ``localhost`` is remote.
4. Backslashes are path separators (``a\\b.jpg`` is ``a/b.jpg``); a Windows drive path
   (``C:\\...`` or ``C:/...``) cannot exist on this system and is rejected (``windows_path``).
5. The path is resolved against ``media_root`` (else the pool file's folder) and, when
   ``media_root`` is given, confined to it (``media_outside_root``): confinement applies after
   this normalisation, so ``file:///etc/x`` and ``..\\x`` are confined like ``/etc/x``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from .errors import MediaError

#: File extensions treated as video files (decoded with PyAV).
VIDEO_EXTS = frozenset(
    {".mp4", ".avi", ".webm", ".mkv", ".gif", ".mov", ".m4v", ".flv", ".wmv", ".mpg", ".mpeg",
     ".3gp", ".ts", ".ogv"}
)
#: File extensions treated as images (a frame of a frame list, or an image).
IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def ext_of(path: str) -> str:
    """Lower-case extension of ``path`` including the dot ('' when none)."""
    return os.path.splitext(path)[1].lower()


def normalise_ref(ref: str) -> str:
    """A media reference as written -> a local path (steps 1-4 of the module rule).

    Raises:
        MediaError: ``wrong_type`` (empty or not a string), ``inline_media``, ``remote_media``,
        ``windows_path``.
    """
    if not isinstance(ref, str) or not ref:
        raise MediaError("wrong_type", f"media path must be a non-empty string, got {ref!r:.60}")
    if ref[:5].lower() == "data:":
        mime = ref[5:ref.find(",")].split(";")[0] if "," in ref else "?"
        raise MediaError("inline_media", f"inline data: URI ({mime or '?'}, {len(ref)} characters) is not "
                                         "supported: write the file and reference its path")
    m = _SCHEME.match(ref)
    if m:
        scheme = m.group(1).lower()
        if scheme != "file":
            raise MediaError("remote_media", f"{ref[:200]!r} is a remote {scheme} link; gdo never downloads "
                                             "media: fetch it and reference the local path")
        u = urlparse(ref)
        if u.netloc not in ("", "localhost"):
            raise MediaError("remote_media", f"{ref[:200]!r} names host {u.netloc!r}; only local file:// URIs resolve")
        ref = unquote(u.path)
        if not ref:
            raise MediaError("wrong_type", "file:// URI without a path")
    if _DRIVE.match(ref):
        raise MediaError("windows_path", f"{ref[:200]!r} is a Windows drive path; no drive letters exist here "
                                          "(write it relative to --media-root)")
    if "\\" in ref:
        ref = ref.replace("\\", "/")
    return ref


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def resolve_media(path_as_written: str, base_dir: str | os.PathLike, media_root: str | os.PathLike | None = None,
                  *, check_links: bool = True) -> Path:
    """Resolve a media reference as written in a pool row (module rule, steps 1-5).

    Relative paths resolve against ``media_root`` when given, else against ``base_dir`` (the pool
    file's folder). The result is lexically normalised (``os.path.normpath``), not made real.

    When ``media_root`` is given, the path is confined to it: a ``../`` escape, an absolute path
    outside it, or (``check_links=True``) a path whose real location (symlinks followed,
    ``os.path.realpath``) lies outside ``realpath(media_root)`` raises ``media_outside_root``.
    ``check_links=False`` does only the lexical checks and touches no file.

    Raises:
        MediaError: ``media_outside_root``, ``wrong_type``, ``inline_media``, ``remote_media``,
        ``windows_path``.
    """
    ref = normalise_ref(path_as_written)
    base = os.fspath(media_root if media_root is not None else base_dir)
    p = os.path.normpath(os.path.join(os.path.abspath(base), ref))
    if media_root is not None:
        root = os.path.normpath(os.path.abspath(os.fspath(media_root)))
        if not _is_within(p, root):
            raise MediaError("media_outside_root", f"{path_as_written[:200]!r} resolves to {p}, outside {root}")
        if check_links:
            real = os.path.realpath(p)
            real_root = os.path.realpath(root)
            if not _is_within(real, real_root):
                raise MediaError("media_outside_root",
                                 f"{path_as_written[:200]!r} links to {real}, outside {real_root}")
    return Path(p)


def list_frame_folder(folder: str | os.PathLike) -> list[str]:
    """Sorted image files (by name) of a frame folder, as absolute path strings.

    Raises:
        MediaError: ``missing_media`` if the folder does not exist or has no image file.
    """
    folder = os.fspath(folder)
    try:
        names = sorted(n for n in os.listdir(folder) if ext_of(n) in IMAGE_EXTS)
    except OSError as e:
        raise MediaError("missing_media", f"frame folder {folder}: {e.strerror or e}") from None
    if not names:
        raise MediaError("missing_media", f"frame folder {folder} has no image files")
    return [os.path.join(folder, n) for n in names]
