// Deletes old checkpoints: keeps the newest `keepLast` and the best `keepBest` by a metric, and only ever
// deletes checkpoints older than the newest one that is committed and fully verified. Checkpoints newer
// than that (a save in flight, or a corrupt one someone may want to inspect) and those in use are never touched.
import type { Logger } from '../telemetry/logger.js';
import type { CheckpointInfo, CheckpointReader } from './reader.js';

export interface RetentionPolicy {
  /** Newest valid checkpoints kept, counting the newest verified one; at least 1. */
  keepLast: number;
  /** Best checkpoints by `metric` kept besides the newest ones; 0 turns it off. */
  keepBest?: number;
  metric?: string;
  /** Whether a higher value of `metric` is better (BLEU-4) or a lower one (loss). */
  higherIsBetter?: boolean;
}

export interface RetentionResult {
  /** The newest verified checkpoint the decision was based on; undefined means nothing was deleted. */
  anchor?: string;
  kept: string[];
  deleted: string[];
}

export async function applyRetention(
  reader: CheckpointReader,
  policy: RetentionPolicy,
  options: { inUse?: readonly string[]; logger?: Logger } = {},
): Promise<RetentionResult> {
  if (!Number.isInteger(policy.keepLast) || policy.keepLast < 1) throw new RangeError(`keepLast must be an integer >= 1, got ${policy.keepLast}`);
  const names = await reader.names();
  let anchorIndex = -1;
  let anchor: CheckpointInfo | undefined;
  for (const [i, name] of names.entries()) {
    const info = await reader.verify(name);
    if (info.valid) {
      anchor = info;
      anchorIndex = i;
      break;
    }
  }
  if (!anchor) return { kept: names, deleted: [] };

  const older: CheckpointInfo[] = [];
  for (const name of names.slice(anchorIndex + 1)) older.push(await reader.inspect(name));
  // Files of older checkpoints were verified when they were newest; here their manifests rank them.
  const validOlder = older.filter((c) => c.valid);
  const keep = new Set<string>([anchor.name, ...(options.inUse ?? [])]);
  for (const c of validOlder.slice(0, policy.keepLast - 1)) keep.add(c.name);
  const { keepBest = 0, metric } = policy;
  if (keepBest > 0 && metric) {
    const sign = policy.higherIsBetter === false ? -1 : 1;
    const ranked = [anchor, ...validOlder]
      .filter((c) => typeof c.manifest?.metrics[metric] === 'number')
      .sort((a, b) => sign * ((b.manifest?.metrics[metric] ?? 0) - (a.manifest?.metrics[metric] ?? 0)) || b.step - a.step);
    for (const c of ranked.slice(0, keepBest)) keep.add(c.name);
  }
  const deleted: string[] = [];
  for (const c of older) {
    if (keep.has(c.name)) continue;
    await reader.store.deleteCheckpoint(c.name);
    deleted.push(c.name);
    options.logger?.info({ checkpoint: c.name, valid: c.valid, reason: c.reason, anchor: anchor.name }, 'retention deleted checkpoint');
  }
  return { anchor: anchor.name, kept: names.filter((n) => !deleted.includes(n)), deleted };
}
