"""``--torchvision NAME``: a torchvision classification architecture as an ONNX file to import.

The architecture is built with ``weights=None`` (its random initialisation: nothing is ever
downloaded) and given the weights of a local ``.pth`` state_dict loaded with
``torch.load(..., weights_only=True)`` (no pickled code runs). It is exported by
``torch.onnx.export`` in eval mode with ``training=PRESERVE``, which keeps BatchNormalization
nodes (the eval-mode export folds them into the convs, and prunekit wants them as layers).

torchvision is an optional extra. PyPI's torchvision wheels carry compiled ops built against
the CUDA torch; next to a CPU-only torch, ``import torchvision`` fails ("operator
torchvision::nms does not exist"): that is reported in one line with the way around it.
"""

from __future__ import annotations

import warnings

import torch

from prunekit.errors import PrunekitError


def import_torchvision():
    """The ``torchvision`` module, or a one-line PrunekitError saying why not."""
    try:
        import torchvision
    except Exception as err:  # ImportError, or RuntimeError from its compiled ops
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise PrunekitError(
            f"--torchvision: torchvision cannot be imported here ({type(err).__name__}: "
            f"{first}); install a torchvision that matches this torch (pip install "
            f"'prunekit[torchvision]'), or export the model to ONNX elsewhere and use --onnx"
        ) from None
    return torchvision


def build_model(name: str) -> torch.nn.Module:
    """torchvision.models.<name> with its random initialisation (``weights=None``)."""
    torchvision = import_torchvision()
    names = sorted(torchvision.models.list_models(module=torchvision.models))
    if name not in names:
        raise PrunekitError(f"--torchvision {name}: not a torchvision classification model; "
                            f"known: {', '.join(names)}")
    return torchvision.models.get_model(name, weights=None)


def load_state_dict(model: torch.nn.Module, path: str) -> None:
    """Load a local ``.pth`` (a state_dict, or a checkpoint dict with a ``state_dict`` key)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise PrunekitError(f"{path}: no such state_dict file") from None
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise PrunekitError(f"{path}: not a weights-only torch state_dict ({first})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise PrunekitError(f"{path}: holds a {type(state).__name__}, expected a state_dict")
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise PrunekitError(
            f"{path}: does not fit the architecture: {len(result.missing_keys)} missing keys "
            f"(e.g. {result.missing_keys[:2]}), {len(result.unexpected_keys)} unexpected "
            f"(e.g. {result.unexpected_keys[:2]})")


def export_onnx(model: torch.nn.Module, input_shape: tuple[int, ...], path: str,
                opset: int = 17) -> None:
    """Write ``model`` (in eval mode, BatchNorm kept) as ONNX for an input of ``input_shape``."""
    model.eval()
    example = torch.randn(input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
        torch.onnx.export(model, (example,), path, dynamo=False, opset_version=opset,
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True,
                          input_names=["data"], output_names=["logits"])
