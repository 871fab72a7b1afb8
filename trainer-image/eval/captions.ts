// The caption sets every scorer takes: references and one candidate per image, keyed by image id, and their
// tokenised form (the toolkit's tokenisation, applied once and shared by BLEU, ROUGE-L, CIDEr-D and the rest).
import { InvalidInputError } from '../../lib/errors.js';
import { tokenizeCaption } from './tokenizer.js';

export type ImageId = string;
export type References = ReadonlyMap<ImageId, readonly string[]>;
export type Candidates = ReadonlyMap<ImageId, string>;

/** Captions after tokenizeCaption: lowercased words joined by single spaces. */
export interface TokenizedSet {
  /** Image ids in the order they are reported. */
  ids: ImageId[];
  refs: Map<ImageId, string[]>;
  cands: Map<ImageId, string>;
}

export interface Alignment {
  /** Candidates whose image has no references. */
  withoutReferences: ImageId[];
  /** Images with references but no candidate. */
  withoutCandidate: ImageId[];
}

export function align(refs: References, cands: Candidates): Alignment {
  return {
    withoutReferences: [...cands.keys()].filter((id) => (refs.get(id)?.length ?? 0) === 0),
    withoutCandidate: [...refs.keys()].filter((id) => (refs.get(id)?.length ?? 0) > 0 && !cands.has(id)),
  };
}

/**
 * Tokenises both sides. Every candidate needs references and every image a candidate, as in the toolkit
 * (which asserts equal key sets); with allowMissing the images that lack either are left out instead.
 */
export function tokenizeSet(refs: References, cands: Candidates, options: { allowMissing?: boolean } = {}): TokenizedSet {
  const gaps = align(refs, cands);
  if (!options.allowMissing && (gaps.withoutReferences.length > 0 || gaps.withoutCandidate.length > 0)) {
    throw new InvalidInputError(describeGaps(gaps), { hint: 'pass --allow-missing (allowMissing) to score only the images that have both' });
  }
  const ids = [...cands.keys()].filter((id) => (refs.get(id)?.length ?? 0) > 0);
  // The toolkit tokenises all references as one file (image by image) and all candidates as another, and a
  // caption's last token can depend on the line after it: tokenise in that order, with that context.
  const refLines = ids.flatMap((id) => refs.get(id) ?? []);
  const candLines = ids.map((id) => cands.get(id) ?? '');
  const refTokens = refLines.map((c, i) => tokenizeCaption(c, refLines[i + 1]));
  const candTokens = candLines.map((c, i) => tokenizeCaption(c, candLines[i + 1]));
  const out: TokenizedSet = { ids, refs: new Map(), cands: new Map() };
  let next = 0;
  ids.forEach((id, i) => {
    const n = refs.get(id)?.length ?? 0;
    out.refs.set(id, refTokens.slice(next, next + n));
    next += n;
    out.cands.set(id, candTokens[i] ?? '');
  });
  return out;
}

export function describeGaps(gaps: Alignment): string {
  const parts: string[] = [];
  const list = (ids: ImageId[]): string => `${ids.slice(0, 10).join(', ')}${ids.length > 10 ? `, ... (${ids.length} in all)` : ''}`;
  if (gaps.withoutReferences.length > 0) parts.push(`candidates for images without references: ${list(gaps.withoutReferences)}`);
  if (gaps.withoutCandidate.length > 0) parts.push(`images without a candidate: ${list(gaps.withoutCandidate)}`);
  return parts.join('; ');
}
