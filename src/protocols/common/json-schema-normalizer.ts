import {
  isObject,
  JSON_SCHEMA_MAX_COUNT,
  JSON_SCHEMA_MAX_TOTAL_COUNT,
  pathKey,
  SchemaError,
} from './json-schema-limits.ts';

/**
 * Rewrites a client's JSON schema into the dialect of node-llama-cpp's schema → grammar converter, refusing
 * (SchemaError, with the JSON path) what the converter would silently turn into `null` or `""`; the rewrites are
 * listed in json-schema-check.ts.
 */

const TYPES = ['string', 'number', 'integer', 'boolean', 'null', 'object', 'array'] as const;
const BASIC_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'null']);
const FORMATS = new Set(['date', 'time', 'date-time']);
const COUNTS = ['minItems', 'maxItems', 'minLength', 'maxLength', 'minProperties', 'maxProperties'] as const;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Schema = { [key: string]: Json };

/** The converter's "any JSON value". */
const ANY: Schema = {
  oneOf: [
    { type: ['string', 'number', 'boolean', 'null'] },
    { type: 'object', additionalProperties: true },
    { type: 'array' },
  ],
};

interface Def {
  name: string;
  schema: unknown;
  path: string;
  /** The definitions visible where this one is declared. */
  scope: Map<string, Def>;
}

export class SchemaNormalizer {
  private totalCount = 0;
  /** Definition → definitions it reaches without passing through an object or array (a cycle never ends). */
  private readonly unguarded = new Map<Def, Set<Def>>();
  /** Every definition, hoisted to the root `$defs` under a unique name (the converter resolves names only). */
  private readonly hoisted = new Map<Def, string>();
  private readonly rootDefs: Schema = {};
  private readonly pending: Def[] = [];

  constructor(private readonly root: Record<string, unknown>) {}

  run(): Schema {
    const rootOwner: Def = { name: '(root)', schema: this.root, path: '$', scope: new Map() };
    const result = this.schema(this.root, '$', new Map(), rootOwner, 0);
    // Definitions are walked one after another, not inside each other, so a long chain cannot exhaust the stack.
    for (let def = this.pending.shift(); def; def = this.pending.shift())
      this.rootDefs[this.hoisted.get(def) as string] = this.schema(def.schema, def.path, def.scope, def, 0);
    this.checkCycles();
    return Object.keys(this.rootDefs).length > 0 ? { ...result, $defs: this.rootDefs } : result;
  }

  private fail(path: string, message: string): never {
    throw new SchemaError(`${path}: ${message}`);
  }

  private hoist(def: Def): string {
    let name = this.hoisted.get(def);
    if (name === undefined) {
      const base = def.name.replace(/[^A-Za-z0-9_-]/g, '_') || 'def';
      name = base;
      for (let i = 2; Object.hasOwn(this.rootDefs, name); i++) name = `${base}_${i}`;
      this.rootDefs[name] = {};
      this.hoisted.set(def, name);
      this.pending.push(def);
    }
    return name;
  }

  /** The `$defs`/`definitions` a schema declares, added to those of its ancestors (the converter's scoping). */
  private scope(schema: Record<string, unknown>, path: string, parent: Map<string, Def>): Map<string, Def> {
    let scope = parent;
    const declared: Def[] = [];
    for (const key of ['definitions', '$defs'] as const) {
      const defs = schema[key];
      if (defs === undefined) continue;
      if (!isObject(defs)) this.fail(pathKey(path, key), 'expected an object of named schemas');
      if (scope === parent) scope = new Map(parent);
      for (const [name, def] of Object.entries(defs)) {
        const entry: Def = { name, schema: def, path: pathKey(pathKey(path, key), name), scope };
        scope.set(name, entry);
        declared.push(entry);
      }
    }
    // Every declared definition is checked, referenced or not.
    for (const def of declared) this.hoist(def);
    return scope;
  }

  private schema(raw: unknown, path: string, parentScope: Map<string, Def>, owner: Def, guarded: number): Schema {
    if (raw === true) return ANY;
    if (raw === false) this.fail(path, 'the schema false allows no value, so nothing could be generated');
    if (!isObject(raw)) this.fail(path, `expected a schema object, got ${JSON.stringify(raw)?.slice(0, 40)}`);
    const scope = this.scope(raw, path, parentScope);
    const out: Schema = {};

    if (raw.$ref !== undefined) {
      const ref = raw.$ref;
      if (typeof ref !== 'string') this.fail(pathKey(path, '$ref'), 'expected a string');
      const match = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref);
      if (!match)
        this.fail(
          pathKey(path, '$ref'),
          `${JSON.stringify(ref)} is not supported: only references to a whole definition, "#/$defs/NAME" or "#/definitions/NAME", are`,
        );
      let name = match[2] as string;
      try {
        name = decodeURIComponent(name.replace(/~1/g, '/').replace(/~0/g, '~'));
      } catch {}
      const def = scope.get(name);
      if (!def) this.fail(pathKey(path, '$ref'), `${JSON.stringify(ref)} names no definition in scope`);
      if (guarded === 0) {
        const set = this.unguarded.get(owner) ?? new Set<Def>();
        this.unguarded.set(owner, set);
        set.add(def);
      }
      out.$ref = `#/$defs/${this.hoist(def)}`;
      return out;
    }

    if (raw.allOf !== undefined) {
      const list = this.list(raw.allOf, pathKey(path, 'allOf'));
      if (list.length !== 1 || raw.type !== undefined || raw.oneOf !== undefined || raw.anyOf !== undefined)
        this.fail(
          pathKey(path, 'allOf'),
          'allOf is supported only with one element and no other type keywords beside it (merge the schemas into one)',
        );
      return { ...out, ...this.schema(list[0], pathKey(pathKey(path, 'allOf'), 0), scope, owner, guarded) };
    }

    if (raw.oneOf !== undefined && raw.anyOf !== undefined)
      this.fail(path, 'oneOf and anyOf together are not supported (use one of them)');
    for (const key of ['oneOf', 'anyOf'] as const) {
      if (raw[key] === undefined) continue;
      const list = this.list(raw[key], pathKey(path, key));
      out.oneOf = list.map((item, i) => this.schema(item, pathKey(pathKey(path, key), i), scope, owner, guarded));
      return out;
    }

    if (raw.const !== undefined) return { ...out, const: this.literal(raw.const, pathKey(path, 'const')) };
    if (raw.enum !== undefined) {
      if (!Array.isArray(raw.enum) || raw.enum.length === 0)
        this.fail(pathKey(path, 'enum'), 'expected a non-empty list of values (an empty enum allows no value)');
      const values = raw.enum;
      return { ...out, enum: values.map((value, i) => this.literal(value, pathKey(pathKey(path, 'enum'), i))) };
    }

    for (const key of COUNTS) if (raw[key] !== undefined) this.count(raw[key], pathKey(path, key));
    this.order(raw, path, 'minItems', 'maxItems');
    this.order(raw, path, 'minLength', 'maxLength');
    this.order(raw, path, 'minProperties', 'maxProperties');

    let types = this.types(raw, path);
    if (types === undefined) {
      if (['properties', 'additionalProperties', 'minProperties', 'maxProperties'].some((k) => raw[k] !== undefined))
        types = ['object'];
      else if (['items', 'prefixItems', 'minItems', 'maxItems'].some((k) => raw[k] !== undefined)) types = ['array'];
      else if (['minLength', 'maxLength', 'format'].some((k) => raw[k] !== undefined)) types = ['string'];
      else return { ...out, ...ANY };
    }
    if (types.length === 1) return { ...out, ...this.typed(types[0] as string, raw, path, scope, owner, guarded) };
    const basic = types.filter((t) => BASIC_TYPES.has(t));
    const structured = types.filter((t) => !BASIC_TYPES.has(t));
    const hasStringKeywords = raw.minLength !== undefined || raw.maxLength !== undefined || raw.format !== undefined;
    if (structured.length === 0 && !hasStringKeywords) return { ...out, type: basic };
    out.oneOf = types.map((t) => this.typed(t, raw, path, scope, owner, guarded));
    return out;
  }

  private typed(
    type: string,
    raw: Record<string, unknown>,
    path: string,
    scope: Map<string, Def>,
    owner: Def,
    guarded: number,
  ): Schema {
    const out: Schema = { type };
    if (type === 'string') {
      if (raw.minLength !== undefined) out.minLength = raw.minLength as number;
      if (raw.maxLength !== undefined) out.maxLength = raw.maxLength as number;
      // An unknown format would make the converter force an empty string.
      if (typeof raw.format === 'string' && FORMATS.has(raw.format)) return { type, format: raw.format };
    } else if (type === 'object') {
      const properties = raw.properties;
      if (properties !== undefined) {
        if (!isObject(properties)) this.fail(pathKey(path, 'properties'), 'expected an object of named schemas');
        const outProperties: Schema = {};
        for (const [name, value] of Object.entries(properties))
          outProperties[this.noNul(name, pathKey(pathKey(path, 'properties'), name))] = this.schema(
            value,
            pathKey(pathKey(path, 'properties'), name),
            scope,
            owner,
            guarded + 1,
          );
        out.properties = outProperties;
        const max = raw.maxProperties as number | undefined;
        if (max !== undefined && max < Object.keys(properties).length)
          this.fail(
            pathKey(path, 'maxProperties'),
            `${max} is below the ${Object.keys(properties).length} properties, every one of which is generated`,
          );
      }
      const additional = raw.additionalProperties;
      if (additional === true) out.additionalProperties = true;
      else if (additional !== undefined && additional !== false)
        out.additionalProperties = this.schema(
          additional,
          pathKey(path, 'additionalProperties'),
          scope,
          owner,
          guarded + 1,
        );
      if (raw.minProperties !== undefined) out.minProperties = raw.minProperties as number;
      if (raw.maxProperties !== undefined) out.maxProperties = raw.maxProperties as number;
      if (
        out.additionalProperties === undefined &&
        raw.minProperties !== undefined &&
        (raw.minProperties as number) > Object.keys(out.properties ?? {}).length
      )
        this.fail(
          pathKey(path, 'minProperties'),
          `${raw.minProperties} is more than the properties there are, and additionalProperties does not allow others`,
        );
    } else if (type === 'array') {
      let prefix = raw.prefixItems;
      let items = raw.items;
      if (Array.isArray(items)) {
        // Draft 4–2019 tuple form.
        prefix = items;
        items = raw.additionalItems;
      }
      if (prefix !== undefined) {
        const list = this.list(prefix, pathKey(path, 'prefixItems'));
        out.prefixItems = list.map((item, i) =>
          this.schema(item, pathKey(pathKey(path, 'prefixItems'), i), scope, owner, guarded + 1),
        );
        const max = raw.maxItems as number | undefined;
        if (max !== undefined && max < list.length)
          this.fail(pathKey(path, 'maxItems'), `${max} is below the ${list.length} prefixItems`);
      }
      if (items === false) {
        out.maxItems = (out.prefixItems as Json[] | undefined)?.length ?? 0;
        if (raw.minItems !== undefined && (raw.minItems as number) > (out.maxItems as number))
          this.fail(pathKey(path, 'minItems'), `${raw.minItems} items cannot be generated when items is false`);
      } else if (items !== undefined && items !== true)
        out.items = this.schema(items, pathKey(path, 'items'), scope, owner, guarded + 1);
      if (raw.minItems !== undefined) out.minItems = raw.minItems as number;
      if (raw.maxItems !== undefined && out.maxItems === undefined) out.maxItems = raw.maxItems as number;
    }
    return out;
  }

  private types(raw: Record<string, unknown>, path: string): string[] | undefined {
    const type = raw.type;
    if (type === undefined) return undefined;
    const list = typeof type === 'string' ? [type] : type;
    if (!Array.isArray(list) || list.length === 0)
      this.fail(pathKey(path, 'type'), 'expected a type name or a non-empty list of them');
    const out: string[] = [];
    list.forEach((t, i) => {
      if (typeof t !== 'string' || !(TYPES as readonly string[]).includes(t))
        this.fail(
          typeof type === 'string' ? pathKey(path, 'type') : pathKey(pathKey(path, 'type'), i),
          `unknown type ${JSON.stringify(t)} (expected one of ${TYPES.join(', ')})`,
        );
      if (!out.includes(t)) out.push(t);
    });
    if (raw.nullable === true && !out.includes('null')) out.push('null');
    return out;
  }

  /** The converter writes only strings, finite numbers, booleans and null as literals. */
  private literal(value: unknown, path: string): Json {
    if (typeof value === 'string') return this.noNul(value, path);
    if (value === null || typeof value === 'boolean') return value;
    if (typeof value === 'number' && Number.isFinite(value)) return value;
    return this.fail(
      path,
      `${typeof value === 'number' ? String(value) : Array.isArray(value) ? 'an array' : 'an object'} is not supported here: const and enum values must be strings, numbers, booleans or null`,
    );
  }

  /** The grammar would have to produce U+0000, which no token text holds (and llama.cpp reads as its end). */
  private noNul(text: string, path: string): string {
    if (text.includes('\u0000')) this.fail(path, 'holds U+0000 (NUL), which no token can produce');
    return text;
  }

  private list(value: unknown, path: string): unknown[] {
    if (!Array.isArray(value) || value.length === 0)
      this.fail(path, 'expected a non-empty list of schemas (an empty list allows no value)');
    return value;
  }

  private count(value: unknown, path: string): void {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0)
      this.fail(path, `expected a whole number of 0 or more, got ${JSON.stringify(value)}`);
    if (value > JSON_SCHEMA_MAX_COUNT) this.fail(path, `${value} is above the limit of ${JSON_SCHEMA_MAX_COUNT}`);
    this.totalCount += value;
    if (this.totalCount > JSON_SCHEMA_MAX_TOTAL_COUNT)
      this.fail(
        path,
        `the schema's item, length and property counts add up to more than ${JSON_SCHEMA_MAX_TOTAL_COUNT} (each becomes grammar rules)`,
      );
  }

  private order(raw: Record<string, unknown>, path: string, minKey: string, maxKey: string): void {
    const min = raw[minKey];
    const max = raw[maxKey];
    if (typeof min === 'number' && typeof max === 'number' && min > max)
      this.fail(pathKey(path, minKey), `${minKey} (${min}) is above ${maxKey} (${max})`);
  }

  /** A definition that reaches itself through references only (no object or array in between) never ends. */
  private checkCycles(): void {
    const state = new Map<Def, 1 | 2>();
    for (const first of this.unguarded.keys()) {
      if (state.has(first)) continue;
      const path: Def[] = [first];
      const iterators = [[...(this.unguarded.get(first) ?? [])].values()];
      state.set(first, 1);
      while (path.length > 0) {
        const step = (iterators[iterators.length - 1] as IterableIterator<Def>).next();
        if (step.done) {
          state.set(path.pop() as Def, 2);
          iterators.pop();
          continue;
        }
        const next = step.value;
        const s = state.get(next);
        if (s === 1) {
          const cycle = [...path.slice(path.indexOf(next)), next].map((d) => d.name).join(' → ');
          this.fail(next.path, `$ref cycle ${cycle} never reaches an object or array, so its grammar would never end`);
        }
        if (s === undefined) {
          state.set(next, 1);
          path.push(next);
          iterators.push([...(this.unguarded.get(next) ?? [])].values());
        }
      }
    }
  }
}
