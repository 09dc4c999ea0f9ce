import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// A minimal same-origin Kobold server for screenshots and docs: serves the app at `/` and streams a fixed,
// readable continuation word by word, so pictures show prose rather than a random test model's noise.

export interface DemoKobold {
  url: string;
  close(): Promise<void>;
}

export async function startDemoKobold(
  html: string,
  reply: (prompt: string) => string,
  tokenIntervalMs = 60,
): Promise<DemoKobold> {
  const json = (res: ServerResponse, body: unknown) =>
    res
      .writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*' })
      .end(JSON.stringify(body));
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    let raw = '';
    req.on('data', (c: Buffer) => {
      raw += c.toString();
    });
    req.on('end', () => {
      if (path === '/') return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
      if (path === '/api/v1/model') return json(res, { result: 'koboldcpp/Demo-Storyteller-8B' });
      if (path === '/api/extra/version') return json(res, { result: 'KoboldCpp', version: '1.76', kindling: '0.1.0' });
      if (path === '/api/extra/true_max_context_length' || path === '/api/v1/config/max_context_length') {
        return json(res, { value: 8192 });
      }
      if (path === '/api/extra/tokencount') {
        const prompt = String((JSON.parse(raw || '{}') as { prompt?: string }).prompt ?? '');
        return json(res, { value: Math.ceil(prompt.length / 4) });
      }
      if (path === '/api/extra/abort') return json(res, { success: 'true', done: 'true' });
      if (path === '/api/extra/generate/stream') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'access-control-allow-origin': '*' });
        const words = reply(String((JSON.parse(raw || '{}') as { prompt?: string }).prompt ?? '')).split(/(?<=\s)/);
        let i = 0;
        const timer = setInterval(() => {
          const last = i === words.length - 1;
          res.write(
            `event: message\ndata: ${JSON.stringify({ token: words[i], finish_reason: last ? 'length' : null })}\n\n`,
          );
          i += 1;
          if (last) {
            clearInterval(timer);
            res.end();
          }
        }, tokenIntervalMs);
        res.on('close', () => clearInterval(timer));
        return;
      }
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
