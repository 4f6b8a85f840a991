// Compiled by test/integration/typed-client.test.ts (outside the project's own tsc: ./schema.ts is
// generated at test time) with `tsc --strict` against the types that
// openapi-typescript generates from the served /openapi.json (default options), then run against
// a real API and worker. It is what a user's TypeScript client looks like: if the document types
// something wrongly, this file stops compiling.
import createClient from 'openapi-fetch';
import type { components, paths } from './schema.js';

type TestResult = components['schemas']['TestResult'];
type SyncJobResult = components['schemas']['SyncJobResult'];

export interface Outcome {
  createdStatus: number;
  metadata: components['schemas']['RawDataSource']['metadata'];
  afterUpdate: { refresh_interval: number; is_active: boolean; sync_mode: string };
  jobState: components['schemas']['JobBase']['state'];
  syncResult: SyncJobResult | null;
  runs: { status: components['schemas']['SyncRun']['status']; records: number }[];
  test: TestResult | { job_id: string };
}

export async function run(baseUrl: string, token: string, fileUrl: string): Promise<Outcome> {
  const client = createClient<paths>({ baseUrl, headers: { authorization: `Bearer ${token}` } });

  const created = await client.POST('/raw-data-sources', {
    body: {
      name: 'typed-client-orders',
      source_type: 'file',
      connection_string: fileUrl,
      metadata: { format: 'csv', delimiter: ',', header: true, owner: 'typed-client' },
    },
  });
  if (!created.data) throw new Error(`create: ${created.response.status} ${JSON.stringify(created.error)}`);
  const id = created.data.id;

  // One field: the others keep their stored value (the update type has no defaults to fill in).
  const updated = await client.PUT('/raw-data-sources/{id}', {
    params: { path: { id } },
    body: { refresh_interval: 120 },
  });
  if (!updated.data) throw new Error(`update: ${updated.response.status} ${JSON.stringify(updated.error)}`);

  const tested = await client.POST('/raw-data-sources/{id}/test', { params: { path: { id } } });
  if (!tested.data) throw new Error(`test: ${tested.response.status} ${JSON.stringify(tested.error)}`);

  const sync = await client.POST('/raw-data-sources/{id}/sync', { params: { path: { id } } });
  if (!sync.data) throw new Error(`sync: ${sync.response.status} ${JSON.stringify(sync.error)}`);
  const jobId = sync.data.job_id;

  let job: components['schemas']['Job'] | undefined;
  for (let i = 0; i < 300; i++) {
    const polled = await client.GET('/jobs/{id}', { params: { path: { id: jobId } } });
    if (!polled.data) throw new Error(`job: ${polled.response.status} ${JSON.stringify(polled.error)}`);
    job = polled.data;
    if (job.state === 'completed' || job.state === 'failed') break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (!job) throw new Error('no job');
  // The queue tells what the result is: a sync job's result is a SyncJobResult.
  const syncResult: SyncJobResult | null = job.queue === 'sync' ? job.result : null;
  // What the document must NOT allow (each line is a compile error, or tsc reports the directive unused):
  // @ts-expect-error a test job's result is a TestResult, not a sync result
  const wrong: SyncJobResult | null = job.queue === 'test' ? job.result : null;
  // @ts-expect-error job states are an enum
  const unknownState: typeof job.state = 'done';
  // @ts-expect-error step codes are an enum
  const unknownCode: NonNullable<TestResult['steps'][number]['code']> = 'oops';
  // @ts-expect-error run statuses are an enum
  const unknownStatus: components['schemas']['SyncRun']['status'] = 'finished';
  void [wrong, unknownState, unknownCode, unknownStatus];

  const runs = await client.GET('/raw-data-sources/{id}/runs', {
    params: { path: { id }, query: { limit: 10 } },
  });
  if (!runs.data) throw new Error(`runs: ${runs.response.status} ${JSON.stringify(runs.error)}`);

  return {
    createdStatus: created.response.status,
    metadata: created.data.metadata,
    afterUpdate: {
      refresh_interval: updated.data.refresh_interval,
      is_active: updated.data.is_active,
      sync_mode: updated.data.sync_mode,
    },
    jobState: job.state,
    syncResult,
    runs: runs.data.data.map((r) => ({ status: r.status, records: r.records })),
    test: tested.data,
  };
}
