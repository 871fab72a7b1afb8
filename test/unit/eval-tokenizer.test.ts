// The toolkit's tokenisation by Penn Treebank conventions (expected outputs written from the PTB rules; the
// integration test checks the same against the real Stanford jar).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pySplit, ptbTokens, tokenizeCaption } from '../../trainer-image/eval/tokenizer.js';

const cases: Array<[string, string]> = [
  ['A dog runs.', 'a dog runs'],
  ["The dog's ball isn't red", "the dog 's ball is n't red"],
  ["I can't, won't; we're they've you'd I'm", "i ca n't wo n't we 're they 've you 'd i 'm"],
  ['cannot gonna wanna', 'can not gon na wan na'],
  ["the boys' bikes", 'the boys bikes'],
  ['a t-shirt and a 3.5-year-old', 'a t-shirt and a 3.5-year-old'],
  ['jumping--high -- and - low', 'jumping high and low'],
  ['"quoted" and ‘single’ and “curly”', 'quoted and single and curly'],
  ['(brown) [on] {it}', '-lrb- brown -rrb- -lsb- on -rsb- -lcb- it -rcb-'],
  ['at 5:30pm, 1,000 people paid $5 for 50%', 'at 5:30 pm 1,000 people paid $ 5 for 50 %'],
  ['Mr. Smith in the U.S. at 10 a.m.', 'mr. smith in the u.s. at 10 a.m.'],
  ['wait... what?! no!!!', 'wait what ?! no !!!'],
  ["o'clock o'neill rock'n'roll", "o'clock o'neill rock 'n' roll"],
  ['Naïve CAFÉ in Zürich — nice …', 'naïve café in zürich nice'],
  ['a pink/white dress', 'a pink/white dress'],
  ['', ''],
  ['  .  ,  ', ''],
];

for (const [input, expected] of cases) {
  test(`tokenizeCaption(${JSON.stringify(input)})`, () => assert.equal(tokenizeCaption(input), expected));
}

test('brackets stay as lowercased -lrb- tokens: the toolkit lists -LRB- only in upper case', () => {
  assert.deepEqual(ptbTokens('(x)'), ['-lrb-', 'x', '-rrb-']);
});

test('fractions keep a no-break space that str.split() (BLEU, CIDEr) splits and split(" ") (ROUGE) does not', () => {
  const t = tokenizeCaption('3 1/2 cups');
  assert.equal(t, '3\u00A01/2 cups');
  assert.deepEqual(pySplit(t), ['3', '1/2', 'cups']);
  assert.deepEqual(t.split(' '), ['3\u00A01/2', 'cups']);
});

test('newlines inside a caption are spaces, emoji are dropped', () => {
  assert.equal(tokenizeCaption('a dog\nruns 🐶 fast'), 'a dog runs fast');
});
