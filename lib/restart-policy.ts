// spec.restartPolicy, the one contract the operator and the local supervisor both follow: which exit codes
// are worth a relaunch, and how long to wait before it.
import type { RestartPolicySpec } from './api/types.js';
import { PERMANENT_EXIT_CODES } from './exit-codes.js';

/** retryableExitCodes when the spec lists them; otherwise every code but the trainer's permanent ones. */
export function isRetryableExitCode(code: number, policy: Pick<RestartPolicySpec, 'retryableExitCodes'>): boolean {
  return policy.retryableExitCodes ? policy.retryableExitCodes.includes(code) : !PERMANENT_EXIT_CODES.includes(code);
}

/** backoffSeconds before the first counted failure's relaunch, doubling per failure, capped at maxBackoffSeconds. */
export function relaunchDelaySeconds(failures: number, policy: Pick<RestartPolicySpec, 'backoffSeconds' | 'maxBackoffSeconds'>): number {
  if (failures <= 0) return 0;
  return Math.min(policy.backoffSeconds * 2 ** Math.min(failures - 1, 30), policy.maxBackoffSeconds);
}
