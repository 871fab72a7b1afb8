// Cross-check against the COCO caption toolkit (pycocoevalcap 1.2, run in Python with its own PTBTokenizer
// jar): the same seeded captions must give the same tokens and the same BLEU-1..4, ROUGE-L and CIDEr-D.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { bleuTokenized } from '../../trainer-image/eval/bleu.js';
import { tokenizeSet } from '../../trainer-image/eval/captions.js';
import { ciderD } from '../../trainer-image/eval/cider.js';
import { rougeL } from '../../trainer-image/eval/rouge.js';
import { tokenizeCaption } from '../../trainer-image/eval/tokenizer.js';
import { randomCaptions } from '../fixtures/eval-random-captions.js';
import { cocoScores, cocoTokenize, toRecord, type CaptionMap } from '../reference/coco-eval.js';

/** "Equal to 4 decimals", with no rounding-boundary luck: the difference must be far below 0.5e-4. */
function assertClose(ours: number, theirs: number, what: string): void {
  assert.ok(Math.abs(ours - theirs) < 1e-9, `${what}: ours ${ours} vs pycocoevalcap ${theirs}`);
}

test('tokenizer matches PTBTokenizer 3.4.1 + punctuation removal on tricky captions', () => {
  const tricky = readFileSync(new URL('../fixtures/eval-tricky-captions.txt', import.meta.url), 'utf8').split('\n').filter((l) => l.trim() !== '');
  const extra = [
    "I'd've gone, y'all; 'tis the season, wasn't it?",
    'Ph.D. students and Mr. Brown at 10 a.m. in Washington D.C. on Jan. 5',
    'A man in a grey Spider-Man suit -- ha! -- waves (sort of) [badly].',
    'The dog ate ½ of the cake & 3 1/2 cookies; 50% is gone.',
    'A 🐶 emoji, ★ stars ♥ and 30°C weather near Zürich’s lake.',
    "Women's and children's shoes at the kids' store.",
    '"Quoted" ‘single’ «guillemets» and ``latex\'\' quotes.',
    'ALL CAPS CAPTION WITH A DOG\'S BONE AND TWO CATS\' BOWLS.',
    'mixed.punctuation,no spaces;here:and!there?ok',
    'A x-ray of a 2x4, a 3-D movie and 4th-grade kids.',
    // Shapes found by running the jar on adversarial strings: periods before commas, clitics glued to words,
    // curly clitics, slashes, ampersand acronyms, abbreviations before numbers.
    "The dog in the snow., and a 3-year-old.n't; x.y's 5., t-shirt.:",
    "gonna'reman cannot'DOGS old'llt x’dogs 'sx ’sx I’no rock ’n roll",
    'a t-shirt/man, pink/white/blue, zürich/co, AT&T and I&D, US$5, x$5',
    'ca.3 no. 5 no. the fig. 2 vol. 3 Sept. the x. The dog, x. the cat',
    '#hashtag #café2 @user :) ;-( the \'90s in \'99, e-mail.com http://x.org/a?b=c.',
  ];
  const captions = [...tricky, ...extra];
  const input: CaptionMap = Object.fromEntries(captions.map((c, i) => [String(i), [c]]));
  const theirs = cocoTokenize(input);
  // The jar reads the captions as one file, so each caption is tokenised with the line that follows it.
  for (const [i, c] of captions.entries()) {
    assert.equal(tokenizeCaption(c, captions[i + 1]), theirs[String(i)]?.[0], `caption ${JSON.stringify(c)}`);
  }
});

test('tokenizer matches on 6,000 seeded random captions', () => {
  const { refs } = randomCaptions(11, 2000);
  const theirs = cocoTokenize(toRecord(refs));
  const lines = [...refs.values()].flat();
  const expected = [...refs.keys()].flatMap((id) => theirs[id] ?? []);
  assert.equal(expected.length, lines.length);
  lines.forEach((c, i) => assert.equal(tokenizeCaption(c, lines[i + 1]), expected[i], `caption ${JSON.stringify(c)}`));
});

test('BLEU-1..4, ROUGE-L and CIDEr-D equal pycocoevalcap on 1,000 seeded random images, corpus and per image', () => {
  const { refs, cands } = randomCaptions(20260526, 1000);
  const theirs = cocoScores(toRecord(refs), toRecord(new Map([...cands].map(([k, v]) => [k, [v]]))));
  const set = tokenizeSet(refs, cands);
  const bleu = bleuTokenized(set);
  const rouge = rougeL(set);
  const cider = ciderD(set);
  const ours = [bleu.corpus.bleu1, bleu.corpus.bleu2, bleu.corpus.bleu3, bleu.corpus.bleu4];
  ours.forEach((b, k) => assertClose(b, theirs.bleu[k] ?? Number.NaN, `BLEU-${k + 1}`));
  assertClose(rouge.rougeL, theirs.rouge, 'ROUGE-L');
  assertClose(cider.ciderD, theirs.cider, 'CIDEr-D');
  for (const id of set.ids) {
    assert.deepEqual(set.cands.get(id), theirs.res[id]?.[0], `tokenised candidate ${id}`);
    const b = bleu.perImage.get(id);
    const t = theirs.bleu_per_image[id] ?? [];
    [b?.bleu1, b?.bleu2, b?.bleu3, b?.bleu4].forEach((v, k) => assertClose(v ?? Number.NaN, t[k] ?? Number.NaN, `image ${id} BLEU-${k + 1}`));
    assertClose(rouge.perImage.get(id) ?? Number.NaN, theirs.rouge_per_image[id] ?? Number.NaN, `image ${id} ROUGE-L`);
    assertClose(cider.perImage.get(id) ?? Number.NaN, theirs.cider_per_image[id] ?? Number.NaN, `image ${id} CIDEr-D`);
  }
});

test('every candidate equal to a reference: both implementations agree on the near-perfect corpus', () => {
  const { refs } = randomCaptions(7, 50, 5);
  const cands = new Map([...refs].map(([id, list]) => [id, list[0] ?? '']));
  const theirs = cocoScores(toRecord(refs), toRecord(new Map([...cands].map(([k, v]) => [k, [v]]))));
  const set = tokenizeSet(refs, cands);
  const bleu = bleuTokenized(set).corpus;
  [bleu.bleu1, bleu.bleu2, bleu.bleu3, bleu.bleu4].forEach((b, k) => assertClose(b, theirs.bleu[k] ?? Number.NaN, `BLEU-${k + 1}`));
  assertClose(rougeL(set).rougeL, theirs.rouge, 'ROUGE-L');
  assertClose(ciderD(set).ciderD, theirs.cider, 'CIDEr-D');
});
