import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEventStream, SluiceClient, SluiceStreamError } from '../../clients/typescript/src/client';
import { resolveConnection } from '../../clients/typescript/src/cli/config';
import { UsageError } from '../../clients/typescript/src/cli/exit-codes';

/** The client's pure parts: the SSE parser, the pager, and where the command line connects. */
const streamOf = (...chunks: string[]) =>
  new ReadableStream<Uint8Array>({
    start(controller) {
      for (const c of chunks) controller.enqueue(new TextEncoder().encode(c));
      controller.close();
    },
  });

describe('parseEventStream', () => {
  it('yields each data event across chunk boundaries, skipping comments and keep-alives', async () => {
    const event = (n: number) => ({
      id: `1-${n}`,
      type: 'sync.started',
      source_id: null,
      run_id: null,
      at: 'x',
      data: {},
    });
    const text = `: connected\n\nid: 1-1\nevent: sync.started\ndata: ${JSON.stringify(event(1))}\n\n: keep-alive\n\nid: 1-2\r\ndata: ${JSON.stringify(event(2))}\r\n\r\n`;
    const seen = [];
    for await (const e of parseEventStream(streamOf(text.slice(0, 37), text.slice(37, 90), text.slice(90))))
      seen.push(e);
    expect(seen).toEqual([event(1), event(2)]);
  });

  it('ends with SluiceStreamError on the server’s error event', async () => {
    const read = async () => {
      for await (const _ of parseEventStream(streamOf('event: error\ndata: {"message":"interrupted"}\n\n')))
        void _;
    };
    await expect(read()).rejects.toThrow(SluiceStreamError);
  });
});

describe('SluiceClient.paginate', () => {
  it('walks limit/offset pages until total, and stops at max', async () => {
    const items = Array.from({ length: 7 }, (_, i) => i);
    const client = new SluiceClient({ baseUrl: 'http://127.0.0.1:9' });
    const page = async ({ limit, offset }: { limit: number; offset: number }) => ({
      data: items.slice(offset, offset + limit),
      pagination: { total: items.length, limit, offset },
    });
    const all: number[] = [];
    for await (const i of client.paginate(page, { pageSize: 3 })) all.push(i);
    expect(all).toEqual(items);
    const some: number[] = [];
    for await (const i of client.paginate(page, { pageSize: 3, max: 4 })) some.push(i);
    expect(some).toEqual([0, 1, 2, 3]);
  });
});

describe('resolveConnection', () => {
  let dir: string;
  let file: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-config-'));
    file = join(dir, 'config.json');
    await writeFile(
      file,
      JSON.stringify({
        default_profile: 'local',
        profiles: {
          local: { url: 'http://127.0.0.1:3000', token: 'slc_local' },
          ci: { url: 'http://127.0.0.1:4000' },
        },
      }),
    );
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('flags, then --profile, then SLUICE_URL/SLUICE_TOKEN, then the default profile', () => {
    const env = { SLUICE_CONFIG: file };
    expect(resolveConnection({}, env)).toEqual({
      url: 'http://127.0.0.1:3000',
      token: 'slc_local',
      profile: 'local',
    });
    const fromEnv = { ...env, SLUICE_URL: 'http://127.0.0.1:5000', SLUICE_TOKEN: 'slc_env' };
    expect(resolveConnection({}, fromEnv)).toMatchObject({ url: 'http://127.0.0.1:5000', token: 'slc_env' });
    // A named profile beats the environment for what it sets; the environment fills the rest.
    expect(resolveConnection({ profile: 'ci' }, fromEnv)).toMatchObject({
      url: 'http://127.0.0.1:4000',
      token: 'slc_env',
    });
    expect(
      resolveConnection({ profile: 'ci', url: 'http://127.0.0.1:6000', token: 't' }, fromEnv),
    ).toMatchObject({
      url: 'http://127.0.0.1:6000',
      token: 't',
    });
  });

  it('is a usage error without a URL, with an unknown profile, or with a broken file', async () => {
    expect(() => resolveConnection({}, { SLUICE_CONFIG: join(dir, 'none.json') })).toThrow(UsageError);
    expect(() => resolveConnection({ profile: 'nope' }, { SLUICE_CONFIG: file })).toThrow(
      /no profile "nope"/,
    );
    const broken = join(dir, 'broken.json');
    await writeFile(broken, '{nope');
    expect(() => resolveConnection({}, { SLUICE_CONFIG: broken })).toThrow(UsageError);
  });
});
