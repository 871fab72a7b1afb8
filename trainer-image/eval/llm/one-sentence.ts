// Chat models answer "one short sentence" in many shapes: a preamble ("Sure! Here is a caption:"), a label
// ("Caption:"), quotes, markdown emphasis, a second sentence. BLEU counts every extra word against the
// model, so answers are cut to their first caption sentence before scoring; the raw answer is kept beside it.

/** A line that only introduces the answer: "Sure! Here's a caption:", "Caption:". */
const PREAMBLE_LINE = /^(?:(?:sure|certainly|of course|okay|ok)\b[^:]*|here(?:'s| is)\b[^:]*|[a-z ]*caption[a-z ]*):\s*$/i;
/** A leading label or courtesy on the caption's own line. */
const LEADING_LABEL = /^(?:(?:sure|certainly|of course|okay|ok)[,!.]\s*)?(?:(?:here(?:'s| is)[^:]*|(?:image\s+)?(?:caption|description)):\s*)?/i;
const WRAPPERS = /^[\s"'“”‘’*_#>`-]+|[\s"'“”‘’*_`]+$/g;

/** The answer's first caption sentence, without preamble, label, quotes or markdown; '' when there is none. */
export function oneSentence(raw: string): string {
  const lines = raw
    .split(/\r?\n/)
    .map((l) => l.replace(WRAPPERS, '').trim())
    .filter((l) => l.length > 0 && !PREAMBLE_LINE.test(l));
  const first = (lines[0] ?? '').replace(LEADING_LABEL, '').replace(WRAPPERS, '');
  // A sentence ends at . ! or ? (maybe inside a closing quote) followed by a space or the end; "St. Louis"
  // style abbreviations are rare in captions.
  const end = /[.!?]["'”’]?(?=\s|$)/.exec(first);
  const sentence = (end ? first.slice(0, end.index + end[0].length) : first).replace(WRAPPERS, '').trim();
  return sentence.replace(/\s+/g, ' ');
}
