import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { artifacts } from '../../hack/generate.js';

const generated = artifacts();

test('every generated file is committed exactly as `npm run generate` produces it', () => {
  for (const { path, content } of generated) {
    assert.equal(readFileSync(path, 'utf8'), content, `${path} drifted from its source: run \`npm run generate\``);
  }
});

function renderCrd(): string {
  const crd = generated.find((a) => a.path.endsWith('crds/captiontrainingruns.captionrun.dev.yaml'));
  assert.ok(crd, 'the CRD is a generated artifact');
  return crd.content;
}

interface Crd {
  spec: {
    names: { plural: string; shortNames: string[] };
    versions: {
      subresources: { status: object };
      additionalPrinterColumns: { name: string }[];
      schema: { openAPIV3Schema: Record<string, unknown> };
    }[];
  };
}

const crd = parse(renderCrd()) as Crd;
const version = crd.spec.versions[0];

test('names, status subresource and printer columns', () => {
  assert.equal(crd.spec.names.plural, 'captiontrainingruns');
  assert.ok(crd.spec.names.shortNames.includes('captionrun'));
  assert.ok(crd.spec.names.shortNames.includes('captionruns'));
  assert.deepEqual(version?.subresources, { status: {} });
  assert.deepEqual(
    version?.additionalPrinterColumns.map((c) => c.name),
    ['Phase', 'Stage', 'World', 'Epoch', 'Step', 'Loss', 'BLEU-4', 'ETA', 'Restarts', 'Checkpoint', 'Age', 'Backend', 'Report'],
  );
});

/** Visits every schema node of the CRD with its path. */
function walk(node: unknown, path: string, visit: (node: Record<string, unknown>, path: string) => void): void {
  if (typeof node !== 'object' || node === null) return;
  const schema = node as Record<string, unknown>;
  visit(schema, path);
  for (const [k, child] of Object.entries((schema.properties as Record<string, unknown>) ?? {})) walk(child, `${path}.${k}`, visit);
  if (schema.items) walk(schema.items, `${path}[]`, visit);
  if (typeof schema.additionalProperties === 'object') walk(schema.additionalProperties, `${path}{}`, visit);
}

test('the schema is structural: every node typed or int-or-string, no additionalProperties: false', () => {
  walk(version?.schema.openAPIV3Schema, '', (node, path) => {
    assert.notEqual(node.additionalProperties, false, `${path} has additionalProperties: false`);
    assert.ok(node.type !== undefined || node['x-kubernetes-int-or-string'] === true, `${path} has a type`);
    assert.ok(typeof node.exclusiveMinimum !== 'number', `${path} uses OpenAPI v3.0's boolean exclusiveMinimum`);
  });
});

test('every spec field has a description for kubectl explain', () => {
  const spec = (version?.schema.openAPIV3Schema.properties as Record<string, unknown>).spec;
  walk(spec, 'spec', (node, path) => {
    if (!path.endsWith('[]') && !path.endsWith('{}')) assert.ok(node.description, `${path} has a description`);
  });
});
