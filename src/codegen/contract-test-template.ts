import type { EntityInfo, FieldInfo } from './entity-info';
import { writableFields } from './entity-info';
import { HEADER } from './header';

export const SECRET_SAMPLE = 'Contract-S3cret-Value';

const j = (v: unknown) => JSON.stringify(v);

/** A valid value for `f`; unique string fields get a per-call suffix in the body builder. */
function sample(f: FieldInfo): unknown {
  if (f.example !== undefined) return f.example;
  switch (f.type) {
    case 'string':
    case 'text':
      if (f.sensitive) return `postgres://contract_user:${SECRET_SAMPLE}@127.0.0.1:5432/warehouse`;
      return `sample ${f.name}`.slice(0, f.max_length ?? 100);
    case 'enum':
      return f.values![0];
    case 'integer':
    case 'number':
      return f.default ?? f.min ?? 1;
    case 'boolean':
      return f.default ?? true;
    case 'datetime':
      return '2026-01-01T00:00:00.000Z';
    case 'uuid':
      return '00000000-0000-4000-8000-000000000000';
    case 'json':
      return { sample: true };
  }
}

/** A value of the wrong JSON type for `f`, which a strict schema must refuse. */
function wrongType(f: FieldInfo): unknown {
  switch (f.type) {
    case 'integer':
    case 'number':
      return String(sample(f));
    case 'boolean':
      return 'true';
    case 'json':
      return 'not an object';
    default:
      return 12345;
  }
}

function bodyBuilder(e: EntityInfo): string {
  const entries = writableFields(e).map((f) => {
    if ((f.type === 'string' || f.type === 'text') && f.unique && !f.sensitive)
      return `    ${f.name}: \`${f.name}-\${process.pid}-\${++seq}\`.slice(0, ${f.max_length ?? 100}),`;
    return `    ${f.name}: ${j(sample(f))},`;
  });
  const required = writableFields(e)
    .filter((f) => f.required)
    .map((f) => `${f.name}: body.${f.name}`);
  // A constraint on one field is tested beside the required fields only, so rules an entity adds
  // across fields (a type's settings) cannot make a generic test fail for the wrong reason.
  return `let seq = 0;\nconst validBody = (): Record<string, unknown> => ({\n${entries.join('\n')}\n  });
const requiredBody = (): Record<string, unknown> => {
  const body = validBody();
  return { ${required.join(', ')} };
};`;
}

function fieldTests(e: EntityInfo, f: FieldInfo): string[] {
  const t: string[] = [];
  const P = e.path;
  if (!f.readOnly) {
    t.push(`it('${f.name}: a value of the wrong type is a 400 naming the field', async () => {
    await expectInvalid(await api.post('${P}', { ...validBody(), ${f.name}: ${j(wrongType(f))} }), '/${f.name}');
  });`);
    if (f.nullable)
      t.push(`it('${f.name}: is nullable, and PUT null clears it', async () => {
    const { body } = await api.post('${P}', validBody());
    const res = await api.put(\`${P}/\${body.id}\`, { ${f.name}: null });
    expect(res.status).toBe(200);
    expect(res.body.${f.name}).toBeNull();
  });`);
    else
      t.push(`it('${f.name}: null is refused', async () => {
    const { body } = await api.post('${P}', validBody());
    await expectInvalid(await api.put(\`${P}/\${body.id}\`, { ${f.name}: null }), '/${f.name}');
  });`);
  }
  if (f.required) {
    t.push(`it('${f.name}: required', async () => {
    const { ${f.name}: _omitted, ...body } = validBody();
    await expectInvalid(await api.post('${P}', body), '/${f.name}', 'is required');
  });`);
    if (f.type === 'string' || f.type === 'text')
      t.push(`it('${f.name}: required, so the empty string is refused', async () => {
    await expectInvalid(await api.post('${P}', { ...validBody(), ${f.name}: '' }), '/${f.name}');
  });`);
  }
  // A field with an example has rules of its own: a string of max_length characters is not a valid
  // value, so the example stands for the accepted side and the schema's bound is tested by the refusal.
  if (f.max_length !== undefined && f.example !== undefined)
    t.push(`it('${f.name}: max_length ${f.max_length}, ${f.max_length + 1} refused', async () => {
    const ok = await api.post('${P}', validBody());
    expect(ok.status).toBe(201);
    expect(ok.body.${f.name}).toBe(${j(f.example)});
    await expectInvalid(await api.post('${P}', { ...validBody(), ${f.name}: longest(${f.max_length + 1}) }), '/${f.name}');
  });`);
  else if (f.max_length !== undefined)
    t.push(`it('${f.name}: max_length ${f.max_length} accepted, ${f.max_length + 1} refused', async () => {
    const ok = await api.post('${P}', { ...validBody(), ${f.name}: longest(${f.max_length}) });
    expect(ok.status).toBe(201);
    expect(ok.body.${f.name}).toHaveLength(${f.max_length});
    await expectInvalid(await api.post('${P}', { ...validBody(), ${f.name}: longest(${f.max_length + 1}) }), '/${f.name}');
  });`);
  if (f.min !== undefined)
    t.push(`it('${f.name}: min ${f.min} accepted, ${f.min - 1} refused', async () => {
    expect((await api.post('${P}', { ...validBody(), ${f.name}: ${f.min} })).status).toBe(201);
    await expectInvalid(await api.post('${P}', { ...validBody(), ${f.name}: ${f.min - 1} }), '/${f.name}');
  });`);
  if (f.max !== undefined)
    t.push(`it('${f.name}: max ${f.max} accepted, ${f.max + 1} refused', async () => {
    expect((await api.post('${P}', { ...validBody(), ${f.name}: ${f.max} })).status).toBe(201);
    await expectInvalid(await api.post('${P}', { ...validBody(), ${f.name}: ${f.max + 1} }), '/${f.name}');
  });`);
  if (f.type === 'enum' && !f.readOnly)
    t.push(`it('${f.name}: every enum value accepted, anything else refused', async () => {
    for (const value of ${j(f.values)}) {
      const res = await api.post('${P}', { ...requiredBody(), ${f.name}: value });
      expect(res.status, res.text).toBe(201);
      expect(res.body.${f.name}).toBe(value);
    }
    const res = await api.post('${P}', { ...validBody(), ${f.name}: 'not-a-${f.name}' });
    await expectInvalid(res, '/${f.name}', ${j(`must be one of: ${f.values!.join(', ')}`)});
  });`);
  if (f.default !== undefined && !f.readOnly)
    t.push(`it('${f.name}: defaults to ${f.default}', async () => {
    const { ${f.name}: _omitted, ...body } = validBody();
    const res = await api.post('${P}', body);
    expect(res.status).toBe(201);
    expect(res.body.${f.name}).toBe(${j(f.default)});
  });`);
  if (f.readOnly)
    t.push(`it('${f.name}: read-only, refused in POST and PUT', async () => {
    await expectInvalid(await api.post('${P}', { ...validBody(), ${f.name}: ${j(sample(f))} }), '/${f.name}', 'is read-only');
    const { body } = await api.post('${P}', validBody());
    await expectInvalid(await api.put(\`${P}/\${body.id}\`, { ${f.name}: ${j(sample(f))} }), '/${f.name}', 'is read-only');
  });`);
  if (f.readOnly && f.dbDefault !== undefined)
    t.push(`it('${f.name}: starts as ${f.dbDefault}', async () => {
    expect((await api.post('${P}', validBody())).body.${f.name}).toBe(${j(f.dbDefault)});
  });`);
  if (f.unique)
    t.push(`it('${f.name}: unique, a duplicate is a 409 naming the field', async () => {
    const body = validBody();
    expect((await api.post('${P}', body)).status).toBe(201);
    const dup = await api.post('${P}', { ...validBody(), ${f.name}: body.${f.name} });
    expect(dup.status).toBe(409);
    expect(dup.body.errors[0].pointer).toBe('/${f.name}');
  });

  it('${f.name}: unique under concurrent creates, exactly one wins', async () => {
    const body = validBody();
    const results = await Promise.all(Array.from({ length: 8 }, () => api.post('${P}', body)));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
  });

  it('${f.name}: unique on PUT, taking another item\\'s value is a 409', async () => {
    const a = (await api.post('${P}', validBody())).body;
    const b = (await api.post('${P}', validBody())).body;
    const res = await api.put(\`${P}/\${b.id}\`, { ${f.name}: a.${f.name} });
    expect(res.status).toBe(409);
  });`);
  if (f.sensitive)
    t.push(`it('${f.name}: sensitive, never returned or stored in plaintext', async () => {
    const created = await api.post('${P}', validBody());
    expect(created.status).toBe(201);
    expect(created.body.has_${f.name}).toBe(true);
    expect(created.body.${f.name}).toContain('****');
    const everyRead = [
      created.text,
      (await api.get(\`${P}/\${created.body.id}\`)).text,
      (await api.get('${P}')).text,
      (await api.put(\`${P}/\${created.body.id}\`, {})).text,
    ];
    for (const text of everyRead) expect(text).not.toContain(SECRET);
    const stored = await api.knex.raw('select row_to_json(t)::text as row from ${e.table} t where id = ?', [created.body.id]);
    expect(stored.rows[0].row).not.toContain(SECRET);
  });

  it('${f.name}: sensitive, kept when a PUT leaves it out and cleared by null', async () => {
    const { body } = await api.post('${P}', validBody());
    const kept = await api.put(\`${P}/\${body.id}\`, {});
    expect(kept.body.has_${f.name}).toBe(true);
    const cleared = await api.put(\`${P}/\${body.id}\`, { ${f.name}: null });
    expect(cleared.body).toMatchObject({ ${f.name}: null, has_${f.name}: false });
  });`);
  return t;
}

/** A query value the filter on `f` must refuse (%00: no text column can hold U+0000). */
function badFilterValue(f: FieldInfo): string {
  switch (f.type) {
    case 'boolean':
      return 'maybe';
    case 'integer':
      return 'ten';
    case 'enum':
      return 'not-a-value';
    case 'uuid':
      return 'not-a-uuid';
    default:
      return '%00';
  }
}

function filterTests(e: EntityInfo): string[] {
  return Object.entries(e.filters).map(([param, field]) => {
    const f = e.fields.find((x) => x.name === field)!;
    // Filter by the value the item was actually stored with: unique fields get a fresh value per
    // body, and server-set fields their initial value.
    return `it('filter ${param}: selects by ${field}; an invalid value is a 400', async () => {
    const created = (await api.post('${P(e)}', validBody())).body;
    const value = created.${field};
    const res = await api.get(\`${P(e)}?${param}=\${encodeURIComponent(String(value))}&limit=100\`);
    expect(res.status).toBe(200);
    expect(res.body.data.map((item: { id: string }) => item.id)).toContain(created.id);
    for (const item of res.body.data) expect(item.${field}).toBe(value);
    expect(res.body.pagination.total).toBeGreaterThanOrEqual(res.body.data.length);
    await expectInvalid(await api.get('${P(e)}?${param}=${badFilterValue(f)}'), '${param}');
  });`;
  });
}

function prefixFilterTests(e: EntityInfo): string[] {
  return Object.entries(e.prefixFilters).map(
    ([
      param,
      field,
    ]) => `it('prefix filter ${param}: selects by the start of ${field}, ignoring case; % and _ are literal', async () => {
    const created = (await api.post('${P(e)}', validBody())).body;
    const value = String(created.${field});
    const prefix = value.slice(0, Math.max(1, value.length - 1)).toUpperCase();
    const res = await api.get(\`${P(e)}?${param}=\${encodeURIComponent(prefix)}&limit=100\`);
    expect(res.status).toBe(200);
    expect(res.body.data.map((item: { id: string }) => item.id)).toContain(created.id);
    for (const item of res.body.data) expect(String(item.${field}).toLowerCase().startsWith(prefix.toLowerCase())).toBe(true);
    expect(res.body.pagination.total).toBe(res.body.data.length);
    const wildcard = await api.get('${P(e)}?${param}=%25');
    expect(wildcard.status).toBe(200);
    for (const item of wildcard.body.data) expect(String(item.${field}).startsWith('%')).toBe(true);
    await expectInvalid(await api.get('${P(e)}?${param}=%00'), '${param}');
  });`,
  );
}

const P = (e: EntityInfo) => e.path;

export function contractTestTemplate(e: EntityInfo, imports: { harness: string; generated: string }): string {
  const fieldBlocks = e.fields.flatMap((f) => fieldTests(e, f));
  const path = e.path;
  return `${HEADER}
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectInvalid, longest, startTestApi, type TestApi } from '${imports.harness}';
import { ${e.camel}Resource } from '${imports.generated}';

const SECRET = ${j(SECRET_SAMPLE)};
${bodyBuilder(e)}

// One test per constraint of ${e.pascal} in specs/entities.json, against a real Postgres.
describe('${e.pascal} contract', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({ resources: [${e.camel}Resource], migrationsDir: new URL('../../migrations/', import.meta.url).pathname });
  });
  afterAll(() => api.close());

  it('creates with 201, a Location header and every field in the response', async () => {
    const res = await api.post('${path}', validBody());
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(\`${path}/\${res.body.id}\`);
    expect(Object.keys(res.body).sort()).toEqual(${j(
      e.fields.flatMap((f) => (f.sensitive ? [f.name, `has_${f.name}`] : [f.name])).sort(),
    )});
  });

  it('gets, updates (omitted fields kept), lists newest first and deletes', async () => {
    const first = (await api.post('${path}', validBody())).body;
    const second = (await api.post('${path}', validBody())).body;
    expect((await api.get(\`${path}/\${first.id}\`)).body).toEqual(first);
    const updated = await api.put(\`${path}/\${first.id}\`, {});
    expect(updated.status).toBe(200);
    expect({ ...updated.body, updated_at: first.updated_at }).toEqual(first);
    expect(Date.parse(updated.body.updated_at)).toBeGreaterThanOrEqual(Date.parse(first.updated_at));
    const list = await api.get('${path}?limit=2');
    expect(list.body.data.map((x: { id: string }) => x.id)).toEqual([second.id, first.id]);
    expect(list.body.pagination).toMatchObject({ limit: 2, offset: 0 });
    expect((await api.del(\`${path}/\${first.id}\`)).status).toBe(204);
    expect((await api.get(\`${path}/\${first.id}\`)).status).toBe(404);
    expect((await api.del(\`${path}/\${first.id}\`)).status).toBe(404);
    expect((await api.put(\`${path}/\${first.id}\`, {})).status).toBe(404);
  });

  it('a malformed id is a 400 naming the parameter, on get, put and delete', async () => {
    await expectInvalid(await api.get('${path}/not-a-uuid'), 'id');
    await expectInvalid(await api.put('${path}/not-a-uuid', {}), 'id');
    await expectInvalid(await api.del('${path}/not-a-uuid'), 'id');
  });

  it('an unknown field is a 400 naming it', async () => {
    await expectInvalid(await api.post('${path}', { ...validBody(), no_such_field: 1 }), '/no_such_field', 'is not a known field');
  });

  it('pagination: total counts the filtered set; limit and offset are bounded', async () => {
    const before = (await api.get('${path}')).body.pagination.total;
    await Promise.all([api.post('${path}', validBody()), api.post('${path}', validBody())]);
    const page = await api.get('${path}?limit=1&offset=1');
    expect(page.body.pagination).toEqual({ total: before + 2, limit: 1, offset: 1 });
    expect(page.body.data).toHaveLength(1);
    await expectInvalid(await api.get('${path}?limit=0'), 'limit');
    await expectInvalid(await api.get('${path}?limit=101'), 'limit');
    await expectInvalid(await api.get('${path}?offset=-1'), 'offset');
    await expectInvalid(await api.get('${path}?no_such_param=1'), 'no_such_param');
  });

  ${[...fieldBlocks, ...filterTests(e), ...prefixFilterTests(e)].join('\n\n  ')}
});
`;
}
