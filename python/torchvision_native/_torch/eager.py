"""The custom ops without torch's dispatcher round trip, for plain eager calls.

A torch.library op with Python kernels costs ~35 us of host time on top of its kernel
(the dispatcher, the Python autograd wrapper, the redispatch, filling defaults): on
the H100, roi_align without grad took 67 us a call against 33 us for the kernel
function (torchvision's C++ op: 22 us), and that host time sets the speed of small
batches and of forward + backward steps. Where nothing needs to see the op (no
torch.compile, export or jit trace, no torch function or dispatch mode, no functorch
transform, plain tensors), the ops call their kernel functions directly, through an
autograd.Function made from the same formulas where gradients are needed. Everything
else goes through torch.ops.tvops as before.
"""
import torch

from . import kernels


def _probes():
    """The checks plain_eager needs, or None where this torch lacks one (no shortcut)."""
    try:
        c = torch._C
        checks = (torch.compiler.is_compiling, c._get_tracing_state, c._is_torch_function_mode_enabled,
                  c._len_torch_dispatch_stack, c._functorch.peek_interpreter_stack)
    except AttributeError:
        return None
    return checks


_PROBES = _probes()
_PLAIN = (torch.Tensor, torch.nn.Parameter)


def plain_eager(tensors):
    """Whether a call with these tensors may skip the dispatcher."""
    if _PROBES is None:
        return False
    compiling, tracing, function_mode, dispatch_stack, functorch_stack = _PROBES
    if compiling() or tracing() is not None or function_mode() or dispatch_stack() or functorch_stack() is not None:
        return False
    # nn.Parameter (module weights) is a plain tensor for dispatch; other subclasses
    # (tv_tensors, fake or functional tensors) may override ops.
    return bool(tensors) and all(type(t) in _PLAIN for t in tensors)


def _tensors(args):
    """(tensor arguments, tensors inside list arguments): autograd.Function sees the first
    kind only, so a call whose listed tensors need gradients takes the dispatcher."""
    found, listed = [], []
    for a in args:
        if isinstance(a, torch.Tensor):
            found.append(a)
        elif isinstance(a, (list, tuple)):
            listed.extend(x for x in a if isinstance(x, torch.Tensor))
    return found, listed


def _function(name, kernel, setup, backward):
    """An autograd.Function over the kernel and the op's formula (grad_fn: <name>_eagerBackward)."""
    def forward(ctx, *args):
        output = kernel(*args)
        setup(ctx, args, output)
        return output

    return type(f"{name}_eager", (torch.autograd.Function,),
                {"forward": staticmethod(forward), "backward": staticmethod(backward)})


def _caller(name, op, formula):
    kernel = getattr(kernels, name)
    function = _function(name, kernel, *formula) if formula is not None else None

    def call(*args, **kwargs):
        if kwargs:
            return op(*args, **kwargs)
        tensors, listed = _tensors(args)
        if not plain_eager(tensors + listed):
            return op(*args)
        if torch.is_grad_enabled() and any(t.requires_grad for t in tensors + listed):
            # An autograd.Function can't return gradients for tensors in a list
            # (multi_scale_roi_align's features): those calls take the dispatcher's autograd.
            return function.apply(*args) if function is not None and not listed else op(*args)
        return kernel(*args)

    call.__name__ = name
    return call


class Ops:
    """torch.ops.tvops with the shortcut: ops.<name>(...) as torch.ops.tvops.<name>(...)."""

    def __init__(self, torch_ops, formulas):
        self._torch_ops, self._formulas = torch_ops, formulas

    def __getattr__(self, name):
        call = _caller(name, getattr(self._torch_ops, name), self._formulas.get(name))
        setattr(self, name, call)  # made once per op
        return call


def call_backward(name, *args):
    """A backward op from an autograd formula: the kernel itself in a plain eager
    backward (no create_graph: a second derivative must reach the op, which refuses it)."""
    if not torch.is_grad_enabled() and plain_eager([a for a in args if isinstance(a, torch.Tensor)]):
        return getattr(kernels, name)(*args)
    return getattr(torch.ops.tvops, name)(*args)
