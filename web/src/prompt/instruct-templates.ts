import type { InstructSettings, InstructTags } from '../model/session.ts';

// Tag sets for instruct-tuned models. Models without a separate system role (Mistral, Gemma) get the system
// prompt wrapped like a user turn, which is how their own chat templates fold it in.
export const instructTemplates: Record<string, { label: string; tags: InstructTags }> = {
  chatml: {
    label: 'ChatML',
    tags: {
      systemStart: '<|im_start|>system\n',
      systemEnd: '<|im_end|>\n',
      userStart: '<|im_start|>user\n',
      userEnd: '<|im_end|>\n',
      assistantStart: '<|im_start|>assistant\n',
      assistantEnd: '<|im_end|>\n',
    },
  },
  llama3: {
    label: 'Llama 3',
    tags: {
      systemStart: '<|start_header_id|>system<|end_header_id|>\n\n',
      systemEnd: '<|eot_id|>',
      userStart: '<|start_header_id|>user<|end_header_id|>\n\n',
      userEnd: '<|eot_id|>',
      assistantStart: '<|start_header_id|>assistant<|end_header_id|>\n\n',
      assistantEnd: '<|eot_id|>',
    },
  },
  mistral: {
    label: 'Mistral',
    tags: {
      systemStart: '[INST] ',
      systemEnd: ' [/INST]',
      userStart: '[INST] ',
      userEnd: ' [/INST]',
      assistantStart: '',
      assistantEnd: '</s>',
    },
  },
  gemma: {
    label: 'Gemma',
    tags: {
      systemStart: '<start_of_turn>user\n',
      systemEnd: '<end_of_turn>\n',
      userStart: '<start_of_turn>user\n',
      userEnd: '<end_of_turn>\n',
      assistantStart: '<start_of_turn>model\n',
      assistantEnd: '<end_of_turn>\n',
    },
  },
  alpaca: {
    label: 'Alpaca',
    tags: {
      systemStart: '',
      systemEnd: '\n\n',
      userStart: '### Instruction:\n',
      userEnd: '\n\n',
      assistantStart: '### Response:\n',
      assistantEnd: '\n\n',
    },
  },
};

export function instructTags(settings: InstructSettings): InstructTags {
  return instructTemplates[settings.preset]?.tags ?? settings.custom;
}

/**
 * Stop strings that end a reply when the model starts the next user turn. The assistant end tag is a stop too:
 * servers that do not treat it as a special token would otherwise run on into a fabricated user turn.
 */
export function instructStopSequences(tags: InstructTags): string[] {
  const stops = [tags.userStart.trim(), tags.assistantEnd.trim()].filter((s) => s.length > 0);
  return [...new Set(stops)];
}
