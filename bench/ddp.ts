// `npm run bench -- ddp [--nproc 1,2] [--epochs N]`: data-parallel training throughput on the quickstart
// model, the way a user runs it (`captionrun train --nproc N`): training samples per second for each
// process count, measured in one run on the same machine, and the scaling efficiency against one process.
// On a 2-core machine two processes share the cores that one process already uses for its tensor math, so
// the efficiency here says what the ring costs, not what separate GPUs would gain.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse, stringify } from 'yaml';
import { packageRoot } from '../lib/package-info.js';
import { figure, type Figure } from './results.js';

const CLI = join(packageRoot(), 'bin/captionrun');

interface Progress {
  msg?: string;
  rank?: number;
  stepsPerSecond?: number;
  allReduceSeconds?: number;
}

/** Trains the spec with `nproc` processes; returns rank 0's last progress line. */
async function trainOnce(spec: string, nproc: number, dir: string): Promise<Progress> {
  const child = spawn(process.execPath, [CLI, 'train', '--fresh', '--nproc', String(nproc), '--output', join(dir, `out-${nproc}`), spec], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, CAPTIONRUN_LOG_LEVEL: 'info' },
  });
  let last: Progress | undefined;
  let tail = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (tail + chunk).split('\n');
    tail = lines.pop() ?? '';
    for (const line of lines) {
      try {
        const entry = JSON.parse(line) as Progress;
        if (entry.rank === 0 && entry.stepsPerSecond !== undefined) last = entry;
      } catch {
        // Not a log line.
      }
    }
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0 || !last) throw new Error(`captionrun train --nproc ${nproc} exited ${code} without progress lines`);
  return last;
}

export default async function ddp(args: string[]): Promise<Figure[]> {
  const { values } = parseArgs({ args, options: { nproc: { type: 'string', default: '1,2' }, epochs: { type: 'string', default: '4' } } });
  const counts = values.nproc.split(',').map(Number);
  const dir = mkdtempSync(join(tmpdir(), 'captionrun-bench-ddp-'));
  try {
    const run = parse(readFileSync(join(packageRoot(), 'manifests/examples/quickstart.yaml'), 'utf8')) as {
      spec: { training: { epochs: number; batchSize: number }; checkpoint: { store: { local: { path: string } } } };
    };
    run.spec.training.epochs = Number(values.epochs);
    run.spec.checkpoint.store.local.path = join(dir, 'checkpoints');
    const spec = join(dir, 'quickstart.yaml');
    writeFileSync(spec, stringify(run));
    const batch = run.spec.training.batchSize;
    process.stderr.write(`ddp bench: the quickstart model, ${values.epochs} epochs, batch ${batch} per process; a first pass fills the feature cache\n`);
    await trainOnce(spec, 1, dir);
    const rates = new Map<number, { samples: number; allReduce?: number }>();
    for (const n of counts) {
      const p = await trainOnce(spec, n, dir);
      rates.set(n, { samples: (p.stepsPerSecond ?? 0) * batch * n, allReduce: p.allReduceSeconds });
      process.stderr.write(`ddp bench: ${n} process(es): ${(p.stepsPerSecond ?? 0).toFixed(2)} steps/s x ${batch * n} samples${p.allReduceSeconds !== undefined ? `, last all-reduce ${(p.allReduceSeconds * 1000).toFixed(1)} ms` : ''}\n`);
    }
    const one = rates.get(1)?.samples ?? null;
    const figures: Figure[] = [];
    for (const n of counts) {
      const r = rates.get(n) as { samples: number };
      figures.push(figure(`training samples/s, ${n} process${n > 1 ? 'es' : ''} (quickstart model)`, r.samples, 'samples/s', n === 1 ? null : one, n === 1 ? 'baseline' : `scaling efficiency = ratio / ${n}`));
      if (n > 1 && one) figures.push(figure(`scaling efficiency, ${n} processes`, r.samples / (one * n), 'fraction', null, 'as close to 1 as the cores allow (2 cores here)'));
    }
    return figures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
