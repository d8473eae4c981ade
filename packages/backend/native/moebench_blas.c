/*
 * moebench native kernels: batched single-precision matrix products through OpenBLAS, computed in
 * place on the memory of the tfjs wasm backend (a WebAssembly.Memory ArrayBuffer), so inputs and
 * outputs are never copied between JavaScript and C.
 */
#include <cblas.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>

#define CHECK(call)                                                        \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error(env, NULL, "moebench_blas: N-API call failed: " #call); \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

extern void openblas_set_num_threads(int);
extern int openblas_get_num_threads(void);
extern char *openblas_get_config(void);

static int32_t get_int(napi_env env, napi_value value, int32_t *out) {
  return napi_get_value_int32(env, value, out) == napi_ok;
}

/*
 * sgemmBatch(heap, transA, transB, m, n, k, aOffsets, bOffsets, cOffset)
 *
 * heap: the ArrayBuffer of the wasm memory. aOffsets, bOffsets: Uint32Array of float offsets
 * (one per batch entry) of each row-major operand, stored as op(A) [m, k] or, transposed, [k, m],
 * and op(B) [k, n] or [n, k]. C entries are contiguous [m, n] blocks from cOffset.
 */
static napi_value sgemm_batch(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 9) {
    napi_throw_type_error(env, NULL, "sgemmBatch: expected 9 arguments");
    return NULL;
  }

  void *heap = NULL;
  size_t heap_bytes = 0;
  CHECK(napi_get_arraybuffer_info(env, argv[0], &heap, &heap_bytes));
  bool trans_a = false, trans_b = false;
  CHECK(napi_get_value_bool(env, argv[1], &trans_a));
  CHECK(napi_get_value_bool(env, argv[2], &trans_b));
  int32_t m = 0, n = 0, k = 0, c_offset = 0;
  if (!get_int(env, argv[3], &m) || !get_int(env, argv[4], &n) || !get_int(env, argv[5], &k) ||
      !get_int(env, argv[8], &c_offset)) {
    napi_throw_type_error(env, NULL, "sgemmBatch: m, n, k and cOffset must be integers");
    return NULL;
  }

  napi_typedarray_type type_a, type_b;
  size_t batch_a = 0, batch_b = 0;
  void *data_a = NULL, *data_b = NULL;
  CHECK(napi_get_typedarray_info(env, argv[6], &type_a, &batch_a, &data_a, NULL, NULL));
  CHECK(napi_get_typedarray_info(env, argv[7], &type_b, &batch_b, &data_b, NULL, NULL));
  if (type_a != napi_uint32_array || type_b != napi_uint32_array || batch_a != batch_b) {
    napi_throw_type_error(env, NULL, "sgemmBatch: aOffsets and bOffsets must be Uint32Arrays of equal length");
    return NULL;
  }

  const uint32_t *offsets_a = (const uint32_t *)data_a;
  const uint32_t *offsets_b = (const uint32_t *)data_b;
  const size_t heap_floats = heap_bytes / sizeof(float);
  const size_t entry_c = (size_t)m * (size_t)n;
  if ((size_t)c_offset + entry_c * batch_a > heap_floats) {
    napi_throw_range_error(env, NULL, "sgemmBatch: the output lies outside the heap");
    return NULL;
  }
  for (size_t i = 0; i < batch_a; i++) {
    if ((size_t)offsets_a[i] + (size_t)m * k > heap_floats || (size_t)offsets_b[i] + (size_t)k * n > heap_floats) {
      napi_throw_range_error(env, NULL, "sgemmBatch: an operand lies outside the heap");
      return NULL;
    }
  }

  float *floats = (float *)heap;
  const int lda = trans_a ? m : k;
  const int ldb = trans_b ? k : n;
  for (size_t i = 0; i < batch_a; i++) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
                1.0f, floats + offsets_a[i], lda, floats + offsets_b[i], ldb, 0.0f,
                floats + (size_t)c_offset + i * entry_c, n);
  }
  return NULL;
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t threads = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1 || !get_int(env, argv[0], &threads) || threads < 1) {
    napi_throw_range_error(env, NULL, "setThreads: expected a positive integer");
    return NULL;
  }
  openblas_set_num_threads(threads);
  return NULL;
}

static napi_value get_threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  CHECK(napi_create_int32(env, openblas_get_num_threads(), &result));
  return result;
}

static napi_value get_config(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  CHECK(napi_create_string_utf8(env, openblas_get_config(), NAPI_AUTO_LENGTH, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"sgemmBatch", NULL, sgemm_batch, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_default, NULL},
      {"getThreads", NULL, get_threads, NULL, NULL, NULL, napi_default, NULL},
      {"getConfig", NULL, get_config, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
