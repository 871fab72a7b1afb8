// Small builders for the OpenAPI v3 / JSON Schema of the API. The schema they make is the single source for
// the CRD (generate-crd.ts) and for ajv validation (validate.ts), so it must stay inside what both accept:
// structural-schema rules for Kubernetes, draft-07 plus the `x-kubernetes-*` keywords for ajv.

export interface CelRule {
  rule: string;
  message: string;
  /** JSONPath-like path relative to the node the rule sits on, e.g. ".source": where the error is reported. */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

export interface Schema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  enum?: readonly (string | number)[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  format?: string;
  anyOf?: Schema[];
  'x-kubernetes-validations'?: CelRule[];
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
}

type Extra = Omit<Schema, 'type' | 'description'>;

export function str(description: string, extra: Extra = {}): Schema {
  return { type: 'string', description, maxLength: 1024, ...extra };
}

export function int(description: string, min: number, max: number, extra: Extra = {}): Schema {
  return { type: 'integer', description, minimum: min, maximum: max, ...extra };
}

export function num(description: string, extra: Extra = {}): Schema {
  return { type: 'number', description, ...extra };
}

export function bool(description: string, extra: Extra = {}): Schema {
  return { type: 'boolean', description, ...extra };
}

export function oneOf(description: string, values: readonly string[], extra: Extra = {}): Schema {
  return { type: 'string', description: `${description} One of: ${values.join(', ')}.`, enum: values, ...extra };
}

/** An integer within [min, max] or the string "auto" (Kubernetes' int-or-string, checked by a CEL rule). */
export function intOrAuto(description: string, field: string, min: number, max: number): Schema {
  return {
    description: `${description} An integer from ${min} to ${max}, or "auto".`,
    'x-kubernetes-int-or-string': true,
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    default: 'auto',
    'x-kubernetes-validations': [
      {
        rule: `type(self) == string ? self == 'auto' : (int(self) >= ${min} && int(self) <= ${max})`,
        message: `${field} must be an integer from ${min} to ${max} or "auto"`,
      },
    ],
  };
}

/** A closed object: ajv rejects unknown fields; the CRD leaves that to the apiserver's field validation. */
export function obj(
  description: string,
  properties: Record<string, Schema>,
  extra: Extra = {},
): Schema {
  return { type: 'object', description, properties, additionalProperties: false, ...extra };
}

export function stringMap(description: string): Schema {
  return { type: 'object', description, additionalProperties: { type: 'string', maxLength: 1024 } };
}

/**
 * An optional object that, when left out, takes its fields' own defaults. The default spells those values out
 * rather than being {}: the apiserver checks a default against the object's CEL rules as written, without
 * applying nested defaults first, so {} fails every rule that reads a field ("no such key").
 */
export function defaulted(schema: Schema): Schema {
  const value: Record<string, unknown> = {};
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    if (property.default !== undefined) value[name] = property.default;
  }
  return { ...schema, default: value };
}
