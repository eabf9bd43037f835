"""torch integration: every torchvision_native op as a torch.library custom op.

With torch >= 2.4 (torch.library.register_fake / register_autograd), the ops in
table.py are defined under the ``tvops`` namespace (``torch.ops.tvops.nms``, ...) with
CPU and CUDA kernels (kernels.py), fake kernels (fake.py) and autograd formulas
(autograd.py), so they work under autograd, torch.compile(fullgraph=True) and
torch.export. torchvision_native.ops routes torch tensors through them.

torch stays optional: the ops are registered at `import torchvision_native` when torch
is installed. Older torch, or TORCHVISION_NATIVE_CUSTOM_OPS=0, keeps the plain eager
calls (with autograd).
"""
import os
import sys
import warnings

registered = False  # True once torch.ops.tvops.* exist; the ops modules read it on every call
Tensor = None       # torch.Tensor once registered (isinstance checks that dynamo can trace)
ops = None          # torch.ops.tvops once registered (eager.Ops: plain eager calls skip the dispatcher)
_library = None     # the torch.library.Library that owns the registrations (kept alive)


def _supported(torch):
    library = torch.library
    return all(hasattr(library, name) for name in ("Library", "register_fake", "register_autograd", "get_ctx"))


def register():
    """Defines the tvops:: ops (idempotent). Returns whether they are registered."""
    global registered, Tensor, ops, _library
    if registered:
        return True
    if os.environ.get("TORCHVISION_NATIVE_CUSTOM_OPS", "1") == "0":
        return False
    import torch

    if not _supported(torch):
        return False
    from . import autograd, eager, fake, kernels
    from .table import BACKWARD_OF, SCHEMAS

    library = torch.library.Library("tvops", "DEF")
    for name, schema in SCHEMAS.items():
        qualname = f"tvops::{name}"
        library.define(schema)
        for key in ("CPU", "CUDA"):
            library.impl(name, getattr(kernels, name), key)
        torch.library.register_fake(qualname, getattr(fake, name), lib=library)
        formula = autograd.FORMULAS.get(name)
        if formula is None and name in BACKWARD_OF:
            formula = autograd.refuse_double_backward(BACKWARD_OF[name])
        if formula is not None:
            setup, backward = formula
            torch.library.register_autograd(qualname, backward, setup_context=setup, lib=library)
    _hide_from_dynamo(kernels)
    _library, Tensor, ops = library, torch.Tensor, eager.Ops(torch.ops.tvops, autograd.FORMULAS)
    registered = True
    return True


def _hide_from_dynamo(*modules):
    """The kernels run native code dynamo can't trace. Compiled graphs hold the ops
    themselves; but where a graph breaks (torch.compile without fullgraph), the eager
    stretch calls the kernels with dynamo's frame hook still installed, and each frame
    would be tried and given up on, with a warning. Mark their code to be skipped."""
    try:
        from torch._dynamo.eval_frame import skip_code
    except ImportError:  # pragma: no cover - other torch versions: only the warnings remain
        return
    from .. import _convert

    def walk(code):
        skip_code(code)
        for const in code.co_consts:
            if hasattr(const, "co_code"):
                walk(const)

    for module in (*modules, _convert):
        for value in vars(module).values():
            code = getattr(value, "__code__", None)
            if code is not None and getattr(value, "__module__", None) == module.__name__:
                walk(code)


def _register_quietly():
    try:
        register()
    except Exception as e:  # noqa: BLE001 - never break `import torchvision_native`
        warnings.warn(f"torchvision_native: the torch custom ops could not be registered ({e!r}); "
                      "torchvision_native.ops falls back to plain eager calls", RuntimeWarning, stacklevel=2)


def register_if_torch():
    """Registers the ops if torch is imported (torchvision_native.ops imports it when it
    is installed, for its nn.Module classes)."""
    if "torch" in sys.modules:
        _register_quietly()


def wants(x):
    """Whether a call with `x` goes through the custom ops (a torch tensor, ops registered)."""
    return registered and isinstance(x, Tensor)
