// Exponential backoff between relaunches after counted failures: backoffSeconds, doubling per restart,
// capped at maxBackoffSeconds.
import type { RestartPolicySpec } from '../lib/api/types.js';

export function relaunchDelayMs(policy: RestartPolicySpec, restarts: number): number {
  if (restarts <= 0) return 0;
  const seconds = policy.backoffSeconds * 2 ** Math.min(restarts - 1, 30);
  return Math.min(seconds, policy.maxBackoffSeconds) * 1000;
}
