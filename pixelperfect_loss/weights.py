"""Finding, verifying and loading network weights (safetensors).

Where weights are looked for, in order:

1. an explicit ``path`` (a folder holding ``<net>.safetensors``, or the file of that one network);
2. the environment variable ``PIXELPERFECT_WEIGHTS`` (same forms); once set, a missing path is an error;
3. the weights installed with the package (``weights/`` in the source tree);
4. the Hugging Face Hub (``HUB_REPO`` at ``HUB_REVISION``), through ``hf_hub_download``'s cache,
   which honours ``HF_HUB_OFFLINE=1``.

A ``repo_id`` or ``revision`` asks for that Hub version (4), skipping 2-3 (with a path too, 1, it is an
error); ``revision=HUB_REVISION`` without ``repo_id`` is still served from the installed files (3).

Loading is strict: a missing, unexpected or misshapen tensor is an error, never a partial load.
Files written by :func:`save_weights` carry a digest of their tensors, checked at every load.
"""

from __future__ import annotations

import hashlib
import os
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

ENV_VAR = "PIXELPERFECT_WEIGHTS"
HUB_REPO = "pixelperfect-loss/pixelperfect-small"
HUB_REVISION = "v7"
#: Named model versions: name -> (Hub repository, pinned revision). The first ships with the package.
MODELS: dict[str, tuple[str, str]] = {"pixelperfect-small": (HUB_REPO, HUB_REVISION)}
NETS = ("predictor", "scorer")
#: keyword options of the loaders beside the path (those of :func:`find_weights`)
HUB_OPTIONS = ("repo_id", "revision", "cache_dir")
#: sha256 of published weight files, keyed "repo@revision/filename"; checked after download.
KNOWN_SHA256: dict[str, str] = {
    f"{HUB_REPO}@v1/predictor.safetensors": "2eef46e91796b46e70d1cf5612236d0ac483f094feb67ade911b36872900e48a",
    f"{HUB_REPO}@v1/scorer.safetensors": "762907edb11eff0dce7bbd35c3b9997611b90cf9e7b222abdf5921feb9b5cf8e",
    # v2: the v1 predictor, a scorer retrained on ranked sets with whole-block pixelation
    f"{HUB_REPO}@v2/predictor.safetensors": "2eef46e91796b46e70d1cf5612236d0ac483f094feb67ade911b36872900e48a",
    f"{HUB_REPO}@v2/scorer.safetensors": "5f108e0b4478b0abc8f4ff18be7e443a6fac2e487185c71ba73fd3d3d37eb423",
    # v3: both networks retrained by `python -m pixelperfect_loss.train all` with the v3 engine
    f"{HUB_REPO}@v3/predictor.safetensors": "26cbebf836d27e478b4f59fad585eb803a0fa658420fe5051d0bd1ee50c3795f",
    f"{HUB_REPO}@v3/scorer.safetensors": "c8231b00eba24abe46127ef26b5af7fe3e333e27f8aa0d577cb96dcf0ee08009",
    # v4: the v3 predictor run continued through the tuning phase (cross-talk term), its scorer retrained
    f"{HUB_REPO}@v4/predictor.safetensors": "3d541888d2911b598132b05f61695fa35f08b2f04c3b7f9753334612f8f271c0",
    f"{HUB_REPO}@v4/scorer.safetensors": "7ee0afcdfbcdeaaa285833c4e9dc54a978165ca9c6ec7f72076d7504660e6cca",
    # v5: both networks retrained by the one command, first phase at peak learning rate 1e-3 (2e-3 lost units)
    f"{HUB_REPO}@v5/predictor.safetensors": "6004dfa43219d133bccafd4a8376c374ac7ded931b4f3ea7df9bc5d6154d117e",
    f"{HUB_REPO}@v5/scorer.safetensors": "ddd1effe01e8d501ecac85847e0fb0ac68d28860773efe11ede9a43367fd045e",
    # v6: the v5 predictor, a scorer trained on half "other" ranked sets for twice the steps
    f"{HUB_REPO}@v6/predictor.safetensors": "6004dfa43219d133bccafd4a8376c374ac7ded931b4f3ea7df9bc5d6154d117e",
    f"{HUB_REPO}@v6/scorer.safetensors": "6523746d0dab8741960d86ed9307769c78a7ae4ed5cb7d1f946477e409897253",
    # v7: the predictor with hue inputs and whole-image statistics (runs/v17, seed 0), a scorer trained on it
    f"{HUB_REPO}@v7/predictor.safetensors": "eb81e4152f72fa68b8f4a96770005f5cb0b2112322290c54236cfc559f86d779",
    f"{HUB_REPO}@v7/scorer.safetensors": "904bbf7efff4b9bdfafcbcc454b796f80c65cf6388b42ddcde5a4bccb50751fe",
}


def sha256(path: str | Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_HOLDS = {"DistortionPredictor": "predictor", "RelationalScorer": "scorer"}


def _net_of(file: Path) -> str | None:
    """The network a weights file holds, from its metadata, else its name; None if unknown."""
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt") as f:
            held = _HOLDS.get((f.metadata() or {}).get("net", ""))
    except Exception:  # unreadable: read_weights reports it
        held = None
    return held or (file.stem if file.stem in NETS else None)


def _given(p: Path, net: str, origin: str) -> Path:
    """The ``net`` weights at a user-given file or folder ``p`` (``origin`` says who gave it); no fallback."""
    filename = f"{net}.safetensors"
    if p.is_dir():
        if not (p / filename).is_file():
            raise FileNotFoundError(f"weights: no {filename} in folder {p} (given as {origin})")
        return p / filename
    if not p.is_file():
        raise FileNotFoundError(f"weights: no file or folder {p} (given as {origin})")
    held = _net_of(p)
    if held not in (None, net):
        raise ValueError(f"weights: {p} (given as {origin}) is a single file holding the {held}; "
                         f"loading the {net} too needs a folder holding {' and '.join(f'{n}.safetensors' for n in NETS)}")
    return p


def _packaged(filename: str) -> Path | None:
    try:
        root = resources.files("pixelperfect_loss._weights")
        cand = Path(str(root / filename))
        if cand.is_file():
            return cand
    except ModuleNotFoundError:
        pass
    cand = Path(__file__).resolve().parent.parent / "weights" / filename  # source checkout
    return cand if cand.is_file() else None


def _hub_offline() -> bool:
    """huggingface_hub's own offline flag, read now (it parses HF_HUB_OFFLINE, 1/ON/YES/TRUE, at its import)."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(getattr(constants, "HF_HUB_OFFLINE", env.upper() in {"1", "ON", "YES", "TRUE"}))


def _from_hub(filename: str, repo_id: str, revision: str, cache_dir: str | Path | None) -> Path:
    """Download (or find in the cache) and sha256-check; LookupError with the reason if it cannot be had."""
    from huggingface_hub import hf_hub_download

    try:
        got = Path(hf_hub_download(repo_id=repo_id, filename=filename, revision=revision, cache_dir=cache_dir))
    except Exception as exc:  # offline and not cached, no such repo or revision, no network
        reason = " (HF_HUB_OFFLINE is set and the file is not in the cache)" if _hub_offline() else ""
        raise LookupError(f"Hugging Face Hub {repo_id}@{revision}/{filename}{reason}: "
                          f"{type(exc).__name__}: {textwrap.shorten(str(exc), 200)}") from exc
    expected = KNOWN_SHA256.get(f"{repo_id}@{revision}/{filename}")
    if expected is not None and sha256(got) != expected:
        raise ValueError(f"weights: {got} has sha256 {sha256(got)}, expected {expected} (corrupted download?)")
    return got


def find_weights(net: str = "predictor", path: str | Path | None = None, *, repo_id: str | None = None,
                 revision: str | None = None, cache_dir: str | Path | None = None) -> Path:
    """Path of the weights file of ``net``, searched in the documented order.

    A given ``path`` or a set ``$PIXELPERFECT_WEIGHTS`` is used or is an error, never skipped. With
    ``repo_id`` or ``revision`` given, the Hub version is asked for (``revision=HUB_REVISION`` without
    ``repo_id`` being served from the installed files; with a ``path`` too, a ValueError). Raises
    FileNotFoundError naming every place tried.

    Example:
        >>> find_weights("predictor").name
        'predictor.safetensors'
    """
    if net not in NETS:
        raise ValueError(f"net: expected one of {', '.join(NETS)}, got {net!r}")
    for name, value in (("repo_id", repo_id), ("revision", revision)):
        if value is not None and (not isinstance(value, str) or not value):
            raise TypeError(f"{name}: expected a non-empty string or None, got {value!r}")
    hub = repo_id is not None or revision is not None
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"weights path: expected a file or folder (str or Path) or None, got {type(path).__name__}")
    if path is not None:
        if hub:
            raise ValueError(f"path: give a weights path or Hub options (repo_id={repo_id!r}, revision={revision!r}), not both")
        return _given(Path(path), net, f"path={str(path)!r}")
    env = os.environ.get(ENV_VAR)
    if env and not hub:
        return _given(Path(env), net, f"${ENV_VAR}")
    filename = f"{net}.safetensors"
    tried = [] if hub else [f"${ENV_VAR} (not set)"]
    repo, rev = repo_id or HUB_REPO, revision or HUB_REVISION
    if repo_id is None and rev == HUB_REVISION:
        cand = _packaged(filename)
        if cand is not None:
            return cand
        tried.append("the weights installed with the package (missing)")
    try:
        return _from_hub(filename, repo, rev, cache_dir)
    except LookupError as exc:
        tried.append(str(exc))
    raise FileNotFoundError(f"weights: no {filename} found; tried:\n  " + "\n  ".join(tried))


def resolve_pretrained(name: str = "pixelperfect-small", revision: str | None = None, *,
                       cache_dir: str | Path | None = None) -> Path:
    """Folder holding ``predictor.safetensors`` and ``scorer.safetensors`` of a named version.

    ``name`` is a key of :data:`MODELS` or a Hub repository id ("owner/name"); ``revision`` pins a
    branch, tag or commit (default: the one registered for ``name``, else "main"). The version that
    ships with the package is served from the installed files; others come from the Hub cache,
    honouring ``HF_HUB_OFFLINE``, their sha256 checked where known.

    Example:
        >>> (resolve_pretrained() / "predictor.safetensors").is_file()
        True
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a model name such as {next(iter(MODELS))!r} or a Hub repo id, got {name!r}")
    repo_id, default_rev = MODELS.get(name, (name, "main"))
    if name not in MODELS and "/" not in name:
        raise ValueError(f"name: unknown model {name!r}; known names: {', '.join(MODELS)} (or a Hub repo id 'owner/name')")
    revision = revision or default_rev
    if (repo_id, revision) == (HUB_REPO, HUB_REVISION):
        files = [_packaged(f"{net}.safetensors") for net in NETS]
        if all(files):
            return files[0].parent
    files = [find_weights(net, repo_id=repo_id, revision=revision, cache_dir=cache_dir) for net in NETS]
    return files[0].parent


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; a clear ValueError if it cannot be read."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise ValueError(f"weights: {path} is not a readable safetensors file ({exc})") from None
    return tensors, meta


def load_strict(module: nn.Module, tensors: dict[str, torch.Tensor], source: str = "weights") -> None:
    """Load ``tensors`` into ``module``, refusing missing, unexpected or misshapen entries.

    Example:
        >>> lin = nn.Linear(2, 2)
        >>> load_strict(lin, {"weight": torch.zeros(2, 2)})
        Traceback (most recent call last):
        ...
        ValueError: weights: does not match Linear: missing bias
    """
    _check_shapes(module, tensors, source)
    module.load_state_dict(tensors, strict=True)


def _check_shapes(module: nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    own = module.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    shapes = sorted(f"{k} {tuple(tensors[k].shape)} != {tuple(own[k].shape)}"
                    for k in set(own) & set(tensors) if tensors[k].shape != own[k].shape)
    problems = [f"{what} {', '.join(keys)}" for what, keys in
                (("missing", missing), ("unexpected", unexpected), ("misshapen", shapes)) if keys]
    if problems:
        raise ValueError(f"{source}: does not match {type(module).__name__}: " + "; ".join(problems))


#: metadata key of the digest of the tensors that :func:`save_weights` writes
_DIGEST = "tensors_sha256"


def _tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of ``tensors``, in name order."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        v = tensors[k].detach().to("cpu").contiguous()
        h.update(f"{k}|{v.dtype}|{tuple(v.shape)}|".encode())
        h.update(v.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_weights(module: nn.Module, path: str | Path, config: dict[str, Any] | None = None) -> Path:
    """Write ``module``'s state as safetensors (float32, contiguous) with string metadata, atomically.

    The metadata also holds a digest of the tensors (``tensors_sha256``), checked at every load, so that a
    changed value (a bit flip inside a tensor leaves a readable file) is refused wherever the file lies.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in module.state_dict().items()}
    meta = {"format": "pixelperfect_loss", "net": type(module).__name__}
    meta.update({k: str(v) for k, v in (config or {}).items()})
    meta[_DIGEST] = _tensors_sha256(state)
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def _verify(file: Path, net: str, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    """Refuse NaN or Inf weights and changed ones: tensors that no longer match the digest :func:`save_weights`
    wrote, or, for an installed file without the digest (one written before it, v6 and older), a sha256 that is
    not the published one of the installed revision (a bit flip inside a tensor leaves a readable file: the loss
    came out NaN)."""
    bad = sorted(k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all()))
    if bad:
        raise ValueError(f"weights: {file} holds NaN or Inf values in {', '.join(bad)} (a corrupted file?)")
    if _DIGEST in meta:  # weights retrained into the installed folder (a source checkout's weights/) pass this way
        if _tensors_sha256(tensors) != meta[_DIGEST]:
            raise ValueError(f"weights: {file} has tensors that do not match the digest written with them "
                             f"(a corrupted file?)")
        return
    filename = f"{net}.safetensors"
    expected = KNOWN_SHA256.get(f"{HUB_REPO}@{HUB_REVISION}/{filename}")
    packaged = _packaged(filename)
    if expected and packaged is not None and file.resolve() == packaged.resolve() and sha256(file) != expected:
        raise ValueError(f"weights: the installed {file} has sha256 {sha256(file)}, expected {expected} for "
                         f"{HUB_REVISION} (a corrupted installation? reinstall pixelperfect-loss)")


def _load(net: str, build: Any, path: str | Path | None, hub: dict[str, Any]) -> nn.Module:
    unknown = sorted(set(hub) - set(HUB_OPTIONS))
    if unknown:
        raise TypeError(f"unexpected option {unknown[0]!r}: the weights options are the path and the Hub's "
                        f"{', '.join(HUB_OPTIONS)}")
    file = find_weights(net, path, **hub)
    tensors, meta = read_weights(file)
    _verify(Path(file), net, tensors, meta)
    with torch.device("meta"):  # check the shapes first, allocating nothing whatever the metadata says
        _check_shapes(build(meta, file, tensors), tensors, f"weights {file}")
    module = build(meta, file, tensors)
    module.load_state_dict(tensors, strict=True)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def load_predictor(path: str | Path | None = None, **hub: Any) -> nn.Module:
    """The pretrained :class:`~pixelperfect_loss.nets.DistortionPredictor`, frozen and in eval mode.

    ``path`` and the Hub options (``repo_id``, ``revision``, ``cache_dir``) are those of :func:`find_weights`.

    Example:
        >>> net = load_predictor()
        >>> net.training, any(p.requires_grad for p in net.parameters())
        (False, False)
    """
    from .nets import DistortionPredictor
    from .nets.features import N_FIXED, N_HUE

    def build(meta: dict[str, str], file: Path, tensors: dict[str, torch.Tensor]) -> nn.Module:
        raw = meta.get("width", "32")
        width = int(raw) if raw.strip().isdecimal() else 0
        if width < 1:
            raise ValueError(f"weights: {file} has 'width' metadata {raw!r}; expected a positive integer")
        # networks trained with the hue-direction inputs (``--hue``) read N_FIXED + N_HUE fixed features
        stem, ctx = tensors.get("stem_fixed.weight"), tensors.get("context.weight")
        return DistortionPredictor(width=width, hue=stem is not None and stem.shape[1:2] == (N_FIXED + N_HUE,),
                                   stats=ctx is not None and ctx.shape[1] != ctx.shape[0])

    return _load("predictor", build, path, hub)


def load_scorer(path: str | Path | None = None, **hub: Any) -> nn.Module:
    """The pretrained :class:`~pixelperfect_loss.nets.RelationalScorer`, frozen and in eval mode.

    Example:
        >>> load_scorer().training
        False
    """
    from .nets import RelationalScorer

    return _load("scorer", lambda meta, file, tensors: RelationalScorer(), path, hub)
