// Captions a list of dataset images with a Captioner, at most `concurrency` requests at a time, and returns
// what the comparison reads: the captions (scored one-sentence form and raw answer) with each image's
// references, the images that failed and why, and the cost: latency p50/p95, tokens, requests, cache hits.
// A fatal failure (unreachable endpoint, refused key, unknown model, no vision) or a run of failures in a row
// stops the job; what was captioned until then is still returned, for the caller to write before it fails.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { CaptionrunError } from '../../../lib/errors.js';
import type { Logger } from '../../../lib/telemetry/logger.js';
import type { DatasetItem } from '../../data/dataset.js';
import { quantile } from '../../train/resource-log.js';
import { imagePayload, type Captioner } from './captioner.js';
import { LlmError } from './llm-errors.js';

/** Failure causes of one image: the endpoint's (llm-errors.ts), or an image that could not be read. */
export type ImageFailureCause = LlmError['llmCause'] | 'unreadable-image';

export interface LlmCaptionEntry {
  id: string;
  caption: string;
  references: string[];
  raw: string;
}

export interface LlmStats {
  images: number;
  captioned: number;
  failed: number;
  cacheHits: number;
  /** HTTP requests sent by this job, retries included (cache hits send none). */
  requests: number;
  /** Over the captioned images; a cached caption counts with the latency it had when it was asked. */
  latencyMs: { p50: number; p95: number } | null;
  tokens: { prompt: number; completion: number };
  failuresByCause: Partial<Record<ImageFailureCause, number>>;
  wallSeconds: number;
}

/** The captions file `caption-llm` and the trainer write; the report and `evaluate` read it as one more model. */
export interface LlmCaptionsFile {
  captioner: Captioner['description'] & { stats: LlmStats };
  captions: LlmCaptionEntry[];
  failures: Array<{ id: string; cause: ImageFailureCause; message: string }>;
}

export interface CaptionImagesOptions {
  concurrency: number;
  /** Failures in a row, with no caption between, that stop the job (default 5). */
  maxConsecutiveFailures?: number;
  onProgress?: (p: { done: number; total: number; failed: number; cacheHits: number }) => void;
  log?: Logger;
}

export interface CaptionImagesResult {
  file: LlmCaptionsFile;
  /** Why the job stopped before every image was asked; the file then holds what was done. */
  stoppedBy?: CaptionrunError;
}

export async function captionImages(items: readonly DatasetItem[], captioner: Captioner, o: CaptionImagesOptions): Promise<CaptionImagesResult> {
  const started = performance.now();
  const { endpoint, model } = captioner.description;
  const results = new Map<string, LlmCaptionEntry>();
  const failures: LlmCaptionsFile['failures'] = [];
  const latencies: number[] = [];
  const stats = { cacheHits: 0, requests: 0, prompt: 0, completion: 0 };
  const maxInARow = o.maxConsecutiveFailures ?? 5;
  let inARow = 0;
  let next = 0;
  let done = 0;
  let stoppedBy: CaptionrunError | undefined;

  const one = async (item: DatasetItem): Promise<void> => {
    try {
      const c = await captioner.caption(await imagePayload(await item.image()));
      results.set(item.id, { id: item.id, caption: c.caption, references: item.captions, raw: c.raw });
      latencies.push(c.latencyMs);
      stats.requests += c.requests;
      stats.prompt += c.promptTokens;
      stats.completion += c.completionTokens;
      if (c.cached) stats.cacheHits++;
      inARow = 0;
    } catch (err) {
      const cause: ImageFailureCause = err instanceof LlmError ? err.llmCause : 'unreadable-image';
      const message = err instanceof CaptionrunError ? err.describe() : (err as Error).message;
      failures.push({ id: item.id, cause, message });
      o.log?.warn({ image: item.id, endpoint, model, cause }, `LLM caption failed for ${item.id}: ${message}`);
      inARow++;
      if (err instanceof LlmError && err.fatal) stoppedBy ??= err;
      else if (inARow >= maxInARow && cause !== 'unreadable-image') {
        stoppedBy ??= new CaptionrunError(`stopped after ${inARow} images in a row failed; the last: ${message}`, { hint: 'answers received so far are cached: rerun to continue' }, err instanceof LlmError ? err.exitCode : undefined);
      }
    }
    done++;
    o.onProgress?.({ done, total: items.length, failed: failures.length, cacheHits: stats.cacheHits });
  };
  const worker = async (): Promise<void> => {
    while (stoppedBy === undefined && next < items.length) await one(items[next++] as DatasetItem);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency, items.length)) }, worker));

  // In dataset order, whatever order the answers arrived in.
  const captions = items.flatMap((it) => results.get(it.id) ?? []);
  const order = new Map(items.map((it, i) => [it.id, i]));
  failures.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
  const failuresByCause: LlmStats['failuresByCause'] = {};
  for (const f of failures) failuresByCause[f.cause] = (failuresByCause[f.cause] ?? 0) + 1;
  const round = (x: number): number => Math.round(x * 10) / 10;
  const file: LlmCaptionsFile = {
    captioner: {
      ...captioner.description,
      stats: {
        images: items.length,
        captioned: captions.length,
        failed: failures.length,
        cacheHits: stats.cacheHits,
        requests: stats.requests,
        latencyMs: latencies.length > 0 ? { p50: round(quantile(latencies, 0.5)), p95: round(quantile(latencies, 0.95)) } : null,
        tokens: { prompt: stats.prompt, completion: stats.completion },
        failuresByCause,
        wallSeconds: round((performance.now() - started) / 1000),
      },
    },
    captions,
    failures,
  };
  return stoppedBy ? { file, stoppedBy } : { file };
}

/** Writes the captions file beside its final name and renames it, so a reader never sees half of one. */
export async function writeLlmCaptions(file: string, captions: LlmCaptionsFile): Promise<string> {
  const target = resolve(file);
  await mkdir(dirname(target), { recursive: true });
  const partial = `${target}.partial-${process.pid}`;
  await writeFile(partial, `${JSON.stringify(captions, null, 1)}\n`);
  await rename(partial, target);
  return target;
}
