"""Checks the Net makes on each layer of a prototxt before building it (Caffe's Net::Init
checks, and prunekit's own for files it does not trust).

* A ``Python`` layer names a module for Caffe to import and run: prunekit never runs code named
  in a model file (docs/security.md), and could not run it anyway, because a Caffe Python layer is
  written against Caffe's own blob API.
* A top blob may be written by one layer only, unless a later layer works in place (its top at
  index i is its bottom at index i), as Caffe's ``AppendTop`` requires ("Top blob 'x' produced
  by multiple sources").
* Errors raised while a layer is set up get the prototxt's name in front, so every message names
  the file as well as the layer.
"""

from __future__ import annotations

from prunekit.errors import PrunekitError

#: Exceptions a layer's set-up can raise on absurd parameters (a kernel of 0, an axis of 9, a
#: filler on an empty blob, ...): turned into one-line errors naming the file and the layer.
SETUP_ERRORS = (RuntimeError, ValueError, ZeroDivisionError, OverflowError, IndexError, TypeError,
                KeyError)


def refuse_code_layers(lp, where: str) -> None:
    """A ``Python`` layer is refused with the module and class it names."""
    if lp.type == "Python":
        pp = lp.python_param
        raise PrunekitError(
            f"{where}: Python layers are refused: prunekit never imports or runs code named in a "
            f"model file (here module '{pp.module}', class '{pp.layer}'), and it cannot run Caffe "
            "Python layers at all (they use Caffe's own blob API); replace the layer with "
            "built-in layer types (docs/security.md)")


def check_single_source(lp, produced: set[str], where: str) -> None:
    """Refuse a top an earlier layer (or this one) already produced, unless in place."""
    mine: set[str] = set()
    for index, top in enumerate(lp.top):
        in_place = index < len(lp.bottom) and lp.bottom[index] == top
        if (top in produced and not in_place) or top in mine:
            raise PrunekitError(
                f"{where}: top blob '{top}' produced by multiple sources (another layer writes "
                f"it too; a layer may reuse a blob name only in place, as top {index} = bottom "
                f"{index})")
        mine.add(top)
    produced.update(mine)


def in_file(source: str, error: Exception) -> PrunekitError:
    """``error`` as a PrunekitError whose message names ``source`` (unless it already does)."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if not isinstance(error, PrunekitError):
        message = f"{type(error).__name__}: {message}"
    return PrunekitError(message if source in message else f"{source}: {message}")
