/*
 * Shared declarations of moebench's native kernels (an N-API addon). The kernels compute in place
 * on the memory of the tfjs wasm backend: JavaScript passes the heap's ArrayBuffer and float
 * offsets into it, and nothing is copied between JavaScript and C.
 */
#ifndef MOEBENCH_H
#define MOEBENCH_H

#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
 * Reads argv[index] as the heap (an ArrayBuffer) and returns its floats, with their count in
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

#endif
