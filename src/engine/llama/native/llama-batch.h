/*
 * llama.cpp's `llama_batch` as node-llama-cpp 3.21.1 ships it, for the two libraries that see the addon's
 * llama_decode calls (persistent-threadpool.c, batch-step.cc). Declared once: a layout change is one edit.
 */
#ifndef KINDLING_LLAMA_BATCH_H
#define KINDLING_LLAMA_BATCH_H
#include <stdint.h>

struct llama_batch {
  int32_t n_tokens;
  int32_t *token;
  float *embd;
  int32_t *pos;
  int32_t *n_seq_id;
  int32_t **seq_id;
  int8_t *logits;
};

#endif
