/*
 * moebench's native kernels: an N-API addon over OpenBLAS. This file has the batched matrix product
 * and the addon's entry point; fused.c and train.c add the other kernels, and pool.c the threads.
 *
 * OpenBLAS runs single-threaded, and moebench's pool splits each product into one piece per
 * thread (batch entries, rows or columns). OpenBLAS's own threading splits the small and narrow
 * products of a training step badly: a [1024, 64] x [64, 264] product took 0.32 ms on one thread
 * and 0.38 ms on two.
 */
#include <cblas.h>

#include "moebench.h"

extern void openblas_set_num_threads(int);
extern char *openblas_get_config(void);

/* Products below this many multiply-adds run on the calling thread alone (about 5 microseconds). */
#define PARALLEL_MIN_MACS (1u << 18)
/* Rows or columns are split in units of this many, a multiple of OpenBLAS's register blocks. */
#define SPLIT_UNIT 16

typedef struct {
  float *heap;
  const uint32_t *offsets_a;
  const uint32_t *offsets_b;
  size_t offset_c;
  size_t batch;
  int m, n, k;
  bool trans_a, trans_b;
} gemm_job;

/* C[rows, cols] of batch entry `entry` = op(A) op(B), for rows [row0, row1) and cols [col0, col1). */
static void gemm_block(const gemm_job *job, size_t entry, int row0, int row1, int col0, int col1) {
  const int m = job->m, n = job->n, k = job->k;
  const int lda = job->trans_a ? m : k;
  const int ldb = job->trans_b ? k : n;
  const float *a = job->heap + job->offsets_a[entry];
  const float *b = job->heap + job->offsets_b[entry];
  float *c = job->heap + job->offset_c + entry * (size_t)m * (size_t)n;
  /* op(A) rows start at row0: a column offset of A^T when transposed. op(B) columns likewise. */
  const float *a_start = job->trans_a ? a + row0 : a + (size_t)row0 * lda;
  const float *b_start = job->trans_b ? b + (size_t)col0 * ldb : b + col0;
  cblas_sgemm(CblasRowMajor, job->trans_a ? CblasTrans : CblasNoTrans, job->trans_b ? CblasTrans : CblasNoTrans,
              row1 - row0, col1 - col0, k, 1.0f, a_start, lda, b_start, ldb, 0.0f, c + (size_t)row0 * n + col0, n);
}

static void gemm_entries(void *context, size_t begin, size_t end) {
  const gemm_job *job = context;
  for (size_t entry = begin; entry < end; entry++) gemm_block(job, entry, 0, job->m, 0, job->n);
}

static int unit_bound(size_t unit, int limit) {
  size_t value = unit * SPLIT_UNIT;
  return value > (size_t)limit ? limit : (int)value;
}

static void gemm_rows(void *context, size_t begin, size_t end) {
  const gemm_job *job = context;
  for (size_t entry = 0; entry < job->batch; entry++) {
    gemm_block(job, entry, unit_bound(begin, job->m), unit_bound(end, job->m), 0, job->n);
  }
}

static void gemm_columns(void *context, size_t begin, size_t end) {
  const gemm_job *job = context;
  for (size_t entry = 0; entry < job->batch; entry++) {
    gemm_block(job, entry, 0, job->m, unit_bound(begin, job->n), unit_bound(end, job->n));
  }
}

/*
 * sgemmBatch(heap, transA, transB, m, n, k, aOffsets, bOffsets, cOffset)
 *
 * heap: the ArrayBuffer of the wasm memory. aOffsets, bOffsets: Uint32Array of float offsets
 * (one per batch entry) of each row-major operand, stored as op(A) [m, k] or, transposed, [k, m],
 * and op(B) [k, n] or [n, k]. C entries are contiguous [m, n] blocks from cOffset.
 */
static napi_value sgemm_batch(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  if (!mb_get_arguments(env, info, 9, argv, "sgemmBatch")) return NULL;
  size_t heap_count = 0;
  float *heap = mb_heap(env, argv[0], &heap_count);
  if (heap == NULL) return NULL;
  bool trans_a = false, trans_b = false;
  MB_CHECK(napi_get_value_bool(env, argv[1], &trans_a));
  MB_CHECK(napi_get_value_bool(env, argv[2], &trans_b));
  size_t m = 0, n = 0, k = 0, offset_c = 0;
  if (!mb_get_size(env, argv[3], "m", &m) || !mb_get_size(env, argv[4], "n", &n) || !mb_get_size(env, argv[5], "k", &k) ||
      !mb_get_size(env, argv[8], "cOffset", &offset_c)) {
    return NULL;
  }
  if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX) {
    napi_throw_range_error(env, NULL, "sgemmBatch: m, n and k must fit in a 32-bit integer");
    return NULL;
  }

  napi_typedarray_type type_a, type_b;
  size_t batch_a = 0, batch_b = 0;
  void *data_a = NULL, *data_b = NULL;
  MB_CHECK(napi_get_typedarray_info(env, argv[6], &type_a, &batch_a, &data_a, NULL, NULL));
  MB_CHECK(napi_get_typedarray_info(env, argv[7], &type_b, &batch_b, &data_b, NULL, NULL));
  if (type_a != napi_uint32_array || type_b != napi_uint32_array || batch_a != batch_b) {
    napi_throw_type_error(env, NULL, "sgemmBatch: aOffsets and bOffsets must be Uint32Arrays of equal length");
    return NULL;
  }

  gemm_job job = {heap, data_a, data_b, offset_c, batch_a, (int)m, (int)n, (int)k, trans_a, trans_b};
  if (!mb_check_span(env, heap_count, offset_c, m * n * batch_a, "sgemmBatch: the output")) return NULL;
  for (size_t i = 0; i < batch_a; i++) {
    if (!mb_check_span(env, heap_count, job.offsets_a[i], m * k, "sgemmBatch: operand A") ||
        !mb_check_span(env, heap_count, job.offsets_b[i], k * n, "sgemmBatch: operand B")) {
      return NULL;
    }
  }
  if (m == 0 || n == 0 || batch_a == 0) return NULL;

  const size_t threads = (size_t)mb_pool_threads();
  const size_t macs = batch_a * m * n * k;
  if (threads == 1 || macs < PARALLEL_MIN_MACS) {
    gemm_entries(&job, 0, batch_a);
  } else if (batch_a >= 2 * threads || batch_a % threads == 0) {
    mb_parallel_for(batch_a, 1, gemm_entries, &job);
  } else if (m >= n) {
    mb_parallel_for((m + SPLIT_UNIT - 1) / SPLIT_UNIT, 1, gemm_rows, &job);
  } else {
    mb_parallel_for((n + SPLIT_UNIT - 1) / SPLIT_UNIT, 1, gemm_columns, &job);
  }
  return NULL;
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t threads = 0;
  MB_CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1 || napi_get_value_int32(env, argv[0], &threads) != napi_ok || threads < 1 || threads > MB_MAX_THREADS) {
    napi_throw_range_error(env, NULL, "setThreads: expected an integer from 1 to 64");
    return NULL;
  }
  mb_pool_set_threads(threads);
  return NULL;
}

static napi_value get_threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  MB_CHECK(napi_create_int32(env, mb_pool_threads(), &result));
  return result;
}

static napi_value get_config(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  MB_CHECK(napi_create_string_utf8(env, openblas_get_config(), NAPI_AUTO_LENGTH, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  /* The pool's threads call OpenBLAS at the same time, each for its own piece. */
  openblas_set_num_threads(1);
  napi_property_descriptor properties[] = {
      {"sgemmBatch", NULL, sgemm_batch, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_default, NULL},
      {"getThreads", NULL, get_threads, NULL, NULL, NULL, napi_default, NULL},
      {"getConfig", NULL, get_config, NULL, NULL, NULL, napi_default, NULL},
  };
  MB_CHECK(napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties));
  if (!mb_init_fused(env, exports) || !mb_init_train(env, exports)) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
