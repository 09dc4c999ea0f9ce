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
 * those it ships (batch-step.h).
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

#include "batch-step.h"

extern "C" int32_t llama_decode(llama_context *, llama_batch);

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

std::vector<Plan *> plans; /* planned, decoding or decoded, until take */
uint32_t last_id;

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
  if (ok) {
    for (Plan *candidate : plans) {
      if (candidate->claimed || !matches(*candidate, batch)) continue;
      candidate->claimed = true;
      candidate->decoding = true;
      plan = candidate;
      break;
    }
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
  plan->decoding = false;
  pthread_mutex_unlock(&lock);
  return status;
}

uint32_t install_plan(Plan *plan) {
  plan->batch_tokens = last_batch_tokens;
  pthread_mutex_lock(&lock);
  plan->id = ++last_id;
  plans.push_back(plan);
  pthread_mutex_unlock(&lock);
  return plan->id;
}

Plan *take_plan(uint32_t id) {
  Plan *plan = nullptr;
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < plans.size(); i++) {
    if (plans[i]->id != id || plans[i]->decoding) continue;
    plan = plans[i];
    plans.erase(plans.begin() + static_cast<std::ptrdiff_t>(i));
    break;
  }
  pthread_mutex_unlock(&lock);
  return plan;
}

bool decode_interposed() { return dlsym(RTLD_DEFAULT, "llama_decode") == reinterpret_cast<void *>(&llama_decode); }
