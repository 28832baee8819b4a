"""The integer codes the ops pass to the kernels: the Python mirror of
csrc/common/codes.h (tests/test_codes.py checks that the two agree).

The public API takes strings ("mean", "same_zero", "l1"); the ops turn them
into these codes once, with `code(Enum, name, argument)`, and the backends
(reference, Triton, C++) compare against the named members, never raw numbers.
"""
import enum


class LossKind(enum.IntEnum):
    """Per-element loss of the pixel losses, and psnr's MSE / MAE (MAE is L1)."""
    L1 = 0
    MSE = 1
    CHARBONNIER = 2


class Reduction(enum.IntEnum):
    NONE = 0
    SUM = 1
    MEAN = 2
    WEIGHTED_MEAN = 3
    PER_CHANNEL = 4
    MAP = 5


class WeightMode(enum.IntEnum):
    """How a pixel loss's weight map lies against the flat input (codes.h)."""
    NO_WEIGHT = 0
    FULL = 1
    PLANE = 2
    PIXEL = 3


class Padding(enum.IntEnum):
    VALID = 0
    SAME_ZERO = 1
    SAME_REFLECT = 2


class Criterion(enum.IntEnum):
    """Style-loss criterion on the Gram difference (csrc/common/gram_math.h)."""
    L1 = 0
    L2 = 1
    FRO = 2


class SsimOutput(enum.IntEnum):
    """What the fused SSIM op returns: the SSIM, the L1 + SSIM loss, 1 - SSIM, or the SSIM and
    its components (luminance, contrast, structure) stacked on a leading axis of 4."""
    SSIM = 0
    L1_SSIM = 1
    SSIM_LOSS = 2
    COMPONENTS = 3


# The C++ enumerator name of each Python member (codes.h spells Criterion's with a prefix).
CPP_PREFIX = {Criterion: "kCriterion"}
SHARED_WITH_CPP = (LossKind, Reduction, WeightMode, Padding, Criterion, SsimOutput)


def names(enum_cls) -> tuple:
    """The API strings of an enum: lower-case member names ("weighted_mean")."""
    return tuple(m.name.lower() for m in enum_cls)


_CODES = {}  # (enum class, API string) -> code: a dict lookup per call instead of an enum lookup


def code(enum_cls, value: str, argument: str) -> int:
    """The code of the API string `value`; ValueError naming `argument` otherwise."""
    key = (enum_cls, value) if isinstance(value, str) else None
    found = _CODES.get(key)
    if found is not None:
        return found
    try:
        found = int(enum_cls[str(value).upper()])
    except KeyError:
        raise ValueError(f"{argument} must be one of {names(enum_cls)}, got {value!r}") from None
    if key is not None:
        _CODES[key] = found
    return found
