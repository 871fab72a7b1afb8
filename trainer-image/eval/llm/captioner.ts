// What the comparison needs from a captioner: one caption per image, with what it cost. The one
// implementation asks an OpenAI-compatible chat-completions endpoint (vLLM, Ollama, llama.cpp's server)
// with the image as a base64 data URL in an `image_url` content part, and answers from the response cache
// when the same image was already asked with the same model, prompt and parameters.
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { DEFAULT_LLM_PROMPT } from '../../../lib/api/schema.js';
import { InvalidInputError } from '../../../lib/errors.js';
import type { ImageSource } from '../../data/dataset.js';
import { ChatCompletionsClient, type ChatCompletionsOptions, type SamplingParameters } from './chat-completions.js';
import { LlmError } from './llm-errors.js';
import { oneSentence } from './one-sentence.js';
import { cacheKey, type ResponseCache } from './response-cache.js';

export const DEFAULT_SAMPLING: SamplingParameters = { maxTokens: 64, temperature: 0, seed: 1 };

export interface ImagePayload {
  /** SHA-256 of `bytes`, hex: the image's part of the cache key. */
  digest: string;
  mimeType: 'image/jpeg' | 'image/png' | 'image/webp';
  bytes: Buffer;
}

export interface Caption {
  /** The answer cut to one sentence (one-sentence.ts): what is scored. */
  caption: string;
  /** The answer as the model gave it. */
  raw: string;
  latencyMs: number;
  promptTokens: number;
  completionTokens: number;
  /** HTTP requests this caption took now: 0 when it came from the cache. */
  requests: number;
  cached: boolean;
}

export interface Captioner {
  /** Where the captions come from, for logs and the captions file: no secrets. */
  readonly description: { kind: 'openai-chat-completions'; endpoint: string; model: string; prompt: string; parameters: SamplingParameters };
  caption(image: ImagePayload): Promise<Caption>;
}

export interface ChatCaptionerOptions extends ChatCompletionsOptions {
  prompt?: string;
  parameters?: Partial<SamplingParameters>;
  cache?: ResponseCache;
}

export class ChatCompletionsCaptioner implements Captioner {
  readonly description: Captioner['description'];
  private readonly client: ChatCompletionsClient;
  private readonly cache?: ResponseCache;

  constructor(o: ChatCaptionerOptions) {
    this.client = new ChatCompletionsClient(o);
    this.cache = o.cache;
    this.description = { kind: 'openai-chat-completions', endpoint: this.client.endpoint, model: o.model, prompt: o.prompt ?? DEFAULT_LLM_PROMPT, parameters: { ...DEFAULT_SAMPLING, ...o.parameters } };
  }

  async caption(image: ImagePayload): Promise<Caption> {
    const { model, prompt, parameters } = this.description;
    const key = cacheKey({ imageDigest: image.digest, model, prompt, ...parameters });
    const hit = await this.cache?.get(key);
    if (hit) return this.normalised({ ...hit, requests: 0 }, true);
    const answer = await this.client.complete(
      [
        { type: 'text', text: prompt },
        { type: 'image_url', image_url: { url: `data:${image.mimeType};base64,${image.bytes.toString('base64')}` } },
      ],
      parameters,
    );
    const caption = this.normalised(answer, false);
    // Cached only once it proved usable: an empty answer is asked again on the next run.
    await this.cache?.put(key, answer);
    return caption;
  }

  private normalised(answer: Omit<Caption, 'caption' | 'cached'>, cached: boolean): Caption {
    const caption = oneSentence(answer.raw);
    if (caption === '') throw new LlmError(this.client.endpoint, 'empty-answer', `model "${this.description.model}" answered no sentence: ${JSON.stringify(answer.raw.slice(0, 200))}`);
    return { ...answer, caption, cached };
  }
}

/** A dataset image as the endpoint gets it: encoded files as they are, rendered scenes as PNG. */
export async function imagePayload(source: ImageSource): Promise<ImagePayload> {
  const bytes = source.kind === 'raw' ? await sharp(source.data, { raw: { width: source.width, height: source.height, channels: source.channels } }).png().toBuffer() : source.data;
  return { digest: createHash('sha256').update(bytes).digest('hex'), mimeType: mimeOf(bytes, source.kind === 'encoded' ? source.path : 'rendered scene'), bytes };
}

function mimeOf(bytes: Buffer, where: string): ImagePayload['mimeType'] {
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return 'image/jpeg';
  if (bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'image/png';
  if (bytes.subarray(0, 4).toString('latin1') === 'RIFF' && bytes.subarray(8, 12).toString('latin1') === 'WEBP') return 'image/webp';
  throw new InvalidInputError('not a JPEG, PNG or WebP image', { file: where });
}
