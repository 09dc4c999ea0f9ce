/*
 * Gives every llama.cpp context that node-llama-cpp creates a persistent ggml thread pool.
 *
 * Why: node-llama-cpp never calls llama_attach_threadpool, so on a binary built without OpenMP (its prebuilt
 * CPU binaries) ggml creates and joins its worker threads for every graph compute. On a 2-core VM that made
 * two threads decode slower than one (44 against 57 t/s, bench model), while llama.cpp's own server, which
 * attaches a pool, ran the same CPU kernels at 124 t/s (docs/benchmarks.md, "The thread pool").
 *
 * How: this library is loaded with RTLD_GLOBAL before node-llama-cpp's addon, so the addon's calls to
 * llama_decode and llama_free bind here. The first decode of a context attaches a pool with the context's own
 * thread count and ggml's default settings except polling (see ensure_pool); llama_free releases it. Everything
 * is looked up at run time through the addon's own libraries, so nothing links against llama.cpp.
 *
 * It is also a Node-API module (declared by hand, the ABI is stable C) so that JavaScript can load it with
 * process.dlopen and ask how many pools are attached.
 *
 * The declarations below match llama.cpp as node-llama-cpp 3.21.1 ships it; ggml_threadpool_params is checked
 * at run time (n_threads must read back), and a mismatch leaves decoding as it was instead of attaching.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llama-batch.h"

struct llama_context;
struct ggml_threadpool;
typedef void *ggml_backend_dev_t;
typedef void *ggml_backend_reg_t;


#define GGML_MAX_N_THREADS 512
struct ggml_threadpool_params {
  bool cpumask[GGML_MAX_N_THREADS];
  int n_threads;
  int prio;
  uint32_t poll;
  bool strict_cpu;
  bool paused;
};

typedef int32_t (*decode_fn)(struct llama_context *, struct llama_batch);
typedef void (*free_fn)(struct llama_context *);

/* node-llama-cpp loads its libraries RTLD_LOCAL: their symbols are found through handles of our own. */
static void *handles[32];
static int handle_count;

static int collect(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  (void)data;
  const char *name = info->dlpi_name;
  if (handle_count < 32 && name && (strstr(name, "libllama") || strstr(name, "libggml"))) {
    void *handle = dlopen(name, RTLD_NOLOAD | RTLD_LAZY);
    if (handle) handles[handle_count++] = handle;
  }
  return 0;
}

static void *lookup(const char *symbol) {
  for (int i = 0; i < handle_count; i++) {
    void *address = dlsym(handles[i], symbol);
    if (address) return address;
  }
  return NULL;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static decode_fn real_decode;
static free_fn real_free;
static int (*n_threads_of)(struct llama_context *);
static struct ggml_threadpool_params (*threadpool_defaults)(int);
static void (*attach_threadpool)(struct llama_context *, struct ggml_threadpool *, struct ggml_threadpool *);
static struct ggml_threadpool *(*threadpool_new)(struct ggml_threadpool_params *);
static void (*threadpool_free)(struct ggml_threadpool *);

/* Resolves everything once, after node-llama-cpp has loaded its libraries (its first decode or free). */
static bool resolve(void) {
  static bool done;
  static bool usable;
  if (done) return usable;
  done = true;
  dl_iterate_phdr(collect, NULL);
  real_decode = (decode_fn)lookup("llama_decode");
  real_free = (free_fn)lookup("llama_free");
  n_threads_of = (int (*)(struct llama_context *))lookup("llama_n_threads");
  threadpool_defaults = (struct ggml_threadpool_params(*)(int))lookup("ggml_threadpool_params_default");
  attach_threadpool = (void (*)(struct llama_context *, struct ggml_threadpool *, struct ggml_threadpool *))lookup(
      "llama_attach_threadpool");
  ggml_backend_dev_t (*device_by_type)(int) = (ggml_backend_dev_t(*)(int))lookup("ggml_backend_dev_by_type");
  ggml_backend_reg_t (*registry_of)(ggml_backend_dev_t) =
      (ggml_backend_reg_t(*)(ggml_backend_dev_t))lookup("ggml_backend_dev_backend_reg");
  void *(*proc_address)(ggml_backend_reg_t, const char *) =
      (void *(*)(ggml_backend_reg_t, const char *))lookup("ggml_backend_reg_get_proc_address");
  if (device_by_type && registry_of && proc_address) {
    ggml_backend_dev_t cpu = device_by_type(0 /* GGML_BACKEND_DEVICE_TYPE_CPU */);
    ggml_backend_reg_t registry = cpu ? registry_of(cpu) : NULL;
    if (registry) {
      threadpool_new = (struct ggml_threadpool * (*)(struct ggml_threadpool_params *))
          proc_address(registry, "ggml_threadpool_new");
      threadpool_free = (void (*)(struct ggml_threadpool *))proc_address(registry, "ggml_threadpool_free");
    }
  }
  usable = n_threads_of && threadpool_defaults && attach_threadpool && threadpool_new && threadpool_free;
  return usable;
}

#define MAX_CONTEXTS 64
static struct {
  struct llama_context *context;
  struct ggml_threadpool *pool;
  int threads;
} pools[MAX_CONTEXTS];
static uint32_t attached_count;

static uint32_t poll_level(void) {
  const char *text = getenv("KINDLING_THREADPOOL_POLL");
  if (!text || !*text) return 1;
  char *end = NULL;
  long level = strtol(text, &end, 10);
  return (*end == '\0' && level >= 0 && level <= 100) ? (uint32_t)level : 1;
}

static void ensure_pool(struct llama_context *context) {
  if (!resolve()) return;
  int threads = n_threads_of(context);
  int free_entry = -1;
  for (int i = 0; i < MAX_CONTEXTS; i++) {
    if (pools[i].context == context) {
      if (pools[i].threads == threads) return;
      free_entry = i; /* the thread count changed: replace the pool (no decode of this context is running) */
      break;
    }
    if (!pools[i].context && free_entry < 0) free_entry = i;
  }
  if (free_entry < 0) return;
  struct ggml_threadpool_params params = threadpool_defaults(threads);
  if (params.n_threads != threads) return; /* the struct's layout is not what we declared */
  /* Spin about 3 ms after each graph (poll 1: 131,072 PAUSEs, about 23 ns each on this Zen 4, about 40 on Intel
   * since Skylake), then sleep. The gap between two decodes at one client (the sampled token's trip through
   * JavaScript and back) is well under that, so the pool's worker is awake for the next graph: waking it from
   * its condition variable on a VM took so long that one client decoded 16-25 % slower (bench/server-ab.ts with
   * KINDLING_THREADPOOL_POLL, docs/benchmarks.md). ggml's own default (50) spins 150-300 ms after every graph,
   * which on 2 cores took a core from the event loop and doubled the time to first token of the next request.
   * KINDLING_THREADPOOL_POLL (0-100) sets another level for one server, to measure it. */
  params.poll = poll_level();
  struct ggml_threadpool *pool = threadpool_new(&params);
  if (!pool) return;
  attach_threadpool(context, pool, pool);
  if (pools[free_entry].pool) threadpool_free(pools[free_entry].pool);
  else attached_count++;
  pools[free_entry].context = context;
  pools[free_entry].pool = pool;
  pools[free_entry].threads = threads;
}

int32_t llama_decode(struct llama_context *context, struct llama_batch batch) {
  pthread_mutex_lock(&lock);
  ensure_pool(context);
  pthread_mutex_unlock(&lock);
  if (!real_decode) return -1;
  return real_decode(context, batch);
}

void llama_free(struct llama_context *context) {
  pthread_mutex_lock(&lock);
  resolve();
  struct ggml_threadpool *pool = NULL;
  for (int i = 0; i < MAX_CONTEXTS; i++) {
    if (pools[i].context == context) {
      pool = pools[i].pool;
      pools[i].context = NULL;
      pools[i].pool = NULL;
      attached_count--;
      break;
    }
  }
  pthread_mutex_unlock(&lock);
  if (real_free) real_free(context);
  if (pool && threadpool_free) threadpool_free(pool); /* after the context that used it is gone */
}

/* Node-API, declared by hand: attachedPools() → how many contexts have a pool now. */
typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status;
typedef napi_value (*napi_callback)(napi_env, napi_callback_info);
extern napi_status napi_create_uint32(napi_env, uint32_t, napi_value *);
extern napi_status napi_create_function(napi_env, const char *, size_t, napi_callback, void *, napi_value *);
extern napi_status napi_set_named_property(napi_env, napi_value, const char *, napi_value);

static napi_value attached_pools(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result = NULL;
  pthread_mutex_lock(&lock);
  uint32_t count = attached_count;
  pthread_mutex_unlock(&lock);
  napi_create_uint32(env, count, &result);
  return result;
}

__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value fn = NULL;
  if (napi_create_function(env, "attachedPools", (size_t)-1, attached_pools, NULL, &fn) == 0)
    napi_set_named_property(env, exports, "attachedPools", fn);
  return exports;
}
