import { CausalAttention } from './causal-attention.ts';
import { allocateFloats } from './float-arena.ts';
import { linearBackwardInput, linearBackwardWeight, linearForward } from './linear.ts';
import type { LlamaParameters } from './llama-parameters.ts';
import { rmsNormBackward, rmsNormForward } from './rms-norm.ts';
import { RopeTable } from './rope-table.ts';

/** Activations one layer keeps from the forward pass for the backward pass. */
interface LayerActivations {
  input: Float32Array;
  attnIn: Float32Array;
  attnInvRms: Float32Array;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  probs: Float32Array;
  attn: Float32Array;
  mid: Float32Array;
  ffnIn: Float32Array;
  ffnInvRms: Float32Array;
  gate: Float32Array;
  up: Float32Array;
  act: Float32Array;
}

/**
 * The llama forward pass and its hand-written backward pass for one sequence of up to contextLength
 * tokens, computing what llama.cpp computes for the same weights (RMSNorm → attention with RoPE →
 * residual → RMSNorm → SwiGLU → residual, final RMSNorm, untied output matrix). All buffers are allocated
 * once per context length, so a training step allocates nothing.
 */
export class LlamaComputation {
  readonly logits: Float32Array;
  private readonly layers: LayerActivations[];
  private readonly final: Float32Array;
  private readonly finalNorm: Float32Array;
  private readonly finalInvRms: Float32Array;
  private readonly rope: RopeTable;
  // backward scratch
  private readonly dx: Float32Array;
  private readonly dNorm: Float32Array;
  private readonly dq: Float32Array;
  private readonly dk: Float32Array;
  private readonly dv: Float32Array;
  private readonly dAttn: Float32Array;
  private readonly dAct: Float32Array;
  private readonly dGate: Float32Array;
  private readonly dUp: Float32Array;
  private readonly attention: CausalAttention;

  constructor(
    private readonly shape: {
      dim: number;
      ffn: number;
      heads: number;
      layers: number;
      vocab: number;
      eps: number;
      ropeBase: number;
    },
    readonly maxTokens: number,
  ) {
    const { dim, ffn, heads, vocab } = shape;
    const T = maxTokens;
    const f = allocateFloats;
    this.layers = Array.from({ length: shape.layers }, () => ({
      input: f(T * dim),
      attnIn: f(T * dim),
      attnInvRms: f(T),
      q: f(T * dim),
      k: f(T * dim),
      v: f(T * dim),
      probs: f(CausalAttention.probsLength(T, heads)),
      attn: f(T * dim),
      mid: f(T * dim),
      ffnIn: f(T * dim),
      ffnInvRms: f(T),
      gate: f(T * ffn),
      up: f(T * ffn),
      act: f(T * ffn),
    }));
    this.final = f(T * dim);
    this.finalNorm = f(T * dim);
    this.finalInvRms = f(T);
    this.logits = f(T * vocab);
    this.rope = new RopeTable(T, dim / heads, shape.ropeBase);
    this.dx = f(T * dim);
    this.dNorm = f(T * dim);
    this.dq = f(T * dim);
    this.dk = f(T * dim);
    this.dv = f(T * dim);
    this.dAttn = f(T * dim);
    this.dAct = f(T * ffn);
    this.dGate = f(T * ffn);
    this.dUp = f(T * ffn);
    this.attention = new CausalAttention(T, heads, dim / heads);
  }

  static for(params: LlamaParameters, maxTokens: number): LlamaComputation {
    const h = params.hparams;
    return new LlamaComputation(
      {
        dim: h.embeddingLength,
        ffn: h.feedForwardLength,
        heads: h.headCount,
        layers: h.blockCount,
        vocab: params.vocabSize,
        eps: h.rmsEpsilon,
        ropeBase: h.ropeFreqBase,
      },
      maxTokens,
    );
  }

  /** Fills `logits` ([T][vocab]) for tokens[0..T), tokens at positions 0…T−1. */
  forward(params: LlamaParameters, tokens: ArrayLike<number>, T: number): Float32Array {
    if (T > this.maxTokens) throw new Error(`sequence of ${T} exceeds ${this.maxTokens}`);
    const { dim, ffn, heads, vocab, eps } = this.shape;
    const w = params.tensors;
    let x = this.layers[0]?.input ?? this.final;
    for (let t = 0; t < T; t++)
      x.set(w.embedding.subarray((tokens[t] as number) * dim, ((tokens[t] as number) + 1) * dim), t * dim);
    for (let l = 0; l < this.layers.length; l++) {
      const a = this.layers[l] as LayerActivations;
      const p = w.layers[l] as (typeof w.layers)[number];
      rmsNormForward(a.attnIn, a.attnInvRms, a.input, p.attnNorm, T, dim, eps);
      linearForward(a.q, a.attnIn, p.wq, T, dim, dim);
      linearForward(a.k, a.attnIn, p.wk, T, dim, dim);
      linearForward(a.v, a.attnIn, p.wv, T, dim, dim);
      this.rope.apply(a.q, T, heads);
      this.rope.apply(a.k, T, heads);
      this.attention.forward(a.attn, a.probs, a.q, a.k, a.v, T);
      linearForward(a.mid, a.attn, p.wo, T, dim, dim);
      for (let i = 0; i < T * dim; i++) a.mid[i] = (a.mid[i] as number) + (a.input[i] as number);
      rmsNormForward(a.ffnIn, a.ffnInvRms, a.mid, p.ffnNorm, T, dim, eps);
      linearForward(a.gate, a.ffnIn, p.wGate, T, dim, ffn);
      linearForward(a.up, a.ffnIn, p.wUp, T, dim, ffn);
      for (let i = 0; i < T * ffn; i++) {
        const g = a.gate[i] as number;
        a.act[i] = (g / (1 + Math.exp(-g))) * (a.up[i] as number);
      }
      const next = this.layers[l + 1]?.input ?? this.final;
      linearForward(next, a.act, p.wDown, T, ffn, dim);
      for (let i = 0; i < T * dim; i++) next[i] = (next[i] as number) + (a.mid[i] as number);
      x = next;
    }
    rmsNormForward(this.finalNorm, this.finalInvRms, x, w.outputNorm, T, dim, eps);
    linearForward(this.logits, this.finalNorm, w.output, T, dim, vocab);
    return this.logits;
  }

  /**
   * Cross-entropy of targets[t] after tokens[0..t], summed over t < T (nats). Adds
   * lossScale·∂loss/∂θ into `grads` (pass 1/tokensInBatch to average over a batch).
   */
  lossAndBackward(
    params: LlamaParameters,
    grads: LlamaParameters,
    tokens: ArrayLike<number>,
    targets: ArrayLike<number>,
    T: number,
    lossScale: number,
  ): number {
    const { dim, ffn, heads, vocab } = this.shape;
    this.forward(params, tokens, T);
    const w = params.tensors;
    const g = grads.tensors;
    // softmax cross-entropy; the logits buffer becomes dLogits in place.
    let loss = 0;
    const dLogits = this.logits;
    for (let t = 0; t < T; t++) {
      const o = t * vocab;
      let max = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < vocab; i++) if ((dLogits[o + i] as number) > max) max = dLogits[o + i] as number;
      let sum = 0;
      for (let i = 0; i < vocab; i++) sum += Math.exp((dLogits[o + i] as number) - max);
      const target = targets[t] as number;
      loss += Math.log(sum) + max - (dLogits[o + target] as number);
      const inv = 1 / sum;
      for (let i = 0; i < vocab; i++) dLogits[o + i] = Math.exp((dLogits[o + i] as number) - max) * inv * lossScale;
      dLogits[o + target] = (dLogits[o + target] as number) - lossScale;
    }
    const x = this.final;
    linearBackwardWeight(g.output, dLogits, this.finalNorm, T, dim, vocab);
    this.dNorm.fill(0, 0, T * dim);
    linearBackwardInput(this.dNorm, dLogits, w.output, T, dim, vocab);
    const dx = this.dx;
    dx.fill(0, 0, T * dim);
    rmsNormBackward(dx, g.outputNorm, this.dNorm, x, this.finalInvRms, w.outputNorm, T, dim);
    for (let l = this.layers.length - 1; l >= 0; l--) {
      const a = this.layers[l] as LayerActivations;
      const p = w.layers[l] as (typeof w.layers)[number];
      const gp = g.layers[l] as (typeof g.layers)[number];
      // FFN: dx is ∂/∂(layer output) = ∂/∂mid via the skip connection, plus the FFN branch below.
      linearBackwardWeight(gp.wDown, dx, a.act, T, ffn, dim);
      this.dAct.fill(0, 0, T * ffn);
      linearBackwardInput(this.dAct, dx, p.wDown, T, ffn, dim);
      for (let i = 0; i < T * ffn; i++) {
        const gate = a.gate[i] as number;
        const sig = 1 / (1 + Math.exp(-gate));
        const d = this.dAct[i] as number;
        this.dUp[i] = d * gate * sig;
        this.dGate[i] = d * (a.up[i] as number) * sig * (1 + gate * (1 - sig));
      }
      linearBackwardWeight(gp.wGate, this.dGate, a.ffnIn, T, dim, ffn);
      linearBackwardWeight(gp.wUp, this.dUp, a.ffnIn, T, dim, ffn);
      this.dNorm.fill(0, 0, T * dim);
      linearBackwardInput(this.dNorm, this.dGate, p.wGate, T, dim, ffn);
      linearBackwardInput(this.dNorm, this.dUp, p.wUp, T, dim, ffn);
      rmsNormBackward(dx, gp.ffnNorm, this.dNorm, a.mid, a.ffnInvRms, p.ffnNorm, T, dim);
      // attention: dx now is ∂/∂mid = ∂/∂input (skip) + the attention branch.
      linearBackwardWeight(gp.wo, dx, a.attn, T, dim, dim);
      this.dAttn.fill(0, 0, T * dim);
      linearBackwardInput(this.dAttn, dx, p.wo, T, dim, dim);
      this.attention.backward(this.dq, this.dk, this.dv, this.dAttn, a.probs, a.q, a.k, a.v, T);
      this.rope.apply(this.dq, T, heads, true);
      this.rope.apply(this.dk, T, heads, true);
      linearBackwardWeight(gp.wq, this.dq, a.attnIn, T, dim, dim);
      linearBackwardWeight(gp.wk, this.dk, a.attnIn, T, dim, dim);
      linearBackwardWeight(gp.wv, this.dv, a.attnIn, T, dim, dim);
      this.dNorm.fill(0, 0, T * dim);
      linearBackwardInput(this.dNorm, this.dq, p.wq, T, dim, dim);
      linearBackwardInput(this.dNorm, this.dk, p.wk, T, dim, dim);
      linearBackwardInput(this.dNorm, this.dv, p.wv, T, dim, dim);
      rmsNormBackward(dx, gp.attnNorm, this.dNorm, a.input, a.attnInvRms, p.attnNorm, T, dim);
    }
    for (let t = 0; t < T; t++) {
      const row = (tokens[t] as number) * dim;
      for (let i = 0; i < dim; i++)
        g.embedding[row + i] = (g.embedding[row + i] as number) + (dx[t * dim + i] as number);
    }
    return loss;
  }
}
