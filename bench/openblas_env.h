// Keeps OpenBLAS tuning overrides out of the benchmark.
//
// The build machines set OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which slow
// OpenBLAS (and FAISS on top of it) about 2x (DESIGN.md section 6). OpenBLAS
// reads them once, when the library loads, so unsetting them inside a running
// process is too late: the process must re-execute itself without them.
#pragma once

#include <string>

namespace peakknn::bench {

// If either variable is set: prints a line to stderr, unsets both and
// re-executes /proc/self/exe with the same argv (does not return unless the
// exec fails, which is fatal). Otherwise returns a one-line description of
// the environment for the report ("were not set" or "unset by re-exec").
// Call first thing in main.
std::string ReexecWithoutOpenblasOverrides(char** argv);

// Tells OpenBLAS (when it is the loaded BLAS) and OpenMP how many threads
// to use; threads >= 1.
void SetBlasThreads(int threads);

}  // namespace peakknn::bench
