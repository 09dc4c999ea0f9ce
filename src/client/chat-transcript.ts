import type { ChatMessage } from './client-types.ts';

export interface ChatTranscript {
  prompt: string;
  /** Stop sequences that end the assistant's turn before it writes the user's next line. */
  stop: string[];
}

/**
 * Renders chat turns as the plain `User:` / `Assistant:` transcript that text-completion APIs (Kobold) need,
 * ending with an open `Assistant:` line for the model to continue. Servers that apply a real chat template
 * are reached through the chat endpoints instead; this is the fallback for a bare completion API.
 */
export function renderChatTranscript(
  messages: readonly ChatMessage[],
  names = { user: 'User', assistant: 'Assistant' },
): ChatTranscript {
  const lines: string[] = [];
  for (const message of messages) {
    if (message.role === 'system') lines.push(message.content);
    else lines.push(`${message.role === 'user' ? names.user : names.assistant}: ${message.content}`);
  }
  lines.push(`${names.assistant}:`);
  return { prompt: lines.join('\n'), stop: [`\n${names.user}:`] };
}
