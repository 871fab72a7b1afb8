// `npm run bench -- eval [--images N] [--seed S]`: BLEU-1..4, ROUGE-L and CIDEr-D on N images x 5 references
// (seeded random captions), ours and the COCO caption toolkit (pycocoevalcap 1.2, Python + its PTBTokenizer
// jar) on the same data in one run. The toolkit's times are measured inside its own process, so Python and
// JVM start-up and the JSON hand-over are not charged to it; the scores must agree to 4 decimals.
import { parseArgs } from 'node:util';
import { bleuTokenized } from '../trainer-image/eval/bleu.js';
import { tokenizeSet } from '../trainer-image/eval/captions.js';
import { ciderD } from '../trainer-image/eval/cider.js';
import { rougeL } from '../trainer-image/eval/rouge.js';
import { randomCaptions } from '../test/fixtures/eval-random-captions.js';
import { cocoScores, toRecord } from '../test/reference/coco-eval.js';
import { figure, type Figure } from './results.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

function timed<T>(fn: () => T, reps: number): { ms: number; value: T } {
  let value = fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    value = fn();
    times.push(performance.now() - t);
  }
  return { ms: median(times), value };
}

export default async function evalBench(argv: string[]): Promise<Figure[]> {
  const { values } = parseArgs({ args: argv, options: { images: { type: 'string', default: '5000' }, seed: { type: 'string', default: '42' } } });
  const images = Number(values.images);
  const { refs, cands } = randomCaptions(Number(values.seed), images, 5);
  process.stderr.write(`eval bench: ${images} images x 5 references; running pycocoevalcap ...\n`);
  const wall = performance.now();
  const toolkit = cocoScores(toRecord(refs), toRecord(new Map([...cands].map(([k, v]) => [k, [v]]))));
  const toolkitWallMs = performance.now() - wall;
  process.stderr.write('eval bench: running ours ...\n');
  const reps = 3;
  const tok = timed(() => tokenizeSet(refs, cands), reps);
  const bleu = timed(() => bleuTokenized(tok.value), reps);
  const rouge = timed(() => rougeL(tok.value), reps);
  const cider = timed(() => ciderD(tok.value), reps);
  const ours = [bleu.value.corpus.bleu1, bleu.value.corpus.bleu2, bleu.value.corpus.bleu3, bleu.value.corpus.bleu4, rouge.value.rougeL, cider.value.ciderD];
  const theirs = [...toolkit.bleu, toolkit.rouge, toolkit.cider];
  const maxDiff = Math.max(...ours.map((v, i) => Math.abs(v - (theirs[i] ?? Number.NaN))));
  const s = (k: string): number => 1000 * (toolkit.seconds[k] ?? Number.NaN);
  const oursTotal = tok.ms + bleu.ms + rouge.ms + cider.ms;
  const toolkitTotal = s('tokenize') + s('bleu') + s('rouge') + s('cider');
  return [
    figure(`tokenise ${images * 6} captions (PTB rules)`, tok.ms, 'ms', s('tokenize'), 'faster than the toolkit (JVM PTBTokenizer)'),
    figure(`BLEU-1..4 score, ${images} x 5`, bleu.ms, 'ms', s('bleu'), 'faster than the toolkit'),
    figure(`ROUGE-L score, ${images} x 5`, rouge.ms, 'ms', s('rouge'), 'faster than the toolkit'),
    figure(`CIDEr-D score, ${images} x 5`, cider.ms, 'ms', s('cider'), 'faster than the toolkit'),
    figure('tokenise + BLEU + ROUGE-L + CIDEr-D', oursTotal, 'ms', toolkitTotal, 'faster than the toolkit'),
    figure('toolkit end to end incl. Python/JVM start and JSON (baseline only)', toolkitWallMs, 'ms', null, 'context'),
    figure('BLEU-4', bleu.value.corpus.bleu4, '', toolkit.bleu[3] ?? Number.NaN, 'equal to 4 decimals'),
    figure('CIDEr-D', cider.value.ciderD, '', toolkit.cider, 'equal to 4 decimals'),
    figure('max |ours - toolkit| over BLEU-1..4, ROUGE-L, CIDEr-D', maxDiff, '', null, '< 0.00005 (equal to 4 decimals)'),
  ];
}
