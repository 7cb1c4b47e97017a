// PEAKKNN_HD marks small functions compiled for both the CPU and, under nvcc,
// the GPU. The math shared by both backends (row layout, bins, score
// transforms, tie-breaking) lives in such functions so CPU tests cover it.
#pragma once

#if defined(__CUDACC__)
#define PEAKKNN_HD __host__ __device__ __forceinline__
#else
#define PEAKKNN_HD inline
#endif
