// CPU kernels for quantized linears, as plain C++ over raw pointers (no torch): the AVX2 files
// are compiled with -mavx2 -mfma and the AVX-512 file with -mavx512f/bw/vl/vnni; none may pull
// in code that could run on a CPU without those (the *_cpu.cc files check at run time).
//
// Every kernel computes y[m, r] = sum_c x[m, c] * W[r, c] + bias[r] for m < M (row-major x
// [M, in] and y [M, out]), with W the dequantized weight (runtime/qweight.h). M is small (1
// for a draft step, up to 16 for verification); the vector kernels take blocks of weight rows
// outer and every tile of rows of x inner, so a call streams the weight from DRAM once
// whatever M.
//
// Batch invariance, for every kernel: row m of a call with M rows is bit-equal to a call with
// that row alone, whatever M, the row's position, the tile shapes or the thread count. Each
// output is the same float operations in the same order in every tile (activations are
// quantized per row; no arithmetic depends on M); only the kernel itself changes rounding.
// A speculative verification forward thus computes exactly the logits of one-token decoding
// (tests/kernel_invariance_test.cc checks it with memcmp). QuantizedLinear's dequantize-then-
// GEMM route at M >= DequantGemmMinRows() (qlinear.h) is not one of these kernels and not
// invariant; the native engine calls Int8GemmCpu / Int4GemmCpu directly.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace augur::qkernels {

struct Int8Weights {
  const int8_t* q;      // [out, in]
  const float* scales;  // [out]
  int64_t out, in;
};

struct Int4Weights {
  const uint8_t* q;      // [out, in_padded / 2], two columns per byte (low nibble first)
  const float* scales;   // [out, groups]
  const uint8_t* zeros;  // [out, groups]
  int64_t out, in, in_padded, group;
  int64_t groups() const { return in_padded / group; }
};

// kScalar: portable, float. kAvx2: AVX2/FMA, float activations (exact up to float summation).
// kAvx2Q8: AVX2 with activations quantized per 32 columns to int8 and integer dot products
// (linear_q8_avx2.cc): several times fewer instructions per weight, error bounded by
// sum_c |W[r,c]| * dx/2. kAvx512Vnni: the same int8 activations, summed with AVX-512 VNNI
// dpbusd (u8 x s8 -> s32, 64 weights per instruction; linear_q8_avx512.cc), same bound.
// kAuto: DefaultCpuKernel().
enum class CpuKernel { kAuto, kScalar, kAvx2, kAvx2Q8, kAvx512Vnni };

// True when the AVX2 file was compiled with AVX2/FMA and this CPU has both.
bool Avx2Available();
// True when linear_q8_avx512.cc was compiled with AVX-512 F/BW/VL/VNNI and this CPU has them.
bool Avx512VnniAvailable();
const char* CpuKernelName(CpuKernel k);  // "auto", "scalar", "avx2", "avx2-q8", "avx512-vnni"
// What kAuto means: kAvx512Vnni where available, else kAvx2Q8 where AVX2 is, else kScalar;
// the environment variable AUGUR_QUANT_KERNEL=scalar|avx2|avx2-q8|avx512-vnni (read once) or
// SetDefaultCpuKernel overrides it. A kernel the CPU cannot run falls back: kAvx512Vnni to
// kAvx2Q8, AVX2 kernels to kScalar.
CpuKernel DefaultCpuKernel();
void SetDefaultCpuKernel(CpuKernel k);  // kAuto: back to the automatic choice (and the env)
// The kernel a call with `k` runs: kAuto resolved, and the fallbacks above applied.
CpuKernel ResolveCpuKernel(CpuKernel k);

// How QuantizeActivations orders the int8 codes of x, to match the kernel's weight loads.
//   kPlain: columns in order (int8 weights).
//   kEvenOdd32: per block of 32 columns, the even columns, then the odd ones: one 16-byte load
//     of packed int4 (low nibble = even column) split into nibbles lines up with 32 codes
//     (linear_q8_avx2.cc).
//   kEvenOdd64: per pair of blocks (64 columns): even columns of block 0, of block 1, odd of
//     block 0, of block 1: one 32-byte load of packed int4 broadcast to [bytes 0-15, 16-31,
//     0-15, 16-31] with the upper half shifted by 4 lines up with 64 codes
//     (linear_q8_avx512.cc).
enum class Q8Layout { kPlain, kEvenOdd32, kEvenOdd64 };

// QuantizeActivations with AVX-512 (linear_q8_avx512.cc; call only when
// Avx512VnniAvailable()): the same codes, scales and sums, bit for bit, for kPlain and
// kEvenOdd64 with lane scales.
struct Q8Activations;
void QuantizeActivationsAvx512(const float* x, int64_t m, int64_t in, int64_t blocks, Q8Layout layout, int64_t group,
                               Q8Activations* out);
// Then, for Int8RowsVnni / Int4RowsVnni: the codes and lane scales of the first full_sbs / 4 * 4
// superblocks of each row (full_sbs: those whose 64 weight columns all exist, in / 64 for int8,
// in_padded / 64 for int4) regrouped by four, the order in which those kernels sum four
// superblocks per integer accumulator (linear_q8_avx512.cc). Call only when
// Avx512VnniAvailable().
void GroupActivationsVnni(Q8Activations* xa, int64_t m, int64_t full_sbs, bool int4);

// x quantized for the q8 kernels: per row of x and block of 32 columns, int8 codes (in the
// layout's order) and the block's scale d = max|x| / 127; per row, sum over blocks of d *
// sum(codes); for int4 also per row and group, that sum over the group's blocks (the
// zero-point term). Columns past `in` are zero; `blocks` covers whole superblocks of the
// layout (2 blocks for kEvenOdd64). For kEvenOdd64 and kPlain (the AVX-512 kernels) also
// lane_scale: per row and 64 columns, the scale of each int32 lane of a dpbusd result (for
// kEvenOdd64 the odd columns' lanes 8-15 carry d / 16: that kernel keeps high nibbles as 16 q).
// The buffers are reused across calls (the Gemm functions keep one per thread).
struct Q8Activations {
  std::vector<int8_t> q;          // [m, blocks, 32]
  std::vector<float> scale;       // [m, blocks]
  std::vector<float> row_sum;     // [m]
  std::vector<float> group_sum;   // [m, groups] (int4)
  std::vector<float> lane_scale;  // [m, blocks / 2, 16] (AVX-512 layouts)
  int64_t blocks = 0, groups = 0;
};
// groups = 0 for int8 (no group sums); otherwise group is the int4 group size.
void QuantizeActivations(const float* x, int64_t m, int64_t in, int64_t blocks, Q8Layout layout, int64_t group,
                         bool lane_scales, Q8Activations* out);

// Whole calls: threads over output rows (ParallelFor) (when the work is large enough to pay for it).
// kAuto picks AVX2 when available; asking for kAvx2 without it falls back to scalar.
void Int8GemmCpu(const float* x, int64_t m, const Int8Weights& w, const float* bias, float* y,
                 CpuKernel kernel = CpuKernel::kAuto);
void Int4GemmCpu(const float* x, int64_t m, const Int4Weights& w, const float* bias, float* y,
                 CpuKernel kernel = CpuKernel::kAuto);

// The dequantized weight W [out, in] (row-major, `in` real columns), OpenMP over rows; bit-equal
// to runtime/qweight.h Dequantize. For the dequantize-then-GEMM route at larger M (qlinear.h).
void DequantizeInt8Cpu(const Int8Weights& w, float* out);
void DequantizeInt4Cpu(const Int4Weights& w, float* out);

// Whether a call with `work` multiply-adds runs on several threads: enough work to pay for a
// parallel round (kMinParallelWork in linear_int8_cpu.cc) and more than one thread allowed.
bool UseThreads(int64_t work);

// The kernels' threads: OpenMP's setting for the calling thread (--threads, OMP_NUM_THREADS).
int KernelThreads();
// body(t0, t1) over contiguous blocks of [0, tasks) on up to KernelThreads() threads, the
// caller included (static split: thread k runs [k*tasks/n, (k+1)*tasks/n)); returns when all
// are done. Its own pool (parallel_cpu.cc), whose idle workers spin ~50 us and then sleep, so
// more threads than free cores costs a context switch, not libgomp's spin-out.
void ParallelFor(int64_t tasks, const std::function<void(int64_t, int64_t)>& body);

// Rows [r0, r1) of one call; the building blocks of the above.
void Int8RowsScalar(const float* x, int64_t m, const Int8Weights& w, const float* bias, float* y, int64_t r0,
                    int64_t r1);
void Int8RowsAvx2(const float* x, int64_t m, const Int8Weights& w, const float* bias, float* y, int64_t r0,
                  int64_t r1);
void Int4RowsScalar(const float* x, int64_t m, const Int4Weights& w, const float* bias, float* y, int64_t r0,
                    int64_t r1);
// xsum [m, groups]: the sum of x over each group's (real) columns, shared by every row: the
// AVX2 kernel computes s * (sum q*x - z * sum x) per group instead of dequantizing.
void Int4RowsAvx2(const float* x, int64_t m, const Int4Weights& w, const float* xsum, const float* bias,
                  float* y, int64_t r0, int64_t r1);
void Int8RowsQ8Avx2(const Q8Activations& xa, int64_t m, const Int8Weights& w, const float* bias, float* y,
                    int64_t r0, int64_t r1);
void Int4RowsQ8Avx2(const Q8Activations& xa, int64_t m, const Int4Weights& w, const float* bias, float* y,
                    int64_t r0, int64_t r1);
// xa: kPlain (int8) / kEvenOdd64 (int4) with lane scales, then GroupActivationsVnni.
void Int8RowsVnni(const Q8Activations& xa, int64_t m, const Int8Weights& w, const float* bias, float* y,
                  int64_t r0, int64_t r1);
void Int4RowsVnni(const Q8Activations& xa, int64_t m, const Int4Weights& w, const float* bias, float* y,
                  int64_t r0, int64_t r1);
// Rows [r0, r1) of DequantizeInt4Cpu (out points at row 0).
void DequantizeInt4RowsScalar(const Int4Weights& w, float* out, int64_t r0, int64_t r1);
void DequantizeInt4RowsAvx2(const Int4Weights& w, float* out, int64_t r0, int64_t r1);
bool Avx2Compiled();        // defined in the AVX2 files' translation unit
bool Avx512VnniCompiled();  // defined in linear_q8_avx512.cc

}  // namespace augur::qkernels
