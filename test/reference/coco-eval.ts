// Runs test/reference/coco_eval.py (the COCO caption toolkit, pycocoevalcap 1.2) from the tests and the eval
// benchmark. A missing python3, package or java is an error that says what to install: a cross-check that
// quietly skips would let our numbers drift from the toolkit unnoticed.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('./coco_eval.py', import.meta.url));

export type CaptionMap = Record<string, string[]>;

export interface CocoScores {
  gts: CaptionMap;
  res: CaptionMap;
  bleu: number[];
  bleu_per_image: Record<string, number[]>;
  rouge: number;
  rouge_per_image: Record<string, number>;
  cider: number;
  cider_per_image: Record<string, number>;
  seconds: Record<string, number>;
}

function run(request: unknown): unknown {
  const r = spawnSync('python3', [script], { input: JSON.stringify(request), encoding: 'utf8', maxBuffer: 1 << 30 });
  // EPIPE only means Python exited before reading all of stdin (e.g. on a failed import): report its stderr.
  if (r.error && (r.error as NodeJS.ErrnoException).code !== 'EPIPE') {
    throw new Error(`cannot run python3 (${r.error.message}); install Python 3 and \`python3 -m pip install -r test/requirements.txt\``);
  }
  if (r.status !== 0) {
    const missing = /No module named '?pycocoevalcap/.test(r.stderr)
      ? ' — pycocoevalcap is missing: `python3 -m pip install -r test/requirements.txt`'
      : /No such file or directory: 'java'/.test(r.stderr)
        ? ' — java is missing (the toolkit runs its PTBTokenizer jar): install a Java runtime'
        : '';
    throw new Error(`test/reference/coco_eval.py exited ${String(r.status)}${missing}\n${r.stderr.slice(-2000)}`);
  }
  return JSON.parse(r.stdout);
}

export function cocoScores(gts: CaptionMap, res: CaptionMap, metrics: string[] = ['bleu', 'rouge', 'cider']): CocoScores {
  return run({ gts, res, metrics }) as CocoScores;
}

/** The toolkit's tokenisation (PTBTokenizer jar + punctuation removal) of every caption. */
export function cocoTokenize(captions: CaptionMap): CaptionMap {
  return (run({ tokenize: captions }) as { tokenized: CaptionMap }).tokenized;
}

export function toRecord<V>(m: ReadonlyMap<string, V>): Record<string, V> {
  return Object.fromEntries(m);
}
