// Why a request to an OpenAI-compatible endpoint failed, as one typed error that names the endpoint and the
// cause. `fatal` causes stop a whole captioning job at once (no other image can do better: the endpoint is
// unreachable, refuses the key, has no such model or no vision); the others cost one image, which a rerun
// asks again for (answers that did arrive are cached).
import { CaptionrunError } from '../../../lib/errors.js';
import { ExitCode } from '../../../lib/exit-codes.js';

export const LLM_FAILURE_CAUSES = [
  'unreachable',
  'timeout',
  'rate-limited',
  'server-error',
  'unauthorized',
  'not-found',
  'rejects-images',
  'rejected',
  'error-object',
  'malformed',
  'empty-answer',
] as const;

export type LlmFailureCause = (typeof LLM_FAILURE_CAUSES)[number];

const FATAL: ReadonlySet<LlmFailureCause> = new Set(['unreachable', 'unauthorized', 'not-found', 'rejects-images']);
/** Causes the user fixes in the spec or command line (wrong key, model or endpoint): relaunching cannot help. */
const CONFIGURATION: ReadonlySet<LlmFailureCause> = new Set(['unauthorized', 'not-found', 'rejects-images']);

const HINTS: Partial<Record<LlmFailureCause, string>> = {
  unreachable: 'check the endpoint URL and that the server is running',
  timeout: 'raise the timeout (--timeout, spec.evaluation.llm.timeoutSeconds) or lower the concurrency',
  'rate-limited': 'lower the concurrency; rerun to retry the images that failed (answers already received are cached)',
  unauthorized: 'check the API key (CAPTIONRUN_LLM_API_KEY, spec.evaluation.llm.apiKeySecret)',
  'not-found': 'the endpoint is the base URL ending in /v1 and the model must be one the server lists at /v1/models',
  'rejects-images': 'serve a vision-language model (e.g. llava, qwen2.5-vl, gemma3 with its mmproj)',
};

export class LlmError extends CaptionrunError {
  readonly llmCause: LlmFailureCause;
  readonly endpoint: string;
  readonly fatal: boolean;

  constructor(endpoint: string, llmCause: LlmFailureCause, message: string, cause?: unknown) {
    super(`${endpoint}: ${llmCause}: ${message}`, { hint: HINTS[llmCause], cause }, CONFIGURATION.has(llmCause) ? ExitCode.InvalidInput : ExitCode.Failure);
    this.llmCause = llmCause;
    this.endpoint = endpoint;
    this.fatal = FATAL.has(llmCause);
  }
}
