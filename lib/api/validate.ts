// Validates a CaptionTrainingRun the way the apiserver admits it: structural schema (ajv, defaults applied)
// and then the same CEL rules the CRD carries. Every issue names its field path and a way to fix it.
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseCel } from '@marcbachmann/cel-js';
import { runSchema } from './schema.js';
import type { CelRule, Schema } from './schema-helpers.js';
import type { CaptionTrainingRun } from './types.js';

export interface ValidationIssue {
  /** Dotted field path, e.g. "spec.training.batchSize" or "spec.resources.tolerations[0].effect". */
  path: string;
  message: string;
  hint?: string;
}

export type ValidationResult =
  | { ok: true; run: CaptionTrainingRun; issues: [] }
  | { ok: false; issues: ValidationIssue[] };

const ajv = new Ajv({
  allErrors: true,
  verbose: true, // errors carry the offending value and its schema, for messages and hints
  useDefaults: true,
  strict: true,
  strictTypes: false, // int-or-string fields are a typeless anyOf, exactly as Kubernetes' structural schema wants
  formats: { 'date-time': true },
  keywords: [
    'x-kubernetes-validations',
    'x-kubernetes-int-or-string',
    'x-kubernetes-preserve-unknown-fields',
    'x-kubernetes-list-type',
    'x-kubernetes-list-map-keys',
    'x-kubernetes-map-type',
  ],
});
const checkSchema = ajv.compile(runSchema);

type CelProgram = ReturnType<typeof parseCel>;
const celCache = new Map<string, CelProgram>();
function celProgram(rule: string): CelProgram {
  let program = celCache.get(rule);
  if (!program) {
    program = parseCel(rule);
    celCache.set(rule, program);
  }
  return program;
}

/** Validates one parsed document; on success returns a copy with every default filled in. */
export function validateRun(doc: unknown): ValidationResult {
  const run = structuredClone(doc);
  const issues: ValidationIssue[] = [];
  if (!checkSchema(run)) issues.push(...describeAjvErrors(checkSchema.errors ?? []));
  const failedPaths = issues.map((i) => i.path);
  issues.push(...checkCelRules(runSchema, run, '', failedPaths));
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, run: run as CaptionTrainingRun, issues: [] };
}

function describeAjvErrors(errors: ErrorObject[]): ValidationIssue[] {
  // An int-or-string field of the wrong type yields "must be integer", "must be string" and "must match anyOf":
  // report it once.
  const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  const issues: ValidationIssue[] = [];
  for (const e of errors) {
    if (e.keyword === 'type' && e.schemaPath.includes('/anyOf/') && anyOfPaths.has(e.instancePath)) continue;
    const at = toDotted(e.instancePath);
    const schema = e.parentSchema as Schema | undefined;
    switch (e.keyword) {
      case 'additionalProperties': {
        const field = String(e.params.additionalProperty);
        const known = Object.keys(schema?.properties ?? {});
        issues.push({
          path: join(at, field),
          message: 'unknown field',
          hint: suggest(field, known) ?? `known fields here: ${known.join(', ')}`,
        });
        break;
      }
      case 'required': {
        const field = String(e.params.missingProperty);
        issues.push({
          path: join(at, field),
          message: 'is required',
          hint: schema?.properties?.[field]?.description,
        });
        break;
      }
      case 'enum': {
        const allowed = (e.params.allowedValues as unknown[]).map(String);
        issues.push({
          path: at,
          message: `${JSON.stringify(e.data)} is not allowed; must be one of: ${allowed.join(', ')}`,
          hint: typeof e.data === 'string' ? suggest(e.data, allowed) : undefined,
        });
        break;
      }
      case 'type':
        issues.push({ path: at, message: `must be ${String(e.params.type)}, got ${describe(e.data)}` });
        break;
      case 'anyOf':
        issues.push({ path: at, message: `must be an integer or "auto", got ${describe(e.data)}` });
        break;
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        issues.push({ path: at, message: `${describe(e.data)} ${e.message ?? 'is out of range'}`, hint: rangeHint(schema) });
        break;
      case 'pattern':
      case 'minLength':
      case 'maxLength':
        issues.push({ path: at, message: `${describe(e.data)} ${e.message ?? 'is invalid'}`, hint: schema?.description });
        break;
      default:
        issues.push({ path: at, message: e.message ?? `fails ${e.keyword}` });
    }
  }
  return issues;
}

/**
 * Evaluates every CEL rule whose node is present, with `self` bound to that node, as the apiserver does.
 * Rules that compare with `oldSelf` only apply to updates and are skipped here. A node whose subtree already
 * failed the structural check is skipped too: its rules would only repeat that error.
 */
function checkCelRules(schema: Schema, value: unknown, path: string, failedPaths: string[]): ValidationIssue[] {
  if (value === undefined || value === null) return [];
  if (failedPaths.some((p) => p === path || p.startsWith(path === '' ? '' : `${path}.`) || p.startsWith(`${path}[`))) {
    return descendCel(schema, value, path, failedPaths);
  }
  const issues: ValidationIssue[] = [];
  for (const rule of schema['x-kubernetes-validations'] ?? []) {
    if (rule.rule.includes('oldSelf')) continue;
    if (!evaluateRule(rule, toCel(schema, value))) {
      const at = join(path, (rule.fieldPath ?? '').replace(/^\./, ''));
      // Rule messages name their field for the apiserver's sake; the CLI already prints the path.
      issues.push({ path: at, message: rule.message.startsWith(`${at} `) ? rule.message.slice(at.length + 1) : rule.message });
    }
  }
  return [...issues, ...descendCel(schema, value, path, failedPaths)];
}

function descendCel(schema: Schema, value: unknown, path: string, failedPaths: string[]): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  if (schema.properties && isRecord(value)) {
    for (const [key, child] of Object.entries(schema.properties)) {
      issues.push(...checkCelRules(child, value[key], join(path, key), failedPaths));
    }
  }
  if (schema.items && Array.isArray(value)) {
    value.forEach((item, i) => issues.push(...checkCelRules(schema.items as Schema, item, `${path}[${i}]`, failedPaths)));
  }
  return issues;
}

function evaluateRule(rule: CelRule, self: unknown): boolean {
  try {
    return celProgram(rule.rule)({ self }) === true;
  } catch {
    return false;
  }
}

/** CEL distinguishes int from double; JSON does not. The schema says which numbers are integers. */
function toCel(schema: Schema, value: unknown): unknown {
  if (typeof value === 'number' && Number.isInteger(value) && (schema.type === 'integer' || schema['x-kubernetes-int-or-string'])) {
    return BigInt(value);
  }
  if (Array.isArray(value)) return value.map((v) => (schema.items ? toCel(schema.items, v) : v));
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const child = schema.properties?.[k] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : {});
      out[k] = toCel(child, v);
    }
    return out;
  }
  return value;
}

function toDotted(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, seg) => (/^\d+$/.test(seg) ? `${acc}[${seg}]` : join(acc, seg)), '');
}

function join(path: string, field: string): string {
  if (field === '') return path;
  return path === '' ? field : `${path}.${field}`;
}

function describe(data: unknown): string {
  if (data === null) return 'null';
  if (Array.isArray(data)) return 'an array';
  if (typeof data === 'object') return 'an object';
  return `${typeof data} ${JSON.stringify(data)}`;
}

function rangeHint(schema: Schema | undefined): string | undefined {
  if (!schema) return undefined;
  const low = schema.minimum ?? (schema.exclusiveMinimum !== undefined ? `more than ${schema.exclusiveMinimum}` : undefined);
  if (low === undefined && schema.maximum === undefined) return undefined;
  return `use a value from ${low ?? '-inf'} to ${schema.maximum ?? 'inf'}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** "did you mean 'x'?" for a value within edit distance 2 (or a case-insensitive match) of a known one. */
export function suggest(value: string, known: readonly string[]): string | undefined {
  let best: { word: string; d: number } | undefined;
  for (const word of known) {
    const d = word.toLowerCase() === value.toLowerCase() ? 0 : editDistance(value, word);
    if (d <= 2 && (!best || d < best.d)) best = { word, d };
  }
  return best ? `did you mean '${best.word}'?` : undefined;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] as number;
      prev[j] = Math.min(up + 1, (prev[j - 1] as number) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length] as number;
}
