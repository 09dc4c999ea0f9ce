/*
 * Decodes a batch and samples every slot of it in one native job (batch-step.ts says why).
 *
 * How: this library is loaded with RTLD_GLOBAL before node-llama-cpp's addon and before
 * persistent-threadpool.c, so the addon's llama_decode binds here first. JavaScript plans the samples of a batch
 * (plan) just before node-llama-cpp's decodeBatch; on the decode worker thread, once the next llama_decode
 * (the pool's, or llama.cpp's) has succeeded for that very batch, each slot is sampled with node-llama-cpp's own
 * AddonSampler methods, as its SampleToken worker does, so the tokens are the same by construction. take()
 * then hands the results back; a plan that did not run (another context's decode, a failed decode) comes back
 * as undefined and JavaScript samples as before.
 *
 * The declarations below match node-llama-cpp 3.21.1: the AddonSampler methods are exported by llama-addon.node
 * (resolved by mangled name at first use; a missing one leaves the plan unrun) and llama.cpp's structs are
 * those it ships. Node-API is declared by hand, as in persistent-threadpool.c.
 */
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

struct llama_context;

struct llama_batch {
  int32_t n_tokens;
  int32_t *token;
  float *embd;
  int32_t *pos;
  int32_t *n_seq_id;
  int32_t **seq_id;
  int8_t *logits;
};

struct llama_token_data {
  int32_t id;
  float logit;
  float p;
};

struct llama_token_data_array {
  llama_token_data *data;
  size_t size;
  int64_t selected;
  bool sorted;
};

typedef int32_t (*decode_fn)(llama_context *, llama_batch);
/* Non-virtual member functions: `this` is the first argument (Itanium C++ ABI). */
typedef void (*rebuild_fn)(void *);
typedef void (*sample_fn)(void *, llama_context *, int32_t, llama_token_data_array &, bool);
typedef void (*accept_fn)(void *, int32_t);

namespace {

std::vector<void *> handles;

int collect(struct dl_phdr_info *info, size_t, void *) {
  const char *name = info->dlpi_name;
  if (name && (strstr(name, "libllama") || strstr(name, "libggml") || strstr(name, "llama-addon"))) {
    void *handle = dlopen(name, RTLD_NOLOAD | RTLD_LAZY);
    if (handle) handles.push_back(handle);
  }
  return 0;
}

/* After node-llama-cpp has loaded its libraries; under the lock. */
void *lookup(const char *symbol) {
  static bool collected;
  if (!collected) {
    collected = true;
    dl_iterate_phdr(collect, nullptr);
  }
  for (void *handle : handles) {
    void *address = dlsym(handle, symbol);
    if (address) return address;
  }
  return nullptr;
}

extern "C" int32_t llama_decode(llama_context *, llama_batch);

struct Next {
  void *interposer; /* the first other library defining llama_decode, loaded after this one (the thread pool) */
  void *real;       /* llama.cpp's */
};

int find_next(struct dl_phdr_info *info, size_t, void *data) {
  Next *next = static_cast<Next *>(data);
  const char *name = info->dlpi_name;
  if (next->interposer || !name || !*name) return 0;
  void *handle = dlopen(name, RTLD_NOLOAD | RTLD_LAZY);
  void *address = handle ? dlsym(handle, "llama_decode") : nullptr;
  Dl_info where;
  /* dlsym on a handle also searches the library's dependencies: keep only a definition of its own. */
  if (!address || address == reinterpret_cast<void *>(&llama_decode) || !dladdr(address, &where) ||
      !where.dli_fname || strcmp(where.dli_fname, name) != 0)
    return 0;
  if (strstr(name, "libllama")) next->real = address;
  else next->interposer = address;
  return 0;
}

/*
 * The next llama_decode: the thread pool's interposer when it is loaded, else llama.cpp's. Not dlsym(RTLD_NEXT):
 * for a library loaded with dlopen, that searches only its own dependencies.
 */
decode_fn next_definition() {
  Next next = {nullptr, nullptr};
  dl_iterate_phdr(find_next, &next);
  return reinterpret_cast<decode_fn>(next.interposer ? next.interposer : next.real);
}

pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
llama_batch (*real_batch_init)(int32_t, int32_t, int32_t);
/* The token array of the batch this thread made last: plan() reads the main thread's, made by initBatch. */
thread_local int32_t *last_batch_tokens;
decode_fn next_decode;
void (*synchronize)(llama_context *);
float *(*get_logits)(llama_context *);
rebuild_fn rebuild_chain;
sample_fn sample_with;
accept_fn accept_token;
bool resolved;
bool usable;

/* After node-llama-cpp has loaded its libraries: at its first decode. */
bool resolve() {
  if (resolved) return usable;
  resolved = true;
  next_decode = next_definition();
  synchronize = reinterpret_cast<void (*)(llama_context *)>(lookup("llama_synchronize"));
  get_logits = reinterpret_cast<float *(*)(llama_context *)>(lookup("llama_get_logits"));
  rebuild_chain = reinterpret_cast<rebuild_fn>(lookup("_ZN12AddonSampler20rebuildChainIfNeededEv"));
  sample_with =
      reinterpret_cast<sample_fn>(lookup("_ZN12AddonSampler6sampleEP13llama_contextiR22llama_token_data_arrayb"));
  accept_token = reinterpret_cast<accept_fn>(lookup("_ZN12AddonSampler11acceptTokenEi"));
  usable = next_decode && synchronize && get_logits && rebuild_chain && sample_with && accept_token;
  return usable;
}

struct Slot {
  void *sampler; /* the AddonSampler behind the JavaScript object (napi_unwrap) */
  int32_t logit_index;
  bool probabilities;
  int32_t token = -1;
  std::vector<float> candidates; /* [token, probability] pairs, as floats for the probabilities */
  std::vector<int32_t> candidate_tokens;
  std::string error;
};

struct Plan {
  int32_t *batch_tokens; /* which batch: its token array, as llama_batch_init returned it */
  int32_t n_tokens;
  int32_t last_token;
  int32_t last_position;
  int32_t last_sequence;
  std::vector<Slot> slots;
  bool ran = false;
};

Plan *pending; /* planned, waiting for its decode */
Plan *done;    /* sampled, waiting for take() */

/* AddonContextSampleTokenWorker::SampleToken of node-llama-cpp 3.21.1, for one slot. */
void sample_slot(llama_context *context, Slot &slot) {
  if (get_logits(context) == nullptr) {
    slot.error = "This model does not support token generation";
    return;
  }
  rebuild_chain(slot.sampler);
  llama_token_data_array cur_p;
  sample_with(slot.sampler, context, slot.logit_index, cur_p, slot.probabilities);
  if (cur_p.size == 0 || !(cur_p.selected >= 0 && cur_p.selected < static_cast<int64_t>(cur_p.size))) return;
  const int32_t token = cur_p.data[cur_p.selected].id;
  if (slot.probabilities) {
    if (!cur_p.sorted) {
      std::sort(cur_p.data, cur_p.data + cur_p.size,
                [](const llama_token_data &a, const llama_token_data &b) { return a.logit > b.logit; });
      cur_p.sorted = true;
    }
    slot.candidate_tokens.resize(cur_p.size);
    slot.candidates.resize(cur_p.size);
    float max_logit = cur_p.size > 0 ? cur_p.data[0].logit : -INFINITY;
    for (size_t i = 0; i < cur_p.size; i++) {
      slot.candidate_tokens[i] = cur_p.data[i].id;
      slot.candidates[i] = cur_p.data[i].logit;
      if (cur_p.data[i].logit > max_logit) max_logit = cur_p.data[i].logit;
    }
    if (cur_p.size > 0 && max_logit != -INFINITY) {
      float sum = 0.0f;
      for (float &p : slot.candidates) {
        p = expf(p - max_logit);
        sum += p;
      }
      for (float &p : slot.candidates) p /= sum;
    }
  }
  try {
    accept_token(slot.sampler, token);
    slot.token = token;
  } catch (const std::exception &e) {
    slot.error = std::string("Failed to accept token in sampler: ") + e.what();
  } catch (...) {
    slot.error = "Unknown error when calling \"acceptToken\"";
  }
}

bool matches(const Plan &plan, const llama_batch &batch) {
  if (batch.token != plan.batch_tokens || batch.n_tokens != plan.n_tokens || batch.n_tokens <= 0) return false;
  const int32_t last = batch.n_tokens - 1;
  if (batch.token[last] != plan.last_token) return false;
  if (batch.pos && batch.pos[last] != plan.last_position) return false;
  if (batch.seq_id && batch.n_seq_id && (batch.n_seq_id[last] < 1 || batch.seq_id[last][0] != plan.last_sequence))
    return false;
  for (const Slot &slot : plan.slots) {
    if (slot.logit_index < 0 || slot.logit_index >= batch.n_tokens) return false;
    if (batch.logits && !batch.logits[slot.logit_index]) return false;
  }
  return true;
}

}  // namespace

/*
 * Interposed only to know which batch a plan is for: another context's decode (node-llama-cpp's embedding
 * context decodes beside ours on the CPU) never takes it, even with the same tokens at the same positions.
 */
extern "C" __attribute__((visibility("default"))) llama_batch llama_batch_init(int32_t n_tokens, int32_t embd,
                                                                                int32_t n_seq_max) {
  pthread_mutex_lock(&lock);
  if (!real_batch_init) {
    real_batch_init = reinterpret_cast<llama_batch (*)(int32_t, int32_t, int32_t)>(lookup("llama_batch_init"));
  }
  pthread_mutex_unlock(&lock);
  if (!real_batch_init) {
    fprintf(stderr, "kindling batch-step: llama_batch_init not found in the loaded llama.cpp\n");
    abort();
  }
  llama_batch batch = real_batch_init(n_tokens, embd, n_seq_max);
  last_batch_tokens = batch.token;
  return batch;
}

extern "C" __attribute__((visibility("default"))) int32_t llama_decode(llama_context *context, llama_batch batch) {
  pthread_mutex_lock(&lock);
  bool ok = resolve();
  Plan *plan = nullptr;
  if (ok && pending && matches(*pending, batch)) {
    plan = pending;
    pending = nullptr;
  }
  pthread_mutex_unlock(&lock);
  if (!next_decode) return -1;
  const int32_t status = next_decode(context, batch);
  if (!plan) return status;
  if (status == 0) {
    synchronize(context);
    for (Slot &slot : plan->slots) {
      try {
        sample_slot(context, slot);
      } catch (const std::exception &e) {
        slot.error = e.what();
      } catch (...) {
        slot.error = "Unknown error when calling \"SampleToken\"";
      }
    }
    plan->ran = true;
  }
  pthread_mutex_lock(&lock);
  delete done;
  done = plan;
  pthread_mutex_unlock(&lock);
  return status;
}

/* Node-API, declared by hand (its C ABI is stable). */
extern "C" {
typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_ref__ *napi_ref;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status;
typedef napi_value (*napi_callback)(napi_env, napi_callback_info);
napi_status napi_get_cb_info(napi_env, napi_callback_info, size_t *, napi_value *, napi_value *, void **);
napi_status napi_get_array_length(napi_env, napi_value, uint32_t *);
napi_status napi_get_element(napi_env, napi_value, uint32_t, napi_value *);
napi_status napi_set_element(napi_env, napi_value, uint32_t, napi_value);
napi_status napi_unwrap(napi_env, napi_value, void **);
napi_status napi_create_reference(napi_env, napi_value, uint32_t, napi_ref *);
napi_status napi_delete_reference(napi_env, napi_ref);
napi_status napi_get_typedarray_info(napi_env, napi_value, int *, size_t *, void **, napi_value *, size_t *);
napi_status napi_get_value_int32(napi_env, napi_value, int32_t *);
napi_status napi_get_undefined(napi_env, napi_value *);
napi_status napi_get_boolean(napi_env, bool, napi_value *);
napi_status napi_create_int32(napi_env, int32_t, napi_value *);
napi_status napi_create_array_with_length(napi_env, size_t, napi_value *);
napi_status napi_create_arraybuffer(napi_env, size_t, void **, napi_value *);
napi_status napi_create_typedarray(napi_env, int, size_t, napi_value, size_t, napi_value *);
napi_status napi_create_string_utf8(napi_env, const char *, size_t, napi_value *);
napi_status napi_throw_error(napi_env, const char *, const char *);
napi_status napi_create_function(napi_env, const char *, size_t, napi_callback, void *, napi_value *);
napi_status napi_set_named_property(napi_env, napi_value, const char *, napi_value);
}

namespace {

constexpr int INT32_ARRAY = 5;
constexpr int UINT8_ARRAY = 1;
constexpr int FLOAT64_ARRAY = 8;

/* Keeps the planned samplers' JavaScript objects alive until take(). */
std::vector<napi_ref> references;

void release(napi_env env) {
  for (napi_ref reference : references) napi_delete_reference(env, reference);
  references.clear();
}

napi_value undefined(napi_env env) {
  napi_value value = nullptr;
  napi_get_undefined(env, &value);
  return value;
}

napi_value fail(napi_env env, const char *message) {
  napi_throw_error(env, nullptr, message);
  return nullptr;
}

template <typename T>
T *typed(napi_env env, napi_value value, int type, size_t &length) {
  int actual = -1;
  void *data = nullptr;
  napi_value buffer = nullptr;
  size_t offset = 0;
  length = 0;
  if (napi_get_typedarray_info(env, value, &actual, &length, &data, &buffer, &offset) != 0 || actual != type)
    return nullptr;
  return static_cast<T *>(data);
}

/* plan(samplers, logitIndexes: Int32Array, probabilities: Uint8Array, nTokens, lastToken, lastPosition, lastSequence) */
napi_value plan(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7] = {};
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 7) return fail(env, "plan takes 7 arguments");
  uint32_t count = 0;
  size_t indexes_length = 0;
  size_t flags_length = 0;
  int32_t *indexes = typed<int32_t>(env, argv[1], INT32_ARRAY, indexes_length);
  uint8_t *flags = typed<uint8_t>(env, argv[2], UINT8_ARRAY, flags_length);
  if (napi_get_array_length(env, argv[0], &count) != 0 || !indexes || !flags || indexes_length != count ||
      flags_length != count)
    return fail(env, "plan: samplers, logit indexes and probabilities must have one entry per slot");
  Plan *next = new Plan();
  next->batch_tokens = last_batch_tokens;
  napi_get_value_int32(env, argv[3], &next->n_tokens);
  napi_get_value_int32(env, argv[4], &next->last_token);
  napi_get_value_int32(env, argv[5], &next->last_position);
  napi_get_value_int32(env, argv[6], &next->last_sequence);
  std::vector<napi_ref> refs;
  for (uint32_t i = 0; i < count; i++) {
    napi_value object = nullptr;
    void *sampler = nullptr;
    napi_ref reference = nullptr;
    if (napi_get_element(env, argv[0], i, &object) != 0 || napi_unwrap(env, object, &sampler) != 0 || !sampler ||
        napi_create_reference(env, object, 1, &reference) != 0) {
      for (napi_ref r : refs) napi_delete_reference(env, r);
      delete next;
      return fail(env, "plan: a sampler is not a node-llama-cpp AddonSampler");
    }
    refs.push_back(reference);
    Slot slot;
    slot.sampler = sampler;
    slot.logit_index = indexes[i];
    slot.probabilities = flags[i] != 0;
    next->slots.push_back(std::move(slot));
  }
  pthread_mutex_lock(&lock);
  delete pending;
  pending = next;
  delete done;
  done = nullptr;
  pthread_mutex_unlock(&lock);
  release(env);
  references = std::move(refs);
  return undefined(env);
}

/* take() → undefined when the plan did not run, else per slot: a token (-1: none), [token, Float64Array of
 * token, probability pairs] or an error message. */
napi_value take(napi_env env, napi_callback_info) {
  pthread_mutex_lock(&lock);
  Plan *plan = done;
  done = nullptr;
  delete pending;
  pending = nullptr;
  pthread_mutex_unlock(&lock);
  release(env);
  if (!plan || !plan->ran) {
    delete plan;
    return undefined(env);
  }
  napi_value results = nullptr;
  napi_create_array_with_length(env, plan->slots.size(), &results);
  for (size_t i = 0; i < plan->slots.size(); i++) {
    const Slot &slot = plan->slots[i];
    napi_value entry = nullptr;
    if (!slot.error.empty()) {
      napi_create_string_utf8(env, slot.error.c_str(), slot.error.size(), &entry);
    } else if (!slot.probabilities || slot.token < 0) {
      napi_create_int32(env, slot.token, &entry);
    } else {
      const size_t n = slot.candidates.size();
      void *data = nullptr;
      napi_value buffer = nullptr;
      napi_value pairs = nullptr;
      napi_create_arraybuffer(env, n * 2 * sizeof(double), &data, &buffer);
      double *out = static_cast<double *>(data);
      for (size_t c = 0; c < n; c++) {
        out[c * 2] = slot.candidate_tokens[c];
        out[c * 2 + 1] = slot.candidates[c];
      }
      napi_create_typedarray(env, FLOAT64_ARRAY, n * 2, buffer, 0, &pairs);
      napi_value token = nullptr;
      napi_create_int32(env, slot.token, &token);
      napi_create_array_with_length(env, 2, &entry);
      napi_set_element(env, entry, 0, token);
      napi_set_element(env, entry, 1, pairs);
    }
    napi_set_element(env, results, static_cast<uint32_t>(i), entry);
  }
  delete plan;
  return results;
}

/* interposing() → whether the addon's llama_decode calls reach this library (it was loaded first). */
napi_value interposing(napi_env env, napi_callback_info) {
  void *first = dlsym(RTLD_DEFAULT, "llama_decode");
  napi_value value = nullptr;
  napi_get_boolean(env, first == reinterpret_cast<void *>(&llama_decode), &value);
  return value;
}

void define(napi_env env, napi_value exports, const char *name, napi_callback callback) {
  napi_value fn = nullptr;
  if (napi_create_function(env, name, static_cast<size_t>(-1), callback, nullptr, &fn) == 0)
    napi_set_named_property(env, exports, name, fn);
}

}  // namespace

extern "C" __attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  define(env, exports, "plan", plan);
  define(env, exports, "take", take);
  define(env, exports, "interposing", interposing);
  return exports;
}
