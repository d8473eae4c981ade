// The moebench native kernels: OpenBLAS sgemm and a bias-plus-activation epilogue, called on
// Float32Arrays that view the tfjs wasm backend's heap, so no value is copied in or out.
//
// Every function checks its arguments and throws a TypeError or RangeError naming the argument;
// the TypeScript side checks shapes before calling, so these checks guard against misuse only.

#include <node_api.h>
#include <cblas.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

extern "C" {
// Declared by OpenBLAS's cblas.h on most builds; repeated here for builds whose header lacks them.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char* openblas_get_config(void);
int openblas_get_parallel(void);
}

namespace {

#define CALL(env, expr)                                      \
  do {                                                       \
    if ((expr) != napi_ok) {                                 \
      napi_throw_error((env), nullptr, "N-API call failed: " #expr); \
      return nullptr;                                        \
    }                                                        \
  } while (0)

struct Floats {
  float* data = nullptr;
  size_t length = 0;
};

struct Ints {
  int32_t* data = nullptr;
  size_t length = 0;
};

bool GetFloats(napi_env env, napi_value value, const char* name, Floats* out) {
  bool is_typed = false;
  napi_is_typedarray(env, value, &is_typed);
  napi_typedarray_type type;
  void* data = nullptr;
  size_t length = 0;
  if (is_typed && napi_get_typedarray_info(env, value, &type, &length, &data, nullptr, nullptr) == napi_ok &&
      type == napi_float32_array) {
    out->data = static_cast<float*>(data);
    out->length = length;
    return true;
  }
  std::string message = std::string(name) + " must be a Float32Array";
  napi_throw_type_error(env, nullptr, message.c_str());
  return false;
}

bool GetInts(napi_env env, napi_value value, const char* name, Ints* out) {
  bool is_typed = false;
  napi_is_typedarray(env, value, &is_typed);
  napi_typedarray_type type;
  void* data = nullptr;
  size_t length = 0;
  if (is_typed && napi_get_typedarray_info(env, value, &type, &length, &data, nullptr, nullptr) == napi_ok &&
      type == napi_int32_array) {
    out->data = static_cast<int32_t*>(data);
    out->length = length;
    return true;
  }
  std::string message = std::string(name) + " must be an Int32Array";
  napi_throw_type_error(env, nullptr, message.c_str());
  return false;
}

bool GetInt(napi_env env, napi_value value, const char* name, int64_t* out) {
  if (napi_get_value_int64(env, value, out) == napi_ok) return true;
  std::string message = std::string(name) + " must be a number";
  napi_throw_type_error(env, nullptr, message.c_str());
  return false;
}

bool GetBool(napi_env env, napi_value value, const char* name, bool* out) {
  if (napi_get_value_bool(env, value, out) == napi_ok) return true;
  std::string message = std::string(name) + " must be a boolean";
  napi_throw_type_error(env, nullptr, message.c_str());
  return false;
}

bool RangeError(napi_env env, const std::string& message) {
  napi_throw_range_error(env, nullptr, message.c_str());
  return false;
}

// gemm(a, b, c, m, n, k, transposeA, transposeB, offsetsA, offsetsB)
//
// For each batch entry i (i < offsetsA.length): c[i*m*n ...] = op(A_i) op(B_i), where A_i starts at
// a[offsetsA[i]] and is [m, k] row-major ([k, m] when transposeA), B_i starts at b[offsetsB[i]] and
// is [k, n] ([n, k] when transposeB). Offsets carry the batch broadcast, so a shared operand is
// simply the same offset repeated.
napi_value Gemm(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value args[10];
  CALL(env, napi_get_cb_info(env, info, &argc, args, nullptr, nullptr));
  if (argc != 10) {
    napi_throw_type_error(env, nullptr, "gemm takes 10 arguments");
    return nullptr;
  }
  Floats a, b, c;
  Ints offsets_a, offsets_b;
  int64_t m, n, k;
  bool trans_a, trans_b;
  if (!GetFloats(env, args[0], "a", &a) || !GetFloats(env, args[1], "b", &b) || !GetFloats(env, args[2], "c", &c) ||
      !GetInt(env, args[3], "m", &m) || !GetInt(env, args[4], "n", &n) || !GetInt(env, args[5], "k", &k) ||
      !GetBool(env, args[6], "transposeA", &trans_a) || !GetBool(env, args[7], "transposeB", &trans_b) ||
      !GetInts(env, args[8], "offsetsA", &offsets_a) || !GetInts(env, args[9], "offsetsB", &offsets_b)) {
    return nullptr;
  }
  if (m < 1 || n < 1 || k < 0) {
    RangeError(env, "gemm: m and n must be positive and k non-negative");
    return nullptr;
  }
  const size_t batch = offsets_a.length;
  if (offsets_b.length != batch) {
    RangeError(env, "gemm: offsetsA and offsetsB must have the same length");
    return nullptr;
  }
  const size_t size_a = static_cast<size_t>(m * k), size_b = static_cast<size_t>(k * n),
               size_c = static_cast<size_t>(m * n);
  if (c.length < batch * size_c) {
    RangeError(env, "gemm: c is shorter than batch * m * n");
    return nullptr;
  }
  for (size_t i = 0; i < batch; i++) {
    if (offsets_a.data[i] < 0 || static_cast<size_t>(offsets_a.data[i]) + size_a > a.length ||
        offsets_b.data[i] < 0 || static_cast<size_t>(offsets_b.data[i]) + size_b > b.length) {
      RangeError(env, "gemm: an offset points outside its operand");
      return nullptr;
    }
  }
  const int lda = trans_a ? static_cast<int>(m) : static_cast<int>(k);
  const int ldb = trans_b ? static_cast<int>(k) : static_cast<int>(n);
  for (size_t i = 0; i < batch; i++) {
    float* out = c.data + i * size_c;
    if (k == 0) {
      std::memset(out, 0, size_c * sizeof(float));
      continue;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), 1.0f, a.data + offsets_a.data[i],
                lda > 0 ? lda : 1, b.data + offsets_b.data[i], ldb > 0 ? ldb : 1, 0.0f, out, static_cast<int>(n));
  }
  return nullptr;
}

// Activation codes shared with src/addon.ts.
enum Activation { kLinear = 0, kRelu = 1, kRelu6 = 2, kSigmoid = 3, kElu = 4, kLeakyRelu = 5 };

// epilogue(c, bias, activation, alpha): in place, c[j] = act(c[j] + bias[j % bias.length]); bias may
// be empty (no bias). alpha is the leaky ReLU slope.
napi_value Epilogue(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value args[4];
  CALL(env, napi_get_cb_info(env, info, &argc, args, nullptr, nullptr));
  if (argc != 4) {
    napi_throw_type_error(env, nullptr, "epilogue takes 4 arguments");
    return nullptr;
  }
  Floats c, bias;
  int64_t activation;
  double alpha;
  if (!GetFloats(env, args[0], "c", &c) || !GetFloats(env, args[1], "bias", &bias) ||
      !GetInt(env, args[2], "activation", &activation)) {
    return nullptr;
  }
  if (napi_get_value_double(env, args[3], &alpha) != napi_ok) {
    napi_throw_type_error(env, nullptr, "alpha must be a number");
    return nullptr;
  }
  if (activation < kLinear || activation > kLeakyRelu) {
    RangeError(env, "epilogue: unknown activation code");
    return nullptr;
  }
  if (bias.length > 0 && c.length % bias.length != 0) {
    RangeError(env, "epilogue: c's length must be a multiple of bias's length");
    return nullptr;
  }
  const float slope = static_cast<float>(alpha);
  float* x = c.data;
  const size_t length = c.length;
  if (bias.length > 0) {
    const size_t width = bias.length;
    for (size_t row = 0; row < length; row += width) {
      float* out = x + row;
      for (size_t j = 0; j < width; j++) out[j] += bias.data[j];
    }
  }
  switch (activation) {
    case kLinear:
      break;
    case kRelu:
      for (size_t j = 0; j < length; j++) x[j] = x[j] > 0.0f ? x[j] : 0.0f;
      break;
    case kRelu6:
      for (size_t j = 0; j < length; j++) x[j] = x[j] < 0.0f ? 0.0f : (x[j] > 6.0f ? 6.0f : x[j]);
      break;
    case kSigmoid:
      for (size_t j = 0; j < length; j++) x[j] = 1.0f / (1.0f + std::exp(-x[j]));
      break;
    case kElu:
      for (size_t j = 0; j < length; j++) x[j] = x[j] > 0.0f ? x[j] : std::expm1(x[j]);
      break;
    case kLeakyRelu:
      for (size_t j = 0; j < length; j++) x[j] = x[j] > 0.0f ? x[j] : slope * x[j];
      break;
  }
  return nullptr;
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  CALL(env, napi_get_cb_info(env, info, &argc, args, nullptr, nullptr));
  int64_t threads = 0;
  if (argc != 1 || !GetInt(env, args[0], "threads", &threads)) return nullptr;
  if (threads < 1) {
    RangeError(env, "setThreads: threads must be a positive integer");
    return nullptr;
  }
  openblas_set_num_threads(static_cast<int>(threads));
  return nullptr;
}

// info() -> { config, threads, parallel }: OpenBLAS's build string, its thread count now, and its
// threading model (0 sequential, 1 pthreads, 2 OpenMP).
napi_value Info(napi_env env, napi_callback_info) {
  napi_value result, config, threads, parallel;
  CALL(env, napi_create_object(env, &result));
  const char* text = openblas_get_config();
  CALL(env, napi_create_string_utf8(env, text != nullptr ? text : "", NAPI_AUTO_LENGTH, &config));
  CALL(env, napi_create_int32(env, openblas_get_num_threads(), &threads));
  CALL(env, napi_create_int32(env, openblas_get_parallel(), &parallel));
  CALL(env, napi_set_named_property(env, result, "config", config));
  CALL(env, napi_set_named_property(env, result, "threads", threads));
  CALL(env, napi_set_named_property(env, result, "parallel", parallel));
  return result;
}

napi_value Init(napi_env env, napi_value exports) {
  const napi_property_descriptor properties[] = {
      {"gemm", nullptr, Gemm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"epilogue", nullptr, Epilogue, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  CALL(env, napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties));
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
