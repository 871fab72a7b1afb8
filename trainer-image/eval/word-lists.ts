// Word lists for error analysis: which words carry content, and which name objects, colours and counts.
// Lowercase, as tokenizeCaption produces. Nouns are the objects and scene elements common in Flickr8k/COCO
// captions; plurals are matched through singular().

export const STOP_WORDS: ReadonlySet<string> = new Set(
  ('a an the and or but of in on at to into onto from with without by for over under near next beside behind ' +
    'through across along around up down out off while as is are was were be been being am has have had do does did ' +
    "not n't 's 're 'm 've 'll 'd it its it's this that these those there their they them he him his she her hers " +
    'we our you your i me my who whom which what where when who how than then so very just also some any each ' +
    'other another such own same can could will would should may might must ca wo -lrb- -rrb- -lsb- -rsb- ' +
    'up toward towards against between among above below while during before after').split(/\s+/),
);

export const COLOURS: ReadonlySet<string> = new Set(
  ('black white red blue green yellow orange purple pink brown grey gray gold golden silver tan beige maroon ' +
    'navy teal turquoise violet blond blonde dark light colorful colourful multicolored').split(/\s+/),
);

export const NUMBER_WORDS: ReadonlySet<string> = new Set(
  ('one two three four five six seven eight nine ten eleven twelve dozen dozens single couple pair several ' +
    'many few multiple group groups lone alone both').split(/\s+/),
);

export const NOUNS: ReadonlySet<string> = new Set(
  ('man woman men women person people boy girl child children kid baby toddler guy lady player players crowd team ' +
    'dog puppy cat kitten horse cow sheep bird duck goose fish elephant giraffe zebra bear animal animals pony camel ' +
    'ball frisbee stick toy bike bicycle motorcycle car truck bus train boat plane airplane skateboard surfboard ' +
    'skis snowboard kite umbrella bag backpack hat helmet cap shirt jacket coat dress shorts pants jeans sunglasses ' +
    'glasses shoes boots uniform costume sign flag bench chair table bed couch sofa tree trees grass field park street ' +
    'road sidewalk building house wall fence door window beach sand ocean sea water wave waves lake river pool pond ' +
    'snow mountain hill rock rocks cliff sky cloud sun city stage microphone guitar drum camera phone book food pizza ' +
    'cake plate cup bottle fountain track race ramp net goal rope swing slide trail forest woods field dirt mud').split(/\s+/),
);

/** Crude singular for list lookups ("dogs" -> "dog", "children" stays listed). */
export function singular(word: string): string {
  if (NOUNS.has(word)) return word;
  if (word.endsWith('ies') && word.length > 4) return `${word.slice(0, -3)}y`;
  if (word.endsWith('es') && NOUNS.has(word.slice(0, -2))) return word.slice(0, -2);
  if (word.endsWith('s') && !word.endsWith('ss')) return word.slice(0, -1);
  return word;
}

export type WordCategory = 'noun' | 'colour' | 'number';

export function categoryOf(word: string): WordCategory | undefined {
  if (COLOURS.has(word)) return 'colour';
  if (NUMBER_WORDS.has(word) || /^\d+$/.test(word)) return 'number';
  if (NOUNS.has(singular(word))) return 'noun';
  return undefined;
}
