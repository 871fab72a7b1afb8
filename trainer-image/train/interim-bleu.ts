// INTERIM corpus BLEU-1..4 (Papineni et al. 2002: clipped n-gram precision, geometric mean, brevity penalty
// against the closest reference length) used for validation until trainer-image/eval/ provides the
// COCO-identical implementation; it takes already tokenised captions.

export function corpusBleu4(hypotheses: readonly string[][], references: readonly string[][][]): number {
  const matches = [0, 0, 0, 0];
  const totals = [0, 0, 0, 0];
  let hypLength = 0;
  let refLength = 0;
  hypotheses.forEach((hyp, i) => {
    const refs = references[i] ?? [];
    hypLength += hyp.length;
    let closest = Infinity;
    for (const r of refs) {
      if (Math.abs(r.length - hyp.length) < Math.abs(closest - hyp.length) || (Math.abs(r.length - hyp.length) === Math.abs(closest - hyp.length) && r.length < closest)) closest = r.length;
    }
    refLength += Number.isFinite(closest) ? closest : 0;
    for (let n = 1; n <= 4; n++) {
      const counts = ngrams(hyp, n);
      const maxRef = new Map<string, number>();
      for (const r of refs) for (const [g, c] of ngrams(r, n)) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, c));
      for (const [g, c] of counts) matches[n - 1] = (matches[n - 1] as number) + Math.min(c, maxRef.get(g) ?? 0);
      totals[n - 1] = (totals[n - 1] as number) + Math.max(0, hyp.length - n + 1);
    }
  });
  if (hypLength === 0) return 0;
  let logPrecision = 0;
  for (let n = 0; n < 4; n++) {
    if ((matches[n] as number) === 0) return 0;
    logPrecision += Math.log((matches[n] as number) / (totals[n] as number)) / 4;
  }
  const brevity = hypLength >= refLength ? 1 : Math.exp(1 - refLength / hypLength);
  return brevity * Math.exp(logPrecision);
}

function ngrams(words: readonly string[], n: number): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i + n <= words.length; i++) {
    const g = words.slice(i, i + n).join(' ');
    out.set(g, (out.get(g) ?? 0) + 1);
  }
  return out;
}
