// The LLM replay server: a stand-in for vLLM / Ollama / llama.cpp's OpenAI-compatible server that answers
// POST /v1/chat/completions with recorded responses, keyed by a hash of the request. It is not a model:
// it knows only the requests it has recordings for, and answers any other with HTTP 400 and a message that
// says so and what was asked, so a change in what the client sends fails the tests instead of passing them.
// A recording holds a list of responses served in turn (the last one repeats), which is how faults are
// injected: a 429 with Retry-After, a 500, a hang past the client's timeout, a body that is not JSON.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ReplayResponse =
  | { status: number; headers?: Record<string, string>; body: unknown }
  /** Sent as is: for bodies that are not JSON. */
  | { status: number; headers?: Record<string, string>; text: string }
  /** Never answers (until the client gives up or the server closes). */
  | { hang: true };

export interface Recording {
  /** requestHash() of the request body. */
  hash: string;
  /** What was asked, for people reading the fixture: model, prompt, image digest. */
  request: { model: string; prompt: string; imageSha256?: string; image?: string };
  responses: ReplayResponse[];
}

export interface ReplayLogEntry {
  hash: string;
  status: number | 'hang';
  authorization?: string;
}

export interface LlmReplayServer {
  /** Base URL to configure as the endpoint: http://127.0.0.1:PORT/v1. */
  url: string;
  /** Every request in arrival order. */
  log: ReplayLogEntry[];
  close(): Promise<void>;
}

/** Canonical JSON (object keys sorted at every level), so a hash does not depend on key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function requestHash(body: unknown): string {
  return createHash('sha256').update(canonical(body)).digest('hex');
}

/** What a request asked, readable: the image replaced by its digest. */
export function describeRequest(body: unknown): Recording['request'] {
  const b = (body ?? {}) as { model?: unknown; messages?: Array<{ content?: unknown }> };
  const content = b.messages?.[0]?.content;
  const parts = Array.isArray(content) ? (content as Array<{ type?: string; text?: string; image_url?: { url?: string } }>) : [];
  const prompt = typeof content === 'string' ? content : parts.find((p) => p.type === 'text')?.text ?? '';
  const url = parts.find((p) => p.type === 'image_url')?.image_url?.url;
  const base64 = url?.slice(url.indexOf(',') + 1);
  return { model: String(b.model), prompt, ...(base64 ? { imageSha256: createHash('sha256').update(Buffer.from(base64, 'base64')).digest('hex') } : {}) };
}

export function loadRecordings(file: string): Recording[] {
  return JSON.parse(readFileSync(file, 'utf8')) as Recording[];
}

export async function startLlmReplayServer(recordings: readonly Recording[], options: { requireAuthorization?: string } = {}): Promise<LlmReplayServer> {
  const byHash = new Map(recordings.map((r) => [r.hash, { recording: r, served: 0 }]));
  const log: ReplayLogEntry[] = [];
  const hanging = new Set<ServerResponse>();
  const fail = (res: ServerResponse, status: number, message: string, type: string): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message, type } }));
  };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      fail(res, 404, `llm-replay-server: only POST /v1/chat/completions is served, not ${req.method ?? ''} ${req.url ?? ''}`, 'not_found');
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      fail(res, 400, 'llm-replay-server: the request body is not JSON', 'invalid_request_error');
      return;
    }
    const hash = requestHash(body);
    const authorization = req.headers.authorization;
    if (options.requireAuthorization !== undefined && authorization !== options.requireAuthorization) {
      log.push({ hash, status: 401, authorization });
      fail(res, 401, 'llm-replay-server: missing or wrong API key', 'authentication_error');
      return;
    }
    const entry = byHash.get(hash);
    if (!entry) {
      log.push({ hash, status: 400, authorization });
      const asked = describeRequest(body);
      fail(res, 400, `llm-replay-server: no recording for request ${hash} (model ${asked.model}, prompt ${JSON.stringify(asked.prompt)}, image sha256 ${asked.imageSha256 ?? 'none'}); add one to the recordings`, 'replay_miss');
      return;
    }
    const { responses } = entry.recording;
    const response = responses[Math.min(entry.served, responses.length - 1)] as ReplayResponse;
    entry.served++;
    if ('hang' in response) {
      log.push({ hash, status: 'hang', authorization });
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    log.push({ hash, status: response.status, authorization });
    const text = 'text' in response ? response.text : JSON.stringify(response.body);
    res.writeHead(response.status, { 'content-type': 'application/json', ...response.headers }).end(text);
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => fail(res, 500, `llm-replay-server: ${(err as Error).message}`, 'server_error'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    log,
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
