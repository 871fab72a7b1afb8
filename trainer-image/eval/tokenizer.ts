// Caption tokenisation identical to the COCO caption toolkit (pycocoevalcap 1.2): Stanford PTBTokenizer 3.4.1
// run with -preserveLines -lowerCase, then its punctuation tokens dropped. Scores are only comparable with
// published COCO numbers when the words are split exactly the same way, so this re-implements the lexer's
// rules that matter for caption text, JFlex-style: at each position every rule is tried, the longest match
// wins (trailing context counts towards its length, as in JFlex) and ties go to the earlier rule.
// Checked token for token against the real jar in test/integration/eval-pycocoevalcap.test.ts.
//
// Known differences from the jar, all outside caption text: character entities (&amp; ...), phone numbers,
// CP1252 control characters, the rarer URL shapes; the jar not splitting "gonna"/"'tis" at the very end of its
// input file (the toolkit's last caption), which this tokenizer splits like every other line; and about 1 in
// 1,000 adversarial strings of glued punctuation ("co.a", ":o[") measured against the jar. There are none in
// Flickr8k's 4,375 sample captions nor in the 6,000 seeded captions of the cross-check test.

/** The toolkit's PUNCTUATIONS: tokens removed after tokenisation. "-LRB-" etc. never match once lowercased. */
export const COCO_PUNCTUATIONS: ReadonlySet<string> = new Set(["''", "'", '``', '`', '-LRB-', '-RRB-', '-LCB-', '-RCB-', '.', '?', '!', ',', ':', '-', '--', '...', ';']);

const LETTER = '[\\p{L}\\p{M}]';
const DIGIT = '\\p{Nd}';
const ALNUM = '[\\p{L}\\p{M}\\p{Nd}]';
const APOS = "['\\u0092\\u2019]";
const APOS_ETC = "['\\u0092\\u2019`\\u0091\\u2018\\u201B]";
const HYPHEN = '[-\\u058A\\u2010\\u2011]';
const WORD = `${LETTER}(?:${LETTER}|${DIGIT})*(?:[.!?]${LETTER}(?:${LETTER}|${DIGIT})*)*`;
const THING_PART = `(?:[dDoOlL]${APOS_ETC}${ALNUM})?${ALNUM}+`;
const THING = `${THING_PART}(?:${HYPHEN}${THING_PART})*`;
const ACRO2 = '[A-Za-z](?:\\.[A-Za-z])+';
// After its first character a hyphenated HTHING takes ASCII letters and digits only (JFlex's \\p{Alpha} in the jar).
const HTHING = `${ALNUM}[A-Za-z0-9.,]*(?:[-_](?:${ACRO2}\\.|[A-Za-z0-9]+))+`;
// JS alternation takes the first branch that matches, not the longest: the longer branch goes first.
const NUMBER = `[-+]?(?:${DIGIT}*(?:[.:,\\u00AD\\u066B\\u066C]${DIGIT}+)+|${DIGIT}+)`;
// A clitic ends the word before it whatever follows ("old'llt" is "old" + "'llt"), but is a token of its own
// after a straight apostrophe only before a non-letter ("'llt" is "'" + "llt"; "’dogs" is "'d" + "ogs").
// Measured against the jar.
const CLITIC = '(?:[mMsSdD]|[rR][eE]|[vV][eE]|[lL][lL])';
const REDAUX_AFTER_WORD = `${APOS}${CLITIC}`;
const REDAUX = `(?:'${CLITIC}(?![A-Za-z])|[\\u0092\\u2019]${CLITIC})`;

// Abbreviations that keep their final period (measured against the 3.4.1 jar; many later additions do not).
const ABBREVIATIONS = [
  'jan', 'feb', 'mar', 'apr', 'jun', 'jul', 'aug', 'sep', 'sept', 'oct', 'nov', 'dec',
  'mon', 'tue', 'tues', 'wed', 'thu', 'thurs', 'fri',
  'ala', 'ariz', 'ark', 'calif', 'colo', 'conn', 'ct', 'dak', 'del', 'fla', 'ga', 'ill', 'ind', 'kan', 'kans', 'ky', 'la',
  'mass', 'md', 'mich', 'minn', 'miss', 'mo', 'mont', 'neb', 'nev', 'okla', 'ore', 'pa', 'penn', 'tenn', 'tex', 'va', 'vt',
  'wash', 'wis', 'wisc', 'wyo',
  'inc', 'co', 'cos', 'corp', 'pty', 'ltd', 'plc', 'rt', 'bancorp', 'bhd', 'assn', 'univ', 'intl', 'sys',
  'tel', 'est', 'ext', 'sq', 'jr', 'sr', 'bros', 'ph\\.d', 'ed\\.d', 'esq', 'etc', 'al', 'seq', 'bldg',
  'mr', 'mrs', 'ms', 'dr', 'drs', 'prof', 'profs', 'sen', 'sens', 'rep', 'reps', 'atty', 'attys', 'lt', 'col', 'gen', 'messrs',
  'gov', 'govs', 'adm', 'rev', 'maj', 'sgt', 'cpl', 'pvt', 'capt', 'st', 'ste', 'ave', 'pres', 'lieut', 'hon', 'brig',
  'cmdr', 'comdr', 'pfc', 'spc', 'supt', 'supts', 'det', 'mt', 'ft', 'adj', 'adv', 'asst', 'assoc', 'ens', 'insp', 'mlle',
  'mme', 'msgr', 'sfc', 'invt', 'elec', 'natl', 'mfg', 'mtg', 'dept', 'blvd', 'rd', 'wm', 'jos', 'cie', 'cf', 'ph', 'vs',
  'a\\.k\\.a',
];
/** Abbreviations that keep their period only before a number ("no. 5", but "no." elsewhere is a word and a period). */
const NUMBER_ABBREVIATIONS = ['ca', 'figs?', 'prop', 'nos?', 'art', 'pp', 'op'];
/**
 * A single-letter initial ("x.") loses its period before these words when they are capitalised and followed by a
 * space: the jar takes them as the start of a new sentence (measured against the jar).
 */
const SENTENCE_STARTERS = [
  'The', 'A', 'An', 'He', 'She', 'It', 'In', 'This', 'There', 'They', 'We', 'But', 'So', 'If', 'What', 'At', 'These', 'That',
  'Her', 'Their', 'Our', 'You', 'When', 'As', 'After', 'Some', 'Many', 'Yet', 'Then', 'Now', 'Here', 'However', 'While',
  'Since', 'One',
];

/** "The" -> "T[hH][eE]": capital first letter, the rest in any case (the jar's caseless literal after a capital). */
function capitalisedCaseless(word: string): string {
  return [...word].map((c, i) => (i === 0 ? c : `[${c.toLowerCase()}${c.toUpperCase()}]`)).join('');
}

const BRACKETS: Record<string, string> = { '(': '-LRB-', ')': '-RRB-', '[': '-LSB-', ']': '-RSB-', '{': '-LCB-', '}': '-RCB-' };
const FRACTIONS: Record<string, string> = {
  '\u00BC': '1/4', '\u00BD': '1/2', '\u00BE': '3/4', '\u2153': '1/3', '\u2154': '2/3', '\u2155': '1/5', '\u2156': '2/5',
  '\u2157': '3/5', '\u2158': '4/5', '\u2159': '1/6', '\u215A': '5/6', '\u215B': '1/8', '\u215C': '3/8', '\u215D': '5/8',
  '\u215E': '7/8',
};
const CURRENCY: Record<string, string> = { '\u20AC': '$', '\u0080': '$', '\u00A3': '#', '\u00A2': 'cents' };

interface Rule {
  re: RegExp;
  /** Characters consumed; defaults to the whole match (smaller when the rule has trailing context). */
  consume?: (m: RegExpExecArray) => number;
  emit: (m: RegExpExecArray) => string[];
}

const as = (m: RegExpExecArray): string[] => [m[0]];
const group1 = (m: RegExpExecArray): number => (m[1] ?? '').length;
const rule = (source: string, emit: Rule['emit'] = as, extra: Omit<Rule, 're' | 'emit'> = {}, flags = ''): Rule => ({
  re: new RegExp(source, `uy${flags}`),
  emit,
  ...extra,
});
/** Trailing context "X/Y": the token is group 1, the whole match decides the longest-match race. */
const withContext = (source: string, emit: Rule['emit'] = (m) => [m[1] ?? ''], flags = ''): Rule =>
  rule(source, emit, { consume: group1 }, flags);
/** A rule whose trailing context is one non-letter or the end of the line (the jar's input has a newline there). */
const beforeNonLetter = (source: string, consumed: number): Rule => ({
  re: new RegExp(`(${source})(?=\\P{L}|$)`, 'uyi'),
  emit: (m) => [(m[1] ?? '').slice(0, consumed)],
  consume: () => consumed,
});

// Order matters only between rules matching the same length: the earlier wins, as in the jar's lexer.
const RULES: Rule[] = [
  rule('<\\/?[A-Za-z!?][^>\\r\\n]*>', (m) => [m[0].replace(/ /g, '\u00A0')]),
  rule('[\\u0096\\u0097\\u2013\\u2014\\u2015]', () => ['--']),
  rule('(can)not', (m) => [m[1] ?? ''], { consume: () => 3 }, 'i'),
  beforeNonLetter('gonna', 3),
  beforeNonLetter('gotta', 3),
  beforeNonLetter('lemme', 3),
  beforeNonLetter('gimme', 3),
  beforeNonLetter('wanna', 3),
  rule("'tis", () => ["'t"], { consume: () => 2 }, 'i'),
  rule("'twas", () => ["'t"], { consume: () => 2 }, 'i'),
  withContext(`(${WORD})${REDAUX_AFTER_WORD}`),
  withContext(`(${THING})${REDAUX_AFTER_WORD}`),
  withContext(`([A-Za-z\\u00AD]*[A-MO-Za-mo-z]\\u00AD*)[nN]${APOS_ETC}[tT]`),
  rule(REDAUX, (m) => [`'${m[0].slice(1)}`]),
  rule(`[nN]${APOS_ETC}[tT]`, (m) => [`${m[0][0] ?? 'n'}'${m[0][2] ?? 't'}`]),
  rule(`'[nN](?:${APOS}|(?!\\p{L}))|[\\u0092\\u2019][nN]${APOS}?`),
  rule(`[lLdDjJyY]${APOS}`),
  rule(`[A-HJ-XZn]${APOS_ETC}${LETTER}{2,}`),
  rule(`[oO]${APOS_ETC}[oO]`),
  rule(`${APOS}[0-9]{2}(?=\\s|$)`),
  rule(`${APOS}(?:[2-9]0s|[tT][iI][lL][lL]?|[cC][aA][uU][sS][eE]|[eE][mM])`),
  rule(`${LETTER}+[aeiouyAEIOUY]${APOS_ETC}[aeiouA-Z]${LETTER}*`),
  rule(`(?:${DIGIT}{1,4}[- \\u00A0])?${DIGIT}{1,4}\\\\?\\/${DIGIT}{1,4}`, (m) => [m[0].replace(/ /g, '\u00A0')]),
  rule('[\\u00BC-\\u00BE\\u2153-\\u215E]', (m) => [FRACTIONS[m[0]] ?? m[0]]),
  rule(NUMBER),
  // A period right before a comma, semicolon or colon stays on its word ("snow.," -> "snow." ","), as in the jar.
  withContext(`((?:${HTHING}|${THING}|${WORD})\\.)[,;:]`),
  rule(THING),
  rule('[A-Z]+(?:[+&][A-Z]+)+'),
  rule(HTHING),
  rule('[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\\\?\\/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}'),
  rule(WORD),
  rule(`(?:${ABBREVIATIONS.join('|')})\\.`, as, {}, 'i'),
  withContext(`((?:${NUMBER_ABBREVIATIONS.join('|')})\\.)[ \\t\\u00A0]*${DIGIT}`, undefined, 'i'),
  rule(`[A-Za-z](?:\\.[A-Za-z])+\\.`),
  withContext(`([A-Za-z])\\.[ \\t\\n\\u00A0]+(?:${SENTENCE_STARTERS.map(capitalisedCaseless).join('|')})(?=[ \\t\\n]|$)`),
  rule('[A-Za-z]\\.'),
  rule('https?:\\/\\/[^ \\t\\n"<>|()]*[^ \\t\\n"<>|.!?(){},-]'),
  rule('www\\.(?:[^ \\t\\n"<>|.!?(){},]+\\.)+[a-zA-Z]{2,4}'),
  rule('(?:[^ \\t\\n"`\'<>|.!?(){},\\-_$]+\\.)+(?:com|net|org|edu)'),
  rule('[a-zA-Z0-9][^ \\t\\n"<>|()\\u00A0]*@(?:[^ \\t\\n"<>|().\\u00A0]+\\.)*[^ \\t\\n"<>|().\\u00A0]+'),
  rule('@[a-zA-Z_][a-zA-Z_0-9]*'),
  rule(`#${LETTER}+`),
  withContext('([<>]?[:;=][\\-o*\']?[()DPdpO\\\\{@|[\\]])(?![\\p{L}\\p{Nd}])', (m) => [(m[1] ?? '').replace(/[()[\]{}]/g, (b) => BRACKETS[b] ?? b)]),
  rule('\\.\\.\\.+|\\u2026', () => ['...']),
  rule('[?!]+'),
  rule('[.,;:]'),
  rule("``|''"),
  rule('["\\u201C\\u00AB]', () => ['``']),
  rule('[\\u201D\\u00BB]', () => ["''"]),
  rule("['`\\u2018\\u2019\\u2039\\u203A]", (m) => [m[0] === '\u2018' || m[0] === '\u2039' ? '`' : m[0] === '\u2019' || m[0] === '\u203A' ? "'" : m[0]]),
  rule('[()[\\]{}]', (m) => [BRACKETS[m[0]] ?? m[0]]),
  rule('-{2,}', () => ['--']),
  rule('-'),
  rule('[A-Z]*\\$'),
  rule('[\\u20AC\\u0080\\u00A3\\u00A2]', (m) => [CURRENCY[m[0]] ?? m[0]]),
  rule('\\*+|@+|#+|_+|<<|>>'),
];

const SPACE = /[\s\u00A0\u2000-\u200A\u3000]/u;

// eslint-disable-next-line no-control-regex -- these are the line separators Java's reader honours
const LINE_BREAKS = /[\r\n\u2028\u2029\u000B\u000C\u0085]/g;

/**
 * PTB tokens of one caption, before punctuation removal, lowercased. Newlines become spaces, as the toolkit's
 * Python wrapper does before writing one caption per line. The jar reads all captions as one text, so a few
 * rules look past the end of a caption into the next line: pass the caption that follows in the toolkit's
 * file (see tokenizeSet) to get exactly its tokens; without it the caption is taken as the last line.
 */
export function ptbTokens(caption: string, following?: string): string[] {
  const own = caption.replace(LINE_BREAKS, ' ');
  const end = own.length;
  const text = following === undefined ? own : `${own}\n${following.replace(LINE_BREAKS, ' ')}`;
  const out: string[] = [];
  let pos = 0;
  while (pos < end) {
    const ch = text[pos] ?? '';
    if (SPACE.test(ch)) {
      pos += 1;
      continue;
    }
    let best: { rule: Rule; m: RegExpExecArray } | undefined;
    for (const r of RULES) {
      r.re.lastIndex = pos;
      const m = r.re.exec(text);
      if (!m || m[0].length === 0) continue;
      if (!best || m[0].length > best.m[0].length) best = { rule: r, m };
    }
    if (best) {
      out.push(...best.rule.emit(best.m));
      pos += best.rule.consume ? best.rule.consume(best.m) : best.m[0].length;
      continue;
    }
    const cp = text.codePointAt(pos) ?? 0;
    const char = String.fromCodePoint(cp);
    // The jar deletes what its lexer cannot classify: control characters and anything beyond the BMP that is
    // not a letter (emoji arrive as two unmatched surrogates).
    if (cp <= 0xffff && !/\p{Cc}|\p{Cf}|\p{Cs}/u.test(char)) out.push(char);
    pos += char.length;
  }
  return out.map((t) => t.toLowerCase());
}

/** One caption as the toolkit scores it: PTB tokens, lowercased, punctuation removed, joined by single spaces. */
export function tokenizeCaption(caption: string, following?: string): string {
  return ptbTokens(caption, following)
    .filter((t) => !COCO_PUNCTUATIONS.has(t))
    .join(' ');
}

/**
 * Python's str.split() with no argument, which every scorer of the toolkit applies to the tokenised caption:
 * it also splits on the no-break space that the tokenizer puts inside fractions ("3 1/2").
 */
export function pySplit(s: string): string[] {
  // eslint-disable-next-line no-control-regex -- Python counts U+001C..U+001F as whitespace
  return s.split(/[\t\n\v\f\r \u001C-\u001F\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+/).filter((w) => w.length > 0);
}
