import type { ProtocolDescriptor } from '../core/protocol.ts';
import { anthropicProtocol } from './anthropic/protocol.ts';
import { discoveryProtocol } from './discovery/protocol.ts';
import { koboldProtocol } from './kobold/protocol.ts';
import { ollamaProtocol } from './ollama/protocol.ts';
import { openaiProtocol } from './openai/protocol.ts';

/** Every protocol the server speaks: a new one is a folder beside these and a line here. */
export const PROTOCOLS: readonly ProtocolDescriptor[] = [
  koboldProtocol,
  openaiProtocol,
  anthropicProtocol,
  ollamaProtocol,
  discoveryProtocol,
];
