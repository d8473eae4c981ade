/* Argument readers and bounds checks shared by the native kernels' N-API functions. */
#include <stdio.h>

#include "moebench.h"

bool mb_get_arguments(napi_env env, napi_callback_info info, size_t expected, napi_value *argv, const char *function) {
  size_t argc = expected;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    napi_throw_error(env, NULL, "moebench native: N-API call failed: napi_get_cb_info");
    return false;
  }
  if (argc != expected) {
    char message[160];
    snprintf(message, sizeof message, "%s: expected %zu arguments, received %zu", function, expected, argc);
    napi_throw_type_error(env, NULL, message);
    return false;
  }
  return true;
}

float *mb_heap(napi_env env, napi_value value, size_t *count) {
  void *data = NULL;
  size_t bytes = 0;
  if (napi_get_arraybuffer_info(env, value, &data, &bytes) != napi_ok) {
    napi_throw_type_error(env, NULL, "moebench native: the heap argument must be the wasm memory's ArrayBuffer");
    return NULL;
  }
  *count = bytes / sizeof(float);
  return (float *)data;
}

bool mb_get_size(napi_env env, napi_value value, const char *name, size_t *out) {
  double number = -1;
  if (napi_get_value_double(env, value, &number) != napi_ok || !(number >= 0) || number != (double)(size_t)number) {
    char message[160];
    snprintf(message, sizeof message, "moebench native: %s must be a non-negative integer", name);
    napi_throw_type_error(env, NULL, message);
    return false;
  }
  *out = (size_t)number;
  return true;
}

bool mb_get_float(napi_env env, napi_value value, const char *name, float *out) {
  double number = 0;
  if (napi_get_value_double(env, value, &number) != napi_ok) {
    char message[160];
    snprintf(message, sizeof message, "moebench native: %s must be a number", name);
    napi_throw_type_error(env, NULL, message);
    return false;
  }
  *out = (float)number;
  return true;
}

bool mb_check_span(napi_env env, size_t heap_count, size_t offset, size_t length, const char *name) {
  if (offset > heap_count || length > heap_count - offset) {
    char message[200];
    snprintf(message, sizeof message, "moebench native: %s [%zu, %zu) lies outside the heap of %zu floats", name, offset,
             offset + length, heap_count);
    napi_throw_range_error(env, NULL, message);
    return false;
  }
  return true;
}
