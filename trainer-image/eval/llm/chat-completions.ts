// One client for the OpenAI chat-completions API as vLLM, Ollama and llama.cpp's server speak it: a POST to
// <endpoint>/chat/completions with `stream: false`, a per-request timeout, retries with exponential backoff
// on 429, 5xx, timeouts and refused connections (honouring Retry-After), and every other failure turned into
// an LlmError that names the endpoint and the cause. The API key goes only into the Authorization header and
// is scrubbed from any server message that echoes it.
import type { Logger } from '../../../lib/telemetry/logger.js';
import { LlmError, type LlmFailureCause } from './llm-errors.js';

export type ContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };

export interface SamplingParameters {
  maxTokens: number;
  temperature: number;
  seed: number;
}

export interface ChatAnswer {
  /** The assistant message's text as the server sent it. */
  raw: string;
  promptTokens: number;
  completionTokens: number;
  /** Time of the request that answered, from sending it to its last byte (earlier failed attempts excluded). */
  latencyMs: number;
  /** HTTP requests it took, retries included. */
  requests: number;
}

export interface ChatCompletionsOptions {
  /** Base URL of the API, e.g. http://vllm:8000/v1 (requests go to <endpoint>/chat/completions). */
  endpoint: string;
  model: string;
  apiKey?: string;
  /** Per request, reading the whole answer included (default 60 s). */
  timeoutMs?: number;
  /** Requests per answer, the first included (default 4). */
  maxAttempts?: number;
  /** First backoff; doubles per retry, with jitter, up to 30 s (default 500 ms). */
  backoffMs?: number;
  /** A Retry-After longer than this ends the retries (default 120 s). */
  maxRetryAfterMs?: number;
  /** How the client waits between attempts; tests pass one that records the delays instead of waiting. */
  sleep?: (ms: number) => Promise<void>;
  log?: Logger;
}

const MAX_BACKOFF_MS = 30_000;
/** Servers' ways of saying the model has no vision (vLLM, llama.cpp, OpenAI). */
const REJECTS_IMAGES =
  /not a multimodal model|(?:does not|doesn't|do not|not) support(?:ed)?[^.]{0,40}(?:image|vision|multimodal|multi-modal)|(?:image|vision|multimodal)[^.]{0,40}(?:not supported|is only supported|unsupported)|mmproj/i;

interface Failure {
  cause: LlmFailureCause;
  message: string;
  retryable: boolean;
  /** From Retry-After, when the server said how long to wait. */
  retryAfterMs?: number;
  error?: unknown;
}

export class ChatCompletionsClient {
  readonly endpoint: string;
  readonly model: string;
  private readonly url: string;
  private readonly apiKey?: string;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly log?: Logger;

  constructor(o: ChatCompletionsOptions) {
    this.endpoint = o.endpoint.replace(/\/+$/, '');
    this.url = `${this.endpoint}/chat/completions`;
    this.model = o.model;
    this.apiKey = o.apiKey || undefined;
    this.timeoutMs = o.timeoutMs ?? 60_000;
    this.maxAttempts = Math.max(1, o.maxAttempts ?? 4);
    this.backoffMs = o.backoffMs ?? 500;
    this.maxRetryAfterMs = o.maxRetryAfterMs ?? 120_000;
    this.sleep = o.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.log = o.log;
  }

  /**
   * The request body for one user message: deterministic, so equal requests are byte-equal. The content is
   * a list of parts (text and images) or, for text alone, a string: llama-cpp-python's text-only chat
   * formats read only the string form.
   */
  body(content: string | ContentPart[], p: SamplingParameters): string {
    return JSON.stringify({ model: this.model, messages: [{ role: 'user', content }], max_tokens: p.maxTokens, temperature: p.temperature, seed: p.seed, stream: false });
  }

  /** Sends one user message and returns the assistant's answer, retrying what a retry can fix. */
  async complete(content: string | ContentPart[], p: SamplingParameters): Promise<ChatAnswer> {
    const body = this.body(content, p);
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      const outcome = await this.send(body);
      if ('raw' in outcome) return { ...outcome, latencyMs: performance.now() - started, requests: attempt };
      const last = attempt >= this.maxAttempts;
      if (!outcome.retryable || last) {
        const tries = attempt > 1 ? ` (after ${attempt} attempts)` : '';
        throw new LlmError(this.endpoint, outcome.cause, `${outcome.message}${tries}`, outcome.error);
      }
      if (outcome.retryAfterMs !== undefined && outcome.retryAfterMs > this.maxRetryAfterMs) {
        throw new LlmError(this.endpoint, outcome.cause, `${outcome.message}; the server asks to wait ${Math.ceil(outcome.retryAfterMs / 1000)} s, more than the ${this.maxRetryAfterMs / 1000} s this client waits`);
      }
      const delayMs = outcome.retryAfterMs ?? this.backoff(attempt);
      this.log?.warn({ endpoint: this.endpoint, model: this.model, cause: outcome.cause, attempt, delayMs: Math.round(delayMs) }, `LLM request failed (${outcome.cause}: ${outcome.message}); retrying in ${(delayMs / 1000).toFixed(1)} s`);
      await this.sleep(delayMs);
    }
  }

  /** Exponential backoff with "equal jitter", so concurrent requests that failed together spread out. */
  private backoff(attempt: number): number {
    const ceiling = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2 ** (attempt - 1));
    return ceiling / 2 + (Math.random() * ceiling) / 2;
  }

  private async send(body: string): Promise<Omit<ChatAnswer, 'latencyMs' | 'requests'> | Failure> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    let status: number;
    let text: string;
    let retryAfter: string | null;
    try {
      const res = await fetch(this.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
      status = res.status;
      retryAfter = res.headers.get('retry-after');
      text = await res.text();
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      if (e.name === 'TimeoutError' || e.name === 'AbortError') {
        return { cause: 'timeout', message: `no complete answer within ${this.timeoutMs / 1000} s`, retryable: true, error: err };
      }
      const why = e.cause?.code ?? e.cause?.message ?? e.message;
      return { cause: 'unreachable', message: `cannot connect (${why})`, retryable: true, error: err };
    }
    if (status === 200) return this.parseAnswer(text);
    const message = this.scrub(`HTTP ${status}: ${serverMessage(text)}`);
    const retryAfterMs = parseRetryAfter(retryAfter);
    if (REJECTS_IMAGES.test(text)) return { cause: 'rejects-images', message: `model "${this.model}" does not take images (${message})`, retryable: false };
    if (status === 429) return { cause: 'rate-limited', message, retryable: true, retryAfterMs };
    if (status === 408) return { cause: 'timeout', message, retryable: true, retryAfterMs };
    if (status >= 500) return { cause: 'server-error', message, retryable: true, retryAfterMs };
    if (status === 401 || status === 403) return { cause: 'unauthorized', message, retryable: false };
    if (status === 404) return { cause: 'not-found', message: `${message} (is "${this.model}" served at ${this.url}?)`, retryable: false };
    return { cause: 'rejected', message, retryable: false };
  }

  private parseAnswer(text: string): Omit<ChatAnswer, 'latencyMs' | 'requests'> | Failure {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return { cause: 'malformed', message: `HTTP 200 with a body that is not JSON: ${excerpt(text)}`, retryable: false };
    }
    const o = (json ?? {}) as { error?: unknown; object?: unknown; choices?: unknown; usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } };
    if (o.error !== undefined || o.object === 'error') {
      const message = this.scrub(`HTTP 200 with an error object: ${serverMessage(text)}`);
      if (REJECTS_IMAGES.test(text)) return { cause: 'rejects-images', message: `model "${this.model}" does not take images (${message})`, retryable: false };
      return { cause: 'error-object', message, retryable: false };
    }
    const choice = Array.isArray(o.choices) ? (o.choices[0] as { message?: { content?: unknown } } | undefined) : undefined;
    const content = choice?.message?.content;
    // Some servers send the content as a list of parts, like the request's.
    const raw = typeof content === 'string' ? content : Array.isArray(content) ? content.map((part) => (typeof (part as { text?: unknown }).text === 'string' ? (part as { text: string }).text : '')).join('') : undefined;
    if (raw === undefined) return { cause: 'malformed', message: `HTTP 200 without choices[0].message.content: ${excerpt(text)}`, retryable: false };
    const tokens = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
    return { raw, promptTokens: tokens(o.usage?.prompt_tokens), completionTokens: tokens(o.usage?.completion_tokens) };
  }

  private scrub(text: string): string {
    return this.apiKey ? text.split(this.apiKey).join('[redacted]') : text;
  }
}

/** The message of an error body in the shapes servers use: {error: {message}}, {error: "..."}, {message}, {detail}. */
function serverMessage(text: string): string {
  try {
    const o = JSON.parse(text) as { error?: unknown; message?: unknown; detail?: unknown };
    const e = o.error as { message?: unknown } | string | undefined;
    const message = typeof e === 'string' ? e : typeof e?.message === 'string' ? e.message : typeof o.message === 'string' ? o.message : typeof o.detail === 'string' ? o.detail : undefined;
    if (message !== undefined) return excerpt(message);
  } catch {
    // Not JSON: the text itself is the message.
  }
  return excerpt(text) || '(empty body)';
}

function excerpt(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}...` : flat;
}

/** Retry-After as delay seconds or an HTTP date (RFC 9110); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
