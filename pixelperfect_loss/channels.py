"""The distortion-channel taxonomy: names, order and sign conventions.

Every signed map, label and report in the package follows :data:`CHANNELS`.
A positive value means the *image* has more of the channel than the
*reference*; a negative value means it has less.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Sequence

CHANNELS: tuple[str, ...] = (
    "blur",
    "noise",
    "jpeg",
    "brightness",
    "contrast",
    "saturation",
    "warmth",
    "tint",
)

#: Meaning of the positive and negative direction of each channel.
MEANING: dict[str, tuple[str, str]] = {
    "blur": ("detail lost (gaussian, defocus, motion, down-up scaling)",
             "over-sharpened (unsharp mask, halos)"),
    "noise": ("added noise (gaussian, signal-dependent, chroma)",
              "less noise than the reference"),
    "jpeg": ("block / ringing compression artefacts", "fewer artefacts than the reference"),
    "brightness": ("brighter", "darker"),
    "contrast": ("more contrast", "less contrast"),
    "saturation": ("more saturated", "less saturated"),
    "warmth": ("towards yellow / orange", "towards blue"),
    "tint": ("towards magenta", "towards green"),
}

INDEX: dict[str, int] = {name: i for i, name in enumerate(CHANNELS)}


def channel_indices(channels: Iterable[str] | str | None) -> list[int]:
    """Indices into :data:`CHANNELS` for ``channels`` (all channels for ``None``).

    Example:
        >>> channel_indices(["noise", "blur"])
        [1, 0]
        >>> channel_indices(None) == list(range(8))
        True
    """
    if channels is None:
        return list(range(len(CHANNELS)))
    if isinstance(channels, str):
        channels = [channels]
    if not isinstance(channels, Iterable) or isinstance(channels, (bytes, dict)):
        raise TypeError(f"channels: expected a channel name or a list of names ({', '.join(CHANNELS)}), "
                        f"got {type(channels).__name__}")
    names: Sequence[str] = list(channels)
    if len(names) == 0:
        raise ValueError("channels: expected at least one channel name, got an empty list")
    out = []
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"channels: expected channel names (str), got {type(name).__name__}")
        if name not in INDEX:
            raise ValueError(f"channels: unknown channel {name!r}; valid channels are {', '.join(CHANNELS)}")
        if INDEX[name] in out:
            raise ValueError(f"channels: channel {name!r} is listed twice")
        out.append(INDEX[name])
    return out
