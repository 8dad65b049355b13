"""Write fastloss/_api.py, the public functions and classes, from fastloss/_spec/.

Called by tools/codegen.py (``api(spec, banner, binding_params)``). Per loss:

* the function, with PyTorch's signature, type hints, a numpydoc docstring
  assembled from the declaration, the checks of its scalar options
  (fastloss/_validate.py) and one call of its family's runner
  (fastloss/_run.py);
* the class, with torch.nn's constructor, one validating property per
  scalar option (so an attribute set later is checked too), the call
  protocol (``forward``, ``loss_and_grad``, ``backward``; see
  fastloss/_base.py) and ``_run``, the same runner call.

Every entry tries its loss's fast binding first (fastloss/_core.pyx: the
common case, checked in the binding, in a few hundred nanoseconds) when no
array option is given; the fast binding answers SLOW for anything else, and
the runner then takes the call. (NLL and the row losses have no fast
binding: their entries call the runner directly.)
"""

import textwrap

_ELEM_RETURNS = """float or ndarray
        A Python float for 'mean' and 'sum'; a float32 array of input's shape for 'none'."""


def _wrap(text, indent):
    return textwrap.fill(text, 88, initial_indent=indent, subsequent_indent=indent)


def _annotation(spec, opt):
    return {spec.FLOAT: "float", spec.INT: "int", spec.BOOL: "bool",
            spec.WEIGHT: "ArrayLike | None", spec.CLASS_WEIGHT: "ArrayLike | None",
            spec.BUFFER: "NDArray[np.float32] | None"}[opt.kind]


def _params(spec, loss, *, inputs, per_call):
    """Parameter list text (with type hints and defaults) in PyTorch's order."""
    out = [f"{name}: ArrayLike" for name in loss.inputs] if inputs else []
    for p in loss.signature:
        if p == spec.KEYWORD_ONLY:
            out.append("*")
        elif p in spec.LEGACY:
            out.append(f"{p}: bool | None = None")
        elif p == spec.REDUCTION:
            out.append(f'reduction: str = "{loss.default_reduction}"')
        else:
            opt = loss.option(p)
            if opt.per_call and not per_call:
                continue
            out.append(f"{p}: {_annotation(spec, opt)} = {opt.default!r}")
    if out and out[-1] == "*":
        out.pop()
    return out


def _check(spec, opt, value):
    """The expression that validates scalar option `opt` given as `value`."""
    if opt.kind == spec.FLOAT:
        if opt.positive:
            return f'_v.positive_scalar({value}, "{opt.name}")'
        return f'_v.real_scalar({value}, "{opt.name}", {opt.low!r}, {opt.high!r})'
    if opt.kind == spec.INT:
        return f'_v.int64_scalar({value}, "{opt.name}")'
    if opt.kind == spec.BOOL:
        return f'_v.flag({value}, "{opt.name}")'
    raise ValueError(opt.kind)


def _reduction_call(loss, target):
    legacy = ", size_average, reduce" if loss.has_legacy_args else ""
    if loss.batchmean:
        legacy = (legacy or ", None, None") + ", True"
    return f"{target} = _v.reduction(reduction{legacy})"


def _docstring(spec, loss):
    lines = [loss.summary, loss.doc.rstrip(), "", "    Parameters", "    ----------",
             "    " + loss.input_doc, "    " + loss.target_doc]
    legacy_done = False
    for p in loss.signature:
        if p == spec.KEYWORD_ONLY:
            continue
        if p in spec.LEGACY:
            if not legacy_done:
                lines += ["    size_average, reduce",
                          "        Deprecated (as in PyTorch); they override ``reduction`` "
                          "when given."]
                legacy_done = True
        elif p == spec.REDUCTION:
            lines.append("    reduction : {'mean', 'sum', 'none'}, default "
                         f"'{loss.default_reduction}'")
        else:
            opt = loss.option(p)
            lines.append(f"    {p} : {opt.type_doc}")
            if opt.doc:
                lines.append(_wrap(opt.doc, "        "))
    lines += ["", "    Returns", "    -------", "    " + (loss.returns_doc or _ELEM_RETURNS)]
    return "\n".join(lines).rstrip() + "\n    "


def _class_docstring(spec, loss):
    lines = [f"{loss.summary}", "",
             f"    The loss object of :func:`fastloss.{loss.func}` (see it for the formula,",
             "    the options and the denominator of 'mean'), with torch.nn's constructor.",
             "    Scalar options are checked when set; arrays when a call uses them.",
             "    Methods: ``forward`` (also the call), ``loss_and_grad`` and ``backward``",
             "    (:class:`fastloss._base.Loss`).", "    "]
    return "\n".join(lines)


def _runner_call(spec, loss, scalars, reduction_code, weights_prefix="", mode="**mode",
                 indent="        ", args=None):
    """The family runner call, given how to spell each scalar and the reduction code."""
    if loss.family == spec.ROWS:
        tail = "" if mode is None else f", {mode}"
        opts = "".join(f"{scalars[o.name]}, " for o in loss.scalar_options)
        return (f"_run.{loss.name}(\n{indent}input, target, {opts}{weights_prefix}weight, "
                f"{reduction_code}{tail})")
    if loss.family == spec.NLL:
        tail = "" if mode is None else f", {mode}"
        return (f"_run.nll_loss(\n{indent}input, target, {weights_prefix}weight, "
                f"{scalars['ignore_index']}, {reduction_code}{tail})")
    if loss.family == spec.CROSS_ENTROPY:
        per_call = "lse_out=lse_out, return_correct=return_correct" if mode is None else mode
        return (f"_run.cross_entropy(\n{indent}input, target, {weights_prefix}weight, "
                f"{scalars['ignore_index']}, {reduction_code},\n{indent}"
                f"{scalars['label_smoothing']}, {scalars['z_loss']}, {per_call})")
    floats = [o for o in loss.c_options if o.kind in (spec.FLOAT, spec.BOOL)]
    weights = [o for o in loss.c_options if o.kind == spec.WEIGHT]
    names = tuple(loss.inputs) + tuple(o.name for o in weights)
    scalar_tuple = _tuple(scalars[o.name] for o in floats)
    weight_tuple = _tuple(f"{weights_prefix}{o.name}" for o in weights)
    tail = "" if mode is None else f", {mode}"
    if loss.ranges:
        tail += f", ranges={loss.ranges!r}"
    x, y = args or loss.inputs
    return (f"_run.elementwise(\n{indent}_core.{loss.name}, {_tuple(repr(n) for n in names)}, "
            f"{x}, {y}, {reduction_code},\n{indent}{scalar_tuple}, "
            f"{weight_tuple}{tail})")


def _tuple(items):
    items = list(items)
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _fast(spec, loss, scalars, code, x, y, out, mode, grad_output):
    """The fast binding's call (see the fast paths in fastloss/_core.pyx), or
    None for a family without one (NLL has none yet: every call goes through
    its runner)."""
    if loss.family in (spec.NLL, spec.ROWS):
        return None
    if loss.family == spec.CROSS_ENTROPY:
        args = [x, y, scalars["ignore_index"], scalars["label_smoothing"], scalars["z_loss"]]
        name = "cross_entropy_fast"
    else:
        args = [x, y] + [scalars[o.name] for o in loss.c_options
                         if o.kind in (spec.FLOAT, spec.BOOL)]
        name = f"{loss.name}_fast"
    return f"_core.{name}({', '.join(args + [code, out, mode, grad_output])})"


def _fast_guard(spec, loss, prefix, per_call=False):
    """When the fast path may run: no array option given (nor, for a call, a
    per-call output or flag)."""
    conds = [f"{prefix}{o.name} is None" for o in loss.options
             if o.kind in (spec.WEIGHT, spec.CLASS_WEIGHT) and not o.per_call]
    if per_call:
        conds += [f"{o.name} is None" if o.kind == spec.BUFFER else f"{o.name} is False"
                  for o in loss.options if o.per_call]
    return " and ".join(conds)


def _try_fast(guard, call, indent):
    """Lines that return the fast path's result unless it says SLOW (none for
    a family without a fast binding: `call` is None)."""
    if call is None:
        return []
    body = [f"{indent}r = {call}", f"{indent}if r is not _SLOW:", f"{indent}    return r"]
    if not guard:
        return body
    inner = [f"    {line}" for line in body]
    return [f"{indent}if {guard}:"] + inner


def _function(spec, loss):
    params = _params(spec, loss, inputs=True, per_call=True)
    returns = "Any" if loss.family == spec.CROSS_ENTROPY else "float | NDArray[np.float32]"
    out = [f"def {loss.func}(", *[f"    {p}," for p in params], f") -> {returns}:",
           f'    r"""{_docstring(spec, loss)}"""', "    " + _reduction_call(loss, "_, code")]
    scalars = {}
    for opt in loss.scalar_options:
        if opt.kind == spec.BOOL:
            out += [f"    if {opt.name} is not False:",
                    f"        {opt.name} = {_check(spec, opt, opt.name)}"]
        else:
            out.append(f"    {opt.name} = {_check(spec, opt, opt.name)}")
        scalars[opt.name] = opt.name
    x, y = loss.inputs
    out += _try_fast(_fast_guard(spec, loss, "", per_call=True),
                     _fast(spec, loss, scalars, "code", x, y, "None", "0", "None"), "    ")
    out.append("    return " + _runner_call(spec, loss, scalars, "code", mode=None))
    return "\n".join(out)


def _methods(spec, loss, scalars):
    """forward / __call__ / loss_and_grad / backward, each trying the fast path."""
    per_call = [o for o in loss.options if o.per_call]
    kw_typed = "".join(f", {o.name}: {_annotation(spec, o)} = {o.default!r}" for o in per_call)
    star = ", *" if per_call else ""
    pass_on = "".join(f", {o.name}={o.name}" for o in per_call)
    checks = []
    for o in per_call:
        if o.kind == spec.BOOL:
            checks += [f"        if {o.name} is not False:",
                       f"            {o.name} = {_check(spec, o, o.name)}"]
    guard = _fast_guard(spec, loss, "self.", per_call=True)

    def fast(out, mode, grad_output):
        return _try_fast(guard, _fast(spec, loss, scalars, "self._code", "input", "target",
                                      out, mode, grad_output), "        ")

    return [
        "", f"    def forward(self, input: ArrayLike, target: ArrayLike{star}{kw_typed}) -> Any:",
        '        """The loss: a Python float for \'mean\'/\'sum\', a float32 array for '
        '\'none\'."""',
        *checks, *fast("None", "0", "None"),
        f"        return self._run(input, target{pass_on})", "",
        "    __call__ = forward", "",
        "    def loss_and_grad(self, input: ArrayLike, target: ArrayLike,",
        f"                      out: NDArray[np.float32] | None = None{star}{kw_typed}) -> Any:",
        '        """(loss, d loss / d input) from one fused pass over the input."""',
        *checks, *fast("out", "1", "None"),
        f"        return self._run(input, target, grad=True, out=out{pass_on})", "",
        "    def backward(self, input: ArrayLike, target: ArrayLike, grad_output: ArrayLike = 1.0,",
        "                 out: NDArray[np.float32] | None = None) -> NDArray[np.float32]:",
        '        """d loss / d input times grad_output, without computing the loss."""',
        *_try_fast(_fast_guard(spec, loss, "self."),
                   _fast(spec, loss, scalars, "self._code", "input", "target", "out", "2",
                         "grad_output"), "        "),
        "        return self._run(input, target, loss=False, grad=True, "
        "grad_output=grad_output,",
        "                         out=out)",
    ]


def _class(spec, loss):
    params = _params(spec, loss, inputs=False, per_call=False)
    ctor = [o for o in loss.options if not o.per_call]
    legacy = ", size_average, reduce" if loss.has_legacy_args else ""
    out = [f"class {loss.cls}(_Loss):", f'    r"""{_class_docstring(spec, loss)}"""', "",
           f"    _func = {loss.func!r}", f"    _default_reduction = {loss.default_reduction!r}",
           f"    _options = {tuple(o.name for o in ctor)!r}",
           *(["    _batchmean = True"] if loss.batchmean else []),
           *[f"    _{o.name}: {_annotation(spec, o)}" for o in loss.scalar_options
             if not o.per_call],
           *[f"    {o.name}: {_annotation(spec, o)}" for o in ctor
             if o.kind not in (spec.FLOAT, spec.INT, spec.BOOL)], "",
           "    def __init__(", "        self,", *[f"        {p}," for p in params],
           "    ) -> None:",
           f"        self._set_reduction(reduction{legacy})"]
    out += [f"        self.{o.name} = {o.name}" for o in ctor]
    for opt in loss.scalar_options:
        if opt.per_call:
            continue
        out += ["", f"    {opt.name} = _option(\n        {opt.name!r}, lambda value: "
                f"{_check(spec, opt, 'value')})"]
    scalars = {o.name: f"self._{o.name}" for o in loss.scalar_options}
    out += _methods(spec, loss, scalars)
    out += ["", "    def _run(self, input: ArrayLike, target: ArrayLike, **mode: Any) -> Any:",
            "        return " + _runner_call(spec, loss, scalars, "self._code",
                                             weights_prefix="self.", indent="            ",
                                             args=("input", "target"))]
    return "\n".join(out)


def api(spec, banner, binding_params):
    del binding_params  # the runner's argument order follows the declaration
    names = [x for loss in spec.LOSSES for x in (loss.func, loss.cls)]
    head = ['"""The public losses of fastloss: functions and classes.',
            "",
            f"{banner}",
            "Edit the declarations in fastloss/_spec/ (and tools/codegen_api.py for the",
            'shape of this file), then run ``python tools/codegen.py``."""',
            "",
            "from __future__ import annotations",
            "",
            "from typing import Any",
            "",
            "import numpy as np",
            "from numpy.typing import ArrayLike, NDArray",
            "",
            "from . import _core, _run",
            "from . import _validate as _v",
            "from ._base import Loss as _Loss",
            "from ._base import option as _option",
            "",
            "_SLOW = _core.SLOW",
            "",
            "__all__ = [", *[f"    {n!r}," for n in names], "]"]
    body = []
    for loss in spec.LOSSES:
        body += ["", "", _function(spec, loss), "", "", _class(spec, loss)]
    return "\n".join(head + body) + "\n"
