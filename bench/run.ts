// `npm run bench -- NAME [args]`: runs bench/NAME.ts, whose default export measures ours and a baseline
// side by side in one run and returns the figures; they are printed and written to bench/results/NAME.json.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { writeResults, type Benchmark } from './results.js';

const dir = fileURLToPath(new URL('.', import.meta.url));
const available = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && !['run.ts', 'results.ts'].includes(f))
  .map((f) => f.replace(/\.ts$/, ''));

const [name, ...args] = process.argv.slice(2);
if (!name || name === '--help' || name === '-h') {
  process.stdout.write(`Usage: npm run bench -- NAME [args]\n\nBenchmarks: ${available.join(', ') || '(none yet)'}\n`);
  process.exit(name ? 0 : 2);
}
if (!available.includes(name)) {
  process.stderr.write(`unknown benchmark "${name}"; available: ${available.join(', ')}\n`);
  process.exit(2);
}
const mod = (await import(`./${name}.ts`)) as { default: Benchmark };
const figures = await mod.default(args);
writeResults(name, figures);
// Whatever a benchmark leaves open (the training feature reader's worker thread, a backend's pool) must not
// keep the process alive once its figures are written.
process.exit(0);
