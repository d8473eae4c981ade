/*
 * Training kernels: the fused AdamW update, the sum of squares of many gradients, and softmax
 * cross-entropy over the last axis with its gradient.
 *
 * Every kernel computes in float32 with IEEE operations only (no -ffast-math), so NaN and Inf
 * propagate as they do in the composite tfjs ops these kernels replace. The exponential is
 * moebench's own (mb_exp_float in moebench.h, applied lane-wise by exp8), within 1 ulp.
 * Reductions run in float64, in blocks whose boundaries do not depend on the thread count, so
 * results are the same for any number of threads.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moebench.h"

#if defined(__GNUC__) && !defined(__clang__)
/* Without AVX, GCC notes that 32-byte vector arguments change the ABI; every such function here is static. */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

/* GCC/Clang vector extensions: eight float32 lanes, compiled to AVX or split into narrower registers. */
typedef float f32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));
typedef float f32x4 __attribute__((vector_size(16)));
typedef double f64x4 __attribute__((vector_size(32)));

/*
 * Minimum items per thread (mb_parallel_for's grain), sized so that a piece runs about 150
 * microseconds on one core. On a 2-core AMD EPYC shared with other jobs, and with the pool as it was
 * before its threads claimed pieces, two threads were slower than one at every size of the quick
 * suite's step: AdamW over 225k parameters took 64 us on one thread and 519 us on two, softmax
 * cross-entropy over [1024, 256] 336 us and 897 us.
 * A second thread pays off only for work that outlasts its wake-up and the waits for a busy core.
 */
#define ADAMW_GRAIN (1u << 19)   /* elements */
#define SQUARES_GRAIN (1u << 20) /* elements */
#define SOFTMAX_GRAIN (1u << 17) /* logits */
/* The sum of squares adds fixed blocks of this many elements, then the blocks' sums in order. */
#define SQUARES_BLOCK 8192

static inline f32x8 load8(const float *source) {
  f32x8 value;
  memcpy(&value, source, sizeof value);
  return value;
}

static inline void store8(float *target, f32x8 value) { memcpy(target, &value, sizeof value); }

static inline f32x8 splat8(float value) { return (f32x8){value, value, value, value, value, value, value, value}; }

/* Lanes of `when_true` where mask is all ones, of `when_false` where it is zero. */
static inline f32x8 select8(i32x8 mask, f32x8 when_true, f32x8 when_false) {
  return (f32x8)(((i32x8)when_true & mask) | ((i32x8)when_false & ~mask));
}

/* Loads the `count` (< 8) floats at source into the first lanes and `fill` into the rest. */
static inline f32x8 load_partial8(const float *source, size_t count, float fill) {
  float lanes[8];
  for (size_t i = 0; i < 8; i++) lanes[i] = i < count ? source[i] : fill;
  return load8(lanes);
}

static inline double sum_lanes4(f64x4 value) { return (value[0] + value[1]) + (value[2] + value[3]); }

/* Adds the eight lanes of value, widened to float64, to the two float64 accumulators. */
static inline void accumulate8(f64x4 *low, f64x4 *high, f32x8 value) {
  f32x4 first = {value[0], value[1], value[2], value[3]};
  f32x4 second = {value[4], value[5], value[6], value[7]};
  *low += __builtin_convertvector(first, f64x4);
  *high += __builtin_convertvector(second, f64x4);
}

/*
 * e^x in each of eight float32 lanes, by moebench.h's mb_exp_float (within 1 ulp of Math.exp; NaN
 * stays NaN, +Inf gives +Inf and -Inf gives 0). The loop unrolls and vectorises at -O3.
 */
static inline f32x8 exp8(f32x8 x) {
  f32x8 result;
  for (int lane = 0; lane < 8; lane++) result[lane] = mb_exp_float(x[lane]);
  return result;
}

/* Reads a typed array of the given type. Throws a TypeError naming `name` when the value is not one. */
static void *typed_array(napi_env env, napi_value value, napi_typedarray_type type, const char *name, size_t *length) {
  napi_typedarray_type actual;
  void *data = NULL;
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, value, &actual, length, &data, NULL, NULL) != napi_ok || actual != type) {
    char message[160];
    snprintf(message, sizeof message, "moebench native: %s must be a %s", name,
             type == napi_uint32_array ? "Uint32Array" : "Uint8Array");
    napi_throw_type_error(env, NULL, message);
    return NULL;
  }
  /* An empty typed array may have no backing store; callers read only `length` entries. */
  static uint32_t empty;
  return data == NULL ? (void *)&empty : data;
}

/* ---------------------------------------------------------------------------------------------- */
/* AdamW                                                                                          */
/* ---------------------------------------------------------------------------------------------- */

/* Columns of the AdamW table: one row of float offsets and a size per variable. */
enum { PARAM, FIRST, SECOND, GRADIENT, NEW_PARAM, NEW_FIRST, NEW_SECOND, SIZE, ADAMW_COLUMNS };

typedef struct {
  float *heap;
  const uint32_t *table;
  const uint8_t *decays;
  const size_t *starts; /* starts[i]: the first element of variable i in the concatenation; starts[count] is the total */
  size_t count;
  float beta1, gradient_weight1, beta2, gradient_weight2, epsilon, step_size, decay_factor;
} adamw_job;

/* Applies the update to `count` elements. The operation order is the composite's. */
static void adamw_elements(const adamw_job *job, float decay_factor, const float *restrict param, const float *restrict first,
                           const float *restrict second, const float *restrict gradient, float *restrict new_param,
                           float *restrict new_first, float *restrict new_second, size_t count) {
  const float beta1 = job->beta1, weight1 = job->gradient_weight1, beta2 = job->beta2, weight2 = job->gradient_weight2;
  const float epsilon = job->epsilon, step_size = job->step_size;
  for (size_t i = 0; i < count; i++) {
    const float g = gradient[i];
    const float m = first[i] * beta1 + g * weight1;
    const float v = second[i] * beta2 + (g * g) * weight2;
    const float update = (m / (sqrtf(v) + epsilon)) * step_size;
    new_first[i] = m;
    new_second[i] = v;
    new_param[i] = param[i] * decay_factor - update;
  }
}

/* Applies the update to elements [begin, end) of variable `index`. */
static void adamw_span(const adamw_job *job, size_t index, size_t begin, size_t end) {
  const uint32_t *row = job->table + index * ADAMW_COLUMNS;
  float *heap = job->heap + begin;
  /* p * 1 is exactly p (NaN included), so a variable that does not decay takes the same loop. */
  const float decay_factor = job->decays[index] != 0 ? job->decay_factor : 1.0f;
  adamw_elements(job, decay_factor, heap + row[PARAM], heap + row[FIRST], heap + row[SECOND], heap + row[GRADIENT],
                 heap + row[NEW_PARAM], heap + row[NEW_FIRST], heap + row[NEW_SECOND], end - begin);
}

/* Updates the elements [begin, end) of the concatenation of all variables. */
static void adamw_range(void *context, size_t begin, size_t end) {
  const adamw_job *job = context;
  /* The variable holding element `begin`: the last i with starts[i] <= begin. */
  size_t low = 0, high = job->count;
  while (high - low > 1) {
    size_t middle = (low + high) / 2;
    if (job->starts[middle] <= begin) low = middle;
    else high = middle;
  }
  for (size_t index = low; index < job->count && job->starts[index] < end; index++) {
    size_t first = job->starts[index] > begin ? job->starts[index] : begin;
    size_t last = job->starts[index + 1] < end ? job->starts[index + 1] : end;
    if (first < last) adamw_span(job, index, first - job->starts[index], last - job->starts[index]);
  }
}

/*
 * adamwUpdate(heap, table, decays, beta1, gradientWeight1, beta2, gradientWeight2, epsilon, stepSize, decayFactor)
 *
 * table: Uint32Array with 8 entries per variable: float offsets of param, m, v, gradient, new param,
 * new m, new v, then the variable's size. decays: Uint8Array, 1 where the variable decays. For each
 * element, in float32 and in this order:
 *   m' = m beta1 + g gradientWeight1;  v' = v beta2 + g^2 gradientWeight2
 *   p' = (decays ? p decayFactor : p) - (m' / (sqrt(v') + epsilon)) stepSize
 * The outputs must not overlap the inputs.
 */
static napi_value adamw_update(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  if (!mb_get_arguments(env, info, 10, argv, "adamwUpdate")) return NULL;
  size_t heap_count = 0;
  float *heap = mb_heap(env, argv[0], &heap_count);
  if (heap == NULL) return NULL;
  size_t table_length = 0, decay_count = 0;
  const uint32_t *table = typed_array(env, argv[1], napi_uint32_array, "adamwUpdate: table", &table_length);
  if (table == NULL) return NULL;
  const uint8_t *decays = typed_array(env, argv[2], napi_uint8_array, "adamwUpdate: decays", &decay_count);
  if (decays == NULL) return NULL;
  if (table_length != decay_count * ADAMW_COLUMNS) {
    napi_throw_range_error(env, NULL, "adamwUpdate: table must have 8 entries per entry of decays");
    return NULL;
  }
  adamw_job job = {heap, table, decays, NULL, decay_count, 0, 0, 0, 0, 0, 0, 0};
  if (!mb_get_float(env, argv[3], "beta1", &job.beta1) || !mb_get_float(env, argv[4], "gradientWeight1", &job.gradient_weight1) ||
      !mb_get_float(env, argv[5], "beta2", &job.beta2) || !mb_get_float(env, argv[6], "gradientWeight2", &job.gradient_weight2) ||
      !mb_get_float(env, argv[7], "epsilon", &job.epsilon) || !mb_get_float(env, argv[8], "stepSize", &job.step_size) ||
      !mb_get_float(env, argv[9], "decayFactor", &job.decay_factor)) {
    return NULL;
  }
  static const char *const names[] = {"adamwUpdate: param", "adamwUpdate: first moment", "adamwUpdate: second moment",
                                      "adamwUpdate: gradient", "adamwUpdate: new param", "adamwUpdate: new first moment",
                                      "adamwUpdate: new second moment"};
  size_t *starts = malloc((decay_count + 1) * sizeof *starts);
  if (starts == NULL) {
    napi_throw_error(env, NULL, "adamwUpdate: out of memory");
    return NULL;
  }
  starts[0] = 0;
  for (size_t i = 0; i < decay_count; i++) {
    const uint32_t *row = table + i * ADAMW_COLUMNS;
    for (int column = PARAM; column < SIZE; column++) {
      if (!mb_check_span(env, heap_count, row[column], row[SIZE], names[column])) {
        free(starts);
        return NULL;
      }
    }
    starts[i + 1] = starts[i] + row[SIZE];
  }
  job.starts = starts;
  mb_parallel_for(starts[decay_count], ADAMW_GRAIN, adamw_range, &job);
  free(starts);
  return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* Sum of squares                                                                                 */
/* ---------------------------------------------------------------------------------------------- */

typedef struct {
  const float *heap;
  const uint32_t *table; /* offset, size per tensor */
  const size_t *starts;
  size_t count;
  size_t total;
  double *block_sums;
} squares_job;

/* Adds the squares of values[0, length) to the four float64 accumulators, lane by lane. */
static void add_squares(const float *values, size_t length, f64x4 accumulators[4]) {
  size_t i = 0;
  for (; i + 16 <= length; i += 16) {
    f32x8 a = load8(values + i), b = load8(values + i + 8);
    accumulate8(&accumulators[0], &accumulators[1], a * a);
    accumulate8(&accumulators[2], &accumulators[3], b * b);
  }
  for (; i + 8 <= length; i += 8) {
    f32x8 a = load8(values + i);
    accumulate8(&accumulators[0], &accumulators[1], a * a);
  }
  if (i < length) {
    f32x8 a = load_partial8(values + i, length - i, 0.0f);
    accumulate8(&accumulators[2], &accumulators[3], a * a);
  }
}

/*
 * Sums the blocks [begin, end): block b covers elements [b * SQUARES_BLOCK, (b + 1) * SQUARES_BLOCK)
 * of the concatenation of the tensors. Each square is rounded to float32, as the composite's
 * square is, then added in float64.
 */
static void squares_blocks(void *context, size_t begin, size_t end) {
  const squares_job *job = context;
  size_t index = 0;
  for (size_t block = begin; block < end; block++) {
    size_t from = block * SQUARES_BLOCK;
    size_t to = from + SQUARES_BLOCK < job->total ? from + SQUARES_BLOCK : job->total;
    while (job->starts[index + 1] <= from) index++;
    f64x4 accumulators[4] = {{0}, {0}, {0}, {0}};
    for (size_t tensor = index; tensor < job->count && job->starts[tensor] < to; tensor++) {
      size_t first = job->starts[tensor] > from ? job->starts[tensor] : from;
      size_t last = job->starts[tensor + 1] < to ? job->starts[tensor + 1] : to;
      if (first >= last) continue;
      const float *values = job->heap + job->table[2 * tensor] + (first - job->starts[tensor]);
      add_squares(values, last - first, accumulators);
    }
    job->block_sums[block] = sum_lanes4((accumulators[0] + accumulators[1]) + (accumulators[2] + accumulators[3]));
  }
}

/*
 * sumOfSquares(heap, table, outOffset)
 *
 * table: Uint32Array with the float offset and the size of each tensor. Writes sum(x^2) over every
 * element of every tensor, as one float32, at outOffset.
 */
static napi_value sum_of_squares(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!mb_get_arguments(env, info, 3, argv, "sumOfSquares")) return NULL;
  size_t heap_count = 0;
  float *heap = mb_heap(env, argv[0], &heap_count);
  if (heap == NULL) return NULL;
  size_t table_length = 0, out_offset = 0;
  const uint32_t *table = typed_array(env, argv[1], napi_uint32_array, "sumOfSquares: table", &table_length);
  if (table == NULL || !mb_get_size(env, argv[2], "outOffset", &out_offset)) return NULL;
  if (table_length % 2 != 0) {
    napi_throw_range_error(env, NULL, "sumOfSquares: table must have 2 entries (offset, size) per tensor");
    return NULL;
  }
  if (!mb_check_span(env, heap_count, out_offset, 1, "sumOfSquares: the output")) return NULL;
  const size_t count = table_length / 2;
  size_t *starts = malloc((count + 1) * sizeof *starts);
  if (starts == NULL) {
    napi_throw_error(env, NULL, "sumOfSquares: out of memory");
    return NULL;
  }
  starts[0] = 0;
  for (size_t i = 0; i < count; i++) {
    if (!mb_check_span(env, heap_count, table[2 * i], table[2 * i + 1], "sumOfSquares: a tensor")) {
      free(starts);
      return NULL;
    }
    starts[i + 1] = starts[i] + table[2 * i + 1];
  }
  const size_t total = starts[count];
  const size_t blocks = (total + SQUARES_BLOCK - 1) / SQUARES_BLOCK;
  double *block_sums = malloc((blocks + 1) * sizeof *block_sums);
  if (block_sums == NULL) {
    free(starts);
    napi_throw_error(env, NULL, "sumOfSquares: out of memory");
    return NULL;
  }
  squares_job job = {heap, table, starts, count, total, block_sums};
  mb_parallel_for(blocks, SQUARES_GRAIN / SQUARES_BLOCK, squares_blocks, &job);
  double sum = 0;
  for (size_t block = 0; block < blocks; block++) sum += block_sums[block];
  heap[out_offset] = (float)sum;
  free(block_sums);
  free(starts);
  return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* Softmax cross-entropy                                                                          */
/* ---------------------------------------------------------------------------------------------- */

typedef struct {
  float *heap;
  size_t vocab;
  size_t logits, labels, nll, row_max, log_sum, dy, dlogits; /* float offsets */
} softmax_job;

/* The row's maximum and whether every logit is finite (an Inf or NaN makes `finite` false). */
static float row_max(const float *x, size_t vocab, bool *finite) {
  f32x8 maximum = splat8(-INFINITY);
  f32x8 check = splat8(0.0f); /* x * 0 is 0 for finite x and NaN for Inf and NaN */
  size_t j = 0;
  for (; j + 8 <= vocab; j += 8) {
    f32x8 value = load8(x + j);
    maximum = select8(value > maximum, value, maximum);
    check += value * 0.0f;
  }
  if (j < vocab) {
    f32x8 value = load_partial8(x + j, vocab - j, -INFINITY);
    maximum = select8(value > maximum, value, maximum);
    check += load_partial8(x + j, vocab - j, 0.0f) * 0.0f;
  }
  float result = maximum[0];
  float any = check[0];
  for (int lane = 1; lane < 8; lane++) {
    if (maximum[lane] > result) result = maximum[lane];
    any += check[lane];
  }
  *finite = any == 0.0f;
  return result;
}

/* log(sum(e^(x - shift))) over the row, the exponentials in float32 and their sum in float64. */
static float row_log_sum(const float *x, size_t vocab, float shift) {
  f64x4 low = {0}, high = {0};
  const f32x8 shift8 = splat8(shift);
  size_t j = 0;
  for (; j + 8 <= vocab; j += 8) accumulate8(&low, &high, exp8(load8(x + j) - shift8));
  if (j < vocab) accumulate8(&low, &high, exp8(load_partial8(x + j, vocab - j, -INFINITY) - shift8));
  return (float)log(sum_lanes4(low + high));
}

/*
 * Forward for rows [begin, end): nll = logSum - (x[label] - max), with max the row's maximum and
 * logSum = log(sum(e^(x - max))). A row with an Inf or NaN logit takes the composite's own form,
 * nll = -sum_j ((x_j - max) - logSum) onehot_j, so that, as there, a -Inf logit at a position other
 * than the label gives NaN (from -Inf * 0) and not a finite loss.
 */
static void softmax_forward_rows(void *context, size_t begin, size_t end) {
  const softmax_job *job = context;
  const size_t vocab = job->vocab;
  const int32_t *labels = (const int32_t *)(job->heap + job->labels);
  for (size_t row = begin; row < end; row++) {
    const float *x = job->heap + job->logits + row * vocab;
    const size_t label = (size_t)labels[row];
    bool finite = true;
    const float maximum = row_max(x, vocab, &finite);
    const float log_sum = row_log_sum(x, vocab, maximum);
    float nll;
    if (finite) {
      nll = log_sum - (x[label] - maximum);
    } else {
      float picked = 0.0f;
      for (size_t j = 0; j < vocab; j++) picked += ((x[j] - maximum) - log_sum) * (j == label ? 1.0f : 0.0f);
      nll = -picked;
    }
    job->heap[job->nll + row] = nll;
    job->heap[job->row_max + row] = maximum;
    job->heap[job->log_sum + row] = log_sum;
  }
}

/*
 * Backward for rows [begin, end): dlogits = (e^((x - max) - logSum) - onehot(label)) dy. A
 * non-finite dy gives a NaN row, as in the composite gradient, whose sum over the one-hot row
 * multiplies Inf by 0.
 */
static void softmax_backward_rows(void *context, size_t begin, size_t end) {
  const softmax_job *job = context;
  const size_t vocab = job->vocab;
  const int32_t *labels = (const int32_t *)(job->heap + job->labels);
  for (size_t row = begin; row < end; row++) {
    const float *x = job->heap + job->logits + row * vocab;
    float *out = job->heap + job->dlogits + row * vocab;
    const size_t label = (size_t)labels[row];
    const float dy = job->heap[job->dy + row];
    if (!isfinite(dy)) {
      for (size_t j = 0; j < vocab; j++) out[j] = NAN;
      continue;
    }
    const f32x8 maximum = splat8(job->heap[job->row_max + row]);
    const f32x8 log_sum = splat8(job->heap[job->log_sum + row]);
    const f32x8 dy8 = splat8(dy);
    for (size_t j = 0; j < vocab; j += 8) {
      const size_t lanes = vocab - j < 8 ? vocab - j : 8;
      f32x8 value = lanes == 8 ? load8(x + j) : load_partial8(x + j, lanes, 0.0f);
      f32x8 gradient = exp8((value - maximum) - log_sum);
      if (label >= j && label < j + 8) gradient[label - j] -= 1.0f;
      gradient *= dy8;
      if (lanes == 8) {
        store8(out + j, gradient);
      } else {
        for (size_t lane = 0; lane < lanes; lane++) out[j + lane] = gradient[lane];
      }
    }
  }
}

/* Returns the first row whose label is outside [0, vocab), or -1 when every label is inside. */
static int64_t first_invalid_label(const int32_t *labels, size_t rows, size_t vocab) {
  for (size_t row = 0; row < rows; row++) {
    if (labels[row] < 0 || (size_t)labels[row] >= vocab) return (int64_t)row;
  }
  return -1;
}

/* Reads the shared arguments (heap, rows, vocab) and `offsets` offset arguments, and checks each span. */
static bool read_softmax_arguments(napi_env env, napi_value *argv, size_t offsets, const char *const *names,
                                   const size_t *spans_in_rows, size_t *heap_count, softmax_job *job, size_t *rows,
                                   size_t **targets) {
  job->heap = mb_heap(env, argv[0], heap_count);
  if (job->heap == NULL) return false;
  if (!mb_get_size(env, argv[1], "rows", rows) || !mb_get_size(env, argv[2], "vocab", &job->vocab)) return false;
  if (job->vocab == 0) {
    napi_throw_range_error(env, NULL, "moebench native: vocab must be at least 1");
    return false;
  }
  for (size_t i = 0; i < offsets; i++) {
    if (!mb_get_size(env, argv[3 + i], names[i], targets[i])) return false;
    size_t length = *rows * (spans_in_rows[i] == 0 ? job->vocab : 1);
    if (!mb_check_span(env, *heap_count, *targets[i], length, names[i])) return false;
  }
  return true;
}

static napi_value invalid_label_result(napi_env env, int64_t row) {
  napi_value result;
  MB_CHECK(napi_create_int64(env, row, &result));
  return result;
}

/*
 * softmaxCrossEntropy(heap, rows, vocab, logitsOffset, labelsOffset, nllOffset, maxOffset, logSumOffset)
 *
 * logits: [rows, vocab] float32; labels: [rows] int32. Writes per row nll, the row's maximum and
 * log(sum(e^(x - max))). Returns -1, or the first row whose label is outside [0, vocab), in which
 * case nothing is written.
 */
static napi_value softmax_cross_entropy(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!mb_get_arguments(env, info, 8, argv, "softmaxCrossEntropy")) return NULL;
  softmax_job job = {0};
  size_t heap_count = 0, rows = 0;
  static const char *const names[] = {"logitsOffset", "labelsOffset", "nllOffset", "maxOffset", "logSumOffset"};
  static const size_t per_row[] = {0, 1, 1, 1, 1}; /* 0: vocab floats per row */
  size_t *targets[] = {&job.logits, &job.labels, &job.nll, &job.row_max, &job.log_sum};
  if (!read_softmax_arguments(env, argv, 5, names, per_row, &heap_count, &job, &rows, targets)) return NULL;
  int64_t invalid = first_invalid_label((const int32_t *)(job.heap + job.labels), rows, job.vocab);
  if (invalid < 0) {
    size_t grain = SOFTMAX_GRAIN / job.vocab;
    mb_parallel_for(rows, grain == 0 ? 1 : grain, softmax_forward_rows, &job);
  }
  return invalid_label_result(env, invalid);
}

/*
 * softmaxCrossEntropyGrad(heap, rows, vocab, logitsOffset, labelsOffset, maxOffset, logSumOffset, dyOffset, dlogitsOffset)
 *
 * max and logSum are the forward's outputs for the same logits; dy: [rows]. Writes dlogits
 * [rows, vocab]. Returns -1, or the first row with a label outside [0, vocab) (nothing written).
 */
static napi_value softmax_cross_entropy_grad(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  if (!mb_get_arguments(env, info, 9, argv, "softmaxCrossEntropyGrad")) return NULL;
  softmax_job job = {0};
  size_t heap_count = 0, rows = 0;
  static const char *const names[] = {"logitsOffset", "labelsOffset", "maxOffset", "logSumOffset", "dyOffset", "dlogitsOffset"};
  static const size_t per_row[] = {0, 1, 1, 1, 1, 0};
  size_t *targets[] = {&job.logits, &job.labels, &job.row_max, &job.log_sum, &job.dy, &job.dlogits};
  if (!read_softmax_arguments(env, argv, 6, names, per_row, &heap_count, &job, &rows, targets)) return NULL;
  int64_t invalid = first_invalid_label((const int32_t *)(job.heap + job.labels), rows, job.vocab);
  if (invalid < 0) {
    size_t grain = SOFTMAX_GRAIN / job.vocab;
    mb_parallel_for(rows, grain == 0 ? 1 : grain, softmax_backward_rows, &job);
  }
  return invalid_label_result(env, invalid);
}

/* exp8 over a float array, in place: lets the tests sweep the exponential against Math.exp. */
static napi_value exp_in_place(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!mb_get_arguments(env, info, 1, argv, "expInPlace")) return NULL;
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_float32_array) {
    napi_throw_type_error(env, NULL, "expInPlace: the argument must be a Float32Array");
    return NULL;
  }
  float *values = data;
  for (size_t i = 0; i < length; i += 8) {
    size_t lanes = length - i < 8 ? length - i : 8;
    f32x8 result = exp8(load_partial8(values + i, lanes, 0.0f));
    for (size_t lane = 0; lane < lanes; lane++) values[i + lane] = result[lane];
  }
  return NULL;
}

bool mb_init_train(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"adamwUpdate", NULL, adamw_update, NULL, NULL, NULL, napi_default, NULL},
      {"sumOfSquares", NULL, sum_of_squares, NULL, NULL, NULL, napi_default, NULL},
      {"softmaxCrossEntropy", NULL, softmax_cross_entropy, NULL, NULL, NULL, napi_default, NULL},
      {"softmaxCrossEntropyGrad", NULL, softmax_cross_entropy_grad, NULL, NULL, NULL, napi_default, NULL},
      {"expInPlace", NULL, exp_in_place, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties) == napi_ok;
}
