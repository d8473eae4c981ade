/*
 * A fixed pool of worker threads for the native kernels. A parallel loop wakes the workers, the
 * calling thread takes the first piece of the range, and it returns once every worker has taken
 * the job. Workers spin for a short while after each job before they sleep, because the training
 * step's kernels come in quick succession and a wake-up from sleep costs tens of microseconds.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "moebench.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MB_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define MB_PAUSE() __asm__ __volatile__("yield")
#else
#define MB_PAUSE() ((void)0)
#endif

/* How long an idle worker spins before it sleeps on the condition variable. */
#define SPIN_NANOSECONDS 200000

static int thread_total = 1; /* the calling thread included */
static pthread_t workers[MB_MAX_THREADS];
static int worker_total = 0;

static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_up = PTHREAD_COND_INITIALIZER;

/* The current job. Written by the calling thread before `generation` moves, read by the workers after. */
static struct {
  mb_range_fn fn;
  void *context;
  size_t count;
  size_t pieces;
  bool stop;
} job;

static atomic_uint_fast64_t generation;
/*
 * `generation` when the current workers were created. A worker compares against this value, not
 * against what it reads once running: a job dispatched before a new thread first runs must still
 * reach it, or the caller would wait for it forever.
 */
static uint_fast64_t start_generation;
static atomic_int sleepers;
static atomic_int unfinished; /* workers that have not yet finished the current job */

static uint64_t now_nanoseconds(void) {
  struct timespec time;
  clock_gettime(CLOCK_MONOTONIC, &time);
  return (uint64_t)time.tv_sec * 1000000000u + (uint64_t)time.tv_nsec;
}

static void run_piece(size_t piece) {
  if (piece >= job.pieces) return;
  size_t begin = job.count * piece / job.pieces;
  size_t end = job.count * (piece + 1) / job.pieces;
  if (begin < end) job.fn(job.context, begin, end);
}

/* Waits until `generation` differs from `seen`, spinning first, and returns the new value. */
static uint_fast64_t wait_for_job(uint_fast64_t seen) {
  uint64_t spin_start = now_nanoseconds();
  for (unsigned spins = 1;; spins++) {
    uint_fast64_t current = atomic_load(&generation);
    if (current != seen) return current;
    MB_PAUSE();
    if (spins % 256 == 0 && now_nanoseconds() - spin_start > SPIN_NANOSECONDS) break;
  }
  pthread_mutex_lock(&sleep_lock);
  atomic_fetch_add(&sleepers, 1);
  uint_fast64_t current;
  while ((current = atomic_load(&generation)) == seen) pthread_cond_wait(&wake_up, &sleep_lock);
  atomic_fetch_sub(&sleepers, 1);
  pthread_mutex_unlock(&sleep_lock);
  return current;
}

static void *worker_main(void *argument) {
  size_t index = (size_t)(uintptr_t)argument; /* 1 .. worker_total */
  uint_fast64_t seen = start_generation;
  for (;;) {
    seen = wait_for_job(seen);
    bool stop = job.stop;
    if (!stop) run_piece(index);
    atomic_fetch_sub(&unfinished, 1);
    if (stop) return NULL;
  }
}

/* Publishes the job in `job` to every worker and runs piece 0; returns when all workers are done. */
static void dispatch(void) {
  atomic_store(&unfinished, worker_total);
  atomic_fetch_add(&generation, 1);
  if (atomic_load(&sleepers) > 0) {
    pthread_mutex_lock(&sleep_lock);
    pthread_cond_broadcast(&wake_up);
    pthread_mutex_unlock(&sleep_lock);
  }
  run_piece(0);
  while (atomic_load(&unfinished) > 0) MB_PAUSE();
}

/* Held while a job runs, so that a second JavaScript thread (a worker_threads Worker) runs serially. */
static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;

void mb_parallel_for(size_t count, size_t grain, mb_range_fn fn, void *context) {
  if (grain == 0) grain = 1;
  size_t pieces = count / grain;
  if (pieces > (size_t)thread_total) pieces = (size_t)thread_total;
  if (pieces <= 1 || worker_total == 0 || pthread_mutex_trylock(&job_lock) != 0) {
    if (count > 0) fn(context, 0, count);
    return;
  }
  job.fn = fn;
  job.context = context;
  job.count = count;
  job.pieces = pieces;
  job.stop = false;
  dispatch();
  pthread_mutex_unlock(&job_lock);
}

int mb_pool_threads(void) { return thread_total; }

void mb_pool_set_threads(int threads) {
  if (threads < 1) threads = 1;
  if (threads > MB_MAX_THREADS) threads = MB_MAX_THREADS;
  pthread_mutex_lock(&job_lock);
  if (worker_total > 0) {
    job.stop = true;
    job.pieces = 0;
    dispatch();
    for (int i = 0; i < worker_total; i++) pthread_join(workers[i], NULL);
    worker_total = 0;
  }
  thread_total = 1;
  start_generation = atomic_load(&generation);
  for (int i = 1; i < threads; i++) {
    if (pthread_create(&workers[worker_total], NULL, worker_main, (void *)(uintptr_t)i) != 0) break;
    worker_total++;
  }
  thread_total = worker_total + 1;
  pthread_mutex_unlock(&job_lock);
}
