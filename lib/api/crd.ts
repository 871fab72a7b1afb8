// Builds the CustomResourceDefinition from the schema in schema.ts. The CRD speaks OpenAPI v3.0 under
// Kubernetes' structural-schema rules, which differ from the draft-07 JSON Schema ajv reads in three ways
// handled here: no `additionalProperties: false` (the apiserver prunes and field-validates unknown fields
// itself), a boolean `exclusiveMinimum`, and a `metadata` that may only restrict the name.
import { GROUP, KIND, MAX_RUN_NAME, PLURAL, VERSION, runSchema } from './schema.js';
import type { Schema } from './schema-helpers.js';

const printerColumns = [
  { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
  { name: 'Stage', type: 'string', jsonPath: '.status.progress.summary' },
  { name: 'World', type: 'integer', jsonPath: '.status.worldSize' },
  { name: 'Epoch', type: 'integer', jsonPath: '.status.epoch' },
  { name: 'Step', type: 'integer', jsonPath: '.status.step' },
  { name: 'Loss', type: 'number', jsonPath: '.status.loss' },
  { name: 'BLEU-4', type: 'number', jsonPath: '.status.valBleu4' },
  { name: 'ETA', type: 'string', jsonPath: '.status.progress.eta' },
  { name: 'Restarts', type: 'integer', jsonPath: '.status.restarts' },
  { name: 'Checkpoint', type: 'string', jsonPath: '.status.lastCheckpoint.name' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  { name: 'Backend', type: 'string', jsonPath: '.status.backend', priority: 1 },
  { name: 'Report', type: 'string', jsonPath: '.status.reportURI', priority: 1 },
];

export function toStructural(schema: Schema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'additionalProperties' && value === false) continue;
    if (key === 'exclusiveMinimum') {
      out.minimum = value;
      out.exclusiveMinimum = true;
    } else if (key === 'properties') {
      out.properties = Object.fromEntries(
        Object.entries(value as Record<string, Schema>).map(([k, v]) => [k, toStructural(v)]),
      );
    } else if ((key === 'items' || key === 'additionalProperties') && typeof value === 'object') {
      out[key] = toStructural(value as Schema);
    } else if (key === 'anyOf') {
      out.anyOf = (value as Schema[]).map(toStructural);
    } else {
      out[key] = value;
    }
  }
  return out;
}

export function buildCrd(): Record<string, unknown> {
  const props = runSchema.properties ?? {};
  const openAPIV3Schema = {
    ...toStructural({ ...runSchema, required: ['spec'] }),
    properties: {
      apiVersion: { type: 'string', description: props.apiVersion?.description },
      kind: { type: 'string', description: props.kind?.description },
      metadata: { type: 'object', properties: { name: { type: 'string', maxLength: MAX_RUN_NAME } } },
      spec: toStructural(props.spec as Schema),
      status: toStructural(props.status as Schema),
    },
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${PLURAL}.${GROUP}`,
      labels: { 'app.kubernetes.io/name': 'captionrun', 'app.kubernetes.io/part-of': 'captionrun' },
    },
    spec: {
      group: GROUP,
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: 'captiontrainingrun',
        shortNames: ['captionrun', 'captionruns', 'ctr'],
        categories: ['captionrun'],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: printerColumns,
          schema: { openAPIV3Schema },
        },
      ],
    },
  };
}
