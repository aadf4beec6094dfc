"""The policies' answer languages as byte regexes (FORMATS.md §2-3), number ranges included.

Contract:
    spec = GrammarSpec(kind="llara", names=("red block", "green pan"))
    node = answer_node(spec) -> bytefsm.Node   # the bytes a tokenizer's pieces spell out
    GRAMMARS: kind -> builder(spec) -> Node     # registry of kinds

Every language starts with one space: the answer follows "ASSISTANT:" in the conversation,
so its first piece is "▁Step" / "▁The" (sentencepiece's dummy prefix or the role separator).
Kinds (the strings are those llara_edge.formats writes, numbers as their formatters write them):
- "llara" (either tool), "llara_pick" (suction), "llara_sweep" (spatula): ONE step
  "Step k: Pick up the <p>NAME</p> at <b>(x,  y)</b>, rotate <r>[r]</r> degrees, and drop it
  at <b>(x, y)</b>." (k = spec.first_step, or any of first_step..last_step when last_step is
  given; no "Step k: " with numbered=False, either form with numbered=None; one or two
  spaces in the first point); decoding stops after the first step's ".". The runtime
  compiles ONE grammar with numbered=None and a range of k, and pins the header of each
  control step (the k its history implies, numbered or not) with kernels.step_header.
- "llara_detection": "<scene><p>NAME</p> at <b>(cx, cy), {w, h}</b>.\\n...</scene>".
- "llara_localization": "<p>NAME</p> at <b>(cx, cy), {w, h}</b>.".
- "llarva": "The next action step: [v1, ..., vn, gripper]" (LLARVA's answer, n_joints values
  and the gripper); "llarva_trace" adds ". The trajectory: [[x, y], ...]" after it (the layout
  of LLARVA's pre-release trace data, formats.llarva), trace_points (lo, hi) points, hi None
  for no bound ("[]" with lo = 0, as that builder writes when no point is visible).
Numbers: coordinates "{:.3f}" of [0, 1]; rotation Python ints -359..359 (no "-0", no leading
zeros); LLARVA values as `str(np.round(v, 4).tolist())` writes them, |v| < 10**int_digits
("0.5", "-1.0123", "-0.0", "0.0001"; no exponent, no trailing zero), gripper the same within
[0, 1]; trace points ints 0..trace_max. NAME is one of `names` when given, else any text
LLaRA's NAME_PATTERN accepts (at most name_max_bytes bytes, default 64: the runtime bounds
each answer's names tighter per prompt, decoding.object_names; NAMED_KINDS are the kinds with
names).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llara_edge.decoding.bytefsm import ALL_BYTES, ByteSet, Node, alt, chars, lit, opt, rep, seq
from llara_edge.errors import ConfigError
from llara_edge.formats.llara import ANONYMOUS_OBJECT, VERBS, check_name
from llara_edge.formats.llarva import ACTION_PREFIX, TRAJECTORY_SEP

DIGIT = chars("0123456789")
NONZERO = chars("123456789")
# NAME_PATTERN of formats.llara: no <>()[]{} and no control bytes; first/last byte not a space
_NAME_BYTES = ALL_BYTES - frozenset(b"<>()[]{}\x7f") - frozenset(range(0x20))
NAME_BYTE = ByteSet(_NAME_BYTES)
NAME_EDGE_BYTE = ByteSet(_NAME_BYTES - {0x20})
# A generous compiled maximum (VIMA's longest name is 49 bytes): each state of the name
# costs a DFA state (~4 per byte; at V = 32000 the llara grammar compiles in 3.2 s with 64
# against 2.6 s with 48 and 7.4 s with 128, 31 / 27 / 47 MB of successor table)
NAME_MAX_BYTES = 64


@dataclass(frozen=True)
class GrammarSpec:
    """Which answer language to compile, with its parameters (see the module docstring)."""

    kind: str = "llara"
    names: tuple[str, ...] | None = None  # allowed object names; None: generic names
    first_step: int = 1
    last_step: int | None = None  # "Step k: " for k in first_step..last_step (None: first)
    numbered: bool | None = True  # None: "Step k: " or no header, the model chooses
    first_point_spaces: tuple[int, ...] = (1, 2)  # released models write 2
    allow_anonymous: bool = False  # also "the object" without tags (history style)
    name_max_bytes: int = NAME_MAX_BYTES
    n_joints: int = 7
    int_digits: int = 1  # LLARVA values: |v| < 10 ** int_digits
    decimals: int = 4
    trace_max: int = 999
    trace_points: tuple[int, int | None] = (0, None)  # find_tj writes 0..59 points

    def __post_init__(self) -> None:
        if self.kind not in GRAMMARS:
            raise ConfigError(f"unknown grammar kind {self.kind!r}; known: {sorted(GRAMMARS)}")
        if self.names is not None:
            names = tuple(check_name(n) for n in self.names)
            if not names:
                raise ConfigError("names must hold at least one name (or be None)")
            object.__setattr__(self, "names", names)
        ints = (self.first_step, self.name_max_bytes, self.n_joints, self.int_digits,
                self.decimals, self.trace_max)
        if not all(isinstance(v, int) and v >= 1 for v in ints):
            raise ConfigError(f"grammar integer parameters must be >= 1: {ints}")
        if self.last_step is not None and (not isinstance(self.last_step, int)
                                           or self.last_step < self.first_step):
            raise ConfigError(f"last_step must be an int >= first_step {self.first_step}, "
                              f"got {self.last_step!r}")
        if self.numbered not in (True, False, None):
            raise ConfigError(f"numbered must be True, False or None, got {self.numbered!r}")
        if not self.first_point_spaces or not set(self.first_point_spaces) <= {1, 2}:
            raise ConfigError(f"first_point_spaces must be within (1, 2): "
                              f"{self.first_point_spaces!r}")
        lo, hi = self.trace_points
        hi_ok = hi is None or (isinstance(hi, int) and hi >= max(lo, 1))
        if not (isinstance(lo, int) and lo >= 0 and hi_ok):
            raise ConfigError(f"trace_points must be (lo >= 0, hi >= max(lo, 1) or None), got "
                              f"{self.trace_points}")


def uint_range(lo: int, hi: int) -> Node:
    """Decimal ints lo..hi (0 <= lo <= hi) as Python writes them (no leading zeros)."""
    if not 0 <= lo <= hi:
        raise ConfigError(f"bad range {lo}..{hi}")
    parts = []
    for n in range(len(str(lo)), len(str(hi)) + 1):
        a, b = max(lo, 10 ** (n - 1) if n > 1 else 0), min(hi, 10**n - 1)
        if a <= b:
            parts.append(_same_length(str(a), str(b)))
    return alt(*parts)


def _same_length(a: str, b: str) -> Node:
    """All digit strings between a and b (same length, a <= b)."""
    if len(a) == 1:
        return chars(bytes(range(ord(a), ord(b) + 1)))
    if a[0] == b[0]:
        return seq(lit(a[0]), _same_length(a[1:], b[1:]))
    n = len(a) - 1
    options = [seq(lit(a[0]), _same_length(a[1:], "9" * n))]
    if ord(b[0]) - ord(a[0]) > 1:
        mid = chars(bytes(range(ord(a[0]) + 1, ord(b[0]))))
        options.append(seq(mid, rep(DIGIT, n, n)))
    options.append(seq(lit(b[0]), _same_length("0" * n, b[1:])))
    return alt(*options)


def int_range(lo: int, hi: int) -> Node:
    """Python ints lo..hi, negative ones with "-" (never "-0")."""
    options = []
    if lo < 0:
        options.append(seq(lit("-"), uint_range(max(1, -hi), -lo)))
    if hi >= 0:
        options.append(uint_range(max(0, lo), hi))
    return alt(*options)


def unit_decimal(decimals: int = 3) -> Node:
    """f"{x:.{decimals}f}" for x in [0, 1]: 0.ddd or 1.000."""
    return alt(seq(lit("0."), rep(DIGIT, decimals, decimals)), lit("1." + "0" * decimals))


def _repr_fraction(decimals: int) -> Node:
    """The digits after "." in repr() of a value rounded to `decimals`: "0" or no trailing 0."""
    return alt(lit("0"), seq(rep(DIGIT, 0, decimals - 1), NONZERO))


def float_repr(int_digits: int, decimals: int, signed: bool = True) -> Node:
    """repr(round(v, decimals)) for |v| < 10**int_digits ("0.5", "-1.25", "-0.0", "3.0")."""
    whole = alt(lit("0"), seq(NONZERO, rep(DIGIT, 0, int_digits - 1)))
    body = seq(whole, lit("."), _repr_fraction(decimals))
    return seq(opt(lit("-")), body) if signed else body


def unit_float_repr(decimals: int) -> Node:
    """repr(round(v, decimals)) for v in [0, 1] (gripper)."""
    return alt(seq(lit("0."), _repr_fraction(decimals)), lit("1.0"))


def name_node(spec: GrammarSpec) -> Node:
    if spec.names is not None:
        return alt(*(lit(n) for n in spec.names))
    inner = rep(NAME_BYTE, 0, spec.name_max_bytes - 2)
    return seq(NAME_EDGE_BYTE, opt(seq(inner, NAME_EDGE_BYTE)))


def _point(spaces: tuple[int, ...]) -> Node:
    coord = unit_decimal(3)
    gap = alt(*(lit("," + " " * n) for n in spaces))
    return seq(lit("<b>("), coord, gap, coord, lit(")</b>"))


def _llara_step(spec: GrammarSpec, tools: tuple[str, ...]) -> Node:
    obj = seq(lit("<p>"), name_node(spec), lit("</p>"))
    if spec.allow_anonymous:
        obj = alt(obj, lit(ANONYMOUS_OBJECT))
    rotation = seq(lit("<r>["), int_range(-359, 359), lit("]</r>"))
    branches = []
    for tool in tools:
        opening, closing = VERBS[tool]
        branches.append(seq(
            lit(f"{opening} the "), obj, lit(" at "), _point(spec.first_point_spaces),
            lit(", rotate "), rotation, lit(f" degrees, and {closing} at "), _point((1,)),
            lit("."),
        ))
    return seq(lit(" "), _step_header(spec), alt(*branches))


def _step_header(spec: GrammarSpec) -> Node:
    """ "Step k: " (k in first_step..last_step), nothing, or either (numbered=None)."""
    last = spec.first_step if spec.last_step is None else spec.last_step
    numbered = seq(lit("Step "), uint_range(spec.first_step, last), lit(": "))
    if spec.numbered is None:
        return opt(numbered)
    return numbered if spec.numbered else lit("")


def _located(spec: GrammarSpec) -> Node:
    coord = unit_decimal(3)
    box = seq(lit("<b>("), coord, lit(", "), coord, lit("), {"), coord, lit(", "), coord,
              lit("}</b>"))
    return seq(lit("<p>"), name_node(spec), lit("</p> at "), box, lit("."))


def _detection(spec: GrammarSpec) -> Node:
    located = _located(spec)
    return seq(lit(" <scene>"), located, rep(seq(lit("\n"), located), 0, None), lit("</scene>"))


def _llarva_action(spec: GrammarSpec) -> Node:
    value = float_repr(spec.int_digits, spec.decimals)
    values = rep(seq(value, lit(", ")), spec.n_joints, spec.n_joints)
    return seq(lit(ACTION_PREFIX + "["), values, unit_float_repr(spec.decimals), lit("]"))


def _llarva_trace(spec: GrammarSpec) -> Node:
    coord = uint_range(0, spec.trace_max)
    point = seq(lit("["), coord, lit(", "), coord, lit("]"))
    lo, hi = spec.trace_points
    more = rep(seq(lit(", "), point), max(lo, 1) - 1, None if hi is None else hi - 1)
    points = seq(point, more)
    if lo == 0:
        points = opt(points)
    return seq(lit(" "), _llarva_action(spec), lit(TRAJECTORY_SEP + "["), points, lit("]"))


# the kinds whose answers write object names ("<p>NAME</p>")
NAMED_KINDS = frozenset({"llara", "llara_pick", "llara_sweep", "llara_detection",
                         "llara_localization"})

GRAMMARS: dict[str, Callable[[GrammarSpec], Node]] = {
    "llara": lambda s: _llara_step(s, ("suction", "spatula")),
    "llara_pick": lambda s: _llara_step(s, ("suction",)),
    "llara_sweep": lambda s: _llara_step(s, ("spatula",)),
    "llara_detection": _detection,
    "llara_localization": lambda s: seq(lit(" "), _located(s)),
    "llarva": lambda s: seq(lit(" "), _llarva_action(s)),
    "llarva_trace": _llarva_trace,
}


def answer_node(spec: GrammarSpec) -> Node:
    """The byte regex of `spec`'s answer language (leading space included)."""
    return GRAMMARS[spec.kind](spec)
