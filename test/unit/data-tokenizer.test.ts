import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tokenizeCaption } from '../../trainer-image/eval/tokenizer.js';
import { openFlickr8k } from '../../trainer-image/data/flickr8k.js';
import { END_ID, maxCaptionLength, PAD_ID, percentile, START_ID, tokenize, UNK_ID, Vocabulary } from '../../trainer-image/data/tokenizer.js';

test('tokenize lowercases, drops punctuation and splits clitics like the PTB tokenizer', () => {
  assert.deepEqual(tokenize('We cannot see'), ['we', 'can', 'not', 'see']);
  assert.deepEqual(tokenize('A dog\'s ball, isn\'t it?'), ['a', 'dog', "'s", 'ball', 'is', "n't", 'it']);
  assert.deepEqual(tokenize('Two  men -- playing "soccer" .'), ['two', 'men', 'playing', 'soccer']);
  assert.deepEqual(tokenize("the kids' toys at 3 o'clock"), ['the', 'kids', 'toys', 'at', '3', "o'clock"]);
  assert.deepEqual(tokenize(' . , '), []);
  assert.deepEqual(tokenize('A snow-covered hill - cross-country -- skiing.'), ['a', 'snow-covered', 'hill', 'cross-country', 'skiing']);
});

test('vocabulary: special ids, frequency order, min count and size cap', () => {
  const v = Vocabulary.build(['a dog runs', 'a dog sits', 'a cat'], { minCount: 2 });
  assert.deepEqual(v.words, ['<pad>', '<start>', '<end>', '<unk>', 'a', 'dog']);
  assert.equal(v.id('<pad>'), PAD_ID);
  assert.equal(v.id('cat'), UNK_ID);
  const capped = Vocabulary.build(['a dog runs', 'a dog sits', 'a cat'], { maxSize: 5 });
  assert.deepEqual(capped.words, ['<pad>', '<start>', '<end>', '<unk>', 'a']);
  assert.throws(() => Vocabulary.build(['x'], { minCount: 2 }), /no word occurs/);
});

test('the same captions in another order give the same ids', () => {
  const caps = ['b a c', 'c b', 'a d'];
  assert.deepEqual(Vocabulary.build(caps).words, Vocabulary.build([...caps].reverse()).words);
});

test('encode/decode round trip through JSON, with padding and truncation that keeps <end>', () => {
  const v = Vocabulary.build(['a small red circle left of a blue square']);
  const restored = Vocabulary.fromJSON(JSON.parse(JSON.stringify(v)) as ReturnType<Vocabulary['toJSON']>);
  const ids = restored.encode('A small red circle, left of a blue square.', 14);
  assert.equal(ids.length, 14);
  assert.equal(ids[0], START_ID);
  assert.equal(ids[10], END_ID);
  assert.equal(ids[13], PAD_ID);
  assert.deepEqual(v.decode(ids), tokenize('a small red circle left of a blue square'));
  const short = v.encode('a small red circle left of a blue square', 5);
  assert.deepEqual([...short], [START_ID, v.id('a'), v.id('small'), v.id('red'), END_ID]);
  assert.deepEqual(v.decode(v.encode('a green circle')), ['a', '<unk>', 'circle']);
  assert.throws(() => Vocabulary.fromJSON({ version: 1, words: ['x'], minCount: 1, maxSize: null }), /<pad>/);
});

test('percentile is nearest-rank and maxCaptionLength adds room for <start> and <end>', () => {
  const values = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(values, 0.95), 95);
  assert.equal(percentile([3, 1, 2], 0.5), 2);
  const caps = [...Array.from({ length: 19 }, () => 'one two three'), 'one two three four five six seven eight nine ten'];
  assert.equal(maxCaptionLength(caps), 5);
  assert.throws(() => percentile([], 0.5));
});

test('training tokens equal the COCO evaluation tokens on every caption of the Flickr8k sample', async () => {
  const dataset = await openFlickr8k('/work/shared/data/flickr8k-sample');
  const captions = dataset.items().flatMap((it) => it.captions);
  const differing = captions.filter((c) => tokenize(c).join(' ') !== tokenizeCaption(c));
  assert.deepEqual(differing, []);
  assert.ok(captions.length > 4000);
});
