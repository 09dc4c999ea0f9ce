import { rawRequest } from './raw-http.ts';

export interface AddressedResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: any;
}

/**
 * One HTTP request sent from a chosen local address (e.g. `127.0.0.2`: all of 127/8 is loopback on Linux),
 * so a test can play two clients, two principals, against one server. Waits for the whole response, with a
 * deadline so a hung stream fails the test instead of hanging it.
 */
export async function requestFrom(
  localAddress: string,
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: unknown; timeoutMs?: number } = {},
): Promise<AddressedResponse> {
  const target = new URL(url);
  const response = await rawRequest(target.origin, {
    ...options,
    path: `${target.pathname}${target.search}`,
    localAddress,
    timeoutMs: options.timeoutMs ?? 20_000,
  });
  return { status: response.status, headers: response.headers, text: response.text, json: response.body };
}

/** SSE `data:` lines of `event: message` blocks, parsed (Kobold's token events and final event). */
export function koboldEvents(text: string): Array<{ id: string | undefined; event: string | undefined; data: any }> {
  return text
    .split('\n\n')
    .filter((block) => /^data: /m.test(block))
    .map((block) => ({
      id: /^id: (.*)$/m.exec(block)?.[1],
      event: /^event: (.*)$/m.exec(block)?.[1],
      data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null'),
    }));
}
