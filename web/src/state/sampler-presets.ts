import { signal } from '@preact/signals';
import { defaultSamplers, type Samplers } from '../model/session.ts';

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

// Presets the user saved, kept in this browser (they are settings, not story content).
const userPresetsKey = 'kindling.samplerPresets';

export const userPresets = signal<Record<string, Samplers>>(readUserPresets());

function readUserPresets(): Record<string, Samplers> {
  try {
    return JSON.parse(localStorage.getItem(userPresetsKey) ?? '{}') as Record<string, Samplers>;
  } catch {
    return {};
  }
}

function writeUserPresets(next: Record<string, Samplers>): void {
  userPresets.value = next;
  localStorage.setItem(userPresetsKey, JSON.stringify(next));
}

export function saveUserPreset(name: string, samplers: Samplers): string {
  writeUserPresets({ ...userPresets.value, [name]: { ...samplers } });
  return `user:${name}`;
}

export function deleteUserPreset(name: string): void {
  const { [name]: _removed, ...rest } = userPresets.value;
  writeUserPresets(rest);
}

/** Built-in presets by id, user presets as "user:<name>". */
export function findPreset(id: string): Samplers | undefined {
  return id.startsWith('user:') ? userPresets.value[id.slice(5)] : samplerPresets[id]?.samplers;
}
