/*
 * Fused element-wise kernels: the tanh form of GELU, layer normalisation over the last axis and
 * softmax over the last axis, each with its gradient. Each kernel reads and writes float32 tensors
 * on the wasm heap, like sgemmBatch, and replaces a chain of tfjs kernels that would each make one
 * pass over memory.
 *
 * The arithmetic follows the composite ops step by step (@moebench/moe's ops.ts for GELU and layer
 * norm, tfjs's softmax and its gradient), in float32 and without contraction into fused
 * multiply-adds (the build uses -std=c11, which turns contraction off). Only the exponential
 * differs: mb_exp_float (moebench.h) replaces the platform's expf so that the loops vectorise. NaN and
 * infinities propagate as they do through the composite ops.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moebench.h"

/* GELU's constants, equal to GELU_SCALE and GELU_CUBIC in packages/moe/src/ops.ts rounded to float32. */
#define GELU_SCALE 1.5957691216057308f /* 2 sqrt(2 / pi) */
#define GELU_CUBIC 0.044715f
#define GELU_CUBIC_TRIPLE 0.134145f /* 3 * GELU_CUBIC, rounded from the double product as tfjs does */

/*
 * Element-wise loops hand each thread at least this many values, so a loop over fewer than twice
 * this runs on the calling thread alone. On a 2-core AMD EPYC host (AVX-512), with the second core
 * idle, the GELU gradient over 32768 values took 17.7 us on one thread and 9.9 us on two, and over
 * 16384 values 9.0 us on one. When other processes keep the second core busy, a split loop waits
 * for it, and the same calls took 230 us and more.
 */
#define ELEMENT_GRAIN 16384
/*
 * Layer-norm rows are handed out by floats, the same budget as ELEMENT_GRAIN. On the host above, the
 * forward pass over 512 x 64 took 11.1 us on one thread and 7.1 us on two.
 */
#define ROW_FLOAT_GRAIN 16384
/*
 * Rows per block of the layer-norm gradient. Each block sums its rows' gamma and beta gradients
 * into its own partial row, and the partials are added in block order afterwards. The blocks do
 * not depend on the thread count, so the sums come out bitwise equal for any number of threads.
 */
#define GRADIENT_BLOCK_ROWS 32

/* ---- exp and sigmoid ---------------------------------------------------------------------- */

/*
 * 1 / (1 + e^-v) without overflow: with e = e^-|v| in (0, 1], it is 1 / (1 + e) for v >= 0 and
 * e / (1 + e) for v < 0. Within 2 ulp of the exact value (tested like mb_exp_float). sigmoid(NaN)
 * is NaN, sigmoid(inf) = 1 and sigmoid(-inf) = 0.
 */
static inline float sigmoid_float(float v) {
  const float e = mb_exp_float(-fabsf(v));
  const float numerator = v >= 0.0f ? 1.0f : e; /* NaN takes e, which is NaN */
  return numerator / (1.0f + e);
}

/* ---- GELU ----------------------------------------------------------------------------------- */

typedef struct {
  const float *x;
  const float *dy;
  float *out;
} gelu_job;

/* y = x sigmoid(GELU_SCALE x (1 + GELU_CUBIC x^2)), in the order of ops.ts's composite. */
static void gelu_forward_range(void *context, size_t begin, size_t end) {
  const gelu_job *job = context;
  const float *restrict x = job->x;
  float *restrict y = job->out;
  for (size_t i = begin; i < end; i++) {
    const float value = x[i];
    const float gate = sigmoid_float(((value * ((value * value) * GELU_CUBIC + 1.0f)) * GELU_SCALE));
    y[i] = value * gate;
  }
}

/*
 * dx = dy s (1 + x (1 - s) v'), with s the forward's gate and v' = GELU_SCALE (1 + 3 GELU_CUBIC
 * x^2) the derivative of its argument. The gate is recomputed from x, so the forward saves only x.
 */
static void gelu_backward_range(void *context, size_t begin, size_t end) {
  const gelu_job *job = context;
  const float *restrict x = job->x;
  const float *restrict dy = job->dy;
  float *restrict dx = job->out;
  for (size_t i = begin; i < end; i++) {
    const float value = x[i];
    const float squared = value * value;
    const float gate = sigmoid_float(((value * (squared * GELU_CUBIC + 1.0f)) * GELU_SCALE));
    const float slope = (squared * GELU_CUBIC_TRIPLE + 1.0f) * GELU_SCALE;
    const float inner = (value * (1.0f - gate)) * slope;
    dx[i] = dy[i] * (gate * (inner + 1.0f));
  }
}

/* ---- argument reading ----------------------------------------------------------------------- */

/*
 * Reads `count` size arguments argv[first ..] into out, naming each by `names` in errors. Returns
 * false, with a JavaScript exception pending, when one is not a non-negative integer.
 */
static bool read_sizes(napi_env env, napi_value *argv, size_t first, size_t count, const char *const *names, size_t *out) {
  for (size_t i = 0; i < count; i++) {
    if (!mb_get_size(env, argv[first + i], names[i], &out[i])) return false;
  }
  return true;
}

/* Products of sizes that could overflow size_t are rejected before any span is checked. */
static bool checked_product(napi_env env, size_t a, size_t b, size_t *out, const char *function) {
  if (a != 0 && b > SIZE_MAX / a) {
    char message[160];
    snprintf(message, sizeof message, "%s: the tensor sizes overflow (%zu x %zu)", function, a, b);
    napi_throw_range_error(env, NULL, message);
    return false;
  }
  *out = a * b;
  return true;
}

/* The element counts of a layer norm's tensors: rows of x, values of x, and values of gamma. */
typedef struct {
  size_t rows, values, parameters;
} layer_norm_sizes;

/*
 * Computes the counts of a layer norm of shape [groups, rows, columns]. Returns false, with a
 * RangeError naming `function` pending, when one overflows size_t.
 */
static bool layer_norm_totals(napi_env env, const size_t shape[3], const char *function, layer_norm_sizes *sizes) {
  return checked_product(env, shape[0], shape[1], &sizes->rows, function) &&
         checked_product(env, sizes->rows, shape[2], &sizes->values, function) &&
         checked_product(env, shape[0], shape[2], &sizes->parameters, function);
}

/*
 * geluForward(heap, xOffset, yOffset, count) and geluBackward(heap, xOffset, dyOffset, dxOffset,
 * count): float offsets into the heap (the wasm memory's ArrayBuffer) and the number of values.
 */
static napi_value gelu_forward(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!mb_get_arguments(env, info, 4, argv, "geluForward")) return NULL;
  size_t heap_count = 0;
  float *heap = mb_heap(env, argv[0], &heap_count);
  if (heap == NULL) return NULL;
  static const char *const names[] = {"xOffset", "yOffset", "count"};
  size_t sizes[3];
  if (!read_sizes(env, argv, 1, 3, names, sizes)) return NULL;
  const size_t x_offset = sizes[0], y_offset = sizes[1], count = sizes[2];
  if (!mb_check_span(env, heap_count, x_offset, count, "geluForward: x") ||
      !mb_check_span(env, heap_count, y_offset, count, "geluForward: y")) {
    return NULL;
  }
  gelu_job job = {heap + x_offset, NULL, heap + y_offset};
  mb_parallel_for(count, ELEMENT_GRAIN, gelu_forward_range, &job);
  return NULL;
}

static napi_value gelu_backward(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!mb_get_arguments(env, info, 5, argv, "geluBackward")) return NULL;
  size_t heap_count = 0;
  float *heap = mb_heap(env, argv[0], &heap_count);
  if (heap == NULL) return NULL;
  static const char *const names[] = {"xOffset", "dyOffset", "dxOffset", "count"};
  size_t sizes[4];
  if (!read_sizes(env, argv, 1, 4, names, sizes)) return NULL;
  const size_t x_offset = sizes[0], dy_offset = sizes[1], dx_offset = sizes[2], count = sizes[3];
  if (!mb_check_span(env, heap_count, x_offset, count, "geluBackward: x") ||
      !mb_check_span(env, heap_count, dy_offset, count, "geluBackward: dy") ||
      !mb_check_span(env, heap_count, dx_offset, count, "geluBackward: dx")) {
    return NULL;
  }
  gelu_job job = {heap + x_offset, heap + dy_offset, heap + dx_offset};
  mb_parallel_for(count, ELEMENT_GRAIN, gelu_backward_range, &job);
  return NULL;
}

/* ---- layer normalisation -------------------------------------------------------------------- */

/* Lanes of the partial sums below: enough independent additions for 8-wide vectors, twice. */
#define SUM_LANES 16

/*
 * Sums values[0 .. count) in SUM_LANES interleaved partial sums, added pairwise at the end: a
 * fixed order (so the same input gives the same sum on any thread) that the compiler vectorises
 * without reassociating anything.
 */
static float sum_floats(const float *restrict values, size_t count) {
  float lanes[SUM_LANES] = {0};
  size_t j = 0;
  for (; j + SUM_LANES <= count; j += SUM_LANES) {
    for (size_t k = 0; k < SUM_LANES; k++) lanes[k] += values[j + k];
  }
  for (size_t k = 0; j < count; j++, k++) lanes[k] += values[j];
  for (size_t width = SUM_LANES / 2; width > 0; width /= 2) {
    for (size_t k = 0; k < width; k++) lanes[k] += lanes[k + width];
  }
  return lanes[0];
}

/* Sums (values[j] - center)^2 over j in the order of sum_floats. */
static float sum_squared_deviations(const float *restrict values, size_t count, float center) {
  float lanes[SUM_LANES] = {0};
  size_t j = 0;
  for (; j + SUM_LANES <= count; j += SUM_LANES) {
    for (size_t k = 0; k < SUM_LANES; k++) {
      const float deviation = values[j + k] - center;
      lanes[k] += deviation * deviation;
    }
  }
  for (size_t k = 0; j < count; j++, k++) {
    const float deviation = values[j] - center;
    lanes[k] += deviation * deviation;
  }
  for (size_t width = SUM_LANES / 2; width > 0; width /= 2) {
    for (size_t k = 0; k < width; k++) lanes[k] += lanes[k + width];
  }
  return lanes[0];
}

/* Sums a[j] * b[j] over j in the order of sum_floats. */
static float sum_products(const float *restrict a, const float *restrict b, size_t count) {
  float lanes[SUM_LANES] = {0};
  size_t j = 0;
  for (; j + SUM_LANES <= count; j += SUM_LANES) {
    for (size_t k = 0; k < SUM_LANES; k++) lanes[k] += a[j + k] * b[j + k];
  }
  for (size_t k = 0; j < count; j++, k++) lanes[k] += a[j] * b[j];
  for (size_t width = SUM_LANES / 2; width > 0; width /= 2) {
    for (size_t k = 0; k < width; k++) lanes[k] += lanes[k + width];
  }
  return lanes[0];
}

/*
 * One layer-norm call: x [groups, rows, columns] with gamma and beta [groups, columns] (the row
 * form is groups = 1). mean and inverse_std hold one value per row of x, [groups * rows].
 */
typedef struct {
  size_t groups, rows, columns;
  float epsilon;
  const float *x, *dy, *gamma, *beta;
  float *y, *mean, *inverse_std;
  float *dx, *gamma_partials, *beta_partials; /* partials: [blocks, columns] each */
  atomic_bool out_of_memory;
  size_t blocks_per_group;
} layer_norm_job;

/*
 * Per row: mean, inverse_std = 1 / sqrt(mean((x - mean)^2) + epsilon), and
 * y = ((x - mean) inverse_std) gamma + beta, as ops.ts computes them.
 */
static void layer_norm_forward_rows(void *context, size_t begin, size_t end) {
  const layer_norm_job *job = context;
  const size_t columns = job->columns;
  const float count = (float)columns;
  for (size_t row = begin; row < end; row++) {
    const size_t group = row / job->rows;
    const float *restrict x = job->x + row * columns;
    const float *restrict gamma = job->gamma + group * columns;
    const float *restrict beta = job->beta + group * columns;
    float *restrict y = job->y + row * columns;

    const float mean = sum_floats(x, columns) / count;
    const float variance = sum_squared_deviations(x, columns, mean) / count;
    const float inverse_std = 1.0f / sqrtf(variance + job->epsilon);
    for (size_t j = 0; j < columns; j++) y[j] = ((x[j] - mean) * inverse_std) * gamma[j] + beta[j];
    job->mean[row] = mean;
    job->inverse_std[row] = inverse_std;
  }
}

/*
 * The gradient of the rows of blocks [begin, end). With n = (x - mean) inverse_std and g = dy gamma:
 * dx = ((g - mean(g)) - n mean(g n)) inverse_std, as ops.ts computes it. Each block also writes
 * the sums of dy n and of dy over its rows into its partial rows, in row order.
 */
static void layer_norm_backward_blocks(void *context, size_t begin, size_t end) {
  const layer_norm_job *job = context;
  const size_t columns = job->columns;
  const float count = (float)columns;
  /*
   * Scratch rows of this task. Carving them out of the partials array instead took [1024, 64] from
   * 27 to 95 us in a loop over this function, probably through 4 KiB address aliasing.
   */
  float *normalized = malloc(columns * 2 * sizeof(float));
  if (normalized == NULL) {
    atomic_store(&job->out_of_memory, true);
    return;
  }
  float *scaled = normalized + columns;

  for (size_t block = begin; block < end; block++) {
    const size_t group = block / job->blocks_per_group;
    const size_t first = (block % job->blocks_per_group) * GRADIENT_BLOCK_ROWS;
    const size_t last = first + GRADIENT_BLOCK_ROWS < job->rows ? first + GRADIENT_BLOCK_ROWS : job->rows;
    const float *restrict gamma = job->gamma + group * columns;
    float *restrict gamma_partial = job->gamma_partials + block * columns;
    float *restrict beta_partial = job->beta_partials + block * columns;
    memset(gamma_partial, 0, columns * sizeof(float));
    memset(beta_partial, 0, columns * sizeof(float));

    for (size_t local = first; local < last; local++) {
      const size_t row = group * job->rows + local;
      const float *restrict x = job->x + row * columns;
      const float *restrict dy = job->dy + row * columns;
      float *restrict dx = job->dx + row * columns;
      const float mean = job->mean[row];
      const float inverse_std = job->inverse_std[row];

      for (size_t j = 0; j < columns; j++) {
        normalized[j] = (x[j] - mean) * inverse_std;
        scaled[j] = dy[j] * gamma[j];
        gamma_partial[j] += dy[j] * normalized[j];
        beta_partial[j] += dy[j];
      }
      const float scaled_mean = sum_floats(scaled, columns) / count;
      const float product_mean = sum_products(scaled, normalized, columns) / count;
      for (size_t j = 0; j < columns; j++) {
        dx[j] = ((scaled[j] - scaled_mean) - normalized[j] * product_mean) * inverse_std;
      }
    }
  }
  free(normalized);
}

/* Rows per parallel piece of the forward pass, so that each piece covers about ROW_FLOAT_GRAIN floats. */
static size_t row_grain(size_t columns) {
  const size_t grain = ROW_FLOAT_GRAIN / (columns == 0 ? 1 : columns);
  return grain == 0 ? 1 : grain;
}

/*
 * layerNormForward(heap, groups, rows, columns, epsilon, xOffset, gammaOffset, betaOffset,
 * yOffset, meanOffset, inverseStdOffset): x and y [groups, rows, columns], gamma and beta
 * [groups, columns], mean and inverseStd [groups, rows]. Offsets count floats into the heap.
 */
static napi_value layer_norm_forward(napi_env env, napi_callback_info info) {
  napi_value argv[11];
  if (!mb_get_arguments(env, info, 11, argv, "layerNormForward")) return NULL;
  size_t heap_count = 0;
  float *heap = mb_heap(env, argv[0], &heap_count);
  if (heap == NULL) return NULL;
  static const char *const shape_names[] = {"groups", "rows", "columns"};
  size_t shape[3];
  if (!read_sizes(env, argv, 1, 3, shape_names, shape)) return NULL;
  float epsilon = 0;
  if (!mb_get_float(env, argv[4], "epsilon", &epsilon)) return NULL;
  if (!(epsilon > 0.0f) || isinf(epsilon)) {
    napi_throw_range_error(env, NULL, "layerNormForward: epsilon must be a finite number > 0 in float32");
    return NULL;
  }
  static const char *const offset_names[] = {"xOffset", "gammaOffset", "betaOffset", "yOffset", "meanOffset",
                                             "inverseStdOffset"};
  size_t offsets[6];
  if (!read_sizes(env, argv, 5, 6, offset_names, offsets)) return NULL;

  const size_t groups = shape[0], rows = shape[1], columns = shape[2];
  layer_norm_sizes sizes;
  if (!layer_norm_totals(env, shape, "layerNormForward", &sizes)) return NULL;
  const size_t row_total = sizes.rows, value_total = sizes.values, parameter_total = sizes.parameters;
  if (!mb_check_span(env, heap_count, offsets[0], value_total, "layerNormForward: x") ||
      !mb_check_span(env, heap_count, offsets[1], parameter_total, "layerNormForward: gamma") ||
      !mb_check_span(env, heap_count, offsets[2], parameter_total, "layerNormForward: beta") ||
      !mb_check_span(env, heap_count, offsets[3], value_total, "layerNormForward: y") ||
      !mb_check_span(env, heap_count, offsets[4], row_total, "layerNormForward: mean") ||
      !mb_check_span(env, heap_count, offsets[5], row_total, "layerNormForward: inverseStd")) {
    return NULL;
  }
  if (columns == 0) return NULL;

  layer_norm_job job = {
      .groups = groups,
      .rows = rows,
      .columns = columns,
      .epsilon = epsilon,
      .x = heap + offsets[0],
      .gamma = heap + offsets[1],
      .beta = heap + offsets[2],
      .y = heap + offsets[3],
      .mean = heap + offsets[4],
      .inverse_std = heap + offsets[5],
  };
  mb_parallel_for(row_total, row_grain(columns), layer_norm_forward_rows, &job);
  return NULL;
}

/*
 * layerNormBackward(heap, groups, rows, columns, xOffset, dyOffset, gammaOffset, meanOffset,
 * inverseStdOffset, dxOffset, dgammaOffset, dbetaOffset): shapes as in layerNormForward, with dy
 * and dx like x and dgamma and dbeta like gamma. mean and inverseStd are the forward's.
 */
static napi_value layer_norm_backward(napi_env env, napi_callback_info info) {
  napi_value argv[12];
  if (!mb_get_arguments(env, info, 12, argv, "layerNormBackward")) return NULL;
  size_t heap_count = 0;
  float *heap = mb_heap(env, argv[0], &heap_count);
  if (heap == NULL) return NULL;
  static const char *const shape_names[] = {"groups", "rows", "columns"};
  size_t shape[3];
  if (!read_sizes(env, argv, 1, 3, shape_names, shape)) return NULL;
  static const char *const offset_names[] = {"xOffset",  "dyOffset",     "gammaOffset", "meanOffset",
                                             "inverseStdOffset", "dxOffset", "dgammaOffset", "dbetaOffset"};
  size_t offsets[8];
  if (!read_sizes(env, argv, 4, 8, offset_names, offsets)) return NULL;

  const size_t groups = shape[0], rows = shape[1], columns = shape[2];
  layer_norm_sizes sizes;
  if (!layer_norm_totals(env, shape, "layerNormBackward", &sizes)) return NULL;
  const size_t row_total = sizes.rows, value_total = sizes.values, parameter_total = sizes.parameters;
  if (!mb_check_span(env, heap_count, offsets[0], value_total, "layerNormBackward: x") ||
      !mb_check_span(env, heap_count, offsets[1], value_total, "layerNormBackward: dy") ||
      !mb_check_span(env, heap_count, offsets[2], parameter_total, "layerNormBackward: gamma") ||
      !mb_check_span(env, heap_count, offsets[3], row_total, "layerNormBackward: mean") ||
      !mb_check_span(env, heap_count, offsets[4], row_total, "layerNormBackward: inverseStd") ||
      !mb_check_span(env, heap_count, offsets[5], value_total, "layerNormBackward: dx") ||
      !mb_check_span(env, heap_count, offsets[6], parameter_total, "layerNormBackward: dgamma") ||
      !mb_check_span(env, heap_count, offsets[7], parameter_total, "layerNormBackward: dbeta")) {
    return NULL;
  }
  if (parameter_total == 0) return NULL;
  float *dgamma = heap + offsets[6];
  float *dbeta = heap + offsets[7];
  if (rows == 0) {
    memset(dgamma, 0, parameter_total * sizeof(float));
    memset(dbeta, 0, parameter_total * sizeof(float));
    return NULL;
  }

  const size_t blocks_per_group = (rows + GRADIENT_BLOCK_ROWS - 1) / GRADIENT_BLOCK_ROWS;
  const size_t blocks = groups * blocks_per_group;
  float *partials = malloc(blocks * columns * 2 * sizeof(float));
  if (partials == NULL) {
    napi_throw_error(env, NULL, "layerNormBackward: out of memory for the gamma and beta partial sums");
    return NULL;
  }
  layer_norm_job job = {
      .groups = groups,
      .rows = rows,
      .columns = columns,
      .x = heap + offsets[0],
      .dy = heap + offsets[1],
      .gamma = heap + offsets[2],
      .mean = heap + offsets[3],
      .inverse_std = heap + offsets[4],
      .dx = heap + offsets[5],
      .gamma_partials = partials,
      .beta_partials = partials + blocks * columns,
      .out_of_memory = false,
      .blocks_per_group = blocks_per_group,
  };
  const size_t block_floats = GRADIENT_BLOCK_ROWS * columns;
  const size_t block_grain = (ROW_FLOAT_GRAIN + block_floats - 1) / block_floats;
  mb_parallel_for(blocks, block_grain, layer_norm_backward_blocks, &job);
  if (atomic_load(&job.out_of_memory)) {
    free(partials);
    napi_throw_error(env, NULL, "layerNormBackward: out of memory for a thread's scratch rows");
    return NULL;
  }

  /* Each group's gradients: its blocks' partials added in block order. */
  for (size_t group = 0; group < groups; group++) {
    float *restrict gamma_sum = dgamma + group * columns;
    float *restrict beta_sum = dbeta + group * columns;
    const size_t first_block = group * blocks_per_group;
    memcpy(gamma_sum, job.gamma_partials + first_block * columns, columns * sizeof(float));
    memcpy(beta_sum, job.beta_partials + first_block * columns, columns * sizeof(float));
    for (size_t block = first_block + 1; block < first_block + blocks_per_group; block++) {
      const float *restrict gamma_partial = job.gamma_partials + block * columns;
      const float *restrict beta_partial = job.beta_partials + block * columns;
      for (size_t j = 0; j < columns; j++) {
        gamma_sum[j] += gamma_partial[j];
        beta_sum[j] += beta_partial[j];
      }
    }
  }
  free(partials);
  return NULL;
}

/* ---- softmax over the last axis --------------------------------------------------------------- */

/*
 * One softmax call: x and y [outer, rows, columns], an optional bias [rows, columns] added to every
 * [rows, columns] slice of x first (an attention mask), and for the gradient y, dy and dx.
 */
typedef struct {
  size_t rows, columns;
  const float *x, *bias, *dy;
  float *y, *dx;
} softmax_job;

/* The largest of values[0 .. count), in SUM_LANES lanes combined in a fixed order; -inf when count is 0. */
static float max_floats(const float *restrict values, size_t count) {
  float lanes[SUM_LANES];
  for (size_t k = 0; k < SUM_LANES; k++) lanes[k] = -INFINITY;
  size_t j = 0;
  for (; j + SUM_LANES <= count; j += SUM_LANES) {
    for (size_t k = 0; k < SUM_LANES; k++) lanes[k] = values[j + k] > lanes[k] ? values[j + k] : lanes[k];
  }
  for (size_t k = 0; j < count; j++, k++) lanes[k] = values[j] > lanes[k] ? values[j] : lanes[k];
  for (size_t width = SUM_LANES / 2; width > 0; width /= 2) {
    for (size_t k = 0; k < width; k++) lanes[k] = lanes[k + width] > lanes[k] ? lanes[k + width] : lanes[k];
  }
  return lanes[0];
}

/*
 * Replaces values[j] by e^(values[j] - shift) and returns their sum, added in the order of
 * sum_floats. One pass, because reading the exponentials back in a second pass cost as much as
 * computing them.
 */
static float exp_and_sum(float *restrict values, size_t count, float shift) {
  float lanes[SUM_LANES] = {0};
  size_t j = 0;
  for (; j + SUM_LANES <= count; j += SUM_LANES) {
    for (size_t k = 0; k < SUM_LANES; k++) {
      const float e = mb_exp_float(values[j + k] - shift);
      values[j + k] = e;
      lanes[k] += e;
    }
  }
  for (size_t k = 0; j < count; j++, k++) {
    const float e = mb_exp_float(values[j] - shift);
    values[j] = e;
    lanes[k] += e;
  }
  for (size_t width = SUM_LANES / 2; width > 0; width /= 2) {
    for (size_t k = 0; k < width; k++) lanes[k] += lanes[k + width];
  }
  return lanes[0];
}

/*
 * y = e / sum(e) with e = exp(v - max(v)) and v = x + bias, row by row, the steps of tfjs's softmax.
 * The max ignores NaN, but a NaN in v makes its e, the sum and so the whole row NaN, as in tfjs.
 */
static void softmax_forward_rows(void *context, size_t begin, size_t end) {
  const softmax_job *job = context;
  const size_t columns = job->columns;
  for (size_t row = begin; row < end; row++) {
    const float *restrict x = job->x + row * columns;
    float *restrict y = job->y + row * columns;
    if (job->bias != NULL) {
      const float *restrict bias = job->bias + (row % job->rows) * columns;
      for (size_t j = 0; j < columns; j++) y[j] = x[j] + bias[j];
    } else {
      memcpy(y, x, columns * sizeof(float));
    }

    const float max = max_floats(y, columns);
    const float sum = exp_and_sum(y, columns, max);
    for (size_t j = 0; j < columns; j++) y[j] = y[j] / sum;
  }
}

/* dx = dy y - sum(dy y) y, row by row, the form of tfjs's softmax gradient. */
static void softmax_backward_rows(void *context, size_t begin, size_t end) {
  const softmax_job *job = context;
  const size_t columns = job->columns;
  for (size_t row = begin; row < end; row++) {
    const float *restrict y = job->y + row * columns;
    const float *restrict dy = job->dy + row * columns;
    float *restrict dx = job->dx + row * columns;
    for (size_t j = 0; j < columns; j++) dx[j] = dy[j] * y[j];
    const float sum = sum_floats(dx, columns);
    for (size_t j = 0; j < columns; j++) dx[j] = dx[j] - sum * y[j];
  }
}

/*
 * softmaxForward(heap, outer, rows, columns, xOffset, biasOffset, yOffset): x and y [outer, rows,
 * columns], bias [rows, columns], or no bias when biasOffset is -1. Offsets count floats.
 */
static napi_value softmax_forward(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!mb_get_arguments(env, info, 7, argv, "softmaxForward")) return NULL;
  size_t heap_count = 0;
  float *heap = mb_heap(env, argv[0], &heap_count);
  if (heap == NULL) return NULL;
  static const char *const shape_names[] = {"outer", "rows", "columns", "xOffset"};
  size_t sizes[4];
  if (!read_sizes(env, argv, 1, 4, shape_names, sizes)) return NULL;
  const size_t outer = sizes[0], rows = sizes[1], columns = sizes[2], x_offset = sizes[3];
  double bias_argument = 0;
  if (napi_get_value_double(env, argv[5], &bias_argument) != napi_ok) {
    napi_throw_type_error(env, NULL, "softmaxForward: biasOffset must be a number");
    return NULL;
  }
  const bool has_bias = bias_argument != -1;
  size_t bias_offset = 0, y_offset = 0;
  if ((has_bias && !mb_get_size(env, argv[5], "biasOffset", &bias_offset)) || !mb_get_size(env, argv[6], "yOffset", &y_offset)) {
    return NULL;
  }

  size_t slice_total = 0, value_total = 0;
  if (!checked_product(env, rows, columns, &slice_total, "softmaxForward") ||
      !checked_product(env, outer, slice_total, &value_total, "softmaxForward")) {
    return NULL;
  }
  if (!mb_check_span(env, heap_count, x_offset, value_total, "softmaxForward: x") ||
      (has_bias && !mb_check_span(env, heap_count, bias_offset, slice_total, "softmaxForward: bias")) ||
      !mb_check_span(env, heap_count, y_offset, value_total, "softmaxForward: y")) {
    return NULL;
  }
  if (value_total == 0) return NULL;

  softmax_job job = {
      .rows = rows,
      .columns = columns,
      .x = heap + x_offset,
      .bias = has_bias ? heap + bias_offset : NULL,
      .y = heap + y_offset,
  };
  mb_parallel_for(outer * rows, row_grain(columns), softmax_forward_rows, &job);
  return NULL;
}

/* softmaxBackward(heap, rows, columns, yOffset, dyOffset, dxOffset): y, dy and dx [rows, columns]. */
static napi_value softmax_backward(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!mb_get_arguments(env, info, 6, argv, "softmaxBackward")) return NULL;
  size_t heap_count = 0;
  float *heap = mb_heap(env, argv[0], &heap_count);
  if (heap == NULL) return NULL;
  static const char *const names[] = {"rows", "columns", "yOffset", "dyOffset", "dxOffset"};
  size_t sizes[5];
  if (!read_sizes(env, argv, 1, 5, names, sizes)) return NULL;
  const size_t rows = sizes[0], columns = sizes[1];
  size_t value_total = 0;
  if (!checked_product(env, rows, columns, &value_total, "softmaxBackward")) return NULL;
  if (!mb_check_span(env, heap_count, sizes[2], value_total, "softmaxBackward: y") ||
      !mb_check_span(env, heap_count, sizes[3], value_total, "softmaxBackward: dy") ||
      !mb_check_span(env, heap_count, sizes[4], value_total, "softmaxBackward: dx")) {
    return NULL;
  }
  if (value_total == 0) return NULL;

  softmax_job job = {.rows = rows, .columns = columns, .y = heap + sizes[2], .dy = heap + sizes[3], .dx = heap + sizes[4]};
  mb_parallel_for(rows, row_grain(columns), softmax_backward_rows, &job);
  return NULL;
}

/* ---- testing hooks -------------------------------------------------------------------------- */

/*
 * expFloat(values) and sigmoidFloat(values): apply mb_exp_float or sigmoid_float to a Float32Array in
 * place, so that tests can sweep the approximations against Math.exp.
 */
static napi_value apply_in_place(napi_env env, napi_callback_info info, float (*function)(float), const char *name) {
  napi_value argv[1];
  if (!mb_get_arguments(env, info, 1, argv, name)) return NULL;
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_float32_array) {
    char message[160];
    snprintf(message, sizeof message, "%s: values must be a Float32Array", name);
    napi_throw_type_error(env, NULL, message);
    return NULL;
  }
  float *values = data;
  for (size_t i = 0; i < length; i++) values[i] = function(values[i]);
  return NULL;
}

static float exp_function(float value) { return mb_exp_float(value); }
static float sigmoid_function(float value) { return sigmoid_float(value); }

static napi_value exp_in_place(napi_env env, napi_callback_info info) {
  return apply_in_place(env, info, exp_function, "expFloat");
}

static napi_value sigmoid_in_place(napi_env env, napi_callback_info info) {
  return apply_in_place(env, info, sigmoid_function, "sigmoidFloat");
}

bool mb_init_fused(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"geluForward", NULL, gelu_forward, NULL, NULL, NULL, napi_default, NULL},
      {"geluBackward", NULL, gelu_backward, NULL, NULL, NULL, napi_default, NULL},
      {"layerNormForward", NULL, layer_norm_forward, NULL, NULL, NULL, napi_default, NULL},
      {"layerNormBackward", NULL, layer_norm_backward, NULL, NULL, NULL, napi_default, NULL},
      {"softmaxForward", NULL, softmax_forward, NULL, NULL, NULL, napi_default, NULL},
      {"softmaxBackward", NULL, softmax_backward, NULL, NULL, NULL, napi_default, NULL},
      {"expFloat", NULL, exp_in_place, NULL, NULL, NULL, napi_default, NULL},
      {"sigmoidFloat", NULL, sigmoid_in_place, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties) == napi_ok;
}
