// The end of a run with spec.evaluation.llm: rank 0 asks the LLM endpoint to caption the same validation
// images the trained decoder captioned, and writes llm-captions.json into the outputs, where the report
// reads it as one more model. The API key comes from the environment (the operator maps the Secret there)
// and goes nowhere else. Answers are cached in the work directory, so a local relaunch after a failure here
// asks only for the images still missing (a pod's is an emptyDir: a new gang asks again); a failure fails
// the end of the run like a report that cannot be built.
import { join } from 'node:path';
import { LLM_API_KEY_ENV } from '../../lib/api/schema.js';
import type { LlmSpec } from '../../lib/api/types.js';
import type { Logger } from '../../lib/telemetry/logger.js';
import type { DatasetItem } from '../data/dataset.js';
import { captionImages, writeLlmCaptions, type LlmStats } from '../eval/llm/caption-images.js';
import { ChatCompletionsCaptioner } from '../eval/llm/captioner.js';
import { ResponseCache } from '../eval/llm/response-cache.js';
import { workDir } from './features.js';

export const LLM_CAPTIONS_FILE = 'llm-captions.json';

export async function llmEvaluation(spec: LlmSpec, items: readonly DatasetItem[], outputDir: string, log: Logger): Promise<{ file: string; stats: LlmStats }> {
  const captioner = new ChatCompletionsCaptioner({
    endpoint: spec.endpoint,
    model: spec.model,
    apiKey: process.env[LLM_API_KEY_ENV],
    prompt: spec.prompt,
    timeoutMs: spec.timeoutSeconds * 1000,
    cache: new ResponseCache(join(workDir(), 'llm-responses')),
    log,
  });
  const { endpoint, model } = captioner.description;
  log.info({ endpoint, model, images: items.length, concurrency: spec.concurrency }, `captioning ${items.length} validation images with ${model} at ${endpoint}`);
  const result = await captionImages(items, captioner, { concurrency: spec.concurrency, log });
  const file = await writeLlmCaptions(join(outputDir, LLM_CAPTIONS_FILE), result.file);
  const stats = result.file.captioner.stats;
  log.info({ endpoint, model, file, ...stats }, `LLM captions: ${stats.captioned} of ${stats.images} images (${stats.cacheHits} cached, ${stats.failed} failed)`);
  if (result.stoppedBy) throw result.stoppedBy;
  return { file, stats };
}
