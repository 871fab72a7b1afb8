// Answers an LLM already gave, on disk, keyed by (image digest, model, prompt, sampling parameters): a rerun
// of the same captioning asks the endpoint nothing for the images it already answered, so a job that stopped
// half-way resumes where it stopped. One JSON file per answer, written beside its final name and renamed, so
// a job killed mid-write leaves no half entry. Only answers are cached, never failures.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChatAnswer, SamplingParameters } from './chat-completions.js';

export interface CacheKeyParts extends SamplingParameters {
  imageDigest: string;
  model: string;
  prompt: string;
}

export type CachedAnswer = Omit<ChatAnswer, 'requests'>;

export function cacheKey(parts: CacheKeyParts): string {
  const { imageDigest, model, prompt, maxTokens, temperature, seed } = parts;
  return createHash('sha256').update(JSON.stringify([imageDigest, model, prompt, maxTokens, temperature, seed])).digest('hex');
}

export class ResponseCache {
  constructor(readonly dir: string) {}

  private path(key: string): string {
    return join(this.dir, key.slice(0, 2), `${key}.json`);
  }

  /** The cached answer, or undefined when there is none or the entry is unreadable (it is then asked again). */
  async get(key: string): Promise<CachedAnswer | undefined> {
    let text: string;
    try {
      text = await readFile(this.path(key), 'utf8');
    } catch {
      return undefined;
    }
    try {
      const o = JSON.parse(text) as Partial<CachedAnswer>;
      if (typeof o.raw !== 'string' || typeof o.latencyMs !== 'number') return undefined;
      return { raw: o.raw, latencyMs: o.latencyMs, promptTokens: o.promptTokens ?? 0, completionTokens: o.completionTokens ?? 0 };
    } catch {
      return undefined;
    }
  }

  async put(key: string, answer: CachedAnswer): Promise<void> {
    const file = this.path(key);
    await mkdir(join(this.dir, key.slice(0, 2)), { recursive: true });
    const partial = `${file}.partial-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const { raw, latencyMs, promptTokens, completionTokens } = answer;
    await writeFile(partial, `${JSON.stringify({ raw, latencyMs, promptTokens, completionTokens })}\n`);
    await rename(partial, file);
  }
}
