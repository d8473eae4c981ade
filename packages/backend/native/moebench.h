/*
 * Shared declarations of moebench's native kernels (an N-API addon). The kernels compute in place
 * on the memory of the tfjs wasm backend: JavaScript passes the heap's ArrayBuffer and float
 * offsets into it, and nothing is copied between JavaScript and C.
 */
#ifndef MOEBENCH_H
#define MOEBENCH_H

#include <math.h>
#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Returns NULL from the calling N-API function, with a JavaScript error, when an N-API call fails. */
#define MB_CHECK(call)                                                           \
  do {                                                                           \
    if ((call) != napi_ok) {                                                     \
      napi_throw_error(env, NULL, "moebench native: N-API call failed: " #call); \
      return NULL;                                                               \
    }                                                                            \
  } while (0)

/* The body of one parallel task: handles the items [begin, end) of a loop. */
typedef void (*mb_range_fn)(void *context, size_t begin, size_t end);

/*
 * Runs fn over [0, count) on the pool: the range is cut into at most one contiguous piece per
 * thread, none shorter than `grain` items (so a count below 2 * grain runs on the calling thread
 * alone). The calling thread runs the first piece and returns when every piece is done. Not
 * reentrant: fn must not call mb_parallel_for.
 */
void mb_parallel_for(size_t count, size_t grain, mb_range_fn fn, void *context);

/* Threads the pool runs, the calling thread included (1 until mb_pool_set_threads). */
int mb_pool_threads(void);

/* Sets the pool's thread count (1 to MB_MAX_THREADS), starting or stopping workers. */
void mb_pool_set_threads(int threads);

#define MB_MAX_THREADS 64

/*
 * Reads exactly `expected` arguments into argv. Throws a TypeError naming `function` and the
 * counts, and returns false, when the call passed another number.
 */
bool mb_get_arguments(napi_env env, napi_callback_info info, size_t expected, napi_value *argv, const char *function);

/*
 * Reads `value` as the heap (an ArrayBuffer) and returns its floats, with their count in
 * *count. Throws a TypeError and returns NULL when it is not an ArrayBuffer.
 */
float *mb_heap(napi_env env, napi_value value, size_t *count);

/*
 * Reads a non-negative integer argument (a float offset or a size). Throws a TypeError naming
 * `name` and returns false when it is not one.
 */
bool mb_get_size(napi_env env, napi_value value, const char *name, size_t *out);

/* Reads a number argument. Throws a TypeError naming `name` and returns false when it is not one. */
bool mb_get_float(napi_env env, napi_value value, const char *name, float *out);

/*
 * Checks that [offset, offset + length) lies inside a heap of heap_count floats. Throws a
 * RangeError naming `name` and returns false when it does not.
 */
bool mb_check_span(napi_env env, size_t heap_count, size_t offset, size_t length, const char *name);

/* Adds each file's functions to the addon's exports; defined in that file. */
bool mb_init_fused(napi_env env, napi_value exports);
bool mb_init_train(napi_env env, napi_value exports);

/* ---- exp, shared by the kernels ----------------------------------------------------------- */

/* The float32 whose bits are `bits`. */
static inline float mb_float_from_bits(int32_t bits) {
  float value;
  memcpy(&value, &bits, sizeof value);
  return value;
}

/*
 * e^z in float32, vectorisable, and within 1 ulp of the correctly rounded value. Against the
 * double-precision exp, every 7th float32 bit pattern in [-110, 95] was within 0.93 ulp, and the
 * tests sweep it through fused.c's expFloat and train.c's expInPlace. fused.c's loops call it per
 * element and train.c's exp8 per lane, and both vectorise at -O3. NaN stays NaN, e^-inf = 0,
 * e^inf = inf, and results past the float range overflow to inf or underflow through the
 * subnormals to 0.
 *
 * Range reduction: z = n ln2 + r with n = round(z / ln2) and |r| <= ln2 / 2, where ln2 is split
 * into a float head and tail (Cody and Waite) so that r is accurate to a few ulp of r. e^r is its
 * Taylor polynomial of degree 7, whose truncation error at |r| = ln2 / 2 is below 6e-9, a tenth
 * of a float32 ulp at 1. 2^n is applied as two factors 2^(n/2) and 2^(n - n/2), each a normal
 * float, so that results in the subnormal range round once.
 */
static inline float mb_exp_float(float z) {
  /*
   * e^z rounds to 0 below -104 (less than half the least subnormal). Such inputs compute e^0 and are
   * replaced by 0 at the end, which avoids slow subnormal products (an attention mask's -1e9 lands
   * here). Comparisons rather than fminf/fmaxf: a comparison with NaN is false, so NaN passes through.
   */
  const bool underflow = z < -104.0f;
  const float finite_low = underflow ? 0.0f : z;
  const float x = finite_low > 89.0f ? 89.0f : finite_low; /* e^89 overflows float32 */

  /* Adding and subtracting 1.5 * 2^23 rounds to the nearest integer (ties to even). */
  const float shifter = 12582912.0f;
  const float n = (x * 1.44269504f + shifter) - shifter;
  float r = fmaf(-n, 0.693145752f, x);  /* ln2 head: 0x3f317200, exact in 16 bits */
  r = fmaf(-n, 1.42860677e-6f, r);      /* ln2 - head */

  float p = 1.0f / 5040.0f;
  p = fmaf(p, r, 1.0f / 720.0f);
  p = fmaf(p, r, 1.0f / 120.0f);
  p = fmaf(p, r, 1.0f / 24.0f);
  p = fmaf(p, r, 1.0f / 6.0f);
  p = fmaf(p, r, 0.5f);
  p = fmaf(p, r, 1.0f);
  p = fmaf(p, r, 1.0f);

  /* n is NaN only when z is; any integer keeps p (NaN) NaN, and 0 avoids converting a NaN. */
  const int32_t exponent = n == n ? (int32_t)n : 0; /* -150 .. 128 */
  const int32_t half = exponent / 2;
  const float scale_first = mb_float_from_bits((half + 127) << 23);
  const float scale_second = mb_float_from_bits((exponent - half + 127) << 23);
  const float result = p * scale_first * scale_second;
  return underflow ? 0.0f : result;
}

#endif
