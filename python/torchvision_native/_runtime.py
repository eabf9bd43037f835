"""What was built, what this machine has, and the run-time knobs."""
from . import _C


def build_info():
    """The build: variant, CPU ISA tiers, CUDA targets, toolkit and compiler versions."""
    return _C.build_info()


def cpu_features():
    """CPU features as tvops detects them at run time."""
    return _C.cpu_features()


def recommended_variant():
    """(variant, reason): the variant this machine should install."""
    return _C.recommended_variant()


def active_cpu_isa():
    """The CPU ISA tier kernels run on now (TVOPS_CPU_ISA caps it)."""
    return _C.active_cpu_isa()


def available_cpu_isas():
    """ISA tiers compiled into this build that this CPU runs."""
    return _C.available_cpu_isas()


def set_cpu_isa(isa):
    """Switch the CPU kernels to another compiled tier (tests and benchmarks)."""
    _C.set_cpu_isa(isa)


def num_threads():
    """Threads CPU ops use (TVOPS_NUM_THREADS, default all cores)."""
    return _C.num_threads()


def set_num_threads(n):
    _C.set_num_threads(int(n))
