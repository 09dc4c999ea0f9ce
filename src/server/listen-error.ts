import { createServer } from 'node:net';
import { KindlingError } from '../core/kindling-error.ts';

/**
 * Turns the socket errors of `listen` into one line a user can act on (which port, which flag to change);
 * `undefined` for errors that are not about the address.
 */
export function describeListenError(error: unknown, host: string, port: number): KindlingError | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case 'EADDRINUSE':
      return KindlingError.badInput(
        '--port',
        `port ${port} on ${host} is already in use (another Kindling or KoboldCpp server?): stop it, or pick another port with --port <n> (--port 0 picks any free one)`,
      );
    case 'EACCES':
      return KindlingError.badInput(
        '--port',
        `port ${port} on ${host} is not allowed for this user (ports below 1024 need administrator rights): pick another with --port <n>`,
      );
    case 'EADDRNOTAVAIL':
      return KindlingError.badInput('--host', `${host} is not an address of this machine (127.0.0.1 or 0.0.0.0 are)`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return KindlingError.badInput('--host', `no such host: ${host}`);
    default:
      return undefined;
  }
}

/**
 * Fails before the model loads (seconds to minutes for a large one) when the address cannot be bound. The
 * real `listen` later can still lose a race, and its error goes through `describeListenError` too.
 */
export function assertCanListen(host: string, port: number): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error) => reject(describeListenError(error, host, port) ?? error));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}
