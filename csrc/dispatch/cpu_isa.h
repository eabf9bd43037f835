// Run-time choice of the CPU kernel tier (internal).
#pragma once

#include "kernels/cpu/kernel_table.h"

namespace tvops::detail {

// The kernels of the active tier. The first call checks that this CPU can run the
// build (check_cpu_compatibility) and applies TVOPS_CPU_ISA.
const cpu::KernelTable& cpu_kernels();

}  // namespace tvops::detail
