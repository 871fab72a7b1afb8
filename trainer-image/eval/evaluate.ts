// Everything the evaluation reports for one set of captions, as one JSON-ready object: the COCO metrics
// (BLEU-1..4, ROUGE-L, CIDEr-D, with the toolkit's conventions), GloVe similarity with its OOV report, error
// analysis and per-image rows. The trainer calls corpusBleu each epoch; the CLI and the report use this.
import { align, tokenizeSet, type Alignment, type Candidates, type ImageId, type References } from './captions.js';
import { bleuTokenized, type BleuScores } from './bleu.js';
import { ciderD } from './cider.js';
import { analyseErrors, type ErrorAnalysis, type ImageErrors } from './error-analysis.js';
import { loadGlove, type WordVectors } from './glove.js';
import { rougeL } from './rouge.js';
import { semanticSimilarity, type ImageSimilarity, type OovReport } from './semantic.js';

export { corpusBleu } from './bleu.js';

export interface EvaluateOptions {
  /** Score only images that have both references and a candidate instead of failing. */
  allowMissing?: boolean;
  /** Vectors for semantic similarity; null leaves similarity out; default: the GloVe cache (loadGlove()). */
  vectors?: WordVectors | null;
  /** Images listed in each worst-N table (default 10). */
  worstN?: number;
}

export interface Scores extends BleuScores {
  rougeL: number;
  ciderD: number;
}

export type ImageResult = Omit<ImageErrors, 'bleu4'> & Scores & { semantic?: ImageSimilarity };

export interface EvaluationResult {
  conventions: string;
  images: number;
  /** Images left out under allowMissing. */
  skipped: Alignment;
  scores: Scores;
  bleuLengths: { candidate: number; reference: number; ratio: number };
  semantic?: { corpus: ImageSimilarity; oov: OovReport };
  errors: Omit<ErrorAnalysis, 'perImage'>;
  perImage: ImageResult[];
}

export async function evaluateCaptions(refs: References, cands: Candidates, options: EvaluateOptions = {}): Promise<EvaluationResult> {
  const skipped = align(refs, cands);
  const set = tokenizeSet(refs, cands, { allowMissing: options.allowMissing });
  const bleu = bleuTokenized(set);
  const rouge = rougeL(set);
  const cider = ciderD(set);
  const vectors = options.vectors === undefined ? await loadGlove() : options.vectors;
  const semantic = vectors ? semanticSimilarity(set, vectors) : undefined;
  const errors = analyseErrors({
    set,
    bleu4: new Map([...bleu.perImage].map(([id, s]) => [id, s.bleu4])),
    ...(semantic ? { similarity: new Map([...semantic.perImage].map(([id, s]) => [id, s.meanVector.max])) } : {}),
    worstN: options.worstN,
  });
  const scoresOf = (id: ImageId): Scores => {
    const b = bleu.perImage.get(id);
    return { bleu1: b?.bleu1 ?? 0, bleu2: b?.bleu2 ?? 0, bleu3: b?.bleu3 ?? 0, bleu4: b?.bleu4 ?? 0, rougeL: rouge.perImage.get(id) ?? 0, ciderD: cider.perImage.get(id) ?? 0 };
  };
  const { perImage, ...summary } = errors;
  return {
    conventions: 'COCO caption toolkit (pycocoevalcap 1.2): PTBTokenizer 3.4.1 tokens, punctuation removed; BLEU closest reference length; CIDEr-D sigma 6',
    images: set.ids.length,
    skipped,
    scores: { ...bleu.corpus, rougeL: rouge.rougeL, ciderD: cider.ciderD },
    bleuLengths: { candidate: bleu.candidateLength, reference: bleu.referenceLength, ratio: bleu.referenceLength ? bleu.candidateLength / bleu.referenceLength : 0 },
    ...(semantic ? { semantic: { corpus: semantic.corpus, oov: semantic.oov } } : {}),
    errors: summary,
    perImage: perImage.map((e) => {
      const s = semantic?.perImage.get(e.id);
      return { ...e, ...scoresOf(e.id), ...(s ? { semantic: s } : {}) };
    }),
  };
}
