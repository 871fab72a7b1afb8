// HTML building blocks for the report: escaping (every piece of text that reaches the page goes through
// escapeHtml or attr, including captions, file names and model names from run outputs), a tagged template
// that escapes its values unless they are already Html, tables, and the page shell with its stylesheet.
// The page has no script: everything it shows is in the markup.

/** Markup that is already safe to put into the page. Build it only with `html`, `raw` or the helpers here. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for element content and for quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** Trusted markup (an SVG rendered by vega, a data: URI we built): never pass text from a run output. */
export function raw(markup: string): Html {
  return new Html(markup);
}

export type Content = Html | string | number | null | undefined | false | readonly Content[];

/** Turns content into markup: strings and numbers are escaped, Html is kept, arrays are joined, nullish and false vanish. */
export function render(content: Content): string {
  if (content === null || content === undefined || content === false) return '';
  if (content instanceof Html) return content.value;
  if (Array.isArray(content)) return (content as readonly Content[]).map(render).join('');
  return escapeHtml(String(content as string | number));
}

/** html`<p>${text}</p>`: interpolated values are escaped unless they are Html. */
export function html(strings: TemplateStringsArray, ...values: Content[]): Html {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return new Html(out);
}

export interface TableOptions {
  /** Class of the <table>. */
  className?: string;
  /** Columns (by index) whose cells are right-aligned numbers. */
  numeric?: readonly number[];
  caption?: Content;
}

export function table(head: readonly Content[], rows: readonly (readonly Content[])[], options: TableOptions = {}): Html {
  const num = new Set(options.numeric ?? []);
  const cell = (tag: 'td' | 'th', c: Content, i: number): Html => (num.has(i) ? html`<${raw(tag)} class="num">${c}</${raw(tag)}>` : html`<${raw(tag)}>${c}</${raw(tag)}>`);
  return html`<div class="table-scroll"><table${options.className ? html` class="${options.className}"` : ''}>${options.caption === undefined ? '' : html`<caption>${options.caption}</caption>`}<thead><tr>${head.map((h, i) => cell('th', h, i))}</tr></thead><tbody>${rows.map((r) => html`<tr>${r.map((c, i) => cell('td', c, i))}</tr>`)}</tbody></table></div>`;
}

export interface Section {
  id: string;
  title: string;
  body: Content;
}

export interface PageOptions {
  title: string;
  /** Shown under the title: what was compared, when, with what. */
  subtitle?: Content;
  /** Notes about missing data, shown before the sections. */
  notes?: readonly Content[];
  sections: readonly Section[];
}

export function page(options: PageOptions): string {
  const toc = options.sections.map((s) => html`<li><a href="#${s.id}">${s.title}</a></li>`);
  const notes = options.notes && options.notes.length > 0 ? html`<section class="notes" id="missing-data"><h2>Missing data</h2><ul>${options.notes.map((n) => html`<li>${n}</li>`)}</ul></section>` : '';
  const body = html`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>${options.title}</title>
<style>${raw(STYLE)}</style>
</head>
<body>
<header><h1>${options.title}</h1>${options.subtitle === undefined ? '' : html`<p class="subtitle">${options.subtitle}</p>`}<nav><ol>${toc}</ol></nav></header>
<main>
${notes}
${options.sections.map((s) => html`<section id="${s.id}"><h2>${s.title}</h2>${s.body}</section>\n`)}
</main>
</body>
</html>
`;
  return body.value;
}

/** A data: URI for bytes of the given media type. */
export function dataUri(mediaType: string, bytes: Uint8Array): string {
  return `data:${mediaType};base64,${Buffer.from(bytes).toString('base64')}`;
}

const STYLE = `
:root { color-scheme: light; --fg: #1d2330; --muted: #5b6475; --line: #d8dce4; --band: #f4f6f9; --accent: #2f5fb3; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: #fff; }
header { padding: 20px 32px 8px; border-bottom: 1px solid var(--line); background: var(--band); }
h1 { margin: 0 0 4px; font-size: 22px; }
h2 { margin: 28px 0 10px; font-size: 18px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { margin: 18px 0 8px; font-size: 15px; }
.subtitle { margin: 0 0 8px; color: var(--muted); }
nav ol { margin: 6px 0 8px; padding: 0; list-style: none; display: flex; flex-wrap: wrap; gap: 4px 16px; }
nav a, a { color: var(--accent); text-decoration: none; }
main { padding: 0 32px 40px; max-width: 1500px; }
.table-scroll { max-width: 100%; overflow-x: auto; }
table.comparison td:first-child { min-width: 180px; }
table.comparison th { vertical-align: bottom; }
.location { color: var(--muted); font-size: 11px; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
caption { text-align: left; color: var(--muted); padding-bottom: 4px; caption-side: top; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--band); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
.nowrap { white-space: nowrap; }
.na { color: var(--muted); font-style: italic; }
.notes { background: #fff8e6; border: 1px solid #f0d9a0; padding: 4px 16px; margin-top: 16px; }
.notes h2 { border: 0; margin-top: 10px; font-size: 16px; }
.note { color: var(--muted); margin: 4px 0 10px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px 24px; align-items: flex-start; }
figure { margin: 0; }
figure.chart svg { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 2px; max-width: 520px; }
.attention-image { margin: 12px 0 20px; }
.attention-head { display: flex; gap: 16px; align-items: flex-start; }
.attention-row { margin: 6px 0 10px; }
.attention-row .model { font-weight: 600; margin-bottom: 4px; }
.attention-words { display: flex; flex-wrap: wrap; gap: 6px; }
.attention-words figure { text-align: center; font-size: 12px; }
.attention-words img { display: block; width: 112px; height: auto; image-rendering: auto; border: 1px solid var(--line); }
.attention-words figure.source img { border-color: var(--fg); }
.scale { display: inline-block; vertical-align: middle; width: 160px; height: 10px; border: 1px solid var(--line); }
.thumb { width: 112px; height: auto; display: block; border: 1px solid var(--line); }
.captions td.caption { min-width: 220px; max-width: 360px; }
.refs { margin: 0; padding-left: 16px; }
.words { color: var(--muted); font-size: 12px; }
.bad { color: #a3261b; }
.miss { color: #8a5a00; }
.tag { display: inline-block; background: var(--band); border: 1px solid var(--line); border-radius: 3px; padding: 0 4px; margin: 1px 2px 1px 0; font-size: 12px; }
.two-col { display: flex; flex-wrap: wrap; gap: 0 32px; }
`;
