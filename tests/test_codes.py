"""The code table of csrc/common/codes.h and its Python mirror fastiqa/_codes.py agree."""
import re
from pathlib import Path

import pytest

from fastiqa import _codes

HEADER = Path(__file__).resolve().parents[1] / "csrc" / "common" / "codes.h"


def _cpp_enums():
    text = HEADER.read_text()
    enums = {}
    for name, body in re.findall(r"enum\s+(\w+)\s*:\s*int\s*\{([^}]*)\}", text):
        enums[name] = {k: int(v) for k, v in re.findall(r"(\w+)\s*=\s*(-?\d+)", body)}
    return enums


def _cpp_name(enum_cls, member) -> str:
    camel = "".join(part.capitalize() if part not in ("L1", "L2", "MSE") else part
                    for part in member.name.split("_"))
    return _codes.CPP_PREFIX.get(enum_cls, "k") + camel


@pytest.mark.parametrize("enum_cls", _codes.SHARED_WITH_CPP, ids=lambda e: e.__name__)
def test_python_codes_match_header(enum_cls):
    cpp = _cpp_enums()[enum_cls.__name__]
    python = {_cpp_name(enum_cls, m): int(m) for m in enum_cls}
    assert python == cpp


def test_header_has_no_enum_without_a_python_mirror():
    assert set(_cpp_enums()) == {e.__name__ for e in _codes.SHARED_WITH_CPP}


def test_no_family_header_defines_its_own_codes():
    common = HEADER.parent
    for header in common.glob("*_math.h"):
        assert not re.search(r"\benum\b", header.read_text()), f"{header.name} defines codes outside codes.h"


def test_code_rejects_unknown_names_naming_the_argument():
    assert _codes.code(_codes.Reduction, "weighted_mean", "reduction") == 3
    with pytest.raises(ValueError, match="reduction must be one of"):
        _codes.code(_codes.Reduction, "avg", "reduction")


def test_bt601_constants_of_the_kernels_match_fastiqa_conventions():
    from fastiqa import conventions

    text = (HEADER.parent / "psnr_math.h").read_text()
    cpp = {k: float(v) for k, v in re.findall(r"constexpr double (kY\w+) = ([0-9.]+);", text)}
    assert (cpp["kYR"], cpp["kYG"], cpp["kYB"]) == conventions.Y_WEIGHTS
    assert cpp["kYOffset"] == conventions.Y_OFFSET
