/*
 * A fixed pool of worker threads for the native kernels. A parallel loop cuts its range into
 * pieces, wakes the workers, and every thread, the calling one included, claims pieces from an
 * atomic counter until none are left. The caller then waits only for the pieces that other threads
 * claimed and are still running. A worker that the system has not scheduled yet takes no piece, so
 * on a loaded machine the loop runs at the speed of the threads that do run.
 *
 * Workers spin for a short while after each job, then yield the processor, then sleep, because a
 * training step's kernels come in quick succession and a wake-up from sleep costs tens of
 * microseconds.
 */
#include <pthread.h>
#include <sched.h>
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

/* How long an idle worker spins on the processor before it starts yielding it to other threads. */
#define SPIN_NANOSECONDS 20000
/* How long an idle worker keeps polling, yielding between polls, before it sleeps. */
#define POLL_NANOSECONDS 200000

/*
 * Pieces per thread a loop is cut into (when its grain allows). More than one, so that a thread the
 * system preempts in the middle of its piece holds up only a small part of the loop.
 */
#ifndef PIECES_PER_THREAD
#define PIECES_PER_THREAD 4
#endif

static int thread_total = 1; /* the calling thread included */
static pthread_t workers[MB_MAX_THREADS];
static int worker_total = 0;

static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_up = PTHREAD_COND_INITIALIZER;

/*
 * The current job. The calling thread writes it before it publishes `pieces_left`. A thread reads
 * it only after its claim from `pieces_left` succeeded, so it reads the job it claimed from.
 */
static struct {
  mb_range_fn fn;
  void *context;
  size_t count;
  size_t pieces;
} job;

/* Pieces of the current job not yet claimed; it goes negative as threads find none left. */
static atomic_long pieces_left;
/* Pieces of the current job finished. */
static atomic_size_t pieces_done;
/* Moves once per job (and once to stop the workers); idle workers watch it. */
static atomic_uint_fast64_t generation;
/*
 * `generation` when the current workers were created. A worker compares against this value, not
 * against what it reads once running, so that a job dispatched before a new thread first runs
 * still wakes it.
 */
static uint_fast64_t start_generation;
static atomic_bool stopping;
static atomic_int sleepers;

static uint64_t now_nanoseconds(void) {
  struct timespec time;
  clock_gettime(CLOCK_MONOTONIC, &time);
  return (uint64_t)time.tv_sec * 1000000000u + (uint64_t)time.tv_nsec;
}

/* Claims and runs pieces of the current job until none are left. */
static void run_claimed_pieces(void) {
  for (;;) {
    long left = atomic_fetch_sub(&pieces_left, 1);
    if (left <= 0) return;
    size_t piece = job.pieces - (size_t)left;
    size_t begin = job.count * piece / job.pieces;
    size_t end = job.count * (piece + 1) / job.pieces;
    if (begin < end) job.fn(job.context, begin, end);
    atomic_fetch_add(&pieces_done, 1);
  }
}

/* Waits until `generation` differs from `seen`: spins, then yields, then sleeps. Returns the new value. */
static uint_fast64_t wait_for_job(uint_fast64_t seen) {
  uint64_t start = now_nanoseconds();
  uint64_t waited = 0;
  for (unsigned polls = 1; waited < POLL_NANOSECONDS; polls++) {
    uint_fast64_t current = atomic_load(&generation);
    if (current != seen) return current;
    if (waited < SPIN_NANOSECONDS) {
      MB_PAUSE();
    } else {
      sched_yield();
    }
    if (polls % 64 == 0 || waited >= SPIN_NANOSECONDS) waited = now_nanoseconds() - start;
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
  (void)argument;
  uint_fast64_t seen = start_generation;
  for (;;) {
    seen = wait_for_job(seen);
    if (atomic_load(&stopping)) return NULL;
    run_claimed_pieces();
  }
}

/* Moves `generation` and wakes any sleeping worker. */
static void announce(void) {
  atomic_fetch_add(&generation, 1);
  if (atomic_load(&sleepers) > 0) {
    pthread_mutex_lock(&sleep_lock);
    pthread_cond_broadcast(&wake_up);
    pthread_mutex_unlock(&sleep_lock);
  }
}

/* Held while a job runs, so that a second JavaScript thread (a worker_threads Worker) runs serially. */
static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;

void mb_parallel_for(size_t count, size_t grain, mb_range_fn fn, void *context) {
  if (grain == 0) grain = 1;
  size_t pieces = count / grain;
  if (pieces > (size_t)thread_total * PIECES_PER_THREAD) pieces = (size_t)thread_total * PIECES_PER_THREAD;
  if (pieces <= 1 || worker_total == 0 || pthread_mutex_trylock(&job_lock) != 0) {
    if (count > 0) fn(context, 0, count);
    return;
  }
  job.fn = fn;
  job.context = context;
  job.count = count;
  job.pieces = pieces;
  atomic_store(&pieces_done, 0);
  atomic_store(&pieces_left, (long)pieces);
  announce();
  run_claimed_pieces();
  while (atomic_load(&pieces_done) < pieces) MB_PAUSE();
  pthread_mutex_unlock(&job_lock);
}

int mb_pool_threads(void) { return thread_total; }

void mb_pool_set_threads(int threads) {
  if (threads < 1) threads = 1;
  if (threads > MB_MAX_THREADS) threads = MB_MAX_THREADS;
  pthread_mutex_lock(&job_lock);
  if (worker_total > 0) {
    atomic_store(&stopping, true);
    announce();
    for (int i = 0; i < worker_total; i++) pthread_join(workers[i], NULL);
    worker_total = 0;
    atomic_store(&stopping, false);
  }
  start_generation = atomic_load(&generation);
  for (int i = 1; i < threads; i++) {
    if (pthread_create(&workers[worker_total], NULL, worker_main, NULL) != 0) break;
    worker_total++;
  }
  thread_total = worker_total + 1;
  pthread_mutex_unlock(&job_lock);
}
