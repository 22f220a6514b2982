// Reads a zod schema (zod 3) as the reference's field tables: every field's
// path, type, default, constraints and .describe() text. It reads zod's
// internal _def, which zod 3 keeps stable; a kind it does not know is an
// error rather than a silent gap in the docs.
import type { ZodTypeAny } from 'zod';

export interface FieldRow {
  /** as users write it: placement.demand[].site, streams.NAME.ops */
  path: string;
  type: string;
  /** `required`, or the default as JSON, or empty when optional */
  default: string;
  rules: string;
  meaning: string;
}

interface Def {
  typeName: string;
  description?: string;
  innerType?: ZodTypeAny;
  schema?: ZodTypeAny;
  defaultValue?: () => unknown;
  checks?: { kind: string; value?: unknown; inclusive?: boolean; message?: string; regex?: RegExp }[];
  type?: ZodTypeAny;
  minLength?: { value: number } | null;
  maxLength?: { value: number } | null;
  keyType?: ZodTypeAny;
  valueType?: ZodTypeAny;
  values?: string[];
  shape?: () => Record<string, ZodTypeAny>;
}

const def = (t: ZodTypeAny) => t._def as Def;

/** The schema under its wrappers (optional, default, refinements), and what the wrappers say. */
function unwrap(t: ZodTypeAny): { core: ZodTypeAny; optional: boolean; dflt?: { value: unknown }; description?: string; refined: boolean } {
  let optional = false;
  let refined = false;
  let dflt: { value: unknown } | undefined;
  let description = def(t).description;
  for (;;) {
    const d = def(t);
    description ??= d.description;
    if (d.typeName === 'ZodOptional') optional = true;
    else if (d.typeName === 'ZodDefault') dflt ??= { value: d.defaultValue!() };
    else if (d.typeName === 'ZodEffects') refined = true;
    else return { core: t, optional, dflt, description, refined };
    t = d.typeName === 'ZodEffects' ? d.schema! : d.innerType!;
  }
}

function typeName(t: ZodTypeAny): string {
  const { core } = unwrap(t);
  const d = def(core);
  switch (d.typeName) {
    case 'ZodString': return 'string';
    case 'ZodBoolean': return 'boolean';
    case 'ZodNumber': return d.checks!.some((c) => c.kind === 'int') ? 'integer' : 'number';
    case 'ZodEnum': return d.values!.map((v) => `\`${v}\``).join(' or ');
    case 'ZodObject': return 'object';
    case 'ZodArray': return `array of ${plural(typeName(d.type!))}`;
    case 'ZodRecord': return `map of ${typeName(d.keyType!)} to ${typeName(d.valueType!)}`;
    default: throw new Error(`the reference cannot describe a ${d.typeName}`);
  }
}

const plural = (s: string) => (/^(string|number|integer|boolean|object)$/.test(s) ? `${s}s` : s);

function rules(t: ZodTypeAny): string[] {
  const { core } = unwrap(t);
  const d = def(core);
  const out: string[] = [];
  if (d.typeName === 'ZodString' || d.typeName === 'ZodNumber') {
    const unit = d.typeName === 'ZodString' ? ' characters' : '';
    const min = d.checks!.find((c) => c.kind === 'min');
    const max = d.checks!.find((c) => c.kind === 'max');
    if (min && max && min.inclusive !== false && max.inclusive !== false) out.push(`${min.value} to ${max.value}${unit}`);
    else {
      if (min) out.push(`${min.inclusive === false ? '>' : '>='} ${min.value}${unit}`);
      if (max) out.push(`${max.inclusive === false ? '<' : '<='} ${max.value}${unit}`);
    }
    for (const c of d.checks!) {
      if (c.kind === 'regex') out.push(c.message ?? `matches \`${c.regex}\``);
      if (c.kind === 'startsWith') out.push(c.message ?? `starts with \`${c.value}\``);
    }
  } else if (d.typeName === 'ZodArray') {
    const lo = d.minLength?.value;
    const hi = d.maxLength?.value;
    if (lo !== undefined && hi !== undefined) out.push(`${lo} to ${hi} items`);
    else if (lo !== undefined) out.push(`at least ${lo} item${lo === 1 ? '' : 's'}`);
    else if (hi !== undefined) out.push(`at most ${hi} items`);
    const each = rules(d.type!);
    if (each.length) out.push(`each: ${each.join(', ')}`);
  } else if (d.typeName === 'ZodRecord') {
    const keys = rules(d.keyType!);
    const values = rules(d.valueType!);
    if (keys.length) out.push(`keys: ${keys.join(', ')}`);
    if (values.length) out.push(`values: ${values.join(', ')}`);
  }
  return out;
}

/** The object schema a field holds, directly or as the items of an array or the values of a map, with how its path continues. */
function nested(t: ZodTypeAny): { schema: ZodTypeAny; suffix: string } | null {
  const d = def(unwrap(t).core);
  if (d.typeName === 'ZodObject') return { schema: unwrap(t).core, suffix: '' };
  if (d.typeName === 'ZodArray' && def(unwrap(d.type!).core).typeName === 'ZodObject') return { schema: unwrap(d.type!).core, suffix: '[]' };
  if (d.typeName === 'ZodRecord' && def(unwrap(d.valueType!).core).typeName === 'ZodObject') return { schema: unwrap(d.valueType!).core, suffix: '.KEY' };
  return null;
}

/**
 * One row for every field of an object schema, depth first. `stop` names
 * paths whose inside is documented elsewhere (their own row stays); `key`
 * names what a map's keys are, for its fields' paths (streams.NAME.ops).
 */
export function fieldRows(schema: ZodTypeAny, o: { prefix?: string; stop?: string[]; key?: Record<string, string> } = {}): FieldRow[] {
  const { core } = unwrap(schema);
  const shape = def(core).shape!();
  const out: FieldRow[] = [];
  for (const [name, field] of Object.entries(shape)) {
    const path = o.prefix ? `${o.prefix}.${name}` : name;
    const u = unwrap(field);
    if (!u.description) throw new Error(`${path} has no .describe(): the reference needs one`);
    out.push({
      path,
      type: typeName(field),
      default: u.dflt ? `\`${JSON.stringify(u.dflt.value)}\`` : u.optional ? '' : 'required',
      rules: rules(field).join('; '),
      meaning: u.description,
    });
    const inner = o.stop?.includes(path) ? null : nested(field);
    if (inner) {
      const suffix = inner.suffix === '.KEY' ? `.${o.key?.[path] ?? 'KEY'}` : inner.suffix;
      out.push(...fieldRows(inner.schema, { ...o, prefix: path + suffix }));
    }
  }
  return out;
}
