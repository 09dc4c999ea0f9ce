/*
 * The native step's JavaScript side (batch-step.ts): plan(), take() and interposing(). Node-API is declared by
 * hand, as in persistent-threadpool.c: no Node headers are needed to build it.
 */
#include <cstdint>
#include <string>
#include <vector>

#include "batch-step.h"

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
napi_status napi_get_value_uint32(napi_env, napi_value, uint32_t *);
napi_status napi_create_uint32(napi_env, uint32_t, napi_value *);
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

/* The planned samplers' JavaScript objects were kept alive until their plan is taken. */
void release(napi_env env, Plan *plan) {
  for (void *reference : plan->references) napi_delete_reference(env, static_cast<napi_ref>(reference));
  plan->references.clear();
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

/* plan(samplers, logitIndexes: Int32Array, probabilities: Uint8Array, nTokens, lastToken, lastPosition,
 * lastSequence) → the plan's id, for take */
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
  napi_get_value_int32(env, argv[3], &next->n_tokens);
  napi_get_value_int32(env, argv[4], &next->last_token);
  napi_get_value_int32(env, argv[5], &next->last_position);
  napi_get_value_int32(env, argv[6], &next->last_sequence);
  for (uint32_t i = 0; i < count; i++) {
    napi_value object = nullptr;
    void *sampler = nullptr;
    napi_ref reference = nullptr;
    if (napi_get_element(env, argv[0], i, &object) != 0 || napi_unwrap(env, object, &sampler) != 0 || !sampler ||
        napi_create_reference(env, object, 1, &reference) != 0) {
      release(env, next);
      delete next;
      return fail(env, "plan: a sampler is not a node-llama-cpp AddonSampler");
    }
    next->references.push_back(reference);
    Slot slot;
    slot.sampler = sampler;
    slot.logit_index = indexes[i];
    slot.probabilities = flags[i] != 0;
    next->slots.push_back(std::move(slot));
  }
  napi_value id = nullptr;
  napi_create_uint32(env, install_plan(next), &id);
  return id;
}

/* take(id) → undefined when the plan did not run, else per slot: a token (-1: none), [token, Float64Array of
 * token, probability pairs] or an error message. */
napi_value take(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1] = {};
  uint32_t id = 0;
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 1 || napi_get_value_uint32(env, argv[0], &id) != 0) return fail(env, "take takes a plan's id");
  /* Null too while its decode still runs, which take never meets: it is called once decodeBatch has settled. */
  Plan *plan = take_plan(id);
  if (plan) release(env, plan);
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
  napi_value value = nullptr;
  napi_get_boolean(env, decode_interposed(), &value);
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
