/*
 * What the two halves of the native step share (batch-step.cc: the decode and its samples; batch-step-napi.cc:
 * JavaScript's side). llama.cpp's structs as node-llama-cpp 3.21.1 ships them.
 */
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "llama-batch.h"

struct llama_context;


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
  std::vector<void *> references; /* napi_ref of each sampler's JavaScript object, kept alive until take */
  uint32_t id = 0;
  bool claimed = false;  /* a decode took it: no other decode may */
  bool decoding = false; /* that decode runs: only its thread touches the slots */
  bool ran = false;
};

/*
 * Adds a plan for the batch this thread made last (its token array, as llama_batch_init returned it) and returns
 * its id. Plans of several contexts may be pending at once (engines decoding side by side).
 */
uint32_t install_plan(Plan *plan);
/* Removes the plan and returns it, decoded or not; null while its decode still runs, or when there is none. */
Plan *take_plan(uint32_t id);
/* Whether node-llama-cpp's llama_decode calls reach this library (it was loaded before any other definition). */
bool decode_interposed();
