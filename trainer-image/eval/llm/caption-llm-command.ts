// `captionrun caption-llm`: captions a dataset split with a vision-language model behind an OpenAI-compatible
// endpoint (vLLM, Ollama, llama.cpp's server) and writes a captions file that `captionrun evaluate` and
// `captionrun report` compare with the trained LSTM and GRU captioners.
import { join } from 'node:path';
import { DATASET_FORMATS, DEFAULT_LLM_PROMPT, LLM_API_KEY_ENV } from '../../../lib/api/schema.js';
import { parseCommandArgs, type Command } from '../../../lib/cli/command.js';
import { progressReporter } from '../../../lib/cli/progress.js';
import { UsageError } from '../../../lib/errors.js';
import { ExitCode } from '../../../lib/exit-codes.js';
import { createLogger } from '../../../lib/telemetry/logger.js';
import { DEFAULT_VALIDATION_SPLIT, openDataset } from '../../data/open-dataset.js';
import { workDir } from '../../train/features.js';
import { captionImages, writeLlmCaptions, type LlmStats } from './caption-images.js';
import { ChatCompletionsCaptioner, DEFAULT_SAMPLING } from './captioner.js';
import { ResponseCache } from './response-cache.js';

const FORMATS = DATASET_FORMATS.filter((f) => f !== 'synthetic');

export const captionLlmCommand: Command = {
  name: 'caption-llm',
  usage: `Usage: captionrun caption-llm --endpoint URL --model M --dataset DIR_OR_URI -o captions.json [options]

Sends each image of a dataset split to an OpenAI-compatible chat-completions endpoint (vLLM, Ollama,
llama.cpp's server) as a base64 data URL in an image_url content part, with temperature 0 and a fixed
seed, and writes the answers cut to one sentence (the raw answer kept beside each) with the split's
reference captions. \`captionrun evaluate --candidates\` and \`captionrun report\` read the file as one more model.
Answers are cached by (image digest, model, prompt, parameters): a rerun asks only for what is missing.
The API key, if the endpoint needs one, is read from $${LLM_API_KEY_ENV} (never a flag: process listings show flags).

Options:
  --endpoint URL        base URL of the API, ending in /v1 (vLLM http://HOST:8000/v1, Ollama
                        http://HOST:11434/v1, llama.cpp http://HOST:8080/v1) (required)
  --model M             the model name the server serves (required)
  --dataset SOURCE      dataset directory, file or s3://bucket/prefix (required; S3 through AWS_* variables)
  --format F            ${FORMATS.join(' | ')} (default flickr8k)
  --split NAME          the split to caption (default the format's validation split: ${FORMATS.map((f) => `${DEFAULT_VALIDATION_SPLIT[f]} for ${f}`).join(', ')})
  --limit N             only the first N images of the split
  -o, --output FILE     where to write the captions (required)
  --prompt TEXT         (default "${DEFAULT_LLM_PROMPT}")
  --max-tokens N        answer length limit (default ${DEFAULT_SAMPLING.maxTokens})
  --seed N              sampling seed sent with each request (default ${DEFAULT_SAMPLING.seed})
  --concurrency N       requests in flight at once (default 4)
  --timeout SECONDS     per request (default 60)
  --retries N           retries of a request after a 429, a 5xx, a timeout or a refused connection (default 3)
  --cache DIR           response cache (default $CAPTIONRUN_CACHE/llm-responses or .captionrun/llm-responses)
  --no-cache            ask the endpoint for every image, caching nothing
  -h, --help            show this help

Progress is a bar on a terminal and JSON log lines on stderr otherwise; the summary goes to stdout.

Exit codes: 0 every image captioned; 1 some images failed or the endpoint could not be reached (the file
holds what was captioned: rerun to ask for the rest); 2 usage; 3 an unreadable dataset, or an endpoint that
refuses the key, has no such model or a model that takes no images.
`,
  async run(argv) {
    const args = parseCommandArgs(this, argv, {
      endpoint: { type: 'string' },
      model: { type: 'string' },
      dataset: { type: 'string' },
      format: { type: 'string', default: 'flickr8k' },
      split: { type: 'string' },
      limit: { type: 'string' },
      output: { type: 'string', short: 'o' },
      prompt: { type: 'string' },
      'max-tokens': { type: 'string' },
      seed: { type: 'string' },
      concurrency: { type: 'string', default: '4' },
      timeout: { type: 'string', default: '60' },
      retries: { type: 'string', default: '3' },
      cache: { type: 'string' },
      'no-cache': { type: 'boolean', default: false },
    });
    if (!args) return ExitCode.Ok;
    const v = args.values;
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0] ?? ''}"`, { hint: 'see `captionrun caption-llm --help`' });
    for (const flag of ['endpoint', 'model', 'dataset', 'output'] as const) {
      if (!v[flag]) throw new UsageError(`--${flag} is required`, { hint: 'see `captionrun caption-llm --help`' });
    }
    const endpoint = v.endpoint as string;
    if (!/^https?:\/\/.+/.test(endpoint)) throw new UsageError(`--endpoint must be an http:// or https:// URL, got "${endpoint}"`);
    const format = FORMATS.find((f) => f === v.format);
    if (!format) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, got "${v.format}"`);
    const limit = v.limit === undefined ? undefined : integer('--limit', v.limit, 1);
    const concurrency = integer('--concurrency', v.concurrency, 1);
    const timeoutSeconds = integer('--timeout', v.timeout, 1);
    const retries = integer('--retries', v.retries, 0);
    const parameters = {
      maxTokens: v['max-tokens'] === undefined ? DEFAULT_SAMPLING.maxTokens : integer('--max-tokens', v['max-tokens'], 1),
      temperature: 0,
      seed: v.seed === undefined ? DEFAULT_SAMPLING.seed : integer('--seed', v.seed, 0),
    };
    const log = createLogger({ component: 'caption-llm' });
    const ds = await openDataset({ format, source: v.dataset }, { s3: {} });
    for (const p of ds.problems) log.warn(p, `dataset: ${p.file ?? p.id}: ${p.message}`);
    const items = ds.items(v.split ?? DEFAULT_VALIDATION_SPLIT[format]).slice(0, limit);
    const captioner = new ChatCompletionsCaptioner({
      endpoint,
      model: v.model as string,
      apiKey: process.env[LLM_API_KEY_ENV],
      prompt: v.prompt,
      parameters,
      timeoutMs: timeoutSeconds * 1000,
      maxAttempts: retries + 1,
      cache: v['no-cache'] ? undefined : new ResponseCache(v.cache ?? join(workDir(), 'llm-responses')),
      log,
    });
    const { model } = captioner.description;
    log.info({ endpoint: captioner.description.endpoint, model, images: items.length, source: ds.source, concurrency }, `captioning ${items.length} images with ${model} at ${captioner.description.endpoint}`);
    const progress = progressReporter<{ done: number; failed: number; cacheHits: number }>({
      name: 'caption-llm',
      total: items.length,
      unit: 'images',
      done: (p) => p.done,
      detail: (p) => `(${p.cacheHits} cached, ${p.failed} failed)`,
      fields: (p) => ({ endpoint: captioner.description.endpoint, model, ...p }),
      log,
    });
    const result = await captionImages(items, captioner, { concurrency, onProgress: progress.update, log });
    progress.finish();
    const written = await writeLlmCaptions(v.output as string, result.file);
    const stats = result.file.captioner.stats;
    log.info({ endpoint: captioner.description.endpoint, model, output: written, ...stats }, 'wrote LLM captions');
    process.stdout.write(summary(stats, `${model} at ${captioner.description.endpoint}`, written));
    if (result.stoppedBy) throw result.stoppedBy;
    return stats.failed > 0 ? ExitCode.Failure : ExitCode.Ok;
  },
};

function summary(s: LlmStats, who: string, file: string): string {
  const latency = s.latencyMs ? `latency p50 ${s.latencyMs.p50} ms, p95 ${s.latencyMs.p95} ms; ` : '';
  const failures = Object.entries(s.failuresByCause).map(([cause, n]) => `${n} ${cause}`);
  const unasked = s.images - s.captioned - s.failed;
  return (
    `${s.captioned} of ${s.images} images captioned by ${who} (${s.cacheHits} from the cache, ${s.requests} requests); ` +
    `${latency}tokens ${s.tokens.prompt} prompt + ${s.tokens.completion} completion\n` +
    `${failures.length > 0 ? `failed: ${failures.join(', ')}\n` : ''}${unasked > 0 ? `not asked (stopped): ${unasked}\n` : ''}wrote ${file}\n`
  );
}

function integer(flag: string, raw: string, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} must be an integer >= ${min}, got "${raw}"`);
  return n;
}
