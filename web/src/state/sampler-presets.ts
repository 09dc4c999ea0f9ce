import { defaultSamplers, type Samplers } from './session.ts';

// A handful of well-known starting points; any edit switches the preset label to "custom".
export const samplerPresets: Record<string, { label: string; samplers: Samplers }> = {
  balanced: { label: 'Balanced', samplers: defaultSamplers },
  precise: {
    label: 'Precise',
    samplers: { ...defaultSamplers, temperature: 0.3, top_p: 0.9, top_k: 40, min_p: 0.05, rep_pen: 1.1 },
  },
  creative: {
    label: 'Creative',
    samplers: { ...defaultSamplers, temperature: 1.1, top_p: 1, top_k: 0, min_p: 0.05, rep_pen: 1.05 },
  },
  minp: {
    label: 'Min-P only',
    samplers: { ...defaultSamplers, temperature: 1, top_p: 1, top_k: 0, min_p: 0.1, rep_pen: 1 },
  },
  dryxtc: {
    label: 'DRY + XTC',
    samplers: {
      ...defaultSamplers,
      temperature: 1,
      top_p: 1,
      top_k: 0,
      min_p: 0.02,
      rep_pen: 1,
      dry_multiplier: 0.8,
      xtc_probability: 0.5,
    },
  },
  deterministic: {
    label: 'Deterministic',
    samplers: { ...defaultSamplers, temperature: 0, top_p: 1, top_k: 1, rep_pen: 1, seed: 1 },
  },
};
