// Charts for the report: Vega-Lite specs compiled with vega-lite and rendered to SVG in Node by a headless
// vega View (renderer 'none'), so the page needs no script. Data is always inline; the View's loader
// refuses every URL, so rendering a chart can never reach the network or the file system. Each SVG's ids
// (clip paths, gradients) are prefixed so that many charts can share one page.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export type ChartSpec = TopLevelSpec;

/** A row of a chart's inline data. */
export type Datum = Record<string, string | number | null>;

/** A loader that refuses every URL and remembers what was asked for, so the chart fails instead of rendering empty. */
function offlineLoader(refused: string[]): vega.Loader {
  const refuse = (uri: string): Promise<never> => {
    refused.push(uri);
    return Promise.reject(new Error(`report charts carry their data inline; refusing ${uri}`));
  };
  return { load: refuse, sanitize: refuse, http: refuse, file: refuse };
}

let chartCounter = 0;

/**
 * Compiles a Vega-Lite spec and renders it to a standalone SVG string. Vega's warnings go to `onWarning`
 * (never to the console, which would break the JSON logs on stderr); a spec that asks to load data fails.
 */
export async function renderChart(spec: ChartSpec, onWarning: (message: string) => void = () => {}): Promise<string> {
  const compiled = compile(spec).spec;
  const refused: string[] = [];
  const logger = vega.logger(vega.Warn, undefined, (_method, level, args) => onWarning(`${level} ${args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ')}`));
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', loader: offlineLoader(refused), logger });
  try {
    const svg = await view.toSVG();
    if (refused.length > 0) throw new Error(`report charts carry their data inline; the spec asked for ${refused.join(', ')}`);
    chartCounter += 1;
    return prefixIds(svg, `chart${chartCounter}-`);
  } finally {
    view.finalize();
  }
}

/** Makes the ids of one SVG unique on a page that holds several: id="x", url(#x) and href="#x". */
export function prefixIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, (_, id: string) => `id="${prefix}${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_, id: string) => `url(#${prefix}${id})`)
    .replace(/href="#([^"]+)"/g, (_, id: string) => `href="#${prefix}${id}"`);
}

const WIDTH = 420;
const HEIGHT = 220;

const CONFIG = {
  font: 'DejaVu Sans, Helvetica, Arial, sans-serif',
  title: { fontSize: 13, anchor: 'start' as const, offset: 8 },
  axis: { labelFontSize: 11, titleFontSize: 11, gridColor: '#e6e8ee' },
  legend: { labelFontSize: 11, titleFontSize: 11, labelLimit: 260, orient: 'bottom' as const, direction: 'vertical' as const },
  view: { stroke: '#d8dce4' },
};

/** Vega's tableau10 scheme, assigned by a model's place in the report so it keeps its colour in every chart. */
const MODEL_COLOURS = ['#4c78a8', '#f58518', '#e45756', '#72b7b2', '#54a24b', '#eeca3b', '#b279a2', '#ff9da6', '#9d755d', '#bab0ac'];

/** Colour encoding for the models that have data in this chart (the legend lists only those), coloured as everywhere else. */
export function modelColour(models: readonly string[], data: readonly Datum[]): { field: string; type: 'nominal'; title: string; scale: { domain: string[]; range: string[] } } {
  const present = new Set(data.map((d) => d.model));
  const shown = models.map((m, i) => [m, MODEL_COLOURS[i % MODEL_COLOURS.length] ?? '#888'] as const).filter(([m]) => present.has(m));
  return { field: 'model', type: 'nominal', title: 'model', scale: { domain: shown.map(([m]) => m), range: shown.map(([, c]) => c) } };
}

export interface LineChartOptions {
  title: string;
  /** Rows with `model`, the x field, the y field and, when `dash` is set, that field. */
  data: Datum[];
  /** Every model of the report, in order: a model keeps its colour across charts. */
  models: readonly string[];
  x: { field: string; title: string; integer?: boolean };
  y: { field: string; title: string; log?: boolean; format?: string; zero?: boolean; domain?: [number, number] };
  /** A field whose values get different dash patterns (train vs validation). */
  dash?: { field: string; title: string };
  /** Mark each data point (default true; off for long series). */
  points?: boolean;
}

export function lineChartSpec(o: LineChartOptions): ChartSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title,
    width: WIDTH,
    height: HEIGHT,
    config: CONFIG,
    data: { values: o.data },
    mark: { type: 'line', point: o.points === false ? false : { size: 28 }, strokeWidth: 2 },
    encoding: {
      x: { field: o.x.field, type: 'quantitative', title: o.x.title, ...(o.x.integer ? { axis: { format: 'd', tickMinStep: 1 } } : {}) },
      y: {
        field: o.y.field,
        type: 'quantitative',
        title: o.y.title,
        scale: o.y.log ? { type: 'log' } : o.y.domain ? { domain: o.y.domain } : { zero: o.y.zero ?? false },
        ...(o.y.format ? { axis: { format: o.y.format } } : {}),
      },
      color: modelColour(o.models, o.data),
      ...(o.dash ? { strokeDash: { field: o.dash.field, type: 'nominal', title: o.dash.title } } : {}),
    },
  } as ChartSpec;
}

export interface ScatterOptions {
  title: string;
  subtitle?: string;
  /** Rows with x, y, `class` and `model`/`id` for context. */
  data: Datum[];
  xTitle: string;
  yTitle: string;
  /** Class names in legend order. */
  classes: readonly string[];
}

export function scatterSpec(o: ScatterOptions): ChartSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.subtitle ? { text: o.title, subtitle: o.subtitle, subtitleColor: '#5b6475' } : o.title,
    width: 360,
    height: 300,
    config: { ...CONFIG, legend: { ...CONFIG.legend, orient: 'right', direction: 'vertical' } },
    data: { values: o.data },
    mark: { type: 'point', filled: true, size: 40, opacity: 0.8 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: o.xTitle, scale: { zero: false } },
      y: { field: 'y', type: 'quantitative', title: o.yTitle, scale: { zero: false } },
      color: { field: 'class', type: 'nominal', title: 'keyword class', scale: { domain: [...o.classes], scheme: 'category10' } },
      shape: { field: 'class', type: 'nominal', title: 'keyword class', scale: { domain: [...o.classes] } },
    },
  } as ChartSpec;
}
