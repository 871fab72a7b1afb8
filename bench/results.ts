// The shape every benchmark reports (one figure per measured quantity, with the baseline measured in the
// same run and the ratio between them), and the few helpers several benchmarks share.
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BackendName } from '../trainer-image/backend.js';

export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** The baseline measured in the same run (null where a figure has none, e.g. a count that must be 0). */
  baseline: number | null;
  /** value / baseline (null without a baseline). */
  ratio: number | null;
  /** The target from design.md, in words, e.g. "<= 1 %". */
  target: string;
}

export type Benchmark = (args: string[]) => Promise<Figure[]>;

export function figure(name: string, value: number, unit: string, baseline: number | null, target: string): Figure {
  return { name, value, unit, baseline, ratio: baseline ? value / baseline : null, target };
}

export function writeResults(name: string, figures: Figure[]): void {
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}${name}.json`, `${JSON.stringify({ figures }, null, 2)}\n`);
  const rows = figures.map((f) =>
    [f.name, `${round(f.value)} ${f.unit}`, f.baseline === null ? '-' : `${round(f.baseline)} ${f.unit}`, f.ratio === null ? '-' : round(f.ratio), f.target].join(' | '),
  );
  process.stdout.write(`figure | ours | baseline | ratio | target\n${rows.join('\n')}\nwrote bench/results/${name}.json\n`);
}

function round(x: number): string {
  return Math.abs(x) >= 100 ? x.toFixed(0) : x.toPrecision(3);
}

/** The middle value, or the mean of the two middle ones for an even count; 0 for none. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/**
 * Whether TensorFlow.js backend `name` loads on this machine (it is then the active one); says why not on
 * stderr. Imported lazily, so the benchmarks that use no TensorFlow.js do not load it.
 */
export async function backendLoads(name: BackendName, bench: string): Promise<boolean> {
  const { initBackend } = await import('../trainer-image/backend.js');
  try {
    await initBackend(name);
    return true;
  } catch (err) {
    process.stderr.write(`${bench} bench: backend ${name} not available, skipped (${(err as Error).message.split('\n')[0] ?? ''})\n`);
    return false;
  }
}
